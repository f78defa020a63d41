#include "dfrp/cli/volume_cli.h"

#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "dfrp/cli/progress.h"
#include "dfrp/cli/remote.h"
#include "dfrp/core/bytes.h"
#include "dfrp/core/file_system.h"
#include "dfrp/node/views.h"
#include "dfrp/storage/migrate.h"
#include "dfrp/storage/store.h"

namespace dfrp::cli {

using core::Err;
using core::Result;
using core::Status;
using nlohmann::json;
using node::VolumeJson;
using storage::Store;

json VolumesJson(const std::vector<storage::VolumeInfo>& vols) {
  json arr = json::array();
  for (const auto& v : vols) arr.push_back(VolumeJson(v));
  return arr;
}

void PrintVolumes(bool as_json, const json& vols) {
  if (as_json) {
    std::printf("%s\n", vols.dump(2).c_str());
    return;
  }
  std::printf("%-6s %-13s %10s %10s %10s %8s  %s\n", "VOLUME", "STATE", "QUOTA", "USED", "FREE",
              "SHARDS", "PATH");
  for (const auto& v : vols) {
    const auto index = v["index"].get<uint32_t>();
    const std::string path = v.value("path", "");
    const std::string moved_from = v.value("moved_from", "");
    const std::string problem = v.value("problem", "");
    std::printf("%-6u %-13s %10s %10s %10s %8llu  %s\n", index,
                v["state"].get<std::string>().c_str(),
                core::FormatBytes(v["quota"].get<uint64_t>()).c_str(),
                core::FormatBytes(v["used"].get<uint64_t>()).c_str(),
                core::FormatBytes(v["free"].get<uint64_t>()).c_str(),
                static_cast<unsigned long long>(v["shards"].get<uint64_t>()),
                path.empty() ? "(not configured)" : path.c_str());
    if (!moved_from.empty())
      std::printf("       moved here from %s (DRIVE_%u still names that path)\n",
                  moved_from.c_str(), index);
    if (!problem.empty()) std::printf("       ! %s\n", problem.c_str());
  }
}

namespace {

std::string Absolute(const std::string& path) {
  if (path.empty() || path.front() == '/') return path;
  char buf[4096];
  if (::getcwd(buf, sizeof(buf)) == nullptr) return path;
  return core::JoinPath(buf, path);
}

double MiBps(uint64_t bytes, double seconds) {
  return seconds > 0 ? static_cast<double>(bytes) / (1 << 20) / seconds : 0;
}

}  // namespace

struct VolumeCommands::Impl {
  CLI::App* pause = nullptr;
  CLI::App* pause_storage = nullptr;
  CLI::App* resume = nullptr;
  CLI::App* resume_storage = nullptr;
  CLI::App* migrate = nullptr;
  CLI::App* pause_migrate = nullptr;
  CLI::App* retire = nullptr;
  CLI::App* add_drive = nullptr;
  CLI::App* rebuild = nullptr;

  std::optional<uint32_t> volume;
  std::string reason;
  std::string path;  // resume --path, migrate --to, add-drive PATH
  std::string quota;
  bool delete_source = false;
  bool create = false;

  const VolumeCliContext* ctx = nullptr;

  void Say(const std::string& line) const {
    if (!ctx->json && !ctx->quiet) std::printf("%s\n", line.c_str());
  }
  void Notices(const Store& store) const {
    if (ctx->quiet) return;
    for (const auto& n : store.notices()) std::fprintf(stderr, "dfrp-storage: %s\n", n.c_str());
  }
  Result<std::unique_ptr<Store>> Open(Store::Mode mode) const {
    DFRP_ASSIGN_OR_RETURN(auto store, Store::Open(*ctx->config, mode, storage::StoreOptions()));
    Notices(*store);
    return store;
  }
  void ShowVolumes(Store& store) const {
    if (ctx->quiet) return;
    PrintVolumes(ctx->json, VolumesJson(store.ListVolumes()));
  }
  Result<json> RemoteVolumes() const {
    DFRP_ASSIGN_OR_RETURN(json j, ctx->remote->Call("GET", "/v1/volumes"));
    return j.value("volumes", json::array());
  }
  Status ShowRemoteVolumes() const {
    if (ctx->quiet) return Status::OK();
    DFRP_ASSIGN_OR_RETURN(json vols, RemoteVolumes());
    PrintVolumes(ctx->json, vols);
    return Status::OK();
  }
  // POST /v1/volumes/{n}/{action} through the daemon.
  Result<json> VolumePost(uint32_t v, std::string_view action, const json* body = nullptr) const {
    return ctx->remote->Call("POST", fmt::format("/v1/volumes/{}/{}", v, action), body);
  }

