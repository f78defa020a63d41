// MemoryBudget: one budget for the request-body memory (and the pieces of large downloads)
// of every connection at once. A PUT reserves what its body will hold before a byte of it is
// read; when the budget cannot take it, the server answers 503 with Retry-After instead.
//
// Thread-safety: every member may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

namespace dfrp::node {

class MemoryBudget {
 public:
  explicit MemoryBudget(uint64_t capacity) : capacity_(capacity) {}

  // Takes n bytes of the budget: a hold that gives them back when the last copy of it goes,
  // or null when the budget cannot take them now. The budget must outlive its holds.
  std::shared_ptr<void> TryReserve(uint64_t n) {
    uint64_t used = used_.load();
    do {
      if (n > capacity_ || used > capacity_ - n) return nullptr;
    } while (!used_.compare_exchange_weak(used, used + n));
    return std::make_shared<Hold>(this, n);
  }

  uint64_t used() const { return used_.load(); }
  uint64_t capacity() const { return capacity_; }

 private:
  struct Hold {
    Hold(MemoryBudget* b, uint64_t n) : budget(b), bytes(n) {}
    ~Hold() { budget->used_.fetch_sub(bytes); }
    MemoryBudget* budget;
    uint64_t bytes;
  };
  const uint64_t capacity_;
  std::atomic<uint64_t> used_{0};
};

}  // namespace dfrp::node
