// Clock: the only way dfrp code reads time, so tests can drive it (STYLE.md section 4).
//
// Thread-safety: SystemClock is stateless; ManualClock is safe to share.
#pragma once

#include <atomic>
#include <cstdint>

namespace dfrp::core {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time, milliseconds since the Unix epoch.
  virtual int64_t NowUnixMillis() const = 0;
  // A monotonic reading in nanoseconds, for durations and rates.
  virtual int64_t NowMonotonicNanos() const = 0;
};

// The process-wide real clock; never null, never freed.
Clock* SystemClock();

// Another clock's wall time shifted by a fixed offset (its monotonic reading unchanged): a
// skewed node in tests (dfrpd's DFRP_TEST_CLOCK_OFFSET_MS).
class OffsetClock final : public Clock {
 public:
  OffsetClock(const Clock* base, int64_t offset_ms) : base_(base), offset_ms_(offset_ms) {}
  int64_t NowUnixMillis() const override { return base_->NowUnixMillis() + offset_ms_; }
  int64_t NowMonotonicNanos() const override { return base_->NowMonotonicNanos(); }

 private:
  const Clock* const base_;
  const int64_t offset_ms_;
};

// A clock that moves only when told to; for tests.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t unix_millis = 1'700'000'000'000) : millis_(unix_millis) {}
  int64_t NowUnixMillis() const override { return millis_.load(); }
  int64_t NowMonotonicNanos() const override { return millis_.load() * 1'000'000; }
  void AdvanceMillis(int64_t ms) { millis_ += ms; }
  void SetMillis(int64_t ms) { millis_ = ms; }

 private:
  std::atomic<int64_t> millis_;
};

}  // namespace dfrp::core
