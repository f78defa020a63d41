// ScrubService: the daemon's background scrubber (storage::Scrubber) on a thread of its own,
// at SCRUB_RATE, with a reader Store of its own opened afresh for each pass; a volume that
// moves (the reader cache's generation changes) ends the pass early. Publishes its state for
// /v1/status and /metrics.
//
// Thread-safety: every member may be called from any thread.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <thread>

#include "dfrp/core/config.h"
#include "dfrp/core/thread_annotations.h"
#include "dfrp/node/metrics.h"
#include "dfrp/node/reader_cache.h"
#include "dfrp/storage/store.h"

namespace dfrp::node {

class ScrubService {
 public:
  ScrubService(const core::NodeConfig& config, const storage::StoreOptions& opt,
               const ReaderCache& readers, Metrics& metrics, int64_t pass_interval_ms);
  ~ScrubService() { Stop(); }
  // Starts the thread (when SCRUB_RATE is not 0).
  void Start();
  // Asks the pass under way to end at its next shard, without waiting.
  void RequestStop() EXCLUDES(mu_);
  // RequestStop, then joins the thread.
  void Stop() EXCLUDES(mu_);

  // The scrub section of /v1/status.
  nlohmann::json Json() const EXCLUDES(mu_);
  // The fraction of the pass under way that is done (0 when none ran yet).
  double Progress() const EXCLUDES(mu_);

 private:
  void Loop() EXCLUDES(mu_);
  void Set(const char* key, nlohmann::json v) EXCLUDES(mu_);
  // Waits up to ms, or until Stop(); false when stopping.
  bool Wait(int64_t ms) EXCLUDES(mu_);
  bool Stopping() const EXCLUDES(mu_);

  const core::NodeConfig config_;
  const storage::StoreOptions opt_;
  const ReaderCache& readers_;
  Metrics& metrics_;
  const int64_t pass_interval_ms_;

  mutable core::Mutex mu_;
  core::CondVar cv_;
  bool stopping_ GUARDED_BY(mu_) = false;
  nlohmann::json state_ GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace dfrp::node