  // The volumes a pause or resume without a number acts on: every volume (pause), or every
  // paused or full one but not one a migration is copying: name it to cancel (resume).
  static std::vector<uint32_t> Targets(const json& vols, bool resuming) {
    std::vector<uint32_t> out;
    for (const auto& v : vols) {
      const std::string state = v["state"].get<std::string>();
      if (!resuming ||
          ((state == "paused" || state == "full") && v.value("migrating_to", "").empty()))
        out.push_back(v["index"].get<uint32_t>());
    }
    return out;
  }

  Status Pause(bool all) {
    const std::string why = reason.empty() ? (all ? "pause-storage" : "pause") : reason;
    std::vector<uint32_t> targets;
    if (!all && volume) targets.push_back(*volume);
    if (ctx->remote) {
      if (targets.empty()) {
        DFRP_ASSIGN_OR_RETURN(json vols, RemoteVolumes());
        targets = Targets(vols, false);
      }
      const json body = {{"reason", why}};
      for (uint32_t v : targets) DFRP_RETURN_IF_ERROR(VolumePost(v, "pause", &body).status());
      SayEach(targets, "paused volume {} (reads go on)");
      return ShowRemoteVolumes();
    }
    DFRP_ASSIGN_OR_RETURN(auto store, Open(Store::Mode::kWrite));
    if (targets.empty()) targets = Targets(VolumesJson(store->ListVolumes()), false);
    for (uint32_t v : targets) DFRP_RETURN_IF_ERROR(store->Pause(v, why));
    SayEach(targets, "paused volume {} (reads go on)");
    ShowVolumes(*store);
    return Status::OK();
  }

  void SayEach(const std::vector<uint32_t>& targets, std::string_view pattern) const {
    if (ctx->json) return;
    for (uint32_t v : targets) Say(fmt::format(fmt::runtime(pattern), v));
  }

  // resume --path's report, from the JSON of the check (the direct path's VolumeCheck, or
  // the result of the daemon's resume operation).
  Status PrintResumedCopy(const json& check) const {
    const json j = {
        {"volume", check.value("volume", 0u)},
        {"path", check.value("path", "")},
        {"segments", check.value("segments", uint64_t{0})},
        // dfrpd's resume operation says "shards" (VolumeCheck's name).
        {"shards_verified", check.value("shards_verified", check.value("shards", uint64_t{0}))},
        {"bytes", check.value("bytes", uint64_t{0})},
        {"resumed", true}};
    if (ctx->json) {
      std::printf("%s\n", j.dump(2).c_str());
      return Status::OK();
    }
    const std::string to = j["path"].get<std::string>();
    Say(fmt::format(
        "verified the copy at {}: {} segment(s), {} shard(s), {}; volume {} now lives there "
        "and takes writes again",
        to, j["segments"].get<uint64_t>(), j["shards_verified"].get<uint64_t>(),
        core::FormatBytes(j["bytes"].get<uint64_t>()), *volume));
    Say(
        fmt::format("the old copy stays until `dfrp-storage retire-source {}`; set DRIVE_{}={} "
                    "in your config when convenient (the store remembers the move)",
                    *volume, *volume, to));
    return Status::OK();
  }

