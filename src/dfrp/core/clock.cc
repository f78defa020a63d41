#include "dfrp/core/clock.h"

#include <chrono>

namespace dfrp::core {

namespace {
class RealClock final : public Clock {
 public:
  int64_t NowUnixMillis() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  int64_t NowMonotonicNanos() const override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
};
}  // namespace

Clock* SystemClock() {
  static RealClock* clock = new RealClock();
  return clock;
}

}  // namespace dfrp::core
