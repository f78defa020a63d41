// Shard metadata: what a record says about its payload, encoded deterministically (the same
// metadata always gives the same bytes: tags are sorted by key, every length is explicit).
//
// Layout (version 1), little-endian:
//   u8 version | u64 size | u32 leaf_size | u64 created_unix_ms
//   | u16 len, content_type | u16 len, owner | u16 dim, dim x f32 vector
//   | u32 tag_count, then per tag (ascending key): u16 key_len, key, u32 value_len, value
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dfrp/core/status.h"

namespace dfrp::storage {

inline constexpr uint8_t kMetadataVersion = 1;
inline constexpr size_t kMaxContentTypeLen = 255;
inline constexpr size_t kMaxOwnerLen = 128;
inline constexpr size_t kMaxTagKeyLen = 128;

struct ShardMetadata {
  uint64_t size = 0;
  uint32_t leaf_size = 4096;
  int64_t created_unix_ms = 0;
  std::string content_type = "application/octet-stream";
  std::string owner;                        // empty: none
  std::vector<float> vector;                // empty: none
  std::map<std::string, std::string> tags;  // user key=value

  bool operator==(const ShardMetadata&) const = default;
};

// Checks what a user supplies (tag keys, lengths, vector values); the error names the field
// and the fix. `vector_dim` is the store's VECTOR_DIM; `nonzero_vector` refuses the zero vector
// (VECTOR_METRIC = "cosine", under which it has no direction).
core::Status ValidateMetadata(const ShardMetadata& m, uint32_t vector_dim, bool nonzero_vector);

std::string EncodeMetadata(const ShardMetadata& m);
// Decodes and checks every length; Corruption on anything malformed or trailing bytes.
core::Result<ShardMetadata> DecodeMetadata(std::string_view bytes);

}  // namespace dfrp::storage
