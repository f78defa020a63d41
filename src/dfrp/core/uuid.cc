#include "dfrp/core/uuid.h"

#include <sys/random.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace dfrp::core {

std::string Uuid::ToString() const {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kDigits[bytes[i] >> 4]);
    out.push_back(kDigits[bytes[i] & 0xf]);
  }
  return out;
}

std::optional<Uuid> Uuid::Parse(std::string_view text) {
  if (text.size() != 36) return std::nullopt;
  Uuid u;
  size_t j = 0;
  for (size_t i = 0; i < 36;) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-') return std::nullopt;
      ++i;
      continue;
    }
    auto nibble = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    int hi = nibble(text[i]);
    int lo = nibble(text[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    u.bytes[j++] = static_cast<uint8_t>((hi << 4) | lo);
    i += 2;
  }
  return u;
}

Uuid Uuid::FromBytes(std::string_view b) {
  Uuid u;
  std::memcpy(u.bytes.data(), b.data(), 16);
  return u;
}

uint64_t Uuid::unix_millis() const {
  uint64_t ms = 0;
  for (int i = 0; i < 6; ++i) ms = (ms << 8) | bytes[i];
  return ms;
}

bool Uuid::IsNil() const {
  for (auto b : bytes)
    if (b != 0) return false;
  return true;
}

uint64_t UuidGenerator::RandomU64() {
  if (pool_pos_ == pool_.size()) {
    size_t got = 0;
    auto* dst = reinterpret_cast<char*>(pool_.data());
    const size_t want = sizeof(pool_);
    while (got < want) {
      ssize_t n = getrandom(dst + got, want - got, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        // getrandom only fails on kernels older than 3.17; nothing sensible remains.
        throw std::runtime_error("getrandom failed");
      }
      got += static_cast<size_t>(n);
    }
    pool_pos_ = 0;
  }
  return pool_[pool_pos_++];
}

Uuid UuidGenerator::NewV7() {
  std::lock_guard<std::mutex> lock(mu_);
  constexpr uint64_t kCounterMax = (uint64_t{1} << 42) - 1;
  int64_t ms = clock_->NowUnixMillis();
  if (ms > last_ms_) {
    last_ms_ = ms;
    counter_ = RandomU64() & (kCounterMax >> 1);  // top bit clear leaves room to count
  } else if (counter_ == kCounterMax) {
    ++last_ms_;  // counter exhausted within one millisecond: borrow the next one
    counter_ = RandomU64() & (kCounterMax >> 1);
  } else {
    ++counter_;
  }
  const auto t = static_cast<uint64_t>(last_ms_);
  const uint64_t rand_tail = RandomU64();
  Uuid u;
  for (int i = 0; i < 6; ++i) u.bytes[i] = static_cast<uint8_t>(t >> (8 * (5 - i)));
  const uint64_t rand_a = counter_ >> 30;            // 12 bits
  const uint64_t rand_b_hi = counter_ & 0x3fffffff;  // 30 bits
  u.bytes[6] = static_cast<uint8_t>(0x70 | (rand_a >> 8));
  u.bytes[7] = static_cast<uint8_t>(rand_a);
  u.bytes[8] = static_cast<uint8_t>(0x80 | (rand_b_hi >> 24));
  u.bytes[9] = static_cast<uint8_t>(rand_b_hi >> 16);
  u.bytes[10] = static_cast<uint8_t>(rand_b_hi >> 8);
  u.bytes[11] = static_cast<uint8_t>(rand_b_hi);
  for (int i = 0; i < 4; ++i) u.bytes[12 + i] = static_cast<uint8_t>(rand_tail >> (8 * i));
  return u;
}

UuidGenerator* DefaultUuidGenerator() {
  static UuidGenerator* gen = new UuidGenerator();
  return gen;
}

}  // namespace dfrp::core