  Status ResumeFromCopy() {
    const std::string to = Absolute(path);
    if (ctx->remote) {
      const json body = {{"path", to}};
      DFRP_ASSIGN_OR_RETURN(json op, VolumePost(*volume, "resume", &body));
      DFRP_ASSIGN_OR_RETURN(json result,
                            ctx->remote->Follow(op, ctx->progress, [](std::string_view) {
                              return std::string("verifying copy");
                            }));
      return PrintResumedCopy(result);
    }
    DFRP_ASSIGN_OR_RETURN(auto store, Open(Store::Mode::kWrite));
    ProgressBar bar("verifying copy", ctx->progress);
    DFRP_ASSIGN_OR_RETURN(
        storage::VolumeCheck check,
        store->Resume(*volume, to, [&](uint64_t d, uint64_t t) { bar.Update(d, t); }));
    bar.Finish();
    return PrintResumedCopy({{"volume", check.volume},
                             {"path", check.path},
                             {"segments", check.segments},
                             {"shards_verified", check.shards},
                             {"bytes", check.bytes}});
  }

  Status Resume(bool all) {
    if (!path.empty() && (all || !volume))
      return Status::InvalidArgument("resume --path needs the volume number: resume N --path DIR");
    if (!path.empty()) return ResumeFromCopy();
    std::vector<uint32_t> targets;
    if (!all && volume) targets.push_back(*volume);
    if (ctx->remote) {
      if (targets.empty()) {
        DFRP_ASSIGN_OR_RETURN(json vols, RemoteVolumes());
        targets = Targets(vols, true);
      }
      for (uint32_t v : targets) DFRP_RETURN_IF_ERROR(VolumePost(v, "resume").status());
      SayEach(targets, "resumed volume {}");
      return ShowRemoteVolumes();
    }
    DFRP_ASSIGN_OR_RETURN(auto store, Open(Store::Mode::kWrite));
    if (targets.empty() && (all || !volume))
      targets = Targets(VolumesJson(store->ListVolumes()), true);
    for (uint32_t v : targets) DFRP_RETURN_IF_ERROR(store->Resume(v, "").status());
    SayEach(targets, "resumed volume {}");
    ShowVolumes(*store);
    return Status::OK();
  }

  // migrate's report, from its JSON (the direct path's MigrateReport, or the result of the
  // daemon's migrate operation; copy_mib_per_s is worked out here for both).
  Status PrintMigrated(const json& r) const {
    const auto bytes = r.value("bytes", uint64_t{0});
    const double copy_s = r.value("copy_seconds", 0.0);
    const json j = {{"volume", r.value("volume", 0u)},
                    {"from", r.value("from", "")},
                    {"to", r.value("to", "")},
                    {"already_there", r.value("already_there", false)},
                    {"files", r.value("files", uint64_t{0})},
                    {"bytes", bytes},
                    {"shards_verified", r.value("shards_verified", uint64_t{0})},
                    {"copy_seconds", copy_s},
                    {"verify_seconds", r.value("verify_seconds", 0.0)},
                    {"total_seconds", r.value("total_seconds", 0.0)},
                    {"copy_mib_per_s", MiBps(bytes, copy_s)},
                    {"resumed", r.value("resumed", false)},
                    {"source_deleted", r.value("source_deleted", false)},
                    {"source_bytes_deleted", r.value("source_bytes_deleted", uint64_t{0})}};
    if (ctx->json) {
      std::printf("%s\n", j.dump(2).c_str());
      return Status::OK();
    }
    const auto v = j["volume"].get<uint32_t>();
    const std::string from = j["from"].get<std::string>(), to = j["to"].get<std::string>();
    const bool resumed = j["resumed"].get<bool>(), already = j["already_there"].get<bool>();
    if (already) {
      Say(fmt::format("volume {} already lives at {}{}", v, to,
                      resumed ? "; writes to it are resumed" : ""));
    } else {
      Say(fmt::format("copied volume {} from {} to {}: {} in {} file(s), {:.1f} s ({:.0f} MiB/s)",
                      v, from, to, core::FormatBytes(bytes), j["files"].get<uint64_t>(), copy_s,
                      MiBps(bytes, copy_s)));
      Say(fmt::format("verified {} shard(s) at the destination in {:.1f} s",
                      j["shards_verified"].get<uint64_t>(), j["verify_seconds"].get<double>()));
      Say(fmt::format(
          "volume {} now lives at {}; {}", v, to,
          resumed ? "writes to it are resumed"
                  : "it stays paused until `dfrp-storage resume " + std::to_string(v) + "`"));
    }
    if (j["source_deleted"].get<bool>())
      Say(fmt::format("deleted the old copy ({})",
                      core::FormatBytes(j["source_bytes_deleted"].get<uint64_t>())));
    else if (!already)
      Say(fmt::format("the old copy in {} stays until `dfrp-storage retire-source {}`", from, v));
    return Status::OK();
  }

