#include "dfrp/cli/storage_cli.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "dfrp/cli/progress.h"
#include "dfrp/cli/storage_cli_extra.h"
#include "dfrp/cli/volume_cli.h"
#include "dfrp/core/bytes.h"
#include "dfrp/core/config.h"
#include "dfrp/core/file_system.h"
#include "dfrp/node/token.h"
#include "dfrp/node/views.h"
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

namespace {

struct GlobalOptions {
  std::string config;
  bool json = false;
  bool quiet = false;
};

struct WriteOptions {
  std::vector<std::string> files;
  std::string files_from;
  std::vector<std::string> meta;
  std::string vector;
  uint32_t leaf_size = 0;
  std::string content_type = "application/octet-stream";
  std::string owner;
};

struct Context {
  GlobalOptions g;
  core::NodeConfig config;
  bool progress = false;

  void Notice(const std::string& msg) const {
    if (!g.quiet) std::fprintf(stderr, "dfrp-storage: %s\n", msg.c_str());
  }
};

void PrintJson(const json& j) { std::printf("%s\n", j.dump(2).c_str()); }

Result<std::unique_ptr<Store>> OpenStore(Context& ctx, Store::Mode mode) {
  storage::StoreOptions opt;
  DFRP_ASSIGN_OR_RETURN(auto store, Store::Open(ctx.config, mode, opt));
  for (const auto& n : store->notices()) ctx.Notice(n);
  return store;
}

Status CmdInit(Context& ctx, bool create) {
  storage::StoreOptions opt;
  opt.create_missing_drive_folders = create || ctx.config.is_embedded_default;
  if (ctx.config.is_embedded_default)
    ctx.Notice(
        "no config found (--config, DFRP_CONFIG, ./dfrp.toml, ./.env): using the embedded "
        "default, two 64 MiB drives under ./dfrp-data");
  DFRP_ASSIGN_OR_RETURN(storage::InitReport r, Store::Init(ctx.config, opt));
  // The admin token dfrpd's API asks for (docs/API.md), readable by this user only.
  DFRP_RETURN_IF_ERROR(node::EnsureApiToken(ctx.config.state_dir).status());
  DFRP_ASSIGN_OR_RETURN(auto store, OpenStore(ctx, Store::Mode::kRead));
  auto vols = store->ListVolumes();
  if (ctx.g.json) {
    json arr = json::array();
    for (const auto& v : vols) arr.push_back(VolumeJson(v));
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
    PrintVolumes(ctx.g.json, vols);
  }
  return Status::OK();
}

Result<std::vector<float>> ParseVector(const std::string& text) {
  std::vector<float> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    std::string item = text.substr(pos, comma - pos);
    char* end = nullptr;
    float f = std::strtof(item.c_str(), &end);
    if (item.empty() || end == item.c_str() || *end != '\0' || !std::isfinite(f))
      return Err(Status::InvalidArgument(
          fmt::format("--vector item {} ('{}') is not a number: write numbers separated by commas, "
                      "such as --vector 0.1,0.5,-2",
                      out.size() + 1, item)));
    out.push_back(f);
    pos = comma + 1;
  }
  return out;
}

Result<storage::ShardMetadata> MetadataFrom(const WriteOptions& w) {
  storage::ShardMetadata m;
  m.content_type = w.content_type;
  m.owner = w.owner;
  if (w.leaf_size != 0) {
    if (w.leaf_size < 512 || w.leaf_size > (1u << 20) || (w.leaf_size & (w.leaf_size - 1)) != 0)
      return Err(Status::InvalidArgument(
          fmt::format("--leaf-size {} is not a power of two between 512 and 1048576 (such as 4096)",
                      w.leaf_size)));
    m.leaf_size = w.leaf_size;
  } else {
    m.leaf_size = 0;  // the store's LEAF_SIZE
  }
  if (!w.vector.empty()) {
    DFRP_ASSIGN_OR_RETURN(m.vector, ParseVector(w.vector));
  }
  for (const std::string& kv : w.meta) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      return Err(Status::InvalidArgument(
          fmt::format("--meta '{}' is not key=value: write it like --meta project=alpha", kv)));
    std::string key = kv.substr(0, eq);
    if (m.tags.count(key))
      return Err(Status::InvalidArgument(fmt::format("--meta {} is given twice; keep one", key)));
    m.tags[key] = kv.substr(eq + 1);
  }
  return m;
}

