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
#include "dfrp/cli/storage_cli_internal.h"
#include "dfrp/cli/storage_service.h"
#include "dfrp/core/config.h"
#include "dfrp/storage/store.h"

namespace dfrp::cli {

using core::Err;
using core::Result;
using core::Status;
using nlohmann::json;

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

  Context* ctx = nullptr;

  void Say(const std::string& line) const { ctx->Say(line); }
  Status ShowVolumes() const {
    if (ctx->g.quiet) return Status::OK();
    DFRP_ASSIGN_OR_RETURN(json vols, ctx->service->ListVolumes());
    PrintVolumes(ctx->g.json, vols);
    return Status::OK();
  }
  void SayEach(const std::vector<uint32_t>& targets, std::string_view pattern) const {
    if (ctx->g.json) return;
    for (uint32_t v : targets) Say(fmt::format(fmt::runtime(pattern), v));
  }

  Status Pause(bool all) {
    const std::string why = reason.empty() ? (all ? "pause-storage" : "pause") : reason;
    DFRP_ASSIGN_OR_RETURN(std::vector<uint32_t> paused,
                          ctx->service->Pause(all ? std::nullopt : volume, why));
    SayEach(paused, "paused volume {} (reads go on)");
    return ShowVolumes();
  }

  // resume --path's report, from the JSON of the check (StorageService::ResumeAt).
  Status PrintResumedCopy(const json& check) const {
    const json j = {{"volume", check.value("volume", 0u)},
                    {"path", check.value("path", "")},
                    {"segments", check.value("segments", uint64_t{0})},
                    {"shards_verified", check.value("shards_verified", uint64_t{0})},
                    {"bytes", check.value("bytes", uint64_t{0})},
                    {"resumed", true}};
    if (ctx->g.json) {
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
    PhaseBars bars([](std::string_view) { return std::string("verifying copy"); }, ctx->progress,
                   ctx->clock);
    auto check = ctx->service->ResumeAt(
        *volume, AbsolutePath(path),
        [&](std::string_view phase, uint64_t d, uint64_t t) { bars.Update(phase, d, t); });
    bars.Finish();
    if (!check) return check.error();
    return PrintResumedCopy(*check);
  }

  Status Resume(bool all) {
    if (!path.empty() && (all || !volume))
      return Status::InvalidArgument("resume --path needs the volume number: resume N --path DIR");
    if (!path.empty()) return ResumeFromCopy();
    DFRP_ASSIGN_OR_RETURN(std::vector<uint32_t> resumed,
                          ctx->service->Resume(all ? std::nullopt : volume));
    SayEach(resumed, "resumed volume {}");
    return ShowVolumes();
  }

  // migrate's report, from its JSON (StorageService::Migrate; copy_mib_per_s is worked out
  // here).
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
    if (ctx->g.json) {
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

  // migrate and pause-migrate: the one place a migration is asked for, whoever runs it.
  Status Migrate(bool resume) {
    PhaseBars bars(PhaseLabel, ctx->progress, ctx->clock);
    auto report = ctx->service->Migrate(
        *volume, AbsolutePath(path), resume, delete_source,
        [&](std::string_view phase, uint64_t d, uint64_t t) { bars.Update(phase, d, t); });
    bars.Finish();
    if (!report) return report.error();
    return PrintMigrated(*report);
  }

  Status Retire() {
    DFRP_ASSIGN_OR_RETURN(uint64_t freed, ctx->service->RetireSource(*volume));
    if (ctx->g.json)
      std::printf("%s\n", json({{"volume", *volume}, {"bytes_deleted", freed}}).dump(2).c_str());
    Say(fmt::format("deleted the old copy of volume {} ({})", *volume, core::FormatBytes(freed)));
    return Status::OK();
  }

  Status Rebuild() {
    ProgressBar bar("scanning", ctx->progress, ctx->clock);
    auto rebuilt = ctx->service->RebuildIndex([&](uint64_t d, uint64_t t) { bar.Update(d, t); });
    bar.Finish();
    if (!rebuilt) return rebuilt.error();
    const storage::RebuildReport& r = *rebuilt;
    const bool damaged = !r.damage.empty();
    if (ctx->g.json) {
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
    DFRP_ASSIGN_OR_RETURN(json added, ctx->service->AddDrive({path, quota, create}));
    if (ctx->g.json) {
      std::printf("%s\n", added.dump(2).c_str());
      return Status::OK();
    }
    const int n = added["volume"].get<int>();
    Say(fmt::format("added volume {} at {} with a quota of {}; wrote DRIVE_{} and QUOTA_{} to {}",
                    n, added["path"].get<std::string>(),
                    core::FormatBytes(added["quota"].get<uint64_t>()), n, n,
                    added["config"].get<std::string>()));
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

Status VolumeCommands::Run(Context& ctx) {
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