  static std::string PhaseLabel(std::string_view phase) {
    if (phase == "copy") return "copying";
    if (phase == "verify") return "verifying";
    return "";
  }

  Status Migrate(bool resume) {
    const std::string to = Absolute(path);
    if (ctx->remote) {
      const json body = {{"to", to}, {"resume", resume}, {"delete_source", delete_source}};
      DFRP_ASSIGN_OR_RETURN(json op, VolumePost(*volume, "migrate", &body));
      DFRP_ASSIGN_OR_RETURN(json result, ctx->remote->Follow(op, ctx->progress, PhaseLabel));
      return PrintMigrated(result);
    }
    storage::MigrateOptions mo;
    mo.resume = resume;
    mo.delete_source = delete_source;
    ProgressBar copy_bar("copying", ctx->progress);
    ProgressBar verify_bar("verifying", ctx->progress);
    mo.progress = [&](std::string_view phase, uint64_t d, uint64_t t) {
      if (phase == "copy") {
        copy_bar.Update(d, t);
      } else {
        copy_bar.Finish();
        verify_bar.Update(d, t);
      }
    };
    auto r = storage::MigrateVolume(*ctx->config, storage::StoreOptions(), *volume, to, mo);
    copy_bar.Finish();
    verify_bar.Finish();
    if (!r) return r.error();
    return PrintMigrated({{"volume", r->volume},
                          {"from", r->from},
                          {"to", r->to},
                          {"already_there", r->already_there},
                          {"files", r->files},
                          {"bytes", r->bytes},
                          {"shards_verified", r->shards_verified},
                          {"copy_seconds", r->copy_seconds},
                          {"verify_seconds", r->verify_seconds},
                          {"total_seconds", r->total_seconds},
                          {"resumed", r->resumed},
                          {"source_deleted", r->source_deleted},
                          {"source_bytes_deleted", r->source_bytes_deleted}});
  }

  Status Retire() {
    uint64_t freed = 0;
    if (ctx->remote) {
      DFRP_ASSIGN_OR_RETURN(json j, VolumePost(*volume, "retire-source"));
      freed = j.value("bytes_deleted", uint64_t{0});
    } else {
      DFRP_ASSIGN_OR_RETURN(auto store, Open(Store::Mode::kWrite));
      DFRP_ASSIGN_OR_RETURN(freed, store->RetireSource(*volume));
    }
    if (ctx->json)
      std::printf("%s\n", json({{"volume", *volume}, {"bytes_deleted", freed}}).dump(2).c_str());
    Say(fmt::format("deleted the old copy of volume {} ({})", *volume, core::FormatBytes(freed)));
    return Status::OK();
  }

