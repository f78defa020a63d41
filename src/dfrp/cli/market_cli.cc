#include "dfrp/cli/market_cli.h"

#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "dfrp/core/bytes.h"
#include "dfrp/core/config.h"
#include "dfrp/core/version.h"
#include "dfrp/economy/fee_match.h"
#include "dfrp/economy/measure.h"
#include "dfrp/economy/oracle.h"
#include "dfrp/economy/policy.h"

namespace dfrp::cli {

using core::Err;
using core::Result;
using core::Status;
using economy::EconomicPolicy;
using economy::kResources;
using economy::Resource;
using economy::ResourceName;
using json = nlohmann::json;

namespace {

struct Globals {
  std::string config;
  bool json = false;
  bool quiet = false;
};

int Fail(const Status& s) {
  std::fprintf(stderr, "dfrp-market: %s\n", s.message().c_str());
  return core::ExitCodeFor(s);
}

void PrintJson(const json& j) { std::printf("%s\n", j.dump(2).c_str()); }

// An amount as the API shows it: a decimal string and the integer of base units.
void PutAmount(json& j, const std::string& key, const EconomicPolicy& p, economy::Amount a) {
  j[key] = p.FormatAmount(a);
  j[key + "_base_units"] = a;
}

json PriceVectorJson(const EconomicPolicy& p, const economy::PriceVector& v) {
  json j = json::object();
  for (Resource r : kResources)
    j[std::string(ResourceName(r))] = p.FormatPrice(v[static_cast<size_t>(r)]);
  return j;
}

std::string CapacityPath(const core::NodeConfig& cfg) { return cfg.state_dir + "/capacity.json"; }

// The capacity the oracle prices from: STATE_DIR/capacity.json when `measure` wrote one,
// else the policy's reference (every price at its floor), said in `note`.
economy::OracleCapacity LoadOracleCapacity(core::FileSystem* fs, const core::NodeConfig& cfg,
                                           const EconomicPolicy& p, std::string* note) {
  economy::OracleCapacity oc;
  oc.figures.cpu_hashes_per_sec_one_core = p.pricing.reference_cpu_hashes_per_sec;
  oc.figures.read_mb_per_sec = p.pricing.reference_read_mb_per_sec;
  oc.figures.write_mb_per_sec = p.pricing.reference_write_mb_per_sec;
  oc.figures.read_iops = p.pricing.reference_read_iops;
  auto text = core::ReadWholeFile(fs, CapacityPath(cfg));
  if (!text) {
    *note = "no measurement yet (run `dfrp-market measure`): prices start at the floors";
    return oc;
  }
  json j = json::parse(*text, nullptr, false);
  auto c = economy::CapacityFromJson(j);
  if (!c) {
    *note = fmt::format(
        "{} is not usable ({}): prices start at the floors; run "
        "`dfrp-market measure` again",
        CapacityPath(cfg), c.error().message());
    return oc;
  }
  oc.cores = std::max(1u, c->cores);
  oc.gpus = c->gpu_tflops ? 1 : 0;
  oc.figures.cpu_hashes_per_sec_one_core = c->sha256_per_sec_one_core;
  oc.figures.gpu_tflops = c->gpu_tflops;
  for (const auto& v : c->volumes) {
    if (!v.error.empty() || !v.read_mb_per_sec) continue;  // the first measured volume
    oc.figures.read_mb_per_sec = *v.read_mb_per_sec;
    oc.figures.write_mb_per_sec = v.write_mb_per_sec.value_or(0);
    oc.figures.read_iops = v.read_iops_4k.value_or(0);
    break;
  }
  return oc;
}

Status CmdPolicy(const Globals& g, const EconomicPolicy& p) {
  if (!g.json) {
    std::printf("%s", economy::RenderEconomicToml(p).c_str());
    return Status::OK();
  }
  json j;
  j["source"] = p.source;
  j["network_id"] = core::ToHex(p.network_id);
  j["network"] = p.genesis.network;
  j["currency"] = p.genesis.currency;
  j["decimals"] = p.genesis.decimals;
  PutAmount(j, "supply", p, p.genesis.supply);
  j["policy_version"] = p.version;
  j["owner"] = p.owner;
  j["margin_bps"] = p.margin_bps;
  PutAmount(j, "order_fee", p, p.order_fee);
  j["epoch_seconds"] = p.pricing.epoch_seconds;
  j["target_utilization_bps"] = p.pricing.target_utilization_bps;
  j["max_change_denominator"] = p.pricing.max_change_denominator;
  j["floor"] = PriceVectorJson(p, p.pricing.floor);
  j["ceiling"] = PriceVectorJson(p, p.pricing.ceiling);
  j["committee"] = json::array();
  for (const auto& a : p.genesis.committee)
    j["committee"].push_back({{"address", a.address}, {"url", a.url}});
  j["toml"] = economy::RenderEconomicToml(p);
  PrintJson(j);
  return Status::OK();
}

Status CmdMeasure(const Globals& g, core::FileSystem* fs, core::Clock* clock,
                  const core::NodeConfig& cfg, bool quick) {
  std::vector<std::pair<uint32_t, std::string>> volumes;
  for (const auto& d : cfg.drives) volumes.emplace_back(static_cast<uint32_t>(d.index), d.path);
  economy::MeasureOptions opt;
  opt.quick = quick;
  opt.clock = clock;
  if (!g.quiet && !g.json)
    opt.progress = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  auto c = economy::MeasureCapacity(volumes, opt);
  if (!c) return c.error();
  const json j = economy::CapacityToJson(*c);
  if (fs->IsDirectory(cfg.state_dir))
    DFRP_RETURN_IF_ERROR(core::WriteFileAtomic(fs, CapacityPath(cfg), j.dump(2) + "\n"));
  if (g.json) {
    PrintJson(j);
  } else {
    std::printf("cores                 %u\n", c->cores);
    std::printf("SHA-256/s one core    %.0f\n", c->sha256_per_sec_one_core);
    std::printf("SHA-256/s all cores   %.0f\n", c->sha256_per_sec_all_cores);
    if (c->gpu_tflops)
      std::printf("GPU FP32 TFLOP/s      %.2f\n", *c->gpu_tflops);
    else
      std::printf("GPU                   none: %s\n", c->gpu_reason.c_str());
    for (const auto& v : c->volumes) {
      if (!v.error.empty()) {
        std::printf("volume %u (%s): not measured: %s\n", v.index, v.path.c_str(), v.error.c_str());
        continue;
      }
      std::printf(
          "volume %u (%s)%s: %.0f IOPS 4 KiB random read, %.1f MB/s read, %.1f MB/s write\n",
          v.index, v.path.c_str(), v.direct_io ? "" : " (no O_DIRECT: synced I/O)",
          v.read_iops_4k.value_or(0), v.read_mb_per_sec.value_or(0),
          v.write_mb_per_sec.value_or(0));
    }
    std::printf("took %.1f s\n", c->seconds);
  }
  for (const auto& v : c->volumes)
    if (!v.error.empty() && g.json)
      std::fprintf(stderr, "dfrp-market: volume %u not measured: %s\n", v.index, v.error.c_str());
  return Status::OK();
}

Result<std::unique_ptr<economy::PriceOracle>> OpenOracle(core::FileSystem* fs, core::Clock* clock,
                                                         const core::NodeConfig& cfg,
                                                         const EconomicPolicy& p,
                                                         std::string* note) {
  if (!fs->IsDirectory(cfg.state_dir))
    return Err(Status::NotFound(
        fmt::format("the state folder {} does not exist: run `dfrp-storage init-storage` first",
                    cfg.state_dir)));
  return economy::PriceOracle::Open(cfg.state_dir, p, LoadOracleCapacity(fs, cfg, p, note), clock);
}

Status CmdPrices(const Globals& g, core::FileSystem* fs, core::Clock* clock,
                 const core::NodeConfig& cfg, const EconomicPolicy& p, int history) {
  std::string note;
  auto o = OpenOracle(fs, clock, cfg, p, &note);
  if (!o) return o.error();
  const economy::EpochRecord cur = (*o)->Current();
  json j;
  j["epoch"] = (*o)->CurrentEpoch();
  j["epoch_seconds"] = p.pricing.epoch_seconds;
  j["currency"] = p.genesis.currency;
  j["prices"] = PriceVectorJson(p, cur.prices);
  j["prices_since_epoch"] = cur.epoch;
  json u = json::object();
  for (Resource r : kResources)
    u[std::string(ResourceName(r))] = cur.utilization[static_cast<size_t>(r)];
  j["utilization_bps"] = u;
  j["floor"] = PriceVectorJson(p, p.pricing.floor);
  j["ceiling"] = PriceVectorJson(p, p.pricing.ceiling);
  j["note"] = note;
  if (history > 0) {
    j["history"] = json::array();
    for (const auto& r : (*o)->History(static_cast<size_t>(history))) {
      json u2 = json::object();
      for (Resource res : kResources)
        u2[std::string(ResourceName(res))] = r.utilization[static_cast<size_t>(res)];
      j["history"].push_back({{"epoch", r.epoch},
                              {"unix_ms", r.unix_ms},
                              {"prices", PriceVectorJson(p, r.prices)},
                              {"utilization_bps", u2}});
    }
  }
  if (g.json) {
    PrintJson(j);
    return Status::OK();
  }
  std::printf("epoch %llu (%u s each), prices in %s per unit:\n",
              static_cast<unsigned long long>((*o)->CurrentEpoch()), p.pricing.epoch_seconds,
              p.genesis.currency.c_str());
  std::printf("%-18s %16s %8s %16s %16s\n", "resource", "price", "util", "floor", "ceiling");
  for (Resource r : kResources) {
    const size_t i = static_cast<size_t>(r);
    std::printf("%-18s %16s %7.1f%% %16s %16s\n", std::string(ResourceName(r)).c_str(),
                p.FormatPrice(cur.prices[i]).c_str(), cur.utilization[i] / 100.0,
                p.FormatPrice(p.pricing.floor[i]).c_str(),
                p.FormatPrice(p.pricing.ceiling[i]).c_str());
  }
  if (!note.empty() && !g.quiet) std::fprintf(stderr, "dfrp-market: %s\n", note.c_str());
  if (history > 0) {
    for (const auto& r : j["history"]) {
      std::string line = fmt::format("epoch {}:", r["epoch"].get<uint64_t>());
      for (Resource res : kResources)
        line += fmt::format(" {}={}", ResourceName(res),
                            r["prices"][std::string(ResourceName(res))].get<std::string>());
      std::printf("%s\n", line.c_str());
    }
  }
  return Status::OK();
}

struct QuoteFlags {
  std::string cpu_sec, gpu_sec, storage_mb, months, read_mb, write_mb, proofs, max_fee, wallet;
  std::vector<std::string> max_price;
  std::string context;
};

Result<std::string> ReadContext(core::FileSystem* fs, const std::string& path) {
  if (path != "-") return core::ReadWholeFile(fs, path);
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), stdin)) > 0) {
    text.append(buf, n);
    if (text.size() > (1 << 20))
      return Err(Status::InvalidArgument("the context on standard input is over 1 MiB"));
  }
  return text;
}

