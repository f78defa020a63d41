#include "dfrp/cli/storage_cli.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "dfrp/cli/progress.h"
#include "dfrp/cli/remote.h"
#include "dfrp/cli/storage_cli_extra.h"
#include "dfrp/cli/storage_cli_internal.h"
#include "dfrp/cli/volume_cli.h"
#include "dfrp/core/bytes.h"
#include "dfrp/core/config.h"
#include "dfrp/core/file_system.h"
#include "dfrp/core/version.h"
#include "dfrp/node/token.h"
#include "dfrp/node/views.h"
#include "dfrp/storage/metadata.h"
#include "dfrp/storage/store.h"

namespace dfrp::cli {

using core::Err;
using core::Result;
using core::Status;
using nlohmann::json;
using node::IsoTime;
using node::RootHex;
using node::VerifyJson;
using node::VolumeJson;
using storage::Store;

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

Result<std::unique_ptr<Store>> OpenStore(Context& ctx, Store::Mode mode) {
  storage::StoreOptions opt;
  DFRP_ASSIGN_OR_RETURN(auto store, Store::Open(ctx.config, mode, opt));
  for (const auto& n : store->notices()) ctx.Notice(n);
  return store;
}

Status WriteAllToFd(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "cannot write", "standard output");
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::OK();
}