Result<std::vector<std::string>> InputList(const WriteOptions& w) {
  std::vector<std::string> files = w.files;
  if (!w.files_from.empty()) {
    auto text = core::ReadWholeFile(core::DefaultFileSystem(), w.files_from);
    if (!text)
      return Err(Status::InvalidArgument(
          fmt::format("--files-from {}: {}", w.files_from, text.error().message())));
    size_t pos = 0;
    while (pos < text->size()) {
      size_t nl = text->find('\n', pos);
      if (nl == std::string::npos) nl = text->size();
      if (nl > pos) files.push_back(text->substr(pos, nl - pos));
      pos = nl + 1;
    }
  }
  if (files.empty())
    return Err(Status::InvalidArgument(
        "write-shard needs FILE arguments, - for standard input, or --files-from LIST"));
  return files;
}

Status CmdWrite(Context& ctx, const WriteOptions& w) {
  DFRP_ASSIGN_OR_RETURN(std::vector<std::string> files, InputList(w));
  DFRP_ASSIGN_OR_RETURN(storage::ShardMetadata base, MetadataFrom(w));
  int stdin_uses = 0;
  std::vector<storage::WriteRequest> batch;
  batch.reserve(files.size());
  for (const std::string& f : files) {
    storage::WriteRequest req;
    req.name = f;
    req.meta = base;
    if (f == "-") {
      if (++stdin_uses > 1)
        return Status::InvalidArgument("- (standard input) can be given only once");
      req.input = core::SequentialFileFromFd(0, "standard input");
    } else {
      struct stat st;
      const bool exists = ::stat(f.c_str(), &st) == 0;
      if (exists && S_ISDIR(st.st_mode))
        return Status::InvalidArgument(fmt::format("{} is a folder: give the files inside it", f));
      if (exists && !S_ISREG(st.st_mode)) {
        // A pipe or device (such as <(command)): read it once, like standard input.
        auto stream = core::DefaultFileSystem()->OpenSequential(f);
        if (!stream) return stream.error();
        req.input = std::move(*stream);
      } else if (exists) {
        req.size_hint = static_cast<int64_t>(st.st_size);
      }
      req.path = f;
    }
    batch.push_back(std::move(req));
  }
  DFRP_ASSIGN_OR_RETURN(auto store, OpenStore(ctx, Store::Mode::kWrite));
  const size_t notices_before = store->notices().size();
  ProgressBar bar("writing", ctx.progress);
  DFRP_ASSIGN_OR_RETURN(auto written,
                        store->Write(batch, [&](uint64_t d, uint64_t t) { bar.Update(d, t); }));
  bar.Finish();
  for (size_t i = notices_before; i < store->notices().size(); ++i) ctx.Notice(store->notices()[i]);
  if (ctx.g.json) {
    json arr = json::array();
    for (const auto& s : written) arr.push_back(node::WrittenJson(s));
    PrintJson(arr);
  } else if (!ctx.g.quiet) {
    for (const auto& s : written)
      std::printf("%s  %s  %llu  volume %u  %s\n", s.id.ToString().c_str(), RootHex(s.root).c_str(),
                  static_cast<unsigned long long>(s.size), s.volume, s.name.c_str());
  } else {
    for (const auto& s : written) std::printf("%s\n", s.id.ToString().c_str());
  }
  return Status::OK();
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

Status CmdRead(Context& ctx, const std::string& id_text, const std::string& out_path,
               const std::string& range) {
  DFRP_ASSIGN_OR_RETURN(core::Uuid id, ParseShardId(id_text));
  std::optional<std::pair<uint64_t, uint64_t>> r;
  if (!range.empty()) {
    DFRP_ASSIGN_OR_RETURN(r, ParseRange(range));
  }
  DFRP_ASSIGN_OR_RETURN(auto store, OpenStore(ctx, Store::Mode::kRead));
  // --range reads and verifies only the leaves it touches (storage/shard_reader.h).
  std::optional<storage::ShardReader> reader;
  if (r) {
    DFRP_ASSIGN_OR_RETURN(reader, store->OpenShard(id));
  }
  auto produce = [&](const storage::SinkFn& sink) {
    return r ? reader->ReadRange(r->first, r->second, sink, 0) : store->Read(id, sink);
  };
  if (out_path.empty() || out_path == "-")
    return produce([](std::string_view chunk) { return WriteAllToFd(1, chunk); });
  uint64_t bytes = 0;
  DFRP_RETURN_IF_ERROR(ReadToFile(ctx, produce, out_path, &bytes));
  if (ctx.g.json) PrintJson({{"shard_id", id.ToString()}, {"size", bytes}, {"path", out_path}});
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
  DFRP_ASSIGN_OR_RETURN(auto store, OpenStore(ctx, Store::Mode::kRead));
  std::vector<storage::VerifyResult> results;
  ProgressBar bar("verifying", ctx.progress);
  auto collect = [&](const storage::VerifyResult& r) {
    results.push_back(r);
    if (!ctx.g.json && (!r.ok || !ctx.g.quiet)) {
      bar.Finish();
      if (r.ok)
        std::printf("ok       %s\n", r.id.ToString().c_str());
      else if (r.segment_path.empty())
        std::printf("MISSING  %s  %s\n", r.id.ToString().c_str(), r.status.message().c_str());
      else
        std::printf("CORRUPT  %s  volume %u, %s at offset %llu: %s\n", r.id.ToString().c_str(),
                    r.location.volume, r.segment_path.c_str(),
                    static_cast<unsigned long long>(r.location.offset), r.status.message().c_str());
    }
  };
  auto progress = [&](uint64_t d, uint64_t t) { bar.Update(d, t); };
  if (all) {
    DFRP_RETURN_IF_ERROR(store->VerifyAll(collect, progress));
  } else {
    for (const auto& id : parsed) collect(store->Verify(id, progress));
  }
  bar.Finish();
  if (ctx.g.json) {
    json arr = json::array();
    for (const auto& r : results) arr.push_back(VerifyJson(r));
    PrintJson(arr);
  }
  // The worst outcome decides the exit code: corruption over absence.
  size_t corrupt = 0, missing = 0, other = 0;
  Status first_other;
  for (const auto& r : results) {
    if (r.ok) continue;
    if (r.status.IsCorruption())
      ++corrupt;
    else if (r.status.IsNotFound())
      ++missing;
    else if (other++ == 0)
      first_other = r.status;
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

Status CmdStat(Context& ctx, const std::string& id_text) {
  DFRP_ASSIGN_OR_RETURN(core::Uuid id, ParseShardId(id_text));
  DFRP_ASSIGN_OR_RETURN(auto store, OpenStore(ctx, Store::Mode::kRead));
  DFRP_ASSIGN_OR_RETURN(storage::ShardInfo info, store->Stat(id));
  const auto& m = info.metadata;
  json j = node::ShardInfoJson(id, info);
  if (ctx.g.json) {
    PrintJson(j);
    return Status::OK();
  }
  std::printf(
      "shard_id      %s\nmerkle_root   %s\nsize          %llu\nleaf_size     %u\n"
      "volume        %u (%s)\nsegment       %s at offset %llu\ncontent_type  %s\n"
      "created       %s\n",
      id.ToString().c_str(), RootHex(info.location.root).c_str(),
      static_cast<unsigned long long>(m.size), m.leaf_size, info.location.volume,
      info.volume_path.c_str(), info.segment_path.c_str(),
      static_cast<unsigned long long>(info.location.offset), m.content_type.c_str(),
      IsoTime(m.created_unix_ms).c_str());
  if (!m.owner.empty()) std::printf("owner         %s\n", m.owner.c_str());
  if (!m.vector.empty()) std::printf("vector        %s\n", j["vector"].dump().c_str());
  for (const auto& [k, v] : m.tags) std::printf("meta          %s=%s\n", k.c_str(), v.c_str());
  return Status::OK();
}

Status CmdListVolumes(Context& ctx) {
  DFRP_ASSIGN_OR_RETURN(auto store, OpenStore(ctx, Store::Mode::kRead));
  PrintVolumes(ctx.g.json, store->ListVolumes());
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
  app.set_version_flag("--version", "dfrp-storage 0.1.0");
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
  auto* write = app.add_subcommand("write-shard",
                                   "store files (or - for standard input) as shards, one batch");
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
  verify->add_flag("--all", verify_all, "verify every shard in the store");

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
  if (chosen != nullptr) {
    const Status es = chosen->run(
        ctx.config, CliFlags{ctx.g.json, ctx.g.quiet, !ctx.g.quiet && StderrIsTerminal()});
    return es.ok() ? core::kExitOk : Fail(es);
  }
  ctx.progress = !ctx.g.quiet && StderrIsTerminal();

  Status s;
  if (volume_commands.chosen())
    s = volume_commands.Run({&ctx.config, ctx.g.json, ctx.g.quiet, ctx.progress});
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