Status CmdQuote(const Globals& g, core::FileSystem* fs, core::Clock* clock,
                const core::NodeConfig& cfg, const EconomicPolicy& p, const QuoteFlags& f) {
  std::string text;
  const bool any_flag = !f.cpu_sec.empty() || !f.gpu_sec.empty() || !f.storage_mb.empty() ||
                        !f.months.empty() || !f.read_mb.empty() || !f.write_mb.empty() ||
                        !f.proofs.empty() || !f.max_fee.empty() || !f.max_price.empty() ||
                        !f.wallet.empty();
  if (!f.context.empty()) {
    if (any_flag)
      return Status::InvalidArgument(
          "give either --context or the quantity options (--cpu-sec, ...), not both");
    auto t = ReadContext(fs, f.context);
    if (!t) return t.error();
    text = *t;
  } else {
    if (!any_flag)
      return Status::InvalidArgument(
          "quote what? give --cpu-sec, --gpu-sec, --storage-mb, --read-mb, --write-mb or "
          "--proofs (with --max-fee), or --context FILE");
    // The flags become the same JSON a client sends, so there is one parser.
    json j = json::object();
    auto put = [&](const char* key, const std::string& v) {
      if (!v.empty()) j[key] = v;
    };
    put("cpu_sec", f.cpu_sec);
    put("gpu_sec", f.gpu_sec);
    put("storage_mb", f.storage_mb);
    put("months", f.months);
    put("read_mb", f.read_mb);
    put("write_mb", f.write_mb);
    put("max_fee", f.max_fee);
    put("wallet", f.wallet);
    if (!f.proofs.empty()) j["proofs"] = f.proofs;
    for (const std::string& mp : f.max_price) {
      const size_t eq = mp.find('=');
      if (eq == std::string::npos || eq == 0)
        return Status::InvalidArgument(fmt::format(
            "--max-price {:?}: give RESOURCE=AMOUNT, such as --max-price cpu_sec=0.002", mp));
      j["max_price"][mp.substr(0, eq)] = mp.substr(eq + 1);
    }
    text = j.dump();
  }
  auto req = economy::ParseFeeRequest(text, p, cfg.vector_dim);
  if (!req) return req.error();
  std::string note;
  auto o = OpenOracle(fs, clock, cfg, p, &note);
  if (!o) return o.error();
  const economy::PriceVector prices = (*o)->Current().prices;
  const economy::Quote q = economy::MatchFee(*req, prices, p);
  if (g.json) {
    json j;
    j["accepted"] = q.accepted;
    j["reason"] = q.reason;
    json fees = json::object();
    for (Resource r : kResources) {
      const size_t i = static_cast<size_t>(r);
      if (req->quantity[i] == 0) continue;
      json one;
      one["quantity"] = economy::FormatFixed(req->quantity[i], economy::kQuantityDecimals);
      one["price"] = p.FormatPrice(prices[i]);
      PutAmount(one, "fee", p, q.fee[i]);
      fees[std::string(ResourceName(r))] = one;
    }
    j["fees"] = fees;
    PutAmount(j, "total", p, q.total);
    if (req->max_fee) PutAmount(j, "max_fee", p, *req->max_fee);
    j["currency"] = p.genesis.currency;
    j["epoch"] = (*o)->CurrentEpoch();
    PrintJson(j);
  } else if (!g.quiet) {
    for (Resource r : kResources) {
      const size_t i = static_cast<size_t>(r);
      if (req->quantity[i] == 0) continue;
      std::printf("%-18s %14s x %-16s = %s\n", std::string(ResourceName(r)).c_str(),
                  economy::FormatFixed(req->quantity[i], economy::kQuantityDecimals).c_str(),
                  p.FormatPrice(prices[i]).c_str(), p.FormatAmount(q.fee[i]).c_str());
    }
    std::printf(
        "total %s %s%s\n", p.FormatAmount(q.total).c_str(), p.genesis.currency.c_str(),
        req->max_fee ? fmt::format(" (max_fee {})", p.FormatAmount(*req->max_fee)).c_str() : "");
    std::printf("%s\n", q.accepted ? "accepted" : "refused");
  }
  if (!q.accepted) return Status::Refused(fmt::format("refused: {}", q.reason));
  return Status::OK();
}

}  // namespace