  Status Rebuild() {
    if (ctx->remote) return ctx->remote->Refuse("rebuild-index");
    DFRP_ASSIGN_OR_RETURN(auto store, Open(Store::Mode::kWrite));
    ProgressBar bar("scanning", ctx->progress);
    DFRP_ASSIGN_OR_RETURN(storage::RebuildReport r,
                          store->RebuildIndex([&](uint64_t d, uint64_t t) { bar.Update(d, t); }));
    bar.Finish();
    const bool damaged = !r.damage.empty();
    if (ctx->json) {
      std::printf("%s\n", json({{"volumes", r.volumes},
                                {"segments", r.segments},
                                {"shards", r.shards},
                                {"payload_bytes", r.payload_bytes},
                                {"bytes_read", r.bytes_read},
                                {"skipped_volumes", r.skipped},
                                {"damage", r.damage}})
                              .dump(2)
                              .c_str());
    } else {
      Say(fmt::format(
          "rebuilt the index from {} volume(s), {} segment(s): {} shard(s) holding {}; read {} "
          "of record headers",
          r.volumes, r.segments, r.shards, core::FormatBytes(r.payload_bytes),
          core::FormatBytes(r.bytes_read)));
      for (const auto& d : r.skipped) std::fprintf(stderr, "dfrp-storage: %s\n", d.c_str());
      for (const auto& d : r.damage) std::fprintf(stderr, "dfrp-storage: %s\n", d.c_str());
    }
    if (damaged)
      return Status::Corruption(fmt::format(
          "the index is rebuilt, but {} place(s) on the drives are damaged (listed above): run "
          "`dfrp-storage verify-shard --all`",
          r.damage.size()));
    return Status::OK();
  }

