#include "dfrp/cli/market_cli.h"

#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "dfrp/cli/request_flags.h"
#include "dfrp/core/bytes.h"
#include "dfrp/core/config.h"
#include "dfrp/core/version.h"
#include "dfrp/economy/fee_match.h"
#include "dfrp/economy/market.h"
#include "dfrp/economy/measure.h"
#include "dfrp/economy/oracle.h"
#include "dfrp/economy/policy.h"
#include "dfrp/node/client.h"

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
  economy::PutAmount(j, "supply", p, p.genesis.supply);
  j["policy_version"] = p.version;
  j["owner"] = p.owner;
  j["margin_bps"] = p.margin_bps;
  economy::PutAmount(j, "order_fee", p, p.order_fee);
  j["epoch_seconds"] = p.pricing.epoch_seconds;
  j["target_utilization_bps"] = p.pricing.target_utilization_bps;
  j["max_change_denominator"] = p.pricing.max_change_denominator;
  j["floor"] = economy::PriceVectorJson(p, p.pricing.floor);
  j["ceiling"] = economy::PriceVectorJson(p, p.pricing.ceiling);
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
    DFRP_RETURN_IF_ERROR(
        core::WriteFileAtomic(fs, economy::CapacityPath(cfg.state_dir), j.dump(2) + "\n"));
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

// Where the market commands get their answers: a running dfrpd's API when one serves this
// STATE_DIR (so its epochs, usage and admission are the ones shown), else the files here.
class MarketSource {
 public:
  static Result<std::unique_ptr<MarketSource>> Make(core::FileSystem* fs, core::Clock* clock,
                                                    const core::NodeConfig& cfg,
                                                    const EconomicPolicy& p) {
    auto src = std::unique_ptr<MarketSource>(new MarketSource());
    if (fs->IsDirectory(cfg.state_dir)) {
      DFRP_ASSIGN_OR_RETURN(auto daemon, node::FindDaemon(fs, cfg.state_dir));
      if (daemon) {
        src->client_ = std::make_unique<node::Client>(*daemon);
        return src;
      }
    }
    economy::MarketOptions mo;
    mo.state_dir = cfg.state_dir;
    mo.fs = fs;
    mo.clock = clock;
    mo.vector_dim = cfg.vector_dim;
    if (fs->IsDirectory(cfg.state_dir)) {
      economy::UsageOptions uo{.path = economy::UsagePath(cfg.state_dir),
                               .epoch_seconds = p.pricing.epoch_seconds,
                               .clock = clock,
                               .background_flush = false};
      DFRP_ASSIGN_OR_RETURN(src->usage_, economy::UsageCounter::Open(uo));
      mo.usage = src->usage_.get();
    }
    DFRP_ASSIGN_OR_RETURN(src->market_, economy::Market::Open(p, mo));
    return src;
  }

  // GET target -> JSON (an error answer becomes its Status, exit code included).
  Result<json> Get(const std::string& target, const std::function<Result<json>()>& local) {
    if (!client_) return local();
    DFRP_ASSIGN_OR_RETURN(node::HttpResponse r, client_->Request("GET", target));
    return Answer(r);
  }
  Result<json> Post(const std::string& target, const std::string& body,
                    const std::function<Result<json>()>& local) {
    if (!client_) return local();
    DFRP_ASSIGN_OR_RETURN(
        node::HttpResponse r,
        client_->Request("POST", target, {{"Content-Type", "application/json"}}, body));
    return Answer(r);
  }
  economy::Market* market() { return market_.get(); }

 private:
  MarketSource() = default;
  Result<json> Answer(const node::HttpResponse& r) {
    json j = json::parse(r.body, nullptr, false);
    if (r.status / 100 == 2 && !j.is_discarded()) return j;
    return Err(node::StatusFromResponse(client_->info(), r));
  }
  std::unique_ptr<node::Client> client_;
  std::unique_ptr<economy::UsageCounter> usage_;
  std::unique_ptr<economy::Market> market_;
};

Status CmdPrices(const Globals& g, MarketSource& src, int history) {
  DFRP_ASSIGN_OR_RETURN(
      json j, src.Get(fmt::format("/v1/market/prices?history={}", history), [&]() -> Result<json> {
        return src.market()->PricesJson(static_cast<size_t>(history));
      }));
  if (g.json) {
    PrintJson(j);
    return Status::OK();
  }
  std::printf("epoch %llu (%u s each), prices in %s per unit:\n",
              static_cast<unsigned long long>(j.value("epoch", uint64_t{0})),
              j.value("epoch_seconds", 0u), j.value("currency", std::string()).c_str());
  std::printf("%-18s %18s %8s %18s %18s\n", "resource", "price", "util", "floor", "ceiling");
  for (Resource r : kResources) {
    const std::string name(ResourceName(r));
    std::printf("%-18s %18s %7.1f%% %18s %18s\n", name.c_str(),
                j["prices"].value(name, std::string()).c_str(),
                j["utilization_bps"].value(name, 0u) / 100.0,
                j["floor"].value(name, std::string()).c_str(),
                j["ceiling"].value(name, std::string()).c_str());
  }
  const std::string note = j.value("note", std::string());
  if (!note.empty() && !g.quiet) std::fprintf(stderr, "dfrp-market: %s\n", note.c_str());
  if (j.contains("history")) {
    for (const auto& e : j["history"]) {
      std::string line = fmt::format("epoch {}:", e.value("epoch", uint64_t{0}));
      for (Resource r : kResources)
        line += fmt::format(" {}={}", ResourceName(r),
                            e["prices"].value(std::string(ResourceName(r)), std::string()));
      std::printf("%s\n", line.c_str());
    }
  }
  return Status::OK();
}

