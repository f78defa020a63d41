#include "dfrp/cli/storage_cli.h"

#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dfrp/cli/progress.h"
#include "dfrp/cli/storage_cli_extra.h"
#include "dfrp/cli/storage_cli_internal.h"
#include "dfrp/cli/storage_service.h"
#include "dfrp/cli/volume_cli.h"
#include "dfrp/core/config.h"
#include "dfrp/core/version.h"
#include "dfrp/node/views.h"

namespace dfrp::cli {

using core::Err;
using core::Result;
using core::Status;
using nlohmann::json;

Result<core::Uuid> ParseShardId(const std::string& text) {
  auto id = core::Uuid::Parse(text);
  if (!id)
    return Err(Status::InvalidArgument(
        fmt::format("'{}' is not a shard id: ids are 36-character UUIDs such as "
                    "01932c07-a35c-7a9b-8f1e-5c1d2b3a4f60",
                    text)));
  return *id;
}

void PrintJson(const json& j) { std::printf("%s\n", j.dump(2).c_str()); }

std::string AbsolutePath(const std::string& path) {
  if (path.empty() || path.front() == '/') return path;
  char buf[4096];
  if (::getcwd(buf, sizeof(buf)) == nullptr) return path;
  return core::JoinPath(buf, path);
}

namespace {

Status CmdInit(Context& ctx, bool create) {
  if (ctx.config.is_embedded_default)
    ctx.Notice(
        "no config found (--config, DFRP_CONFIG, ./dfrp.toml, ./.env): using the embedded "
        "default, two 64 MiB drives under ./dfrp-data");
  DFRP_ASSIGN_OR_RETURN(InitOutcome init,
                        ctx.service->Init(create || ctx.config.is_embedded_default));
  const storage::InitReport& r = init.report;
  const json& arr = init.volumes;
  if (ctx.g.json) {
    PrintJson({{"store_id", r.store_id.ToString()},
               {"new_store", r.new_store},
               {"adopted", r.adopted},
               {"initialized", r.initialized},
               {"already_initialized", r.already},
               {"state_dir", ctx.config.state_dir},
               {"volumes", arr}});
    return Status::OK();
  }
  if (!ctx.g.quiet) {
    std::printf("store %s (%s) in %s\n", r.store_id.ToString().c_str(),
                r.new_store ? "new" : (r.adopted ? "adopted from its drives" : "existing"),
                ctx.config.state_dir.c_str());
    for (uint32_t v : r.initialized) std::printf("initialized volume %u\n", v);
    PrintVolumes(ctx.g.json, arr);
  }
  return Status::OK();
}

// One line of verify-shard, from its JSON element (node::VerifyJson, or POST .../verify).
void PrintVerifyLine(const json& r) {
  const std::string id = r["shard_id"].get<std::string>();
  if (r["ok"].get<bool>())
    std::printf("ok       %s\n", id.c_str());
  else if (!r.contains("segment"))
    std::printf("MISSING  %s  %s\n", id.c_str(), r.value("error", "").c_str());
  else
    std::printf("CORRUPT  %s  volume %u, %s at offset %llu: %s\n", id.c_str(),
                r["volume"].get<uint32_t>(), r["segment"].get<std::string>().c_str(),
                static_cast<unsigned long long>(r["offset"].get<uint64_t>()),
                r.value("error", "").c_str());
}

// The worst outcome decides the exit code: corruption over absence.
Status VerifyOutcome(const Context& ctx, const json& results) {
  size_t corrupt = 0, missing = 0, other = 0;
  Status first_other;
  for (const auto& r : results) {
    if (r["ok"].get<bool>()) continue;
    const std::string code = r.value("error_code", "");
    if (code == "integrity")
      ++corrupt;
    else if (code == "not_found")
      ++missing;
    else if (other++ == 0)
      first_other = node::StatusFromErrorJson(
          {{"error", {{"code", code}, {"message", r.value("error", "")}}}}, r.value("error", ""));
  }
  if (corrupt > 0)
    return Status::Corruption(
        fmt::format("{} of {} shard(s) failed verification", corrupt, results.size()));
  if (other > 0) return first_other;
  if (missing > 0)
    return Status::NotFound(
        fmt::format("{} of {} shard(s) not found or unavailable", missing, results.size()));
  if (!ctx.g.json && !ctx.g.quiet) std::printf("%zu shard(s) verified\n", results.size());
  return Status::OK();
}

Status CmdVerify(Context& ctx, const std::vector<std::string>& ids, bool all) {
  if (all == !ids.empty())
    return Status::InvalidArgument("verify-shard needs shard ids or --all (not both)");
  std::vector<core::Uuid> parsed;
  for (const auto& t : ids) {
    DFRP_ASSIGN_OR_RETURN(core::Uuid id, ParseShardId(t));
    parsed.push_back(id);
  }
  json results = json::array();
  ProgressBar bar("verifying", ctx.progress, ctx.clock);
  auto collect = [&](json r) {
    if (!ctx.g.json && (!r["ok"].get<bool>() || !ctx.g.quiet)) {
      bar.Finish();
      PrintVerifyLine(r);
    }
    results.push_back(std::move(r));
  };
  auto progress = [&](uint64_t d, uint64_t t) { bar.Update(d, t); };
  DFRP_RETURN_IF_ERROR(all ? ctx.service->VerifyAll(collect, progress)
                           : ctx.service->Verify(parsed, collect, progress));
  bar.Finish();
  if (ctx.g.json) PrintJson(results);
  return VerifyOutcome(ctx, results);
}

// stat-shard's output, from the JSON of node::ShardInfoJson (GET /v1/shards/{id}/meta).
void PrintShardInfo(const json& j) {
  std::printf(
      "shard_id      %s\nmerkle_root   %s\nsize          %llu\nleaf_size     %u\n"
      "volume        %u (%s)\nsegment       %s at offset %llu\ncontent_type  %s\n"
      "created       %s\n",
      j["shard_id"].get<std::string>().c_str(), j["merkle_root"].get<std::string>().c_str(),
      static_cast<unsigned long long>(j["size"].get<uint64_t>()), j["leaf_size"].get<uint32_t>(),
      j["volume"].get<uint32_t>(), j["volume_path"].get<std::string>().c_str(),
      j["segment"].get<std::string>().c_str(),
      static_cast<unsigned long long>(j["offset"].get<uint64_t>()),
      j["content_type"].get<std::string>().c_str(), j["created"].get<std::string>().c_str());
  if (j["owner"].is_string() && !j["owner"].get<std::string>().empty())
    std::printf("owner         %s\n", j["owner"].get<std::string>().c_str());
  if (j["vector"].is_array() && !j["vector"].empty())
    std::printf("vector        %s\n", j["vector"].dump().c_str());
  for (const auto& [k, v] : j["meta"].items())
    std::printf("meta          %s=%s\n", k.c_str(), v.get<std::string>().c_str());
}

Status CmdStat(Context& ctx, const std::string& id_text) {
  DFRP_ASSIGN_OR_RETURN(core::Uuid id, ParseShardId(id_text));
  DFRP_ASSIGN_OR_RETURN(json j, ctx.service->Stat(id));
  if (ctx.g.json)
    PrintJson(j);
  else
    PrintShardInfo(j);
  return Status::OK();
}

// search-shards: the shards nearest a vector, nearest first.
Status CmdSearch(Context& ctx, const node::SearchQuery& q) {
  DFRP_ASSIGN_OR_RETURN(json j, ctx.service->SearchShards(q));
  if (ctx.g.json) {
    PrintJson(j);
    return Status::OK();
  }
  const json& shards = j["shards"];
  if (!ctx.g.quiet)
    std::printf(
        "%zu shard%s nearest by %s (%s, %.2f ms, %llu indexed)\n", shards.size(),
        shards.size() == 1 ? "" : "s", j["metric"].get<std::string>().c_str(),
        j["exact"].get<bool>() ? "exact" : fmt::format("ef {}", j["ef"].get<uint64_t>()).c_str(),
        j["search_ms"].get<double>(),
        static_cast<unsigned long long>(j["indexed"].get<uint64_t>()));
  for (const json& s : shards) {
    std::string meta;
    for (const auto& [k, v] : s["meta"].items())
      meta += fmt::format(" {}={}", k, v.get<std::string>());
    if (ctx.g.quiet)
      std::printf("%s\n", s["shard_id"].get<std::string>().c_str());
    else
      std::printf("%.6f  %s  %10s  %s%s\n", s["distance"].get<double>(),
                  s["shard_id"].get<std::string>().c_str(),
                  core::FormatBytes(s["size"].get<uint64_t>()).c_str(),
                  s["content_type"].get<std::string>().c_str(), meta.c_str());
  }
  if (j["unavailable"].get<uint64_t>() > 0)
    ctx.Notice(fmt::format("{} of the nearest shards are on volumes that are unavailable now",
                           j["unavailable"].get<uint64_t>()));
  return Status::OK();
}

Status CmdListVolumes(Context& ctx) {
  DFRP_ASSIGN_OR_RETURN(json vols, ctx.service->ListVolumes());
  PrintVolumes(ctx.g.json, vols);
  return Status::OK();
}

int Fail(const Status& s) {
  std::fprintf(stderr, "dfrp-storage: %s\n", s.message().c_str());
  return core::ExitCodeFor(s);
}

}  // namespace

int RunStorageCli(int argc, char** argv, core::FileSystem* fs, core::Clock* clock) {
  CLI::App app{"dfrp-storage: Merkle-verified shard storage on several drives", "dfrp-storage"};
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the command: write-shard --json f
  app.set_version_flag("--version", fmt::format("dfrp-storage {}", core::kVersion));
  Context ctx;
  ctx.fs = fs;
  ctx.clock = clock;
  app.add_option("--config", ctx.g.config,
                 "config file (.toml or .env); default $DFRP_CONFIG, "
                 "./dfrp.toml, ./.env, else the embedded default");
  app.add_flag("--json", ctx.g.json, "print one JSON object or array on stdout");
  app.add_flag("-q,--quiet", ctx.g.quiet, "print only what a script needs");

  std::vector<ExtraCommand> extra;  // issue 4's commands, registered from their own files
  AddProofCommands(app, &extra);
  AddScrubCommands(app, &extra);
  AddMountCommands(app, &extra);

  bool create = false;
  auto* init = app.add_subcommand("init-storage", "lay out every configured drive as a volume");
  init->add_flag("--create", create, "create drive folders that do not exist yet");

  WriteOptions w;
  auto* write = app.add_subcommand(
      "write-shard",
      "store files (or - for standard input) as shards, one batch (while dfrpd runs: one "
      "write per file, through its API)");
  write->add_option("files", w.files, "files to store; - reads standard input");
  write->add_option("--files-from", w.files_from, "a file listing paths to store, one per line");
  write->add_option("--meta", w.meta, "key=value metadata (repeatable)")->allow_extra_args(false);
  write->add_option("--vector", w.vector, "comma-separated floats, VECTOR_DIM of them");
  write->add_option("--leaf-size", w.leaf_size, "Merkle leaf size: a power of two, 512 to 1 MiB");
  write->add_option("--content-type", w.content_type, "content type to record");
  write->add_option("--owner", w.owner, "owner address to record");

  std::string read_id, out_path, read_range;
  auto* read = app.add_subcommand("read-shard", "print a shard's payload, verified");
  read->add_option("id", read_id, "shard id")->required();
  read->add_option("-o,--output", out_path, "write to this file instead of standard output");
  read->add_option("--range", read_range,
                   "OFFSET:LENGTH: only these bytes (only their leaves "
                   "are read and verified)");

  std::vector<std::string> verify_ids;
  bool verify_all = false;
  auto* verify =
      app.add_subcommand("verify-shard", "recompute Merkle roots and report corrupt shards");
  verify->add_option("ids", verify_ids, "shard ids");
  verify->add_flag("--all", verify_all,
                   "verify every shard in the store (read directly, even while dfrpd runs)");

  auto* list = app.add_subcommand("list-volumes", "show each volume's quota, use and state");
  std::string stat_id;
  auto* stat = app.add_subcommand("stat-shard", "show a shard's metadata");
  stat->add_option("id", stat_id, "shard id")->required();

  node::SearchQuery search_q;
  auto* search = app.add_subcommand(
      "search-shards", "the shards whose vectors are nearest a vector (VECTOR_METRIC)");
  search->add_option("--near", search_q.near, "the vector: VECTOR_DIM comma-separated numbers")
      ->required();
  search->add_option("-k,--k", search_q.k, "how many shards (1 to 1000; default 10)");
  search->add_option("--ef", search_q.ef,
                     "the search's candidate list: larger finds more of the true nearest, "
                     "slower (default 64, never less than k)");
  search->add_flag("--exact", search_q.exact,
                   "compare with every vector (brute force): the exact answer");

  VolumeCommands volume_commands(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "dfrp-storage: %s (see dfrp-storage --help)\n", e.what());
    return core::kExitUsage;
  }
  const ExtraCommand* chosen = nullptr;
  for (const auto& e : extra)
    if (*e.app) chosen = &e;
  ctx.progress = !ctx.g.quiet && StderrIsTerminal();
  // The one place that picks the storage service: through the dfrpd that serves this store,
  // or the store opened here (storage_service.h). Commands never ask which.
  std::unique_ptr<StorageService> service;
  if (chosen == nullptr || chosen->needs_config) {
    core::ConfigOptions copt;
    copt.explicit_path = ctx.g.config;
    auto config = core::LoadConfig(copt);
    if (!config) return Fail(config.error());
    ctx.config = *config;
    auto made =
        MakeStorageService(ctx.config, fs, clock, [&ctx](const std::string& n) { ctx.Notice(n); });
    if (!made) return Fail(made.error());
    service = std::move(*made);
    ctx.service = service.get();
  }

  Status s;
  if (chosen != nullptr)
    s = chosen->run(ctx);
  else if (volume_commands.chosen())
    s = volume_commands.Run(ctx);
  else if (*init)
    s = CmdInit(ctx, create);
  else if (*write)
    s = CmdWrite(ctx, w);
  else if (*read)
    s = CmdRead(ctx, read_id, out_path, read_range);
  else if (*verify)
    s = CmdVerify(ctx, verify_ids, verify_all);
  else if (*list)
    s = CmdListVolumes(ctx);
  else if (*stat)
    s = CmdStat(ctx, stat_id);
  else if (*search)
    s = CmdSearch(ctx, search_q);
  if (!s.ok()) return Fail(s);
  return core::kExitOk;
}

}  // namespace dfrp::cli
