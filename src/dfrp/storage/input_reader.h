// Reading the inputs of a write batch: exact reads that notice a file changing under us, and
// a pipeline that prepares pieces of work (groups of small records) ahead on worker threads
// and hands them out in order.
//
// Thread-safety: OrderedPipeline is driven by one consumer thread; its workers are internal.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "dfrp/core/file_system.h"
#include "dfrp/core/status.h"
#include "dfrp/core/thread_annotations.h"

namespace dfrp::storage {

// InvalidArgument: `name` shrank or grew while it was read.
core::Status ChangedWhileReading(const std::string& name, uint64_t expected, uint64_t got);
// Reads exactly n bytes (done already read of expected), or reports the input as changed.
core::Status ReadInputExact(core::SequentialFile& in, const std::string& name, uint64_t expected,
                            uint64_t done, size_t n, char* dst);
// Reports the input as changed if it has more than `expected` bytes.
core::Status CheckAtEnd(core::SequentialFile& in, const std::string& name, uint64_t expected);

// Runs make(0), make(1), ... make(count - 1) on `threads` worker threads, at most `window`
// items ahead of the consumer, and hands the results to Next() in order. Worker w makes the
// items w, w + threads, ...; make must be safe to call from several threads at once.
template <typename T>
class OrderedPipeline {
 public:
  OrderedPipeline(size_t count, std::function<T(size_t)> make, int threads = 2, size_t window = 8)
      : count_(count), window_(window), make_(std::move(make)) {
    const size_t n = std::min<size_t>(static_cast<size_t>(std::max(threads, 1)), count);
    for (size_t w = 0; w < n; ++w) workers_.emplace_back([this, w, n] { Work(w, n); });
  }
  // Stops the workers after the item each is making, and joins them.
  ~OrderedPipeline() {
    {
      core::MutexLock lock(&mu_);
      stopping_ = true;
    }
    cv_.SignalAll();
    for (auto& w : workers_) w.join();
  }
  OrderedPipeline(const OrderedPipeline&) = delete;
  OrderedPipeline& operator=(const OrderedPipeline&) = delete;

  // The next item, in order; waits for a worker to make it. Call at most `count` times.
  T Next() EXCLUDES(mu_) {
    core::MutexLock lock(&mu_);
    while (done_.count(next_) == 0) cv_.Wait(&mu_);
    auto it = done_.find(next_);
    T item = std::move(it->second);
    done_.erase(it);
    ++next_;
    cv_.SignalAll();
    return item;
  }

 private:
  void Work(size_t first, size_t step) EXCLUDES(mu_) {
    for (size_t i = first; i < count_; i += step) {
      {
        core::MutexLock lock(&mu_);
        while (!stopping_ && i >= next_ + window_) cv_.Wait(&mu_);
        if (stopping_) return;
      }
      T item = make_(i);
      core::MutexLock lock(&mu_);
      done_.emplace(i, std::move(item));
      cv_.SignalAll();
    }
  }

  const size_t count_;
  const size_t window_;
  std::function<T(size_t)> make_;
  core::Mutex mu_;
  core::CondVar cv_;
  std::map<size_t, T> done_ GUARDED_BY(mu_);  // made, not yet taken
  size_t next_ GUARDED_BY(mu_) = 0;           // the consumer's next item
  bool stopping_ GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;  // joined by the destructor before the rest goes
};

}  // namespace dfrp::storage