namespace {

// init-storage beside a running dfrpd: the store exists, so init-storage has nothing to do
// when every configured drive is already one of its volumes; it says so as it would without
// the daemon (a read-only open is safe beside it). Laying out a new volume is a write: refused.
Result<storage::InitReport> InitBesideDaemon(Context& ctx) {
  DFRP_ASSIGN_OR_RETURN(auto store, Store::Open(ctx.config, Store::Mode::kRead, {}));
  const auto vols = store->ListVolumes();
  storage::InitReport r;
  r.store_id = store->store_id();
  for (const auto& d : ctx.config.drives) {
    bool there = false;
    for (const auto& v : vols)
      there = there || (static_cast<int>(v.index) == d.index && v.path == d.path &&
                        v.state != storage::VolumeState::kUninitialized &&
                        v.state != storage::VolumeState::kMissing);
    if (!there)
      return Err(ctx.remote->Refuse(
          "init-storage",
          fmt::format("it would lay out DRIVE_{} ({}) as a new volume", d.index, d.path)));
    r.already.push_back(static_cast<uint32_t>(d.index));
  }
  return r;
}

Status CmdInit(Context& ctx, bool create) {
  storage::StoreOptions opt;
  opt.create_missing_drive_folders = create || ctx.config.is_embedded_default;
  if (ctx.config.is_embedded_default)
    ctx.Notice(
        "no config found (--config, DFRP_CONFIG, ./dfrp.toml, ./.env): using the embedded "
        "default, two 64 MiB drives under ./dfrp-data");
  storage::InitReport r;
  if (ctx.remote) {
    // The daemon wrote the admin token when it started.
    DFRP_ASSIGN_OR_RETURN(r, InitBesideDaemon(ctx));
  } else {
    DFRP_ASSIGN_OR_RETURN(r, Store::Init(ctx.config, opt));
    // The admin token dfrpd's API asks for (docs/API.md), readable by this user only.
    DFRP_RETURN_IF_ERROR(node::EnsureApiToken(opt.fs, ctx.config.state_dir).status());
  }
  DFRP_ASSIGN_OR_RETURN(auto store, OpenStore(ctx, Store::Mode::kRead));
  const json arr = VolumesJson(store->ListVolumes());
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

// Reads a shard into `out_path` through a temporary file that is renamed into place only
// after every byte verified, so a failed read leaves no file behind.
// The temporary file of a read in progress, removed if SIGINT or SIGTERM ends the process.
char g_partial_path[4096];

void RemovePartialAndExit(int sig) {
  if (g_partial_path[0] != '\0') ::unlink(g_partial_path);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

Status CheckOutputPath(const std::string& out_path) {
  struct stat st;
  if (::lstat(out_path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode))
      return Status::InvalidArgument(fmt::format("-o {} is a folder: name a file", out_path));
    if (!S_ISREG(st.st_mode))
      return Status::InvalidArgument(fmt::format(
          "-o {} exists and is not a regular file (a link, device or pipe): name a new file, or "
          "redirect standard output (read-shard ID > {})",
          out_path, out_path));
  }
  const std::string dir = core::DirName(out_path);
  if (!core::DefaultFileSystem()->IsDirectory(dir))
    return Status::InvalidArgument(
        fmt::format("-o {}: the folder {} does not exist; create it first", out_path, dir));
  return Status::OK();
}

Status ReadToFile(Context& ctx, const std::function<Status(const storage::SinkFn&)>& produce,
                  const std::string& out_path, uint64_t* bytes) {
  core::FileSystem* fs = core::DefaultFileSystem();
  DFRP_RETURN_IF_ERROR(CheckOutputPath(out_path));
  const std::string tmp =
      fmt::format("{}.dfrp-partial-{}", out_path, core::DefaultUuidGenerator()->NewV7().ToString());
  if (tmp.size() >= sizeof(g_partial_path))
    return Status::InvalidArgument(fmt::format("-o {}: the path is too long", out_path));
  auto out = fs->CreateNew(tmp);
  if (!out) return out.error();
  std::memcpy(g_partial_path, tmp.c_str(), tmp.size() + 1);
  std::signal(SIGINT, RemovePartialAndExit);
  std::signal(SIGTERM, RemovePartialAndExit);
  uint64_t written = 0;
  Status s = produce([&](std::string_view chunk) {
    Status w = (*out)->WriteAt(written, chunk);
    written += chunk.size();
    return w;
  });
  if (s.ok()) s = (*out)->Sync();
  if (s.ok()) s = (*out)->Close();
  if (s.ok()) s = fs->Rename(tmp, out_path);
  if (!s.ok()) {
    out->reset();
    (void)fs->RemoveFile(tmp);
  }
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  g_partial_path[0] = '\0';
  if (!s.ok()) return s;
  *bytes = written;
  return fs->SyncDir(core::DirName(out_path));
}

// The payload of a read through dfrpd: GET /v1/shards/{id}, with a Range for --range. The
// range is checked against the shard's size first (its metadata), so that a range past the end
// fails as the direct path fails, rather than as HTTP clamps it.
Result<std::function<Status(const storage::SinkFn&)>> ReadThroughDaemon(
    Context& ctx, const core::Uuid& id, const std::optional<std::pair<uint64_t, uint64_t>>& r) {
  const std::string target = "/v1/shards/" + id.ToString();
  node::HttpHeaders headers;
  if (r) {
    DFRP_ASSIGN_OR_RETURN(json meta, ctx.remote->Call("GET", target + "/meta"));
    const uint64_t size = meta.value("size", uint64_t{0});
    const auto [offset, length] = *r;
    if (offset > size || length > size - offset)
      return Err(Status::InvalidArgument(fmt::format(
          "range {}:{} runs past the end of shard {} ({} bytes): give OFFSET:LENGTH within it",
          offset, length, id.ToString(), size)));
    if (length == 0) return [](const storage::SinkFn&) { return Status::OK(); };
    headers.emplace_back("Range", fmt::format("bytes={}-{}", offset, offset + length - 1));
  }
  Remote* remote = ctx.remote;
  return [remote, target, headers](const storage::SinkFn& sink) {
    return remote->Download(target, headers, sink);
  };
}

Status CmdRead(Context& ctx, const std::string& id_text, const std::string& out_path,
               const std::string& range) {
  DFRP_ASSIGN_OR_RETURN(core::Uuid id, ParseShardId(id_text));
  std::optional<std::pair<uint64_t, uint64_t>> r;
  if (!range.empty()) {
    DFRP_ASSIGN_OR_RETURN(r, ParseRange(range));
  }
  std::unique_ptr<Store> store;
  std::optional<storage::ShardReader> reader;
  std::function<Status(const storage::SinkFn&)> produce;
  if (ctx.remote) {
    DFRP_ASSIGN_OR_RETURN(produce, ReadThroughDaemon(ctx, id, r));
  } else {
    DFRP_ASSIGN_OR_RETURN(store, OpenStore(ctx, Store::Mode::kRead));
    // --range reads and verifies only the leaves it touches (storage/shard_reader.h).
    if (r) {
      DFRP_ASSIGN_OR_RETURN(reader, store->OpenShard(id));
    }
    produce = [&](const storage::SinkFn& sink) {
      return r ? reader->ReadRange(r->first, r->second, sink, 0) : store->Read(id, sink);
    };
  }
  if (out_path.empty() || out_path == "-")
    return produce([](std::string_view chunk) { return WriteAllToFd(1, chunk); });
  uint64_t bytes = 0;
  DFRP_RETURN_IF_ERROR(ReadToFile(ctx, produce, out_path, &bytes));
  if (ctx.g.json) PrintJson({{"shard_id", id.ToString()}, {"size", bytes}, {"path", out_path}});
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

// verify-shard ID through dfrpd. A shard the daemon cannot locate (404 for an unknown one) is
// reported as the direct path reports it, a MISSING line, and the next id is verified.
Result<json> VerifyThroughDaemon(Context& ctx, const core::Uuid& id) {
  DFRP_ASSIGN_OR_RETURN(node::HttpResponse r,
                        ctx.remote->Exchange("POST", "/v1/shards/" + id.ToString() + "/verify"));
  if (r.status == 200) {
    json j = json::parse(r.body, nullptr, false);
    if (j.is_object() && j.contains("ok")) return j;
  }
  const Status s = ctx.remote->StatusOf(r);
  if (r.status != 404 && r.status != 500) return Err(s);
  return json{{"shard_id", id.ToString()},
              {"ok", false},
              {"error", s.message()},
              {"error_code", node::StatusCodeName(s)}};
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
      first_other = StatusFromCodeName(code, r.value("error", ""));
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

// verify-shard --all reads every shard of the store directly even while dfrpd runs: a
// read-only open is safe beside the daemon, and the API has no list of shards to walk.
Status CmdVerify(Context& ctx, const std::vector<std::string>& ids, bool all) {
  if (all == !ids.empty())
    return Status::InvalidArgument("verify-shard needs shard ids or --all (not both)");
  std::vector<core::Uuid> parsed;
  for (const auto& t : ids) {
    DFRP_ASSIGN_OR_RETURN(core::Uuid id, ParseShardId(t));
    parsed.push_back(id);
  }
  json results = json::array();
  ProgressBar bar("verifying", ctx.progress);
  auto collect = [&](json r) {
    if (!ctx.g.json && (!r["ok"].get<bool>() || !ctx.g.quiet)) {
      bar.Finish();
      PrintVerifyLine(r);
    }
    results.push_back(std::move(r));
  };
  if (ctx.remote && !all) {
    for (const auto& id : parsed) {
      DFRP_ASSIGN_OR_RETURN(json r, VerifyThroughDaemon(ctx, id));
      collect(std::move(r));
    }
  } else {
    DFRP_ASSIGN_OR_RETURN(auto store, OpenStore(ctx, Store::Mode::kRead));
    auto progress = [&](uint64_t d, uint64_t t) { bar.Update(d, t); };
    auto each = [&](const storage::VerifyResult& r) { collect(VerifyJson(r)); };
    if (all) {
      DFRP_RETURN_IF_ERROR(store->VerifyAll(each, progress));
    } else {
      for (const auto& id : parsed) each(store->Verify(id, progress));
    }
  }
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
  json j;
  if (ctx.remote) {
    DFRP_ASSIGN_OR_RETURN(j, ctx.remote->Call("GET", "/v1/shards/" + id.ToString() + "/meta"));
  } else {
    DFRP_ASSIGN_OR_RETURN(auto store, OpenStore(ctx, Store::Mode::kRead));
    DFRP_ASSIGN_OR_RETURN(storage::ShardInfo info, store->Stat(id));
    j = node::ShardInfoJson(id, info);
  }
  if (ctx.g.json)
    PrintJson(j);
  else
    PrintShardInfo(j);
  return Status::OK();
}

Status CmdListVolumes(Context& ctx) {
  if (ctx.remote) {
    DFRP_ASSIGN_OR_RETURN(json j, ctx.remote->Call("GET", "/v1/volumes"));
    PrintVolumes(ctx.g.json, j.value("volumes", json::array()));
    return Status::OK();
  }
  DFRP_ASSIGN_OR_RETURN(auto store, OpenStore(ctx, Store::Mode::kRead));
  PrintVolumes(ctx.g.json, VolumesJson(store->ListVolumes()));
  return Status::OK();
}

int Fail(const Status& s) {
  std::fprintf(stderr, "dfrp-storage: %s\n", s.message().c_str());
  return core::ExitCodeFor(s);
}

}  // namespace

int RunStorageCli(int argc, char** argv) {
  CLI::App app{"dfrp-storage: Merkle-verified shard storage on several drives", "dfrp-storage"};
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the command: write-shard --json f
  app.set_version_flag("--version", fmt::format("dfrp-storage {}", core::kVersion));
  Context ctx;
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
  if (chosen == nullptr || chosen->needs_config) {
    core::ConfigOptions copt;
    copt.explicit_path = ctx.g.config;
    auto config = core::LoadConfig(copt);
    if (!config) return Fail(config.error());
    ctx.config = *config;
  }
  // While dfrpd serves this store, commands go through its API (remote.h).
  std::unique_ptr<Remote> remote;
  if (chosen == nullptr || chosen->needs_config) {
    auto found = Remote::Find(ctx.config);
    if (!found) return Fail(found.error());
    remote = std::move(*found);
    ctx.remote = remote.get();
  }
  if (chosen != nullptr) {
    const Status es = chosen->run(
        ctx.config,
        CliFlags{ctx.g.json, ctx.g.quiet, !ctx.g.quiet && StderrIsTerminal(), ctx.remote});
    return es.ok() ? core::kExitOk : Fail(es);
  }
  ctx.progress = !ctx.g.quiet && StderrIsTerminal();

  Status s;
  if (volume_commands.chosen())
    s = volume_commands.Run({&ctx.config, ctx.g.json, ctx.g.quiet, ctx.progress, ctx.remote});
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
  if (!s.ok()) return Fail(s);
  return core::kExitOk;
}

}  // namespace dfrp::cli
