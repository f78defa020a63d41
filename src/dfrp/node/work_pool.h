// WorkPool: a fixed set of threads with a bounded queue, for the work the HTTP threads must
// not do themselves (disk reads, hashing, calls that wait for the writer). A full queue is
// refused at once, so the server answers 503 with Retry-After instead of piling up work.
//
// Thread-safety: every member may be called from any thread.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "dfrp/core/thread_annotations.h"

namespace dfrp::node {

class WorkPool {
 public:
  WorkPool(std::string name, int threads, size_t max_queued);
  ~WorkPool() { Stop(); }
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;

  // Queues fn; false (fn dropped) when max_queued jobs already wait, or after Stop().
  bool TrySubmit(std::move_only_function<void()> fn) EXCLUDES(mu_);
  // Runs what is queued, then joins the threads. Idempotent.
  void Stop() EXCLUDES(mu_);

  const std::string& name() const { return name_; }
  size_t queued() const EXCLUDES(mu_);
  uint64_t refused() const EXCLUDES(mu_);

 private:
  void Loop() EXCLUDES(mu_);

  const std::string name_;
  const size_t max_queued_;
  mutable core::Mutex mu_;
  core::CondVar cv_;
  std::deque<std::move_only_function<void()>> queue_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  uint64_t refused_ GUARDED_BY(mu_) = 0;
  std::vector<std::thread> threads_;
};

}  // namespace dfrp::node