// usage --rebuild: moves a damaged usage.db aside and recounts the writes from the store
// (which it opens as the writer, so never beside a running dfrpd).
Status CmdRebuildUsage(const Globals& g, core::FileSystem* fs, core::Clock* clock,
                       const core::NodeConfig& cfg, const EconomicPolicy& p) {
  if (cfg.drives.empty())
    return Status::InvalidArgument(
        fmt::format("{} names no drives: usage is rebuilt from the store's drives", cfg.source));
  DFRP_ASSIGN_OR_RETURN(auto daemon, node::FindDaemon(fs, cfg.state_dir));
  if (daemon)
    return Status::Busy(fmt::format(
        "dfrpd (pid {}, {}) serves this store: stop it, then run `dfrp-market usage --rebuild`",
        daemon->pid, daemon->url));
  storage::StoreOptions so;
  so.fs = fs;
  so.clock = clock;
  DFRP_ASSIGN_OR_RETURN(auto store, storage::Store::Open(cfg, storage::Store::Mode::kWrite, so));
  DFRP_ASSIGN_OR_RETURN(economy::UsageRebuild r,
                        economy::RebuildUsage(cfg.state_dir, *store, p.pricing.epoch_seconds));
  if (g.json) {
    PrintJson({{"moved_to", r.moved_to}, {"shards_recounted", r.shards}});
  } else if (!g.quiet) {
    if (!r.moved_to.empty())
      std::printf("moved the old usage database to %s\n", r.moved_to.c_str());
    std::printf("recounted %llu shards as written by local (read and proof counts start over)\n",
                static_cast<unsigned long long>(r.shards));
  }
  return Status::OK();
}

Status CmdUsage(const Globals& g, MarketSource& src, const std::string& wallet) {
  economy::UsageQuery q;
  if (!wallet.empty()) q.wallet = wallet;
  std::string target = "/v1/market/usage";
  if (!wallet.empty()) target += "?wallet=" + node::UrlEncode(wallet);
  DFRP_ASSIGN_OR_RETURN(json j, src.Get(target, [&]() { return src.market()->UsageJson(q); }));
  if (g.json) {
    PrintJson(j);
    return Status::OK();
  }
  const json& t = j["totals"];
  std::printf("total: %llu shards (%llu bytes) written, %llu bytes read, %llu proofs\n",
              static_cast<unsigned long long>(t.value("shards_written", uint64_t{0})),
              static_cast<unsigned long long>(t.value("bytes_written", uint64_t{0})),
              static_cast<unsigned long long>(t.value("bytes_read", uint64_t{0})),
              static_cast<unsigned long long>(t.value("proofs_served", uint64_t{0})));
  for (const auto& w : j["wallets"])
    std::printf("%-90s %14llu written %14llu read %8llu proofs\n",
                w.value("wallet", std::string()).c_str(),
                static_cast<unsigned long long>(w.value("bytes_written", uint64_t{0})),
                static_cast<unsigned long long>(w.value("bytes_read", uint64_t{0})),
                static_cast<unsigned long long>(w.value("proofs_served", uint64_t{0})));
  return Status::OK();
}

Status CmdQuote(const Globals& g, core::FileSystem* fs, MarketSource& src, const RequestFlags& f) {
  DFRP_ASSIGN_OR_RETURN(std::string text, RequestText(fs, f, "quote"));
  DFRP_ASSIGN_OR_RETURN(json j, src.Post("/v1/market/quote", text, [&]() -> Result<json> {
    bool accepted = false;
    return src.market()->QuoteJson(text, &accepted);
  }));
  const bool accepted = j.value("accepted", false);
  if (g.json) {
    PrintJson(j);
  } else if (!g.quiet) {
    for (const auto& [name, fee] : j["fees"].items())
      std::printf(
          "%-18s %14s x %-18s = %s\n", name.c_str(), fee.value("quantity", std::string()).c_str(),
          fee.value("price", std::string()).c_str(), fee.value("fee", std::string()).c_str());
    std::string line = fmt::format("total {} {}", j.value("total", std::string()),
                                   j.value("currency", std::string()));
    if (j.contains("max_fee"))
      line += fmt::format(" (max_fee {})", j.value("max_fee", std::string()));
    std::printf("%s\n%s\n", line.c_str(), accepted ? "accepted" : "refused");
  }
  if (!accepted)
    return Status::Refused(fmt::format("refused: {}", j.value("reason", std::string())));
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
  RequestFlags qf;
  auto* quote = app.add_subcommand(
      "quote", "match a request against the current prices (exit 7 when refused)");
  AddRequestOptions(quote, &qf);
  std::string usage_wallet;
  bool usage_rebuild = false;
  auto* usage = app.add_subcommand("usage", "what each wallet made this node do (usage.db)");
  usage->add_option("--wallet", usage_wallet, "only this wallet's usage");
  usage->add_flag("--rebuild", usage_rebuild,
                  "move a damaged usage.db aside and recount the writes from the store "
                  "(read and proof counts are lost; not while dfrpd runs)");
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
  if (*policy) {
    s = CmdPolicy(g, *pol);
  } else if (*measure) {
    s = CmdMeasure(g, fs, clock, *cfg, quick);
  } else if (*usage && usage_rebuild) {
    s = CmdRebuildUsage(g, fs, clock, *cfg, *pol);
  } else {
    auto src = MarketSource::Make(fs, clock, *cfg, *pol);
    if (!src) return Fail(src.error());
    if (*prices)
      s = CmdPrices(g, **src, history);
    else if (*quote)
      s = CmdQuote(g, fs, **src, qf);
    else if (*usage)
      s = CmdUsage(g, **src, usage_wallet);
  }
  if (!s.ok()) return Fail(s);
  return core::kExitOk;
}

}  // namespace dfrp::cli
