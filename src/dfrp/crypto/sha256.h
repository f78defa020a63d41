// SHA-256 through OpenSSL 3 (which uses the SHA-NI instructions where the CPU has them).
//
// Thread-safety: the free functions are safe from any thread; a Sha256 object is not shared.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace dfrp::crypto {

using Hash = std::array<uint8_t, 32>;

inline std::string_view HashBytes(const Hash& h) {
  return {reinterpret_cast<const char*>(h.data()), h.size()};
}

// Incremental hashing.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Reset();
  void Update(std::string_view data);
  Hash Final();  // also resets

 private:
  void* ctx_;  // SHA256_CTX
};

Hash Sha256Of(std::string_view data);

}  // namespace dfrp::crypto
