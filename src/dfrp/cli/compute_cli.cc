#include "dfrp/cli/compute_cli.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "dfrp/cli/ledger_cli_internal.h"
#include "dfrp/cli/node_json.h"
#include "dfrp/compute/catalog.h"
#include "dfrp/compute/check_rate.h"
#include "dfrp/compute/executor.h"
#include "dfrp/compute/fraud.h"
#include "dfrp/compute/job.h"
#include "dfrp/core/bytes.h"
#include "dfrp/core/config.h"
#include "dfrp/core/uuid.h"
#include "dfrp/core/version.h"
#include "dfrp/economy/fee_match.h"
#include "dfrp/ledger/client.h"
#include "dfrp/node/client.h"
#include "dfrp/wallet/address.h"
#include "dfrp/wallet/wallet.h"

namespace dfrp::cli {

using core::Err;
using core::Result;
using core::Status;
using json = nlohmann::json;

namespace {

struct Globals {
  std::string config;
  std::string policy;
  bool json = false;
};

int FailCompute(const Status& s) {
  std::fprintf(stderr, "dfrp-compute: %s\n", s.message().c_str());
  return core::ExitCodeFor(s);
}

void PrintJson(const json& j) { std::printf("%s\n", j.dump(2).c_str()); }

// What `run` was asked for and what it produced: STATE_DIR/compute/runs/<id>/run.json.
struct RunRecord {
  std::string id;
  std::string app;
  std::vector<std::string> args;
  uint32_t ranks = 1;
  compute::JobLimits limits;
  std::string dir;
  compute::RunReport report;
};

json ToJson(const RunRecord& r) {
  json j;
  j["id"] = r.id;
  j["app"] = r.app;
  j["args"] = r.args;
  j["ranks"] = r.ranks;
  j["limits"] = {{"cpu_seconds", r.limits.cpu_seconds},
                 {"memory_bytes", r.limits.memory_bytes},
                 {"wall_seconds", r.limits.wall_seconds}};
  j["dir"] = r.dir;
  const compute::RunReport& p = r.report;
  j["end"] = p.end;
  j["ok"] = p.ok();
  j["exit_code"] = p.exit_code;
  j["signal"] = p.signal;
  j["usage"] = {{"cpu_ms", p.usage.cpu_ms},
                {"wall_ms", p.usage.wall_ms},
                {"max_rss_bytes", p.usage.max_rss_bytes}};
  j["user"] = p.user;
  j["limits_enforced"] = p.limits;
  if (!p.problem.empty()) j["problem"] = p.problem;
  if (p.ok()) {
    j["result_root"] = core::ToHex(p.result_root);
    j["outputs"] = json::array();
    for (const auto& o : p.outputs)
      j["outputs"].push_back({{"rank", o.rank}, {"root", core::ToHex(o.root)}, {"size", o.size}});
  }
  return j;
}

Result<crypto::Hash> HashFromHex(const std::string& hex, std::string_view what) {
  crypto::Hash h{};
  auto raw = core::FromHex(hex);
  if (!raw || raw->size() != h.size())
    return Err(Status::Corruption(fmt::format("{}: '{}' is not a 64-digit hex hash", what, hex)));
  std::memcpy(h.data(), raw->data(), h.size());
  return h;
}

Result<RunRecord> FromJson(const json& j, const std::string& source) {
  RunRecord r;
  try {
    r.id = j.at("id").get<std::string>();
    r.app = j.at("app").get<std::string>();
    r.args = j.at("args").get<std::vector<std::string>>();
    r.ranks = j.at("ranks").get<uint32_t>();
    r.limits.cpu_seconds = j.at("limits").at("cpu_seconds").get<uint64_t>();
    r.limits.memory_bytes = j.at("limits").at("memory_bytes").get<uint64_t>();
    r.limits.wall_seconds = j.at("limits").at("wall_seconds").get<uint64_t>();
    r.dir = j.at("dir").get<std::string>();
    r.report.end = j.at("end").get<std::string>();
    r.report.exit_code = j.at("exit_code").get<int>();
    r.report.usage.cpu_ms = j.at("usage").at("cpu_ms").get<uint64_t>();
    r.report.usage.wall_ms = j.at("usage").at("wall_ms").get<uint64_t>();
    r.report.usage.max_rss_bytes = j.at("usage").at("max_rss_bytes").get<uint64_t>();
    r.report.user = j.at("user").get<std::string>();
    r.report.limits = j.at("limits_enforced").get<std::string>();
    if (r.report.ok()) {
      DFRP_ASSIGN_OR_RETURN(r.report.result_root,
                            HashFromHex(j.at("result_root").get<std::string>(), source));
      for (const auto& o : j.at("outputs")) {
        compute::RankOutput out;
        out.rank = o.at("rank").get<uint32_t>();
        DFRP_ASSIGN_OR_RETURN(out.root, HashFromHex(o.at("root").get<std::string>(), source));
        out.size = o.at("size").get<uint64_t>();
        r.report.outputs.push_back(out);
      }
    }
  } catch (const json::exception& e) {
    return Err(Status::Corruption(fmt::format("{}: {}", source, e.what())));
  }
  return r;
}

struct Env {
  core::FileSystem* fs;
  core::Clock* clock;
  core::NodeConfig cfg;
  std::vector<compute::AppSpec> apps;
  compute::ExecutorConfig exec;
  std::string runs_dir;
};

Result<Env> MakeEnv(core::FileSystem* fs, core::Clock* clock, const Globals& g) {
  core::ConfigOptions copt;
  copt.explicit_path = g.config;
  copt.require_drives = false;
  DFRP_ASSIGN_OR_RETURN(auto cfg, core::LoadConfig(copt));
  const std::string libexec = compute::DefaultLibexecDir(*fs);
  DFRP_ASSIGN_OR_RETURN(auto apps, compute::LoadCatalog(*fs, cfg.compute_apps, libexec));
  Env e{fs, clock, cfg, std::move(apps), {}, core::JoinPath(cfg.state_dir, "compute/runs")};
  e.exec.jobrun = core::JoinPath(libexec, "dfrp-jobrun");
  e.exec.job_user = cfg.compute_job_user;
  e.exec.hostfile = cfg.compute_hostfile;
  e.exec.rsh_agent = cfg.compute_rsh_agent;
  return e;
}

Status CmdApps(const Globals& g, const Env& e) {
  json arr = json::array();
  for (const auto& a : e.apps) {
    const bool present = e.fs->Exists(a.path);
    if (g.json) {
      json args = json::array();
      for (const auto& s : a.args) {
        json one = {{"name", s.name}, {"type", s.type}, {"optional", s.optional}};
        if (s.type == "uint") {
          one["min"] = s.min;
          one["max"] = s.max;
        }
        if (s.type == "enum") one["values"] = s.values;
        args.push_back(one);
      }
      arr.push_back({{"name", a.name},
                     {"path", a.path},
                     {"present", present},
                     {"reference", a.reference},
                     {"deterministic", a.deterministic},
                     {"rank_independent", a.rank_independent},
                     {"description", a.description},
                     {"args", args}});
    } else {
      std::printf("%-12s %s%s%s\n  args: %s\n  %s\n  %s%s\n", a.name.c_str(),
                  a.reference ? "reference" : "operator",
                  a.deterministic ? ", deterministic" : ", not deterministic",
                  a.rank_independent ? ", rank-independent" : "", compute::ArgsSynopsis(a).c_str(),
                  a.description.c_str(), a.path.c_str(),
                  present ? "" : "  (missing: build the project or fix the catalog)");
    }
  }
  if (g.json) PrintJson({{"apps", arr}, {"catalog", e.cfg.compute_apps}});
  return Status::OK();
}

struct LimitFlags {
  uint64_t cpu_seconds = 600;
  std::string memory = "2G";
  uint64_t wall_seconds = 600;
};

Result<compute::JobLimits> Limits(const LimitFlags& f) {
  compute::JobLimits l;
  l.cpu_seconds = f.cpu_seconds;
  l.wall_seconds = f.wall_seconds;
  auto mem = core::ParseByteSize(f.memory);
  if (!mem || *mem < (16ULL << 20))
    return Err(Status::InvalidArgument(
        fmt::format("--memory '{}': give a size of at least 16M, such as 512M or 2G", f.memory)));
  l.memory_bytes = *mem;
  if (l.cpu_seconds == 0) return Err(Status::InvalidArgument("--cpu-seconds: give at least 1"));
  if (l.wall_seconds == 0 || l.wall_seconds > compute::kMaxWallSeconds)
    return Err(Status::InvalidArgument(
        fmt::format("--wall-seconds: give 1..{}", compute::kMaxWallSeconds)));
  return l;
}

Status SaveRecord(const Env& e, const RunRecord& r) {
  return core::WriteFileAtomic(e.fs, core::JoinPath(r.dir, "run.json"), ToJson(r).dump(2) + "\n");
}

Result<RunRecord> LoadRecord(const Env& e, const std::string& id) {
  if (id.empty() || id.find('/') != std::string::npos || id[0] == '.')
    return Err(Status::InvalidArgument(fmt::format("'{}' is not a run id", id)));
  const std::string path = core::JoinPath(core::JoinPath(e.runs_dir, id), "run.json");
  if (!e.fs->Exists(path))
    return Err(Status::NotFound(
        fmt::format("no run {} in {} (dfrp-compute runs lists them)", id, e.runs_dir)));
  DFRP_ASSIGN_OR_RETURN(std::string text, core::ReadWholeFile(e.fs, path));
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& ex) {
    return Err(Status::Corruption(fmt::format("{}: {}", path, ex.what())));
  }
  return FromJson(j, path);
}

void PrintRun(const RunRecord& r) {
  const auto& p = r.report;
  std::printf("run %s: %s %s on %u rank%s: %s\n", r.id.c_str(), r.app.c_str(),
              fmt::format("{}", fmt::join(r.args, " ")).c_str(), r.ranks, r.ranks == 1 ? "" : "s",
              p.end.c_str());
  if (p.ok()) std::printf("result root %s\n", core::ToHex(p.result_root).c_str());
  std::printf("usage: %.3f CPU-s, %.3f s wall, %.1f MiB peak RSS; ran as %s\n",
              p.usage.cpu_ms / 1000.0, p.usage.wall_ms / 1000.0,
              static_cast<double>(p.usage.max_rss_bytes) / (1 << 20), p.user.c_str());
  std::printf("limits: %s\n", p.limits.c_str());
  if (!p.problem.empty()) std::printf("problem: %s\n", p.problem.c_str());
}

// Runs the app into a new folder below `parent`.
Result<compute::RunReport> Execute(const Env& e, const compute::AppSpec& app,
                                   const std::vector<std::string>& args, uint32_t ranks,
                                   const compute::JobLimits& limits, const std::string& dir) {
  compute::RunRequest req;
  req.program = app.path;
  req.args = args;
  req.ranks = ranks;
  req.limits = limits;
  req.job_dir = dir;
  return compute::RunJob(*e.fs, e.exec, req);
}

Status JobFailed(const compute::RunReport& p) {
  std::string why = p.end;
  if (p.end == "failed") why = fmt::format("failed with exit code {}", p.exit_code);
  if (p.end == "signal") why = fmt::format("killed by signal {}", p.signal);
  if (p.end == "wall-time") why = "stopped at its wall-time limit";
  if (!p.problem.empty()) why += ": " + p.problem;
  std::string tail = p.log_tail;
  if (tail.size() > 1500) tail = "..." + tail.substr(tail.size() - 1500);
  return Status::Internal(fmt::format(
      "the job {}{}", why, tail.empty() ? "" : "; the end of mpirun's output:\n" + tail));
}

Status CmdRun(const Globals& g, Env& e, const std::string& app_name,
              const std::vector<std::string>& args, uint32_t ranks, const LimitFlags& lf) {
  const compute::AppSpec* app = compute::FindApp(e.apps, app_name);
  if (app == nullptr)
    return Status::NotFound(
        fmt::format("no app '{}' in the catalog (dfrp-compute apps lists them)", app_name));
  DFRP_RETURN_IF_ERROR(compute::CheckArgs(*app, args, 0));
  if (ranks == 0 || ranks > compute::kMaxRanks)
    return Status::InvalidArgument(fmt::format("--ranks: give 1..{}", compute::kMaxRanks));
  DFRP_ASSIGN_OR_RETURN(auto limits, Limits(lf));
  RunRecord r;
  r.id = core::UuidGenerator(e.clock).NewV7().ToString();
  r.app = app_name;
  r.args = args;
  r.ranks = ranks;
  r.limits = limits;
  r.dir = core::JoinPath(e.runs_dir, r.id);
  DFRP_ASSIGN_OR_RETURN(r.report,
                        Execute(e, *app, args, ranks, limits, core::JoinPath(r.dir, "job")));
  DFRP_RETURN_IF_ERROR(SaveRecord(e, r));
  if (g.json)
    PrintJson(ToJson(r));
  else
    PrintRun(r);
  if (!r.report.ok()) return JobFailed(r.report);
  return Status::OK();
}

Status CmdStatus(const Globals& g, const Env& e, const std::string& id) {
  DFRP_ASSIGN_OR_RETURN(auto r, LoadRecord(e, id));
  if (g.json)
    PrintJson(ToJson(r));
  else
    PrintRun(r);
  return Status::OK();
}

Status CmdRuns(const Globals& g, const Env& e) {
  json arr = json::array();
  if (e.fs->IsDirectory(e.runs_dir)) {
    DFRP_ASSIGN_OR_RETURN(auto names, e.fs->ListDir(e.runs_dir));
    std::sort(names.begin(), names.end());
    for (const auto& n : names) {
      auto r = LoadRecord(e, n);
      if (!r) {
        if (!g.json) std::printf("%s  (unreadable: %s)\n", n.c_str(), r.error().message().c_str());
        continue;
      }
      if (g.json) {
        arr.push_back(ToJson(*r));
      } else {
        std::printf("%s  %-10s %-10s %u rank%s  %s\n", r->id.c_str(), r->report.end.c_str(),
                    r->app.c_str(), r->ranks, r->ranks == 1 ? " " : "s",
                    r->report.ok() ? core::ToHex(r->report.result_root).substr(0, 16).c_str() : "");
      }
    }
  }
  if (g.json) PrintJson({{"runs", arr}});
  return Status::OK();
}

// Re-runs the job with the same app, arguments and rank count and compares the result roots
// (MPI ranks communicate, so a coupled app is checked whole). For a rank-independent app a
// mismatch names the ranks whose leaves differ.
Status CmdVerify(const Globals& g, const Env& e, const std::string& id) {
  DFRP_ASSIGN_OR_RETURN(auto r, LoadRecord(e, id));
  if (!r.report.ok())
    return Status::InvalidArgument(
        fmt::format("run {} ended '{}': there is no result to verify", id, r.report.end));
  const compute::AppSpec* app = compute::FindApp(e.apps, r.app);
  if (app == nullptr)
    return Status::NotFound(fmt::format("app '{}' is no longer in the catalog", r.app));
  if (!app->deterministic)
    return Status::InvalidArgument(fmt::format(
        "app '{}' is not declared deterministic: a re-run proves nothing about its result", r.app));
  std::string dir;
  for (int n = 1;; ++n) {
    dir = core::JoinPath(r.dir, fmt::format("verify-{}", n));
    if (!e.fs->Exists(dir)) break;
  }
  DFRP_ASSIGN_OR_RETURN(auto again, Execute(e, *app, r.args, r.ranks, r.limits, dir));
  if (!again.ok()) return JobFailed(again);
  // The claimed result, re-hashed from the files the run left (a result changed since is
  // caught here too).
  DFRP_ASSIGN_OR_RETURN(auto stored,
                        compute::HashResults(*e.fs, core::JoinPath(r.dir, "job"), r.ranks));
  std::vector<uint32_t> differ;   // the re-run's leaf is not the claimed one
  std::vector<uint32_t> changed;  // the kept output no longer hashes to the claimed leaf
  for (uint32_t i = 0; i < r.ranks; ++i) {
    if (!(again.outputs[i] == r.report.outputs[i])) differ.push_back(i);
    if (!(stored[i] == r.report.outputs[i])) changed.push_back(i);
  }
  const bool rerun_match = again.result_root == r.report.result_root && differ.empty();
  const bool match = rerun_match && changed.empty();
  if (g.json) {
    PrintJson(
        {{"id", id},
         {"verified", match},
         {"claimed_root", core::ToHex(r.report.result_root)},
         {"recomputed_root", core::ToHex(again.result_root)},
         {"ranks_differing", differ},
         {"ranks_changed_since", changed},
         {"verify_dir", dir},
         {"verify_usage", {{"cpu_ms", again.usage.cpu_ms}, {"wall_ms", again.usage.wall_ms}}}});
  } else {
    std::printf("claimed root    %s\nrecomputed root %s\n",
                core::ToHex(r.report.result_root).c_str(), core::ToHex(again.result_root).c_str());
    if (match) std::printf("verified: the re-run produced the same result set\n");
  }
  if (!rerun_match)
    return Status::Corruption(fmt::format(
        "run {}: the result does not verify: a re-run on {} ranks gives another result root; "
        "ranks whose output differs: {}",
        id, r.ranks, fmt::join(differ, ", ")));
  if (!changed.empty())
    return Status::Corruption(fmt::format(
        "run {}: the re-run agrees with the claimed result root, but the kept output of rank{} "
        "{} no longer matches it (changed after the run)",
        id, changed.size() == 1 ? "" : "s", fmt::join(changed, ", ")));
  return Status::OK();
}

// Checks each rank's output against the result root with its inclusion proof; copies the
// verified outputs to `out_dir` when one is given.
Status CmdResult(const Globals& g, const Env& e, const std::string& id, const std::string& out_dir,
                 int only_rank) {
  DFRP_ASSIGN_OR_RETURN(auto r, LoadRecord(e, id));
  if (!r.report.ok())
    return Status::InvalidArgument(
        fmt::format("run {} ended '{}': it has no result", id, r.report.end));
  if (only_rank >= static_cast<int>(r.ranks))
    return Status::InvalidArgument(
        fmt::format("--rank {}: the run has {} ranks", only_rank, r.ranks));
  json arr = json::array();
  std::vector<uint32_t> bad;
  for (uint32_t i = 0; i < r.ranks; ++i) {
    if (only_rank >= 0 && i != static_cast<uint32_t>(only_rank)) continue;
    const std::string path = core::JoinPath(r.dir, fmt::format("job/results/rank-{}.out", i));
    auto o = compute::HashOutput(*e.fs, path, i);
    const auto proof = compute::ResultProof(r.report.outputs, i);
    const bool ok =
        o.has_value() && compute::VerifyRankOutput(*o, r.ranks, proof, r.report.result_root);
    if (!ok) bad.push_back(i);
    if (ok && !out_dir.empty()) {
      DFRP_RETURN_IF_ERROR(e.fs->CreateDirRecursive(out_dir));
      DFRP_ASSIGN_OR_RETURN(std::string data, core::ReadWholeFile(e.fs, path));
      // What is copied is checked again: the file could have changed since it was hashed.
      if (compute::OutputRoot(data) != o->root || data.size() != o->size)
        return Status::Corruption(fmt::format("{} changed while it was copied", path));
      DFRP_RETURN_IF_ERROR(core::WriteFileAtomic(
          e.fs, core::JoinPath(out_dir, fmt::format("rank-{}.out", i)), data));
    }
    json one = {{"rank", i}, {"verified", ok}, {"path", path}};
    if (o.has_value()) {
      one["size"] = o->size;
      one["root"] = core::ToHex(o->root);
    } else {
      one["error"] = o.error().message();
    }
    std::vector<std::string> path_hex;
    for (const auto& h : proof.path) path_hex.push_back(core::ToHex(h));
    one["proof"] = path_hex;
    arr.push_back(one);
    if (!g.json)
      std::printf("rank %u: %s%s\n", i, ok ? "verified against the result root" : "DOES NOT VERIFY",
                  o.has_value() ? fmt::format(" ({} bytes)", o->size).c_str() : "");
  }
  if (g.json)
    PrintJson({{"id", id}, {"result_root", core::ToHex(r.report.result_root)}, {"ranks", arr}});
  if (!bad.empty())
    return Status::Corruption(
        fmt::format("run {}: the output of rank{} {} does not verify against "
                    "the result root",
                    id, bad.size() == 1 ? "" : "s", fmt::join(bad, ", ")));
  return Status::OK();
}

// --- Jobs on other nodes (their compute listeners, /v1/compute).

node::DaemonInfo NodeInfo(const std::string& url) { return InfoOfUrl(url); }

Result<json> Call(const std::string& url, const char* method, const std::string& target,
                  const std::string& body = "") {
  return CallNodeJson(InfoOfUrl(url), method, target, body);
}

Result<std::string> Fetch(const std::string& url, const std::string& target) {
  const node::DaemonInfo info = NodeInfo(url);
  node::Client client(info, {.connect_timeout_ms = 3000, .request_timeout_ms = 120'000});
  DFRP_ASSIGN_OR_RETURN(node::HttpResponse r, client.Request("GET", target));
  if (r.status != 200) return Err(node::StatusFromResponse(info, r));
  return std::move(r.body);
}

// `urls` and this client's own dfrpd (its STATE_DIR's, when one runs: it keeps and spreads
// fraud records too), each once, none empty.
std::vector<std::string> WithLocalNode(const Env& e, std::vector<std::string> urls) {
  if (auto daemon = node::FindDaemon(e.fs, e.cfg.state_dir); daemon && *daemon)
    urls.push_back((*daemon)->url);
  std::erase(urls, std::string());
  std::sort(urls.begin(), urls.end());
  urls.erase(std::unique(urls.begin(), urls.end()), urls.end());
  return urls;
}

// The providers certified fraud records name, as the nodes `sources` report them (this
// client's own dfrpd too): each certificate is checked here against the committee, so a node
// may hide a record but never invent one. Address -> what it was caught at.
std::map<std::string, std::string> CaughtProviders(const Env& e,
                                                   const economy::EconomicPolicy& policy,
                                                   std::vector<std::string> sources) {
  std::map<std::string, std::string> caught;
  if (policy.genesis.committee.empty()) return caught;
  auto lc = ledger::LedgerClient::Make(policy);
  if (!lc) return caught;
  for (const auto& url : WithLocalNode(e, std::move(sources))) {
    auto r = Call(url, "GET", "/v1/compute/fraud?limit=200");
    if (!r || !r->contains("records") || !(*r)["records"].is_array()) continue;
    for (const auto& rec : (*r)["records"]) {
      auto wire = core::FromHex(rec.value("certificate", ""));
      if (!wire) continue;
      auto fr = compute::CheckFraudCertificate(*wire, lc->committee(), policy.network_id);
      if (!fr) continue;
      caught.emplace(ledger::AddressOfKey(fr->provider),
                     fmt::format("job {} (escrow {})", core::ToHex(fr->job_id).substr(0, 16),
                                 core::ToHex(fr->escrow_id).substr(0, 16)));
    }
  }
  return caught;
}

// The trust the node at `url` has in the wallet `address` (its /v1/mesh/peers "trust.score",
// mesh/trust.h): nullopt when that node has no mesh view or does not know the wallet.
std::optional<double> MeshTrustOf(const std::string& url, const std::string& address) {
  auto r = Call(url, "GET", "/v1/mesh/peers");
  if (!r || !r->contains("peers") || !(*r)["peers"].is_array()) return std::nullopt;
  for (const auto& p : (*r)["peers"])
    if (p.value("address", "") == address && p.contains("trust") && p["trust"].is_object())
      return p["trust"].value("score", 0.0);
  return std::nullopt;
}

// Sends a fraud record (a settle certificate's wire, hex) to the nodes `urls` and this
// client's own dfrpd; each keeps it and spreads it through the mesh. Per node, what it said.
json SpreadFraud(const Env& e, const std::string& certificate_hex, std::vector<std::string> urls) {
  json out = json::array();
  for (const auto& url : WithLocalNode(e, std::move(urls))) {
    auto r = Call(url, "POST", "/v1/compute/fraud", json{{"certificate", certificate_hex}}.dump());
    if (r)
      out.push_back({{"node", url},
                     {"added", r->value("added", false)},
                     {"spread_to", r->value("spread_to", 0)}});
    else
      out.push_back({{"node", url}, {"error", r.error().message()}});
  }
  return out;
}

struct SubmitFlags {
  std::string app;
  std::vector<std::string> args;
  uint32_t ranks = 1;
  LimitFlags lf;
  std::string max_fee;
  std::string vector;
  std::string wallet;
  std::string passphrase_file;
  std::vector<std::string> nodes;
  std::vector<std::string> inputs;      // SHARD_ID or SHARD_ID@ROOT
  std::vector<std::string> input_from;  // nodes that hold the inputs
  uint64_t expiry_seconds = 3600;
  bool wait = false;
  // Paid through a compute escrow (docs/COMPUTE.md, "Paying for a job").
  bool pay = false;
  uint64_t settle_after = 0;  // seconds from now; 0: twice the wall time plus a minute
  std::string verifier;       // a node whose wallet may dispute the result (its re-run)
  std::string collateral;     // the provider's stake asked; empty: from the check rate
};

// Where a client keeps what it learned of each provider's checked jobs (compute/check_rate.h).
std::string ProvidersPath(const Env& e) {
  return core::JoinPath(e.cfg.state_dir, "compute/providers.json");
}

// Where a client keeps the jobs it submitted: STATE_DIR/compute/submitted/<job id>.json.
std::string SubmittedPath(const Env& e, const std::string& id) {
  return core::JoinPath(e.cfg.state_dir, fmt::format("compute/submitted/{}.json", id));
}

Result<json> WaitForJob(const std::string& url, const std::string& id, uint64_t seconds,
                        core::Clock* clock) {
  const int64_t until = clock->NowMonotonicNanos() + static_cast<int64_t>(seconds) * 1'000'000'000;
  for (;;) {
    DFRP_ASSIGN_OR_RETURN(json j, Call(url, "GET", "/v1/compute/jobs/" + id));
    const std::string st = j.value("state", "");
    if (st != "queued" && st != "running") return j;
    if (clock->NowMonotonicNanos() > until)
      return Err(
          Status::Busy(fmt::format("job {} is still {} at {} after {} s", id, st, url, seconds)));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

// The wallet address a compute node signs its claims and acceptances with.
Result<std::string> NodeWallet(const std::string& url) {
  DFRP_ASSIGN_OR_RETURN(json n, Call(url, "GET", "/v1/compute/node"));
  const std::string a = n.value("provider", "");
  if (a.empty())
    return Err(Status::IOError(fmt::format("the node {} names no wallet for compute", url)));
  return a;
}

// Opens a compute escrow for `job` with the node at `url` as its provider: its quote is the
// price, the job's max_fee is escrowed (what the price leaves comes back at the release). The
// certificate's JSON with "escrow_id", "price_base_units", "settle_unix" and "verifier".
Result<json> OpenJobEscrow(Env& e, const economy::EconomicPolicy& p, const OpenedWallet& w,
                           const std::string& url, const compute::JobContext& job,
                           const std::string& wire, const SubmitFlags& f) {
  DFRP_ASSIGN_OR_RETURN(
      json q, Call(url, "POST", "/v1/compute/quote", json{{"job", core::ToHex(wire)}}.dump()));
  const uint64_t price = q.value("price_base_units", uint64_t{0});
  if (price == 0 || price > job.max_fee)
    return Err(Status::IOError(fmt::format("the node {} quoted no usable price", url)));
  ledger::Order tmpl;
  tmpl.kind = ledger::OrderKind::kJobEscrowOpen;
  tmpl.escrow.job.job_id = compute::JobId(job, p.network_id);
  tmpl.escrow.job.price = price;
  const uint64_t after = f.settle_after ? f.settle_after : 2 * job.limits.wall_seconds + 60;
  tmpl.escrow.job.settle_unix = static_cast<uint64_t>(e.clock->NowUnixMillis() / 1000) + after;
  std::string verifier;
  if (!f.verifier.empty()) {
    DFRP_ASSIGN_OR_RETURN(verifier, NodeWallet(f.verifier));
    DFRP_ASSIGN_OR_RETURN(auto key, wallet::PublicKeyFromAddress(verifier));
    tmpl.escrow.job.verifier = key.bytes();
  }
  // The provider's stake: what makes cheating a loss at the rate this client checks it
  // (ledger/escrow.h, CollateralFor), unless --collateral names it. None without a verifier:
  // such a job cannot be disputed.
  double rate = 1.0;
  const std::string provider = q.value("provider", "");
  if (!f.collateral.empty()) {
    if (verifier.empty())
      return Err(Status::InvalidArgument(
          "--collateral needs --verifier: a job nobody can dispute takes no collateral"));
    DFRP_ASSIGN_OR_RETURN(tmpl.escrow.job.collateral, p.ParseAmount(f.collateral, "--collateral"));
  } else if (!verifier.empty()) {
    DFRP_ASSIGN_OR_RETURN(compute::ProviderChecks checks,
                          compute::LoadProviderChecks(e.fs, ProvidersPath(e), provider));
    rate = compute::CheckRate(p.compute, checks);
    // At most what a provider's node stakes (a policy whose floor is under 5% asks more).
    tmpl.escrow.job.collateral =
        std::min(ledger::CollateralFor(price, rate), ledger::MaxCollateral(price));
  }
  OrderFlags of{.wallet = f.wallet, .passphrase_file = f.passphrase_file};
  DFRP_ASSIGN_OR_RETURN(json out, CertifyEscrowOpen(e.fs, p, w, of, url, job.max_fee, tmpl,
                                                    q.value("provider", ""), nullptr, wire));
  out["price_base_units"] = price;
  out["price"] = p.FormatAmount(price);
  out["settle_unix"] = tmpl.escrow.job.settle_unix;
  out["collateral_base_units"] = tmpl.escrow.job.collateral;
  out["collateral"] = p.FormatAmount(tmpl.escrow.job.collateral);
  if (f.collateral.empty() && !verifier.empty()) out["collateral_check_rate"] = rate;
  out["verifier"] = verifier.empty() ? json() : json(verifier);
  out["verifier_node"] = f.verifier.empty() ? json() : json(f.verifier);
  return out;
}

// The job's inputs from --input SHARD_ID[@ROOT]: each shard's root, size and leaf size as the
// first of `sources` that holds it reports them (GET /v1/shards/{id}/meta); ROOT, when given,
// is the root the client knows (the provider verifies the bytes against it). `found` gets the
// nodes that answered, the provider's hints.
Result<std::vector<compute::JobInput>> ResolveInputs(const std::vector<std::string>& specs,
                                                     const std::vector<std::string>& sources,
                                                     std::vector<std::string>* found) {
  std::vector<compute::JobInput> out;
  for (const auto& spec : specs) {
    const size_t at = spec.find('@');
    const std::string id_text = spec.substr(0, at);
    auto id = core::Uuid::Parse(id_text);
    if (!id)
      return Err(Status::InvalidArgument(fmt::format(
          "--input '{}': give a shard id (a UUID), optionally @ its Merkle root", spec)));
    compute::JobInput in;
    in.shard_id = *id;
    std::string why;
    bool have = false;
    for (const auto& url : sources) {
      auto m = Call(url, "GET", "/v1/shards/" + id->ToString() + "/meta");
      if (!m) {
        why += fmt::format("\n  {}: {}", url, m.error().message());
        continue;
      }
      auto root = core::FromHex(m->value("merkle_root", ""));
      if (!root || root->size() != 32 || !m->contains("size") || !m->contains("leaf_size")) {
        why += fmt::format("\n  {}: its answer has no merkle_root, size and leaf_size", url);
        continue;
      }
      std::memcpy(in.root.data(), root->data(), 32);
      in.size = (*m)["size"].get<uint64_t>();
      in.leaf_size = (*m)["leaf_size"].get<uint32_t>();
      if (std::find(found->begin(), found->end(), url) == found->end()) found->push_back(url);
      have = true;
      break;
    }
    if (!have)
      return Err(Status::NotFound(fmt::format(
          "--input {}: no node named holds that shard (give --input-from URL of one that "
          "does):{}",
          id_text, why)));
    if (at != std::string::npos) {
      auto root = core::FromHex(spec.substr(at + 1));
      if (!root || root->size() != 32)
        return Err(Status::InvalidArgument(
            fmt::format("--input '{}': the root after @ is not 64 hex digits", spec)));
      std::memcpy(in.root.data(), root->data(), 32);
    }
    out.push_back(in);
  }
  return out;
}

// Signs the job with the client's wallet and offers it to the candidate nodes, nearest the
// job's vector first: the first that accepts runs it. `out` is the answer to print (the job
// id, the node, the refusals); Refused (exit 7) with every node's reason when none took it.
Status SubmitJob(const Globals& g, Env& e, const SubmitFlags& f, json* out_json) {
  if (f.nodes.empty())
    return Status::InvalidArgument("submit-job: give at least one --node URL of a compute node");
  DFRP_ASSIGN_OR_RETURN(auto limits, Limits(f.lf));
  LedgerGlobals lg{.config = g.config, .policy = g.policy, .json = g.json};
  DFRP_ASSIGN_OR_RETURN(economy::EconomicPolicy policy, LoadPolicy(e.fs, lg));
  DFRP_ASSIGN_OR_RETURN(uint64_t max_fee, policy.ParseAmount(f.max_fee, "--max-fee"));
  DFRP_ASSIGN_OR_RETURN(OpenedWallet w, OpenWalletForOrders(e.fs, f.wallet, f.passphrase_file));
  compute::JobContext j;
  j.client = w.key->GetPublicKey().bytes();
  const core::Uuid nonce = core::UuidGenerator(e.clock).NewV7();
  std::memcpy(&j.nonce, nonce.AsBytes().data() + 8, 8);
  j.expiry_unix = static_cast<uint64_t>(e.clock->NowUnixMillis() / 1000) + f.expiry_seconds;
  j.app = f.app;
  j.args = f.args;
  j.ranks = f.ranks;
  j.limits = limits;
  j.max_fee = max_fee;
  std::vector<std::string> input_from;
  DFRP_ASSIGN_OR_RETURN(
      j.inputs,
      ResolveInputs(f.inputs, f.input_from.empty() ? f.nodes : f.input_from, &input_from));
  if (!f.input_from.empty()) input_from = f.input_from;
  if (!f.vector.empty()) {
    auto v = wallet::ParseVector(f.vector);
    if (!v) return v.error().WithContext("--vector");
    j.vector = std::move(*v);
  } else {
    j.vector = wallet::DefaultIdentityVector(w.key->GetPublicKey(), e.cfg.vector_dim);
  }
  DFRP_RETURN_IF_ERROR(compute::SignJob(&j, *w.key, policy.network_id));
  const std::string id = core::ToHex(compute::JobId(j, policy.network_id));
  const std::string wire_hex = core::ToHex(compute::EncodeJob(j, policy.network_id));

  struct Candidate {
    std::string url;
    double similarity = -2;
    std::string price;
    json node;
  };
  std::vector<Candidate> candidates;
  json refusals = json::array();
  for (const auto& url : f.nodes) {
    auto n = Call(url, "GET", "/v1/compute/node");
    if (!n) {
      refusals.push_back({{"node", url}, {"reason", n.error().message()}});
      continue;
    }
    Candidate c{url, -2, n->value("cpu_sec_price", ""), *n};
    std::vector<float> nv;
    if (n->contains("vector") && (*n)["vector"].is_array())
      nv = (*n)["vector"].get<std::vector<float>>();
    c.similarity = economy::CosineSimilarity(j.vector, nv).value_or(-2);
    candidates.push_back(std::move(c));
  }
  std::stable_sort(
      candidates.begin(), candidates.end(),
      [](const Candidate& a, const Candidate& b) { return a.similarity > b.similarity; });
  // A provider the committee certified a fraud refund against is passed over.
  const std::map<std::string, std::string> caught = CaughtProviders(e, policy, f.nodes);
  std::erase_if(candidates, [&](const Candidate& c) {
    auto it = caught.find(c.node.value("provider", ""));
    if (it == caught.end()) return false;
    refusals.push_back(
        {{"node", c.url},
         {"similarity", c.similarity},
         {"reason", fmt::format("passed over: the committee certified a fraud proof against its "
                                "provider {} at {}",
                                it->first, it->second)}});
    return true;
  });
  std::optional<Candidate> chosen;
  json answer, paid;
  const std::string wire = compute::EncodeJob(j, policy.network_id);
  for (const auto& c : candidates) {
    json body{{"job", wire_hex}};
    if (!input_from.empty()) body["input_from"] = input_from;
    if (f.pay) {
      // The node quotes and accepts the escrow before anything is paid; a node that will
      // not is passed over like one that refuses the job.
      auto opened = OpenJobEscrow(e, policy, w, c.url, j, wire, f);
      if (!opened) {
        refusals.push_back(
            {{"node", c.url}, {"similarity", c.similarity}, {"reason", opened.error().message()}});
        if (opened.error().code() != Status::Code::kRefused &&
            opened.error().code() != Status::Code::kNotFound &&
            opened.error().code() != Status::Code::kUnavailable)
          return opened.error().WithContext("the compute escrow for job " + id);
        continue;
      }
      paid = *opened;
      body["escrow"] = paid.value("escrow_id", "");
    }
    auto r = Call(c.url, "POST", "/v1/compute/jobs", body.dump());
    if (!r) {
      refusals.push_back(
          {{"node", c.url}, {"similarity", c.similarity}, {"reason", r.error().message()}});
      if (f.pay) {
        // The escrow is open with this node: it comes back by settle-job after its grace.
        json record = {{"job_id", id}, {"job", wire_hex}, {"node", c.url}, {"escrow", paid}};
        DFRP_RETURN_IF_ERROR(e.fs->CreateDirRecursive(core::DirName(SubmittedPath(e, id))));
        DFRP_RETURN_IF_ERROR(
            core::WriteFileAtomic(e.fs, SubmittedPath(e, id), record.dump(2) + "\n"));
        *out_json = {{"job_id", id}, {"accepted", false}, {"refusals", refusals}, {"escrow", paid}};
        return Status::Refused(fmt::format(
            "the node {} accepted compute escrow {} and then refused job {}: {} (dfrp-compute "
            "settle-job {} refunds it once its settle time and grace have passed)",
            c.url, paid.value("escrow_id", ""), id, r.error().message(), id));
      }
      continue;
    }
    chosen = c;
    answer = *r;
    break;
  }
  if (!chosen) {
    *out_json = {{"job_id", id}, {"accepted", false}, {"refusals", refusals}};
    std::string why;
    for (const auto& r : refusals)
      why += fmt::format("\n  {}: {}", r.value("node", ""), r.value("reason", ""));
    return Status::Refused(fmt::format("no node took job {}:{}", id, why));
  }
  json record = {{"job_id", id},
                 {"job", wire_hex},
                 {"node", chosen->url},
                 {"provider", answer.value("provider", "")},
                 {"app", f.app},
                 {"args", f.args},
                 {"ranks", f.ranks},
                 {"max_fee", f.max_fee},
                 {"quote", answer.value("quote", json::object())}};
  if (!input_from.empty()) record["input_from"] = input_from;
  if (f.pay) record["escrow"] = paid;
  DFRP_RETURN_IF_ERROR(e.fs->CreateDirRecursive(core::DirName(SubmittedPath(e, id))));
  DFRP_RETURN_IF_ERROR(core::WriteFileAtomic(e.fs, SubmittedPath(e, id), record.dump(2) + "\n"));
  json& out = *out_json;
  out = record;
  out.erase("job");
  out["accepted"] = true;
  out["similarity"] = chosen->similarity;
  out["refusals"] = refusals;
  if (f.wait) {
    DFRP_ASSIGN_OR_RETURN(json done,
                          WaitForJob(chosen->url, id, limits.wall_seconds + 60, e.clock));
    out["state"] = done.value("state", "");
    if (done.contains("result_root")) out["result_root"] = done["result_root"];
    if (done.contains("report")) out["report"] = done["report"];
  } else {
    out["state"] = answer.value("state", "");
  }
  if (f.wait && out.value("state", "") != "done")
    return Status::Internal(
        fmt::format("job {} ended {} at {}", id, out.value("state", ""), chosen->url));
  return Status::OK();
}

Status CmdSubmit(const Globals& g, Env& e, const SubmitFlags& f) {
  json out;
  const Status s = SubmitJob(g, e, f, &out);
  if (g.json) {
    if (!out.is_null()) PrintJson(out);
  } else if (out.is_object() && out.value("accepted", false)) {
    std::printf("job %s\nprovider %s at %s (vector similarity %.3f), quote %s\nstate %s\n",
                out.value("job_id", "").c_str(), out.value("provider", "").c_str(),
                out.value("node", "").c_str(), out.value("similarity", 0.0),
                out.contains("escrow") ? out["escrow"].value("price", "?").c_str()
                                       : out["quote"].value("total", "?").c_str(),
                out.value("state", "").c_str());
    if (out.contains("escrow"))
      std::printf("paid through compute escrow %s: %s escrowed, settles at %llu (Unix s)%s%s\n",
                  out["escrow"].value("escrow_id", "").c_str(), f.max_fee.c_str(),
                  static_cast<unsigned long long>(out["escrow"].value("settle_unix", uint64_t{0})),
                  out["escrow"]["verifier"].is_string() ? ", verifier " : "",
                  out["escrow"]["verifier"].is_string()
                      ? out["escrow"]["verifier"].get<std::string>().c_str()
                      : "");
    if (out.contains("escrow") && out["escrow"].value("collateral_base_units", uint64_t{0}) > 0)
      std::printf("the provider stakes %s on it (lost to you on a fraud proof)\n",
                  out["escrow"].value("collateral", "?").c_str());
    for (const auto& r : out["refusals"])
      std::printf("refused by %s: %s\n", r.value("node", "").c_str(),
                  r.value("reason", "").c_str());
    if (out.contains("result_root"))
      std::printf("result root %s\n", out["result_root"].get<std::string>().c_str());
  }
  return s;
}

// A submitted job's record (submit-job kept it), or NotFound.
Result<json> Submitted(const Env& e, const std::string& id) {
  const std::string path = SubmittedPath(e, id);
  if (id.size() != 64 || !e.fs->Exists(path))
    return Err(Status::NotFound(fmt::format("no job {}", id)));
  DFRP_ASSIGN_OR_RETURN(std::string text, core::ReadWholeFile(e.fs, path));
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return Err(Status::Corruption(fmt::format("{}: not JSON", path)));
  return j;
}

// Fetches a done job's claim and every rank's output from its node, and checks them: the
// claim is the provider's (its signature, for this job), and the outputs hash to its root.
struct CheckedResult {
  compute::ResultClaim claim;
  std::vector<std::string> outputs;
  std::vector<compute::RankOutput> leaves;
};
// `provider` (an address) and `ranks` are what the job was accepted with: the claim must be
// that provider's, for that many ranks (empty, 0: what the node says now).
Result<CheckedResult> FetchResult(const economy::EconomicPolicy& policy, const std::string& url,
                                  const std::string& id, std::string provider = "",
                                  uint32_t ranks = 0) {
  DFRP_ASSIGN_OR_RETURN(json j, Call(url, "GET", "/v1/compute/jobs/" + id));
  if (provider.empty()) provider = j.value("provider", "");
  if (ranks == 0) ranks = j.value("ranks", 0u);
  if (j.value("state", "") != "done")
    return Err(Status::NotFound(
        fmt::format("job {} at {} is {}: there is no result", id, url, j.value("state", "?"))));
  auto raw = core::FromHex(j.value("claim", ""));
  if (!raw) return Err(Status::Corruption(fmt::format("job {}: the node's claim is not hex", id)));
  DFRP_ASSIGN_OR_RETURN(compute::ResultClaim c, compute::DecodeClaim(*raw, policy.network_id));
  DFRP_RETURN_IF_ERROR(compute::VerifyClaim(c, policy.network_id));
  if (core::ToHex(c.job_id) != id)
    return Err(Status::Corruption(fmt::format("job {}: the claim is for another job", id)));
  auto key = ledger::KeyFrom(c.provider);
  const std::string signer = key ? wallet::AddressOf(*key) : "";
  if (signer != provider)
    return Err(Status::Corruption(
        fmt::format("job {}: the claim is signed by {}, not by the provider that took the job ({})",
                    id, signer, provider)));
  if (c.ranks != ranks || ranks == 0 || ranks > compute::kMaxRanks)
    return Err(Status::Corruption(
        fmt::format("job {}: the claim is for {} ranks, the job has {}", id, c.ranks, ranks)));
  CheckedResult out;
  out.claim = c;
  for (uint32_t r = 0; r < c.ranks; ++r) {
    DFRP_ASSIGN_OR_RETURN(std::string bytes,
                          Fetch(url, fmt::format("/v1/compute/jobs/{}/ranks/{}", id, r)));
    out.leaves.push_back({r, compute::OutputRoot(bytes), bytes.size()});
    out.outputs.push_back(std::move(bytes));
  }
  return out;
}

Status CmdRemoteStatus(const Globals& g, const Env& e, const std::string& id,
                       const std::string& node_flag) {
  std::string url = node_flag;
  if (url.empty()) {
    DFRP_ASSIGN_OR_RETURN(json rec, Submitted(e, id));
    url = rec.value("node", "");
  }
  DFRP_ASSIGN_OR_RETURN(json j, Call(url, "GET", "/v1/compute/jobs/" + id));
  if (g.json) {
    PrintJson(j);
  } else {
    std::printf("job %s at %s: %s\napp %s on %d rank(s), quote %s\n", id.c_str(), url.c_str(),
                j.value("state", "").c_str(), j.value("app", "").c_str(), j.value("ranks", 0),
                j["quote"].value("total", "?").c_str());
    if (j.contains("result_root"))
      std::printf("result root %s\n", j["result_root"].get<std::string>().c_str());
  }
  return Status::OK();
}

Status CmdRemoteResult(const Globals& g, const Env& e, const std::string& id,
                       const std::string& node_flag, const std::string& out_dir) {
  std::string url = node_flag;
  std::string provider;
  uint32_t ranks = 0;
  if (auto rec = Submitted(e, id); rec.has_value()) {
    if (url.empty()) url = rec->value("node", "");
    provider = rec->value("provider", "");
    ranks = rec->value("ranks", 0u);
  } else if (url.empty()) {
    return rec.error();
  }
  LedgerGlobals lg{.config = g.config, .policy = g.policy, .json = g.json};
  DFRP_ASSIGN_OR_RETURN(economy::EconomicPolicy policy, LoadPolicy(e.fs, lg));
  DFRP_ASSIGN_OR_RETURN(CheckedResult res, FetchResult(policy, url, id, provider, ranks));
  std::vector<uint32_t> bad;
  json rank_list = json::array();
  for (uint32_t r = 0; r < res.claim.ranks; ++r) {
    const auto proof = compute::ResultProof(res.leaves, r);
    const bool ok =
        compute::VerifyRankOutput(res.leaves[r], res.claim.ranks, proof, res.claim.result_root);
    if (!ok) bad.push_back(r);
    rank_list.push_back({{"rank", r}, {"size", res.leaves[r].size}, {"verified", ok}});
    if (!g.json)
      std::printf("rank %u: %s (%llu bytes)\n", r,
                  ok ? "verified against the claim" : "DOES NOT VERIFY",
                  static_cast<unsigned long long>(res.leaves[r].size));
  }
  if (bad.empty() && !out_dir.empty()) {
    DFRP_RETURN_IF_ERROR(e.fs->CreateDirRecursive(out_dir));
    for (uint32_t r = 0; r < res.claim.ranks; ++r)
      DFRP_RETURN_IF_ERROR(core::WriteFileAtomic(
          e.fs, core::JoinPath(out_dir, fmt::format("rank-{}.out", r)), res.outputs[r]));
  }
  if (g.json)
    PrintJson({{"job_id", id},
               {"node", url},
               {"result_root", core::ToHex(res.claim.result_root)},
               {"usage",
                {{"cpu_ms", res.claim.usage.cpu_ms},
                 {"wall_ms", res.claim.usage.wall_ms},
                 {"max_rss_bytes", res.claim.usage.max_rss_bytes}}},
               {"ranks", rank_list}});
  if (!bad.empty())
    return Status::Corruption(fmt::format(
        "job {}: the outputs {} sent for rank(s) {} do not verify against its signed claim", id,
        url, fmt::join(bad, ", ")));
  return Status::OK();
}

// The committee's client and a compute escrow's id from a submitted job's record.
struct PaidJob {
  crypto::Hash escrow_id{};
  std::optional<ledger::LedgerClient> client;
};
Result<PaidJob> PaidJobOf(const economy::EconomicPolicy& policy, const json& rec,
                          const std::string& id) {
  if (!rec.contains("escrow") || !rec["escrow"].is_object())
    return Err(Status::InvalidArgument(
        fmt::format("job {} was submitted without --pay: no compute escrow pays for it", id)));
  PaidJob out;
  DFRP_ASSIGN_OR_RETURN(out.escrow_id,
                        HashFromHex(rec["escrow"].value("escrow_id", ""), "the escrow id"));
  DFRP_ASSIGN_OR_RETURN(ledger::LedgerClient client, ledger::LedgerClient::Make(policy));
  out.client.emplace(std::move(client));
  return out;
}

// Sends a job settlement for a compute escrow; what the committee did.
Result<json> SettleJobEscrow(ledger::LedgerClient& client, const economy::EconomicPolicy& policy,
                             const crypto::Hash& escrow_id, ledger::SettleKind kind,
                             const std::string& proof) {
  DFRP_ASSIGN_OR_RETURN(const uint64_t epoch, client.RefreshEpoch());
  DFRP_ASSIGN_OR_RETURN(ledger::SettleResult r,
                        client.Settle(ledger::MakeSettlement(escrow_id, 0, kind, epoch, proof, "",
                                                             policy.network_id)));
  return json{{"kind", ledger::SettleKindName(kind)},
              {"votes", r.votes},
              {"applied", r.applied},
              {"certificate", core::ToHex(r.certificate_wire)}};
}

// Has `verifier` run the very same signed job (its id, and so a claim for it, is the same)
// and compares its signed result root with the provider's. A paid job whose escrow names that
// node's wallet as its verifier is disputed at once on a mismatch: the two signed claims are
// the fraud proof the committee refunds it on. Each job is counted once in the provider's
// record (its submitted record says how, "counted"); with `adaptive`, the job is re-run only
// when a draw at the provider's rate says so.
Status CmdRemoteVerify(const Globals& g, Env& e, const std::string& id, const std::string& verifier,
                       bool adaptive) {
  DFRP_ASSIGN_OR_RETURN(json rec, Submitted(e, id));
  const std::string url = rec.value("node", "");
  if (verifier == url)
    return Status::InvalidArgument(fmt::format(
        "--verifier {} is the node that ran job {}: give another compute node", url, id));
  LedgerGlobals lg{.config = g.config, .policy = g.policy, .json = g.json};
  DFRP_ASSIGN_OR_RETURN(economy::EconomicPolicy policy, LoadPolicy(e.fs, lg));
  auto raw = core::FromHex(rec.value("job", ""));
  if (!raw) return Status::Corruption(fmt::format("{}: the job is not hex", SubmittedPath(e, id)));
  DFRP_ASSIGN_OR_RETURN(compute::JobContext job, compute::DecodeJob(*raw, policy.network_id));
  const std::string provider = rec.value("provider", "");
  DFRP_ASSIGN_OR_RETURN(CheckedResult claimed, FetchResult(policy, url, id, provider, job.ranks));
  // The provider has signed its claim: only now is it drawn whether this job is checked, from
  // this client's own randomness, at the rate the provider's record here earns it; a provider
  // a certified fraud record names (as the verifier's node reports it, checked here) is
  // checked on every job, whatever this client's own record says.
  DFRP_ASSIGN_OR_RETURN(compute::ProviderChecks checks,
                        compute::LoadProviderChecks(e.fs, ProvidersPath(e), provider));
  const std::map<std::string, std::string> caught = CaughtProviders(e, policy, {verifier});
  const auto caught_at = caught.find(provider);
  // A paid job whose terms ask a stake that the committee does not report staked when the
  // client draws is checked for certain: a provider that holds its stake back until it knows
  // whether it is checked gains nothing by it (docs/COMPUTE.md, "Collateral").
  std::string unstaked;
  if (rec.contains("escrow") && rec["escrow"].is_object() &&
      rec["escrow"].value("collateral_base_units", uint64_t{0}) > 0) {
    DFRP_ASSIGN_OR_RETURN(PaidJob pj, PaidJobOf(policy, rec, id));
    auto v = pj.client->Escrow(pj.escrow_id);
    if (!v)
      unstaked = fmt::format("the committee did not report the stake ({})", v.error().message());
    else if (v->collateral_staked() < v->job.collateral)
      unstaked = fmt::format("the provider had staked {} of the {} its terms ask",
                             policy.FormatAmount(v->collateral_staked()),
                             policy.FormatAmount(v->job.collateral));
  }
  // The mesh's trust weighs this client's own record: a provider the verifier's node knows but
  // no node it trusts vouches for (trust 0: no paid work for trusted payers, a Sybil) earns
  // only half credit for its valid checks here, so its rate falls half as fast
  // (docs/PROTOCOL.md, "Trust").
  const std::optional<double> trust = MeshTrustOf(verifier, provider);
  const bool unvouched = trust && *trust <= 0;
  auto rate_of = [&](compute::ProviderChecks c) {
    if (unvouched) c.valid /= 2;
    return caught_at != caught.end() || !unstaked.empty() ? 1.0
                                                          : compute::CheckRate(policy.compute, c);
  };
  const double rate = rate_of(checks);
  json check = {{"rate", rate}, {"adaptive", adaptive}};
  if (caught_at != caught.end()) check["caught"] = caught_at->second;
  if (!unstaked.empty()) check["unstaked"] = unstaked;
  check["mesh_trust"] = trust ? json(*trust) : json(nullptr);
  if (unvouched)
    check["unvouched"] = fmt::format(
        "the verifier's node trusts {} at 0 (no node it trusts vouches for it): its {} valid "
        "checks here count as {}",
        provider, checks.valid, checks.valid / 2);
  if (adaptive) {
    const uint32_t draw = std::random_device{}();
    check["draw"] = draw / 4294967296.0;
    if (!compute::DrawCheck(rate, draw)) {
      // A job counts once in the provider's record.
      if (!rec.contains("counted")) {
        ++checks.unchecked;
        DFRP_RETURN_IF_ERROR(compute::SaveProviderChecks(e.fs, ProvidersPath(e), provider, checks));
        rec["counted"] = "unchecked";
        DFRP_RETURN_IF_ERROR(core::WriteFileAtomic(e.fs, SubmittedPath(e, id), rec.dump(2) + "\n"));
      }
      check["checked"] = false;
      check["provider_record"] = compute::ProviderChecksJson(checks);
      const json out = {{"job_id", id},
                        {"provider_node", url},
                        {"check", check},
                        {"claimed_root", core::ToHex(claimed.claim.result_root)}};
      if (g.json)
        PrintJson(out);
      else
        std::printf(
            "not checked this time: %s's check rate is %.3f (%llu valid checks here) and the "
            "draw was %.3f; its claim is signed and verified (%s)\n",
            provider.c_str(), rate, static_cast<unsigned long long>(checks.valid),
            check["draw"].get<double>(), core::ToHex(claimed.claim.result_root).c_str());
      return Status::OK();
    }
  }
  check["checked"] = true;
  DFRP_ASSIGN_OR_RETURN(std::string verifier_wallet, NodeWallet(verifier));
  json rerun_body{{"job", rec.value("job", "")}};
  if (rec.contains("input_from")) rerun_body["input_from"] = rec["input_from"];
  if (auto r = Call(verifier, "POST", "/v1/compute/jobs", rerun_body.dump()); !r)
    return Status::Unavailable(
        fmt::format("the verifier {} did not run the job: {}", verifier, r.error().message()));
  DFRP_ASSIGN_OR_RETURN(json done, WaitForJob(verifier, id, job.limits.wall_seconds + 60, e.clock));
  if (done.value("state", "") != "done")
    return Status::Unavailable(fmt::format("the verifier {} ran the job to '{}', not to a result",
                                           verifier, done.value("state", "")));
  DFRP_ASSIGN_OR_RETURN(CheckedResult rerun,
                        FetchResult(policy, verifier, id, verifier_wallet, job.ranks));
  const std::string rerun_root = core::ToHex(rerun.claim.result_root);
  const std::string claimed_root = core::ToHex(claimed.claim.result_root);
  const bool match = rerun_root == claimed_root;
  // A job counts once in the provider's record (checking it again proves nothing new); one
  // counted as unchecked by an earlier draw counts as checked now.
  const std::string counted = rec.value("counted", "");
  if (counted.empty() || counted == "unchecked") {
    if (counted == "unchecked" && checks.unchecked > 0) --checks.unchecked;
    ++(match ? checks.valid : checks.mismatches);
    DFRP_RETURN_IF_ERROR(compute::SaveProviderChecks(e.fs, ProvidersPath(e), provider, checks));
    rec["counted"] = match ? "valid" : "mismatch";
    DFRP_RETURN_IF_ERROR(core::WriteFileAtomic(e.fs, SubmittedPath(e, id), rec.dump(2) + "\n"));
  } else {
    check["already_counted"] = counted;
  }
  check["provider_record"] = compute::ProviderChecksJson(checks);
  check["next_rate"] = rate_of(checks);
  json out = {{"job_id", id},
              {"check", check},
              {"provider_node", url},
              {"claimed_root", claimed_root},
              {"verifier_node", verifier},
              {"verifier", verifier_wallet},
              {"recomputed_root", rerun_root},
              {"verified", match}};
  if (!match && rec.contains("escrow")) {
    const json& es = rec["escrow"];
    if (es.contains("verifier") && es["verifier"].is_string() &&
        es["verifier"].get<std::string>() == verifier_wallet) {
      const std::string proof = compute::EncodeClaim(claimed.claim, policy.network_id) +
                                compute::EncodeClaim(rerun.claim, policy.network_id);
      rec["fraud_proof"] = core::ToHex(proof);
      rec["disputed_on"] = verifier;
      DFRP_RETURN_IF_ERROR(core::WriteFileAtomic(e.fs, SubmittedPath(e, id), rec.dump(2) + "\n"));
      DFRP_ASSIGN_OR_RETURN(PaidJob pj, PaidJobOf(policy, rec, id));
      auto disputed =
          SettleJobEscrow(*pj.client, policy, pj.escrow_id, ledger::SettleKind::kJobRefund, proof);
      out["dispute"] = disputed ? *disputed
                                : json{{"error", disputed.error().message()},
                                       {"kept", "the fraud proof is kept: settle-job sends it"}};
      // The committee's certificate of the refund is the fraud record the mesh learns.
      if (disputed)
        out["dispute"]["spread"] = SpreadFraud(e, (*disputed)["certificate"], {verifier});
    } else {
      out["dispute"] = json{{"error",
                             "the job's escrow does not name this verifier: its claim proves "
                             "nothing to the committee"}};
    }
  }
  if (g.json) {
    PrintJson(out);
  } else {
    std::printf("claimed root    %s (%s)\nrecomputed root %s (%s)\n%s\n", claimed_root.c_str(),
                url.c_str(), rerun_root.c_str(), verifier.c_str(),
                match ? "verified: the verifier's run gives the same result set"
                      : "MISMATCH: the provider's claim does not verify");
    if (out.contains("dispute"))
      std::printf("dispute: %s\n", out["dispute"].contains("error")
                                       ? out["dispute"]["error"].get<std::string>().c_str()
                                       : "refunded on the fraud proof (two signed claims)");
    if (out.contains("dispute") && out["dispute"].contains("spread"))
      for (const auto& n : out["dispute"]["spread"])
        std::printf(
            "fraud record sent to %s: %s\n", n.value("node", "").c_str(),
            n.contains("error")
                ? n["error"].get<std::string>().c_str()
                : fmt::format("kept, spreading to {} peers", n.value("spread_to", 0)).c_str());
    std::printf(
        "provider %s: %llu valid, %llu mismatched checks here; its check rate %.3f -> %.3f\n",
        provider.c_str(), static_cast<unsigned long long>(checks.valid),
        static_cast<unsigned long long>(checks.mismatches), rate, check["next_rate"].get<double>());
  }
  if (!match)
    return Status::Corruption(
        fmt::format("job {}: {}'s signed claim ({}) differs from {}'s re-run ({})", id, url,
                    claimed_root.substr(0, 16), verifier, rerun_root.substr(0, 16)));
  return Status::OK();
}

// settle-job: releases a paid job's escrow to its provider on the provider's claim once the
// dispute window is over, disputes it with the fraud proof verify-job kept while the window is
// open, or refunds it when no release came by the settle time plus the grace. --wait waits
// for the next moment one of those can be done.
Status CmdSettle(const Globals& g, Env& e, const std::string& id, bool wait) {
  DFRP_ASSIGN_OR_RETURN(json rec, Submitted(e, id));
  LedgerGlobals lg{.config = g.config, .policy = g.policy, .json = g.json};
  DFRP_ASSIGN_OR_RETURN(economy::EconomicPolicy policy, LoadPolicy(e.fs, lg));
  DFRP_ASSIGN_OR_RETURN(PaidJob pj, PaidJobOf(policy, rec, id));
  ledger::LedgerClient& client = *pj.client;
  const std::string escrow_hex = core::ToHex(pj.escrow_id);
  std::optional<std::string> fraud;
  if (rec.contains("fraud_proof"))
    if (auto bytes = core::FromHex(rec.value("fraud_proof", ""))) fraud = *bytes;
  json action;
  int in_flight_polls = 0;
  for (;;) {
    DFRP_ASSIGN_OR_RETURN(ledger::EscrowView v, client.Escrow(pj.escrow_id));
    if (!v.is_job)
      return Status::Corruption(fmt::format("escrow {} is not a compute escrow", escrow_hex));
    const int64_t now = e.clock->NowUnixMillis();
    const ledger::JobWindow w = ledger::JobWindowOf(v.job, policy.storage);
    if (auto s = v.settled.find(0); s != v.settled.end()) {
      const bool released = s->second.kind == ledger::SettleKind::kJobRelease;
      const ledger::JobPayout pay = ledger::JobReleasePayout(v.amount, v.job, v.margin_bps);
      json out = {{"job_id", id},
                  {"escrow_id", escrow_hex},
                  {"settled", released ? "released" : "refunded"},
                  {"amount", policy.FormatAmount(v.amount)},
                  {"to_provider", policy.FormatAmount(released ? pay.to_provider : 0)},
                  {"margin", policy.FormatAmount(released ? pay.margin : 0)},
                  {"to_payer", policy.FormatAmount(released ? pay.to_payer : v.amount)},
                  // The provider's stake: back to it, or to the payer on a fraud proof (as
                  // f + 1 authorities report it; it follows the settlement at each).
                  {"collateral", policy.FormatAmount(v.job.collateral)},
                  {"collateral_to_payer", policy.FormatAmount(v.collateral_to_payer)},
                  {"collateral_to_provider", policy.FormatAmount(v.collateral_to_provider)},
                  {"action", action}};
      if (g.json)
        PrintJson(out);
      else
        std::printf("job %s: escrow %s %s; %s to the provider, %s margin, %s back to the payer\n",
                    id.c_str(), escrow_hex.c_str(), released ? "released" : "refunded",
                    out["to_provider"].get<std::string>().c_str(),
                    out["margin"].get<std::string>().c_str(),
                    out["to_payer"].get<std::string>().c_str());
      return Status::OK();
    }
    if (v.remaining == 0) {
      // Some authority applied a settlement that f + 1 do not report yet: it is on its way to
      // the others. Which way it went is known once f + 1 report it.
      if (++in_flight_polls > 100)
        return Status::Busy(fmt::format(
            "escrow {} of job {} is being settled but too few authorities report how yet; run "
            "settle-job again",
            escrow_hex, id));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    std::optional<ledger::SettleKind> kind;
    std::string proof;
    int64_t next = 0;
    if (fraud && now < w.dispute_until_ms) {
      kind = ledger::SettleKind::kJobRefund;
      proof = *fraud;
    } else if (!fraud && now >= w.release_from_ms && now < w.release_until_ms) {
      // Anyone may send the provider's release: its claim is signed by the provider.
      auto j = Call(rec.value("node", ""), "GET", "/v1/compute/jobs/" + id);
      auto raw = j ? core::FromHex(j->value("claim", "")) : std::nullopt;
      if (raw && !raw->empty()) {
        kind = ledger::SettleKind::kJobRelease;
        proof = *raw;
      } else {
        next = w.refund_from_ms;  // no claim: the job is refunded after the grace
      }
    } else if (now >= w.refund_from_ms) {
      kind = ledger::SettleKind::kJobRefund;
    } else {
      next = now < w.release_from_ms && !fraud ? w.release_from_ms : w.refund_from_ms;
    }
    if (kind) {
      auto r = SettleJobEscrow(client, policy, pj.escrow_id, *kind, proof);
      if (!r && !r.error().IsRefused()) return r.error();
      if (r && fraud && *kind == ledger::SettleKind::kJobRefund)
        (*r)["spread"] = SpreadFraud(e, (*r)["certificate"], {rec.value("disputed_on", "")});
      // Refused: another settlement (the provider's own release, a dispute) may have got there
      // first; the escrow says which on the next round.
      action = r ? *r : json{{"refused", r.error().message()}};
      if (!r && !wait) {
        auto again = client.Escrow(pj.escrow_id);
        if (!again || again->settled.empty()) return r.error();
      }
      continue;
    }
    if (!wait)
      return Status::Busy(fmt::format(
          "escrow {} of job {} cannot be settled yet: {} at {} (Unix ms; now {}); run "
          "settle-job again then, or with --wait",
          escrow_hex, id,
          next == w.release_from_ms ? "the release window opens" : "it is refundable", next, now));
    if (!g.json)
      std::fprintf(stderr, "settle-job: waiting %lld ms for escrow %s\n",
                   static_cast<long long>(next - now), escrow_hex.substr(0, 16).c_str());
    std::this_thread::sleep_for(std::chrono::milliseconds(std::max<int64_t>(100, next - now + 50)));
  }
}

// listen-job: what a node's compute listener is doing. The local dfrpd (its STATE_DIR's) unless
// --node names another; with `follow`, every change of a job's state after that, until
// interrupted.
struct ListenFlags {
  std::string node;
  std::string state;
  uint64_t limit = 20;
  bool follow = false;
};

Result<node::DaemonInfo> ListenerInfo(const Env& e, const std::string& node_flag) {
  if (!node_flag.empty()) return InfoOfUrl(node_flag);
  DFRP_ASSIGN_OR_RETURN(auto daemon, node::FindDaemon(e.fs, e.cfg.state_dir));
  if (!daemon)
    return Err(Status::Unavailable(fmt::format(
        "no dfrpd runs on {}: start it (dfrpd, with ROLES including compute and a WALLET), or "
        "give --node URL for another node's listener",
        e.cfg.state_dir)));
  return *daemon;
}

std::string ShortTime(int64_t unix_ms) {
  const std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

void PrintListener(const std::string& url, const json& n, const json& jobs) {
  std::string counts;
  const json by_state = n.value("jobs", json::object());  // items() must not outlive it
  for (const auto& [state, count] : by_state.items())
    counts += fmt::format("{}{} {}", counts.empty() ? "" : ", ", state, count.get<uint64_t>());
  std::vector<std::string> apps;
  const json app_names = n.value("apps", json::array());
  for (const auto& a : app_names) apps.push_back(a.get<std::string>());
  const std::string running = n.value("running", "");
  std::printf(
      "listener at %s: provider %s, %llu slot(s), %llu queued, running %s\n"
      "jobs: %s; refused: %llu; apps: %s\n",
      url.c_str(), n.value("provider", "").c_str(),
      static_cast<unsigned long long>(n.value("slots", uint64_t{0})),
      static_cast<unsigned long long>(n.value("queued", uint64_t{0})),
      running.empty() ? "nothing" : running.substr(0, 16).c_str(),
      counts.empty() ? "none yet" : counts.c_str(),
      static_cast<unsigned long long>(n.value("refused", uint64_t{0})),
      fmt::format("{}", fmt::join(apps, ", ")).c_str());
  const json& list = jobs.at("jobs");
  if (list.empty()) return;
  std::printf("%-16s  %-11s  %-12s  %5s  %-20s  %s\n", "JOB", "STATE", "APP", "RANKS",
              "SUBMITTED (UTC)", "QUOTE");
  for (const auto& j : list)
    std::printf("%-16s  %-11s  %-12s  %5d  %-20s  %s%s\n",
                j.value("job_id", "").substr(0, 16).c_str(), j.value("state", "").c_str(),
                j.value("app", "").c_str(), j.value("ranks", 0),
                ShortTime(j.value("submitted_ms", int64_t{0})).c_str(),
                j.value("quote", json::object()).value("total", "?").c_str(),
                j.contains("escrow") ? " (paid)" : "");
  const uint64_t total = jobs.value("total", uint64_t{0});
  if (total > list.size())
    std::printf("(%zu of %llu shown: --limit N for more)\n", list.size(),
                static_cast<unsigned long long>(total));
}

Status CmdListen(const Globals& g, const Env& e, const ListenFlags& f) {
  DFRP_ASSIGN_OR_RETURN(node::DaemonInfo info, ListenerInfo(e, f.node));
  std::string query = fmt::format("/v1/compute/jobs?limit={}", f.limit);
  if (!f.state.empty()) query += "&state=" + node::UrlEncode(f.state);
  DFRP_ASSIGN_OR_RETURN(json n, CallNodeJson(info, "GET", "/v1/compute/node"));
  DFRP_ASSIGN_OR_RETURN(json jobs, CallNodeJson(info, "GET", query));
  if (!jobs.contains("jobs") || !jobs["jobs"].is_array())
    return Status::IOError(fmt::format("{} answered a job list without \"jobs\"", info.url));
  if (g.json && !f.follow)
    PrintJson(
        {{"node", info.url}, {"listener", n}, {"jobs", jobs["jobs"]}, {"total", jobs["total"]}});
  else if (!g.json)
    PrintListener(info.url, n, jobs);
  if (!f.follow) return Status::OK();
  // Follow: each job's last state seen; a new job or a changed state is one line (one JSON
  // object per line with --json). A node that stops answering ends it (exit 6).
  std::map<std::string, std::string> seen;
  for (const auto& j : jobs["jobs"]) seen[j.value("job_id", "")] = j.value("state", "");
  if (!g.json) std::printf("following %s (Ctrl-C to stop)\n", info.url.c_str());
  std::fflush(stdout);
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    DFRP_ASSIGN_OR_RETURN(json now, CallNodeJson(info, "GET", query));
    if (!now.contains("jobs") || !now["jobs"].is_array())
      return Status::IOError(fmt::format("{} answered a job list without \"jobs\"", info.url));
    // Oldest first, so a job's lines come in the order its states came.
    for (auto it = now["jobs"].rbegin(); it != now["jobs"].rend(); ++it) {
      const json& j = *it;
      const std::string id = j.value("job_id", ""), state = j.value("state", "");
      auto old = seen.find(id);
      if (old != seen.end() && old->second == state) continue;
      const std::string from = old == seen.end() ? "" : old->second;
      seen[id] = state;
      if (g.json) {
        std::printf("%s\n", json{{"job_id", id},
                                 {"from", from.empty() ? json() : json(from)},
                                 {"state", state},
                                 {"job", j}}
                                .dump()
                                .c_str());
      } else {
        std::printf("%s  %s  %s%s%s  (%s, %d rank(s))\n",
                    ShortTime(e.clock->NowUnixMillis()).c_str(), id.substr(0, 16).c_str(),
                    from.empty() ? "new: " : from.c_str(), from.empty() ? "" : " -> ",
                    state.c_str(), j.value("app", "").c_str(), j.value("ranks", 0));
      }
      std::fflush(stdout);
    }
  }
}
}  // namespace

int RunComputeCli(int argc, char** argv, core::FileSystem* fs, core::Clock* clock) {
  CLI::App app{"dfrp-compute: run the node's compute apps under Open MPI and check their results",
               "dfrp-compute"};
  app.require_subcommand(1);
  app.fallthrough();
  app.set_version_flag("--version", fmt::format("dfrp-compute {}", core::kVersion));
  Globals g;
  app.add_option("--config", g.config,
                 "config file (.toml or .env); default $DFRP_CONFIG, ./dfrp.toml, ./.env, else "
                 "the embedded default");
  app.add_flag("--json", g.json, "print one JSON object on stdout");
  app.add_option("--policy", g.policy,
                 "the network's economic.toml (default: the config's ECONOMIC_POLICY), for jobs "
                 "sent to other nodes");

  auto* apps = app.add_subcommand("apps", "the apps this node runs (reference and COMPUTE_APPS)");
  std::string app_name;
  std::vector<std::string> app_args;
  uint32_t ranks = 1;
  LimitFlags lf;
  auto* run = app.add_subcommand(
      "run",
      "run an app here under mpirun, as the job user, within its limits; prints the "
      "run id and the result root");
  run->add_option("app", app_name, "the app's name (dfrp-compute apps)")->required();
  run->add_option("args", app_args, "the app's arguments");
  run->add_option("--ranks,-n", ranks, "MPI ranks (default 1)");
  run->add_option("--cpu-seconds", lf.cpu_seconds, "CPU seconds per process (default 600)");
  run->add_option("--memory", lf.memory, "data memory per process (default 2G)");
  run->add_option("--wall-seconds", lf.wall_seconds, "wall time of the whole job (default 600)");
  run->prefix_command(false);
  SubmitFlags sf;
  auto* submit =
      app.add_subcommand("submit-job",
                         "sign a job with a wallet and send it to the nearest compute node that "
                         "takes it (exit 7 when none does, with each node's reason)");
  submit->add_option("app", sf.app, "the app's name")->required();
  submit->add_option("args", sf.args, "the app's arguments");
  submit->add_option("--ranks,-n", sf.ranks, "MPI ranks (default 1)");
  submit->add_option("--cpu-seconds", sf.lf.cpu_seconds, "CPU seconds per rank (default 600)");
  submit->add_option("--memory", sf.lf.memory, "data memory per rank (default 2G)");
  submit->add_option("--wall-seconds", sf.lf.wall_seconds, "wall time (default 600)");
  submit->add_option("--max-fee", sf.max_fee, "the most the job pays, in the currency")->required();
  submit->add_option("--vector", sf.vector,
                     "the job's vector, comma-separated (default: the wallet's identity vector)");
  // One value per flag, so the app's arguments may follow (`--node URL 0` is not two nodes).
  submit->add_option("--node", sf.nodes, "a compute node's URL (repeat for several)")
      ->required()
      ->allow_extra_args(false);
  submit
      ->add_option("--input", sf.inputs,
                   "an input shard, SHARD_ID[@MERKLE_ROOT] (repeat; an \"input\" argument "
                   "names it by its place, from 0)")
      ->allow_extra_args(false);
  submit
      ->add_option("--input-from", sf.input_from,
                   "a node holding the inputs (repeat; default: the --node URLs)")
      ->allow_extra_args(false);
  submit->add_option("--expiry-seconds", sf.expiry_seconds, "no node starts it later (3600)");
  submit->add_flag("--wait", sf.wait, "wait until it ends and print the result root");
  submit->add_flag("--pay", sf.pay,
                   "pay through a compute escrow: the node's quote is the price, --max-fee is "
                   "escrowed and the rest comes back (needs a committee in the policy)");
  submit->add_option("--settle-after", sf.settle_after,
                     "with --pay: seconds until the escrow settles (default twice the wall time "
                     "plus 60): the dispute window");
  submit->add_option("--verifier", sf.verifier,
                     "with --pay: a compute node whose re-run (verify-job) may dispute the "
                     "result");
  submit->add_option("--collateral", sf.collateral,
                     "with --pay and --verifier: the stake the provider must put up, lost to "
                     "you on a fraud proof (default: enough that cheating does not pay at the "
                     "rate you check this provider; 0 for a new one)");
  for (auto* c : {submit}) {
    c->add_option("--wallet", sf.wallet, "the paying wallet's keystore")->required();
    c->add_option("--passphrase-file", sf.passphrase_file,
                  "the file holding its passphrase (else $DFRP_PASSPHRASE or a prompt)");
  }
  std::string id;
  std::string node_url;
  auto* status = app.add_subcommand("status", "what a run, or a submitted job, did");
  status->add_option("id", id, "the run id, or a submitted job's id")->required();
  status->add_option("--node", node_url, "the node running the job (default: where it was sent)");
  auto* runs = app.add_subcommand("runs", "the runs kept in STATE_DIR/compute/runs");
  ListenFlags lsf;
  auto* listen = app.add_subcommand(
      "listen-job",
      "what a compute listener is doing: its slots, queue and jobs (the local dfrpd's unless "
      "--node), and with --follow each job's changes as they come");
  listen->add_option("--node", lsf.node, "another compute node's URL");
  listen->add_option("--state", lsf.state,
                     "only jobs in this state (queued, running, done, failed, expired, "
                     "interrupted)");
  listen->add_option("--limit", lsf.limit, "list at most this many jobs, newest first (20)");
  listen->add_flag("--follow,-f", lsf.follow,
                   "then print every new job and change of state until interrupted (JSON "
                   "lines with --json)");
  auto* verify =
      app.add_subcommand("verify-job",
                         "re-run a deterministic job with the same ranks and compare result roots "
                         "(exit 3 when they differ)");
  verify->add_option("id", id, "the run id, or a submitted job's id")->required();
  std::string verifier;
  bool adaptive = false;
  verify->add_flag("--adaptive", adaptive,
                   "for a submitted job: check it only if a draw at the provider's check rate "
                   "says so (every job of a new provider, falling to [compute] spot_check_bps "
                   "of a trusted one; economic.toml)");
  verify->add_option("--verifier", verifier,
                     "for a submitted job: another compute node that runs the same job again; "
                     "a paid job whose escrow names it is disputed on a mismatch");
  bool settle_wait = false;
  auto* settle = app.add_subcommand(
      "settle-job",
      "release a paid job's escrow to its provider after the dispute window, dispute it with "
      "the fraud proof verify-job kept, or refund it when no release came");
  settle->add_option("id", id, "the submitted job's id")->required();
  settle->add_flag("--wait", settle_wait, "wait until the escrow can be settled");
  std::string out_dir;
  int only_rank = -1;
  auto* result = app.add_subcommand(
      "result",
      "check each rank's output against the result root (exit 3 when one does not "
      "verify), and copy the verified outputs with -o");
  result->add_option("id", id, "the run id, or a submitted job's id")->required();
  result->add_option("--node", node_url, "the node that ran the job (default: where it was sent)");
  result->add_option("-o,--out", out_dir, "copy the verified outputs to this folder");
  result->add_option("--rank", only_rank, "only this rank");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "dfrp-compute: %s (see dfrp-compute --help)\n", e.what());
    return core::kExitUsage;
  }
  auto env = MakeEnv(fs, clock, g);
  if (!env) return FailCompute(env.error());
  Status s;
  try {
    if (*apps)
      s = CmdApps(g, *env);
    else if (*run)
      s = CmdRun(g, *env, app_name, app_args, ranks, lf);
    else if (*submit)
      s = CmdSubmit(g, *env, sf);
    else if (*status && id.size() == 64)
      s = CmdRemoteStatus(g, *env, id, node_url);
    else if (*status)
      s = CmdStatus(g, *env, id);
    else if (*runs)
      s = CmdRuns(g, *env);
    else if (*listen)
      s = CmdListen(g, *env, lsf);
    else if (*verify && id.size() == 64)
      s = verifier.empty() ? Status::InvalidArgument(
                                 "verify-job of a submitted job: give --verifier URL (another "
                                 "compute node)")
                           : CmdRemoteVerify(g, *env, id, verifier, adaptive);
    else if (*settle)
      s = CmdSettle(g, *env, id, settle_wait);
    else if (*verify && adaptive)
      s = Status::InvalidArgument(
          "verify-job --adaptive is for a submitted job (its 64-digit id), with --verifier URL");
    else if (*verify)
      s = CmdVerify(g, *env, id);
    else if (*result && id.size() == 64)
      s = CmdRemoteResult(g, *env, id, node_url, out_dir);
    else if (*result)
      s = CmdResult(g, *env, id, out_dir, only_rank);
  } catch (const json::exception& ex) {
    // A node's answer (or a file) of an unexpected shape.
    s = Status::Corruption(fmt::format("an answer or file of an unexpected shape: {}", ex.what()));
  }
  if (!s.ok()) return FailCompute(s);
  return core::kExitOk;
}

}  // namespace dfrp::cli