  Status AddDrive() {
    // The daemon holds the store open with the drives it started with: a new one needs a
    // restart anyway.
    if (ctx->remote) return ctx->remote->Refuse("add-drive");
    const core::NodeConfig& cfg = *ctx->config;
    if (cfg.source == "environment")
      return Status::InvalidArgument(
          "the drives come from the environment (DRIVE_n variables): add DRIVE_n and QUOTA_n "
          "there, then run init-storage");
    auto bytes = core::ParseByteSize(quota);
    if (!bytes || *bytes == 0)
      return Status::InvalidArgument(fmt::format(
          "'{}' is not a quota: write bytes or a number with K, M, G or T, such as 500G", quota));
    if (path.find_first_of("\"\\\n\r") != std::string::npos)
      return Status::InvalidArgument(fmt::format(
          "the drive path '{}' holds a quote, backslash or line break, which the config file "
          "cannot hold as written: use a path without them",
          path));
    const std::string drive = Absolute(path);
    for (const auto& d : cfg.drives)
      if (d.path == drive)
        return Status::InvalidArgument(
            fmt::format("{} is already DRIVE_{}: give the new drive's folder", drive, d.index));
    const int n = static_cast<int>(cfg.drives.size());
    // Lay it out first, so that a bad drive never reaches the config file.
    core::NodeConfig next = cfg;
    next.drives.push_back({n, drive, *bytes});
    storage::StoreOptions opt;
    opt.create_missing_drive_folders = create;
    DFRP_ASSIGN_OR_RETURN(storage::InitReport init, Store::Init(next, opt));
    core::FileSystem* fs = core::DefaultFileSystem();
    std::string file, text;
    const bool toml = cfg.is_embedded_default || cfg.source.ends_with(".toml");
    if (cfg.is_embedded_default) {
      // The embedded default has no file: write ./dfrp.toml with its drives and the new one.
      file = Absolute("dfrp.toml");
      text = "# written by `dfrp-storage add-drive`: the embedded default plus new drives\n";
      text += fmt::format("STATE_DIR = \"{}\"\n", cfg.state_dir);
      for (const auto& d : cfg.drives)
        text +=
            fmt::format("DRIVE_{} = \"{}\"\nQUOTA_{} = {}\n", d.index, d.path, d.index, d.quota);
    } else {
      file = cfg.source;
      DFRP_ASSIGN_OR_RETURN(text, core::ReadWholeFile(fs, file));
      if (!text.empty() && text.back() != '\n') text += '\n';
    }
    text += toml ? fmt::format("DRIVE_{} = \"{}\"\nQUOTA_{} = \"{}\"\n", n, drive, n, quota)
                 : fmt::format("DRIVE_{}={}\nQUOTA_{}={}\n", n, drive, n, quota);
    Status written = core::WriteFileAtomic(fs, file, text);
    if (!written.ok())
      return Status::IOError(fmt::format(
          "volume {} is laid out at {}, but {} could not be updated ({}): add DRIVE_{} and "
          "QUOTA_{} to it by hand",
          n, drive, file, written.message(), n, n));
    if (ctx->json) {
      std::printf("%s\n", json({{"volume", n},
                                {"path", drive},
                                {"quota", *bytes},
                                {"config", file},
                                {"store_id", init.store_id.ToString()}})
                              .dump(2)
                              .c_str());
      return Status::OK();
    }
    Say(fmt::format("added volume {} at {} with a quota of {}; wrote DRIVE_{} and QUOTA_{} to {}",
                    n, drive, core::FormatBytes(*bytes), n, n, file));
    Say("new writes go to it once the earlier volumes are full; nothing stored was rewritten");
    return Status::OK();
  }
};

VolumeCommands::VolumeCommands(CLI::App& app) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.pause = app.add_subcommand("pause", "stop writes to a volume (all when none is named)");
  m.pause->add_option("volume", m.volume, "volume number");
  m.pause->add_option("--reason", m.reason, "why, shown by list-volumes");
  m.pause_storage = app.add_subcommand("pause-storage", "stop writes to every volume");
  m.pause_storage->add_option("--reason", m.reason, "why, shown by list-volumes");
  m.resume = app.add_subcommand(
      "resume", "let writes go to a paused or full volume again (all when none is named)");
  m.resume->add_option("volume", m.volume, "volume number");
  m.resume->add_option("--path", m.path,
                       "the volume was copied here (dd, cp): verify the copy, then move to it");
  m.resume_storage = app.add_subcommand("resume-storage", "resume every paused volume");
  m.migrate = app.add_subcommand(
      "migrate", "copy a volume to a new folder, verify it, switch to it; stays paused");
  m.pause_migrate = app.add_subcommand(
      "pause-migrate", "pause a volume, copy it raw to a new folder, verify, switch, resume");
  for (CLI::App* c : {m.migrate, m.pause_migrate}) {
    c->add_option("volume", m.volume, "volume number")->required();
    c->add_option("--to", m.path, "destination folder (empty, on the new drive)")->required();
    c->add_flag("--delete-source", m.delete_source, "delete the old copy after the switch");
  }
  m.retire = app.add_subcommand("retire-source", "delete the old copy of a moved volume");
  m.retire->add_option("volume", m.volume, "volume number")->required();
  m.add_drive =
      app.add_subcommand("add-drive", "add a drive as the next volume and write it to the config");
  m.add_drive->add_option("path", m.path, "the drive's folder")->required();
  m.add_drive->add_option("quota", m.quota, "its quota, such as 500G")->required();
  m.add_drive->add_flag("--create", m.create, "create the folder if it does not exist");
  m.rebuild = app.add_subcommand("rebuild-index",
                                 "rebuild the index from the drives (record headers only)");
}

VolumeCommands::~VolumeCommands() = default;

bool VolumeCommands::chosen() const {
  const Impl& m = *impl_;
  for (CLI::App* c : {m.pause, m.pause_storage, m.resume, m.resume_storage, m.migrate,
                      m.pause_migrate, m.retire, m.add_drive, m.rebuild})
    if (c->parsed()) return true;
  return false;
}

Status VolumeCommands::Run(const VolumeCliContext& ctx) {
  Impl& m = *impl_;
  m.ctx = &ctx;
  if (m.pause->parsed()) return m.Pause(false);
  if (m.pause_storage->parsed()) return m.Pause(true);
  if (m.resume->parsed()) return m.Resume(false);
  if (m.resume_storage->parsed()) return m.Resume(true);
  if (m.migrate->parsed()) return m.Migrate(false);
  if (m.pause_migrate->parsed()) return m.Migrate(true);
  if (m.retire->parsed()) return m.Retire();
  if (m.add_drive->parsed()) return m.AddDrive();
  if (m.rebuild->parsed()) return m.Rebuild();
  return Status::Internal("no volume command was chosen");
}

}  // namespace dfrp::cli
