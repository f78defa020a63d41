// UUIDv7 shard ids (RFC 9562 section 5.7): 48-bit Unix milliseconds, version 7, a 42-bit
// counter (12 bits of rand_a and the top 30 of rand_b) that makes ids from one generator
// strictly increasing, variant 0b10, 32 random bits.
//
// Thread-safety: UuidGenerator is safe to call from several threads.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "dfrp/core/clock.h"

namespace dfrp::core {

struct Uuid {
  std::array<uint8_t, 16> bytes{};

  // Canonical 8-4-4-4-12 lowercase form.
  std::string ToString() const;
  // Parses the canonical form (either case). nullopt for anything else.
  static std::optional<Uuid> Parse(std::string_view text);
  std::string_view AsBytes() const {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }
  static Uuid FromBytes(std::string_view b);  // b must hold 16 bytes
  int version() const { return bytes[6] >> 4; }
  int variant_bits() const { return bytes[8] >> 6; }
  uint64_t unix_millis() const;
  bool IsNil() const;
  auto operator<=>(const Uuid&) const = default;
};

class UuidGenerator {
 public:
  explicit UuidGenerator(Clock* clock = SystemClock()) : clock_(clock) {}
  Uuid NewV7();

 private:
  uint64_t RandomU64();  // from getrandom(2), buffered; guarded by mu_
  Clock* clock_;
  std::mutex mu_;
  int64_t last_ms_ = -1;
  uint64_t counter_ = 0;  // 42 bits
  std::array<uint64_t, 64> pool_{};
  size_t pool_pos_ = pool_.size();
};

// A process-wide generator on the system clock.
UuidGenerator* DefaultUuidGenerator();

}  // namespace dfrp::core
