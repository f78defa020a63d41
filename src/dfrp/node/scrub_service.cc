#include "dfrp/node/scrub_service.h"

#include "dfrp/storage/scrubber.h"

namespace dfrp::node {

using nlohmann::json;

ScrubService::ScrubService(const core::NodeConfig& config, const storage::StoreOptions& opt,
                           const ReaderCache& readers, Metrics& metrics, int64_t pass_interval_ms)
    : config_(config),
      opt_(opt),
      readers_(readers),
      metrics_(metrics),
      pass_interval_ms_(pass_interval_ms) {
  core::MutexLock lock(&mu_);
  state_ = {{"enabled", config.scrub_rate > 0},
            {"rate_bytes_per_sec", config.scrub_rate},
            {"running", false},
            {"bytes_verified", 0},
            {"shards_verified", 0},
            {"corrupt_found", 0},
            {"last_pass_unix_ms", nullptr},
            {"last_finding", nullptr},
            {"progress", nullptr},
            {"note", nullptr}};
}

void ScrubService::Start() {
  if (config_.scrub_rate > 0) thread_ = std::thread([this] { Loop(); });
}

void ScrubService::RequestStop() {
  {
    core::MutexLock lock(&mu_);
    stopping_ = true;
  }
  cv_.SignalAll();
}

void ScrubService::Stop() {
  RequestStop();
  if (thread_.joinable()) thread_.join();
}

json ScrubService::Json() const {
  core::MutexLock lock(&mu_);
  return state_;
}

double ScrubService::Progress() const {
  core::MutexLock lock(&mu_);
  return state_["progress"].is_number() ? state_["progress"].get<double>() : 0.0;
}

void ScrubService::Set(const char* key, json v) {
  core::MutexLock lock(&mu_);
  state_[key] = std::move(v);
}

bool ScrubService::Stopping() const {
  core::MutexLock lock(&mu_);
  return stopping_;
}

bool ScrubService::Wait(int64_t ms) {
  const int64_t end = opt_.clock->NowMonotonicNanos() + ms * 1'000'000;
  core::MutexLock lock(&mu_);
  for (;;) {
    if (stopping_) return false;
    const int64_t left = (end - opt_.clock->NowMonotonicNanos()) / 1'000'000;
    if (left <= 0) return true;
    cv_.WaitForMillis(&mu_, left);
  }
}

void ScrubService::Loop() {
  if (!Wait(2000)) return;  // let the daemon settle first
  while (!Stopping()) {
    const uint64_t gen = readers_.generation();
    auto store = storage::Store::Open(config_, storage::Store::Mode::kRead, opt_);
    std::unique_ptr<storage::Scrubber> scrubber;
    if (store) {
      auto sc = storage::Scrubber::Open(**store, config_.state_dir, opt_.fs);
      if (sc)
        scrubber = std::move(*sc);
      else
        Set("note", sc.error().message());
    } else {
      Set("note", store.error().message());
    }
    if (!scrubber) {
      if (!Wait(pass_interval_ms_)) return;
      continue;
    }
    Set("note", nullptr);
    Set("running", true);
    storage::ScrubOptions so;
    so.rate_bytes_per_sec = static_cast<double>(config_.scrub_rate);
    // A volume that moves ends the pass; the next one opens the store afresh.
    so.should_stop = [&] { return Stopping() || readers_.generation() != gen; };
    uint64_t last_bytes = 0;
    so.progress = [&](const storage::ScrubProgress& p) {
      if (p.bytes_done > last_bytes) {
        metrics_.scrub_bytes.fetch_add(p.bytes_done - last_bytes);
        last_bytes = p.bytes_done;
      }
      core::MutexLock lock(&mu_);
      state_["bytes_verified"] = metrics_.scrub_bytes.load();
      state_["progress"] =
          p.bytes_total ? static_cast<double>(p.bytes_done) / static_cast<double>(p.bytes_total)
                        : 1.0;
    };
    so.on_finding = [&](const storage::ScrubFinding& f) {
      if (!f.status.IsCorruption()) return;
      metrics_.scrub_corrupt.fetch_add(1);
      metrics_.verification_failures.fetch_add(1);
      const int64_t now = opt_.clock->NowUnixMillis();
      core::MutexLock lock(&mu_);
      state_["corrupt_found"] = metrics_.scrub_corrupt.load();
      state_["last_finding"] = {{"shard_id", f.id.ToString()}, {"volume", f.volume},
                                {"segment", f.segment_path},   {"offset", f.offset},
                                {"error", f.status.message()}, {"unix_ms", now}};
    };
    auto report = scrubber->Run(so);
    scrubber.reset();
    Set("running", false);
    if (report) {
      metrics_.scrub_shards.fetch_add(report->shards_verified);
      Set("shards_verified", metrics_.scrub_shards.load());
      bool completed = !report->stopped;
      for (const auto& v : report->volumes)
        completed = completed && (v.pass_completed || !v.skipped.empty());
      if (completed) Set("last_pass_unix_ms", opt_.clock->NowUnixMillis());
    } else {
      Set("note", report.error().message());
    }
    if ((!report || !report->stopped) && !Wait(pass_interval_ms_)) return;
  }
}

}  // namespace dfrp::node