int RunMarketCli(int argc, char** argv, core::FileSystem* fs, core::Clock* clock) {
  CLI::App app{"dfrp-market: what this node measures, charges and counts", "dfrp-market"};
  app.require_subcommand(1);
  app.fallthrough();
  app.set_version_flag("--version", fmt::format("dfrp-market {}", core::kVersion));
  Globals g;
  app.add_option("--config", g.config,
                 "config file (.toml or .env); default $DFRP_CONFIG, ./dfrp.toml, ./.env, else "
                 "the embedded default");
  app.add_flag("--json", g.json, "print one JSON object on stdout");
  app.add_flag("-q,--quiet", g.quiet, "print only what a script needs");

  auto* policy = app.add_subcommand("policy", "print the effective economic.toml");
  bool quick = false;
  auto* measure = app.add_subcommand(
      "measure", "measure CPU (SHA-256/s), GPU and each volume; writes STATE_DIR/capacity.json");
  measure->add_flag("--quick", quick, "a short measurement (under 30 s)");
  int history = 0;
  auto* prices = app.add_subcommand("prices",
                                    "the current price vector, utilisation, floors "
                                    "and ceilings");
  prices->add_option("--history", history, "also the last N epochs")
      ->expected(0, 1)
      ->default_str("100");
  QuoteFlags qf;
  auto* quote = app.add_subcommand(
      "quote", "match a request against the current prices (exit 7 when refused)");
  quote->add_option("--cpu-sec", qf.cpu_sec, "CPU-seconds");
  quote->add_option("--gpu-sec", qf.gpu_sec, "GPU-seconds");
  quote->add_option("--storage-mb", qf.storage_mb, "MB (10^6 bytes) to store");
  quote->add_option("--months", qf.months, "for how many months (default 1)");
  quote->add_option("--read-mb", qf.read_mb, "MB to read");
  quote->add_option("--write-mb", qf.write_mb, "MB to write");
  quote->add_option("--proofs", qf.proofs, "proofs of storage to answer");
  quote->add_option("--max-fee", qf.max_fee, "the most the request pays, in the currency");
  quote->add_option("--max-price", qf.max_price,
                    "a cap on one resource's price, RESOURCE=AMOUNT (repeatable)");
  quote->add_option("--wallet", qf.wallet, "the paying wallet's address");
  quote->add_option("--context", qf.context,
                    "a request's JSON ({\"cpu_sec\": 1.2, \"max_fee\": 0.0042, ...}) from FILE, "
                    "or - for standard input");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "dfrp-market: %s (see dfrp-market --help)\n", e.what());
    return core::kExitUsage;
  }
  if (prices->count("--history") > 0 && history == 0) history = 100;
  core::ConfigOptions copt;
  copt.explicit_path = g.config;
  copt.require_drives = false;
  auto cfg = core::LoadConfig(copt);
  if (!cfg) return Fail(cfg.error());
  auto pol = economy::LoadEconomicPolicy(fs, cfg->economic_policy, cfg->config_dir);
  if (!pol) return Fail(pol.error());
  Status s;
  if (*policy)
    s = CmdPolicy(g, *pol);
  else if (*measure)
    s = CmdMeasure(g, fs, clock, *cfg, quick);
  else if (*prices)
    s = CmdPrices(g, fs, clock, *cfg, *pol, history);
  else if (*quote)
    s = CmdQuote(g, fs, clock, *cfg, *pol, qf);
  if (!s.ok()) return Fail(s);
  return core::kExitOk;
}

}  // namespace dfrp::cli
