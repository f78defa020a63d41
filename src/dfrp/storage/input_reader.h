// Reading the inputs of a write batch: exact reads that notice a file changing under us, and
// a pipeline that prepares pieces of work (groups of small records) ahead on worker threads
// and hands them out in order.
//
// Thread-safety: OrderedPipeline is driven by one consumer thread; its workers are internal.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dfrp/core/file_system.h"
#include "dfrp/core/status.h"

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
    for (size_t w = 0; w < n; ++w)
      workers_.emplace_back([this, w, n](std::stop_token st) { Work(st, w, n); });
  }
  ~OrderedPipeline() {
    std::lock_guard<std::mutex> lock(mu_);  // so no worker misses the wake-up
    for (auto& w : workers_) w.request_stop();
    cv_.notify_all();
  }
  OrderedPipeline(const OrderedPipeline&) = delete;
  OrderedPipeline& operator=(const OrderedPipeline&) = delete;

  // The next item, in order; waits for a worker to make it. Call at most `count` times.
  T Next() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return done_.count(next_) > 0; });
    auto it = done_.find(next_);
    T item = std::move(it->second);
    done_.erase(it);
    ++next_;
    cv_.notify_all();
    return item;
  }

 private:
  void Work(std::stop_token st, size_t first, size_t step) {
    for (size_t i = first; i < count_; i += step) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        if (!cv_.wait(lock, st, [&] { return i < next_ + window_; })) return;
      }
      T item = make_(i);
      std::lock_guard<std::mutex> lock(mu_);
      done_.emplace(i, std::move(item));
      cv_.notify_all();
    }
  }

  const size_t count_;
  const size_t window_;
  std::function<T(size_t)> make_;
  std::mutex mu_;
  std::condition_variable_any cv_;
  std::map<size_t, T> done_;           // made, not yet taken; guarded by mu_
  size_t next_ = 0;                    // the consumer's next item; guarded by mu_
  std::vector<std::jthread> workers_;  // last: stopped and joined before the rest goes
};

}  // namespace dfrp::storage
