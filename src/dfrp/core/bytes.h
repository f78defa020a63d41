// Byte helpers: little-endian fixed-width encoding and lowercase hex.
//
// Encoders append to a std::string used as a byte buffer; decoders read from a span and never
// read past its end (callers check lengths first; the Reader below does it for them).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dfrp::core {

using ByteSpan = std::span<const std::byte>;

inline ByteSpan AsBytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}
inline std::string_view AsChars(ByteSpan b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

inline void PutU8(std::string* dst, uint8_t v) { dst->push_back(static_cast<char>(v)); }
inline void PutU16(std::string* dst, uint16_t v) {
  char b[2] = {static_cast<char>(v), static_cast<char>(v >> 8)};
  dst->append(b, 2);
}
inline void PutU32(std::string* dst, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>(v >> (8 * i));
  dst->append(b, 4);
}
inline void PutU64(std::string* dst, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * i));
  dst->append(b, 8);
}
inline uint16_t GetU16(const char* p) {
  return static_cast<uint16_t>(static_cast<uint8_t>(p[0]) | (static_cast<uint8_t>(p[1]) << 8));
}
inline uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
inline uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
inline void EncodeU32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}

// Reads fixed-width little-endian fields from a buffer, failing (returning false / nullopt)
// instead of reading past its end.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  size_t remaining() const { return data_.size() - pos_; }
  size_t position() const { return pos_; }
  bool U8(uint8_t* v);
  bool U16(uint16_t* v);
  bool U32(uint32_t* v);
  bool U64(uint64_t* v);
  // The next `n` bytes, or false when fewer remain.
  bool Bytes(size_t n, std::string_view* out);

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

// Lowercase hex of `data`.
std::string ToHex(std::string_view data);
inline std::string ToHex(ByteSpan data) { return ToHex(AsChars(data)); }
template <size_t N>
std::string ToHex(const std::array<uint8_t, N>& a) {
  return ToHex(std::string_view(reinterpret_cast<const char*>(a.data()), N));
}
// Decodes hex (either case). nullopt on odd length or a non-hex character.
std::optional<std::string> FromHex(std::string_view hex);
// Parses a plain decimal number: digits only (no sign, no spaces), no overflow.
bool ParseDecimal(std::string_view text, uint64_t* out);

}  // namespace dfrp::core
