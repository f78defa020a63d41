// Ticker: a thread that calls a function every `period_ms` (on the node's monotonic clock)
// until asked to stop; what the node's background services (ProviderService,
// LedgerSyncService) run on.
//
// Thread-safety: every member may be called from any thread; `tick` runs on the ticker's own
// thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <thread>
#include <utility>

#include "dfrp/core/clock.h"
#include "dfrp/core/thread_annotations.h"

namespace dfrp::node {

class Ticker {
 public:
  Ticker(core::Clock* clock, int64_t period_ms) : clock_(clock), period_ms_(period_ms) {}
  ~Ticker() { Stop(); }
  Ticker(const Ticker&) = delete;
  Ticker& operator=(const Ticker&) = delete;

  // Starts the thread: `tick` runs once per period, the first time one period from now.
  void Start(std::function<void()> tick) {
    thread_ = std::thread([this, tick = std::move(tick)] {
      while (Wait()) tick();
    });
  }
  // Asks the thread to end before its next tick, without waiting.
  void RequestStop() EXCLUDES(mu_) {
    {
      core::MutexLock lock(&mu_);
      stopping_ = true;
    }
    cv_.SignalAll();
  }
  // RequestStop, then joins the thread (a tick under way finishes first).
  void Stop() EXCLUDES(mu_) {
    RequestStop();
    if (thread_.joinable()) thread_.join();
  }
  // For a long tick to check now and then.
  bool stopping() const EXCLUDES(mu_) {
    core::MutexLock lock(&mu_);
    return stopping_;
  }
  int64_t period_ms() const { return period_ms_; }

 private:
  // Sleeps one period; false once a stop was asked.
  bool Wait() EXCLUDES(mu_) {
    const int64_t end = clock_->NowMonotonicNanos() + period_ms_ * 1'000'000;
    core::MutexLock lock(&mu_);
    for (;;) {
      if (stopping_) return false;
      const int64_t left = (end - clock_->NowMonotonicNanos()) / 1'000'000;
      if (left <= 0) return true;
      cv_.WaitForMillis(&mu_, left);
    }
  }

  core::Clock* const clock_;
  const int64_t period_ms_;
  mutable core::Mutex mu_;
  core::CondVar cv_;
  bool stopping_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace dfrp::node
