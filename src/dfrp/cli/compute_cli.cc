#include "dfrp/cli/compute_cli.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "dfrp/compute/catalog.h"
#include "dfrp/compute/executor.h"
#include "dfrp/compute/job.h"
#include "dfrp/core/bytes.h"
#include "dfrp/core/config.h"
#include "dfrp/core/uuid.h"
#include "dfrp/core/version.h"

namespace dfrp::cli {

using core::Err;
using core::Result;
using core::Status;
using json = nlohmann::json;

namespace {

struct Globals {
  std::string config;
  bool json = false;
};

int Fail(const Status& s) {
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
  std::string id;
  auto* status = app.add_subcommand("status", "what a run did");
  status->add_option("id", id, "the run id")->required();
  auto* runs = app.add_subcommand("runs", "the runs kept in STATE_DIR/compute/runs");
  auto* verify =
      app.add_subcommand("verify-job",
                         "re-run a deterministic job with the same ranks and compare result roots "
                         "(exit 3 when they differ)");
  verify->add_option("id", id, "the run id")->required();
  std::string out_dir;
  int only_rank = -1;
  auto* result = app.add_subcommand(
      "result",
      "check each rank's output against the result root (exit 3 when one does not "
      "verify), and copy the verified outputs with -o");
  result->add_option("id", id, "the run id")->required();
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
  if (!env) return Fail(env.error());
  Status s;
  if (*apps)
    s = CmdApps(g, *env);
  else if (*run)
    s = CmdRun(g, *env, app_name, app_args, ranks, lf);
  else if (*status)
    s = CmdStatus(g, *env, id);
  else if (*runs)
    s = CmdRuns(g, *env);
  else if (*verify)
    s = CmdVerify(g, *env, id);
  else if (*result)
    s = CmdResult(g, *env, id, out_dir, only_rank);
  if (!s.ok()) return Fail(s);
  return core::kExitOk;
}

}  // namespace dfrp::cli
