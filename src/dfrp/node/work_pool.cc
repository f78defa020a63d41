#include "dfrp/node/work_pool.h"

namespace dfrp::node {

WorkPool::WorkPool(std::string name, int threads, size_t max_queued)
    : name_(std::move(name)), max_queued_(max_queued) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
}

bool WorkPool::TrySubmit(std::move_only_function<void()> fn) {
  {
    core::MutexLock lock(&mu_);
    if (stopping_ || queue_.size() >= max_queued_) {
      ++refused_;
      return false;
    }
    queue_.push_back(std::move(fn));
  }
  cv_.Signal();
  return true;
}

void WorkPool::Stop() {
  {
    core::MutexLock lock(&mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  cv_.SignalAll();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

size_t WorkPool::queued() const {
  core::MutexLock lock(&mu_);
  return queue_.size();
}

uint64_t WorkPool::refused() const {
  core::MutexLock lock(&mu_);
  return refused_;
}

void WorkPool::Loop() {
  for (;;) {
    std::move_only_function<void()> job;
    {
      core::MutexLock lock(&mu_);
      while (queue_.empty() && !stopping_) cv_.Wait(&mu_);
      if (queue_.empty()) return;  // stopping, and nothing left to run
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    job();
  }
}

}  // namespace dfrp::node
