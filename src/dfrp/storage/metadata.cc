#include "dfrp/storage/metadata.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "dfrp/core/bytes.h"
#include "dfrp/storage/format.h"

namespace dfrp::storage {

using core::Err;
using core::Result;
using core::Status;

namespace {
bool ValidTagKeyChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.' || c == ':' || c == '/';
}
}  // namespace

Status ValidateMetadata(const ShardMetadata& m, uint32_t vector_dim, bool nonzero_vector) {
  if (m.content_type.empty() || m.content_type.size() > kMaxContentTypeLen)
    return Status::InvalidArgument(fmt::format(
        "content type must be 1 to {} characters, such as text/plain", kMaxContentTypeLen));
  if (m.owner.size() > kMaxOwnerLen)
    return Status::InvalidArgument(
        fmt::format("owner address is {} characters; at most {}", m.owner.size(), kMaxOwnerLen));
  if (!m.vector.empty() && m.vector.size() != vector_dim)
    return Status::InvalidArgument(fmt::format(
        "--vector has {} values but this store's VECTOR_DIM is {}: give {} comma-separated numbers",
        m.vector.size(), vector_dim, vector_dim));
  for (size_t i = 0; i < m.vector.size(); ++i)
    if (!std::isfinite(m.vector[i]))
      return Status::InvalidArgument(
          fmt::format("--vector value {} is not a finite number", i + 1));
  if (nonzero_vector && !m.vector.empty() &&
      std::all_of(m.vector.begin(), m.vector.end(), [](float x) { return x == 0.0f; }))
    return Status::InvalidArgument(
        "--vector is the zero vector, which has no direction under VECTOR_METRIC = \"cosine\": "
        "give a non-zero vector (or leave --vector out)");
  for (const auto& [k, v] : m.tags) {
    if (k.empty() || k.size() > kMaxTagKeyLen)
      return Status::InvalidArgument(
          fmt::format("metadata key '{}' must be 1 to {} characters", k, kMaxTagKeyLen));
    for (char c : k)
      if (!ValidTagKeyChar(c))
        return Status::InvalidArgument(
            fmt::format("metadata key '{}' may hold only letters, digits and . _ - : /", k));
  }
  std::string encoded = EncodeMetadata(m);
  if (encoded.size() > kMaxMetadataSize)
    return Status::InvalidArgument(fmt::format(
        "metadata is {} bytes, over the limit of {} bytes: shorten or drop some --meta values",
        encoded.size(), kMaxMetadataSize));
  return Status::OK();
}

std::string EncodeMetadata(const ShardMetadata& m) {
  std::string b;
  core::PutU8(&b, kMetadataVersion);
  core::PutU64(&b, m.size);
  core::PutU32(&b, m.leaf_size);
  core::PutU64(&b, static_cast<uint64_t>(m.created_unix_ms));
  core::PutU16(&b, static_cast<uint16_t>(m.content_type.size()));
  b.append(m.content_type);
  core::PutU16(&b, static_cast<uint16_t>(m.owner.size()));
  b.append(m.owner);
  core::PutU16(&b, static_cast<uint16_t>(m.vector.size()));
  for (float f : m.vector) core::PutU32(&b, std::bit_cast<uint32_t>(f));
  core::PutU32(&b, static_cast<uint32_t>(m.tags.size()));
  for (const auto& [k, v] : m.tags) {  // std::map iterates in ascending key order
    core::PutU16(&b, static_cast<uint16_t>(k.size()));
    b.append(k);
    core::PutU32(&b, static_cast<uint32_t>(v.size()));
    b.append(v);
  }
  return b;
}

Result<ShardMetadata> DecodeMetadata(std::string_view bytes) {
  auto bad = [](std::string_view what) {
    return Err(Status::Corruption(fmt::format("metadata is malformed: {}", what)));
  };
  core::Reader r(bytes);
  ShardMetadata m;
  uint8_t version;
  uint64_t created;
  if (!r.U8(&version)) return bad("empty");
  if (version != kMetadataVersion) return bad(fmt::format("unknown version {}", version));
  if (!r.U64(&m.size) || !r.U32(&m.leaf_size) || !r.U64(&created)) return bad("truncated");
  m.created_unix_ms = static_cast<int64_t>(created);
  uint16_t len;
  std::string_view s;
  if (!r.U16(&len) || !r.Bytes(len, &s)) return bad("truncated content type");
  m.content_type = s;
  if (!r.U16(&len) || !r.Bytes(len, &s)) return bad("truncated owner");
  m.owner = s;
  uint16_t dim;
  if (!r.U16(&dim)) return bad("truncated vector");
  m.vector.resize(dim);
  for (uint16_t i = 0; i < dim; ++i) {
    uint32_t bits;
    if (!r.U32(&bits)) return bad("truncated vector");
    m.vector[i] = std::bit_cast<float>(bits);
  }
  uint32_t tags;
  if (!r.U32(&tags)) return bad("truncated tags");
  if (tags > bytes.size()) return bad("tag count out of range");
  std::string prev;
  for (uint32_t i = 0; i < tags; ++i) {
    uint16_t klen;
    uint32_t vlen;
    std::string_view k, v;
    if (!r.U16(&klen) || !r.Bytes(klen, &k) || !r.U32(&vlen) || !r.Bytes(vlen, &v))
      return bad("truncated tag");
    if (i > 0 && k <= prev) return bad("tags out of order");
    prev = k;
    m.tags.emplace(std::string(k), std::string(v));
  }
  if (r.remaining() != 0) return bad("trailing bytes");
  return m;
}

}  // namespace dfrp::storage
