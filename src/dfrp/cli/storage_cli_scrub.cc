// dfrp-storage scrub: re-verifies every shard, resumably (storage/scrubber.h).
#include <fmt/format.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "dfrp/cli/progress.h"
#include "dfrp/cli/storage_cli_extra.h"
#include "dfrp/cli/storage_cli_internal.h"
#include "dfrp/core/config.h"
#include "dfrp/storage/scrubber.h"

namespace dfrp::cli {

using core::Status;
using nlohmann::json;

namespace {

volatile std::sig_atomic_t g_stop = 0;
void RequestStop(int) { g_stop = 1; }

struct ScrubArgs {
  double rate_mib = 0;
  int64_t volume = -1;
};

json FindingJson(const storage::ScrubFinding& f) {
  return {{"shard_id", f.id.ToString()}, {"volume", f.volume},
          {"segment", f.segment},        {"segment_path", f.segment_path},
          {"offset", f.offset},          {"corrupt", f.status.IsCorruption()},
          {"error", f.status.message()}};
}

json ReportJson(const storage::ScrubReport& r) {
  json findings = json::array(), volumes = json::array();
  for (const auto& f : r.findings) findings.push_back(FindingJson(f));
  for (const auto& v : r.volumes) {
    json j = {{"volume", v.volume},
              {"shards", v.shards},
              {"bytes", v.bytes},
              {"resumed", v.resumed},
              {"pass_completed", v.pass_completed}};
    if (!v.skipped.empty()) j["skipped"] = v.skipped;
    volumes.push_back(j);
  }
  return {{"shards_verified", r.shards_verified},
          {"bytes_verified", r.bytes_verified},
          {"corrupt", r.corrupt()},
          {"findings", findings},
          {"volumes", volumes},
          {"stopped", r.stopped},
          {"state_reset", r.state_reset}};
}

Status ExitStatus(const storage::ScrubReport& r) {
  if (r.corrupt() > 0)
    return Status::Corruption(fmt::format(
        "{} corrupt shard(s) found (listed above): restore them from a copy", r.corrupt()));
  for (const auto& f : r.findings) return f.status;
  return Status::OK();
}

Status CmdScrub(Context& ctx, const ScrubArgs& a) {
  if (a.rate_mib < 0)
    return Status::InvalidArgument(
        fmt::format("--rate {} is negative: give MiB per second, or 0 for no limit", a.rate_mib));
  ProgressBar bar("scrubbing", ctx.progress, ctx.clock);
  storage::ScrubOptions opt;
  if (a.volume >= 0) opt.volume = static_cast<uint32_t>(a.volume);
  opt.rate_bytes_per_sec = a.rate_mib * (1 << 20);
  opt.clock = ctx.clock;
  opt.should_stop = [] { return g_stop != 0; };
  opt.progress = [&](const storage::ScrubProgress& p) { bar.Update(p.bytes_done, p.bytes_total); };
  opt.on_finding = [&](const storage::ScrubFinding& x) {
    if (ctx.g.json) return;
    bar.Finish();
    std::printf("%s  %s  volume %u, segment %llu (%s) at offset %llu: %s\n",
                x.status.IsCorruption() ? "CORRUPT" : "FAILED ", x.id.ToString().c_str(), x.volume,
                static_cast<unsigned long long>(x.segment), x.segment_path.c_str(),
                static_cast<unsigned long long>(x.offset), x.status.message().c_str());
  };
  // Ctrl-C stops the scrub cleanly between shards; the next one resumes there.
  g_stop = 0;
  std::signal(SIGINT, RequestStop);
  std::signal(SIGTERM, RequestStop);
  auto report = ctx.service->Scrub(opt);
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  bar.Finish();
  if (!report) return report.error();
  const auto& r = *report;
  if (ctx.g.json) {
    std::printf("%s\n", ReportJson(r).dump(2).c_str());
  } else if (!ctx.g.quiet) {
    for (const auto& v : r.volumes)
      if (!v.skipped.empty()) ctx.Notice(fmt::format("skipped {}", v.skipped));
    std::printf("scrubbed %llu shard(s), %s; %llu corrupt\n",
                static_cast<unsigned long long>(r.shards_verified),
                core::FormatBytes(r.bytes_verified).c_str(),
                static_cast<unsigned long long>(r.corrupt()));
  }
  if (r.stopped) ctx.Notice("scrub stopped; run it again to resume where it stopped");
  return ExitStatus(r);
}

}  // namespace

void AddScrubCommands(CLI::App& app, std::vector<ExtraCommand>* out) {
  auto args = std::make_shared<ScrubArgs>();
  auto* s = app.add_subcommand(
      "scrub", "re-verify every shard, resuming where the last scrub stopped; exit 3 on damage");
  s->add_option("--rate", args->rate_mib,
                "at most this many MiB of payload per second (0: no limit)");
  s->add_option("--volume", args->volume, "only this volume")->check(CLI::NonNegativeNumber);
  out->push_back({s, true, [args](Context& ctx) { return CmdScrub(ctx, *args); }});
}

}  // namespace dfrp::cli
