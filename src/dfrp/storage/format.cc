#include "dfrp/storage/format.h"

#include <fmt/format.h>

#include <charconv>

#include "dfrp/core/bytes.h"
#include "dfrp/core/crc32c.h"
#include "dfrp/crypto/merkle.h"

namespace dfrp::storage {

using core::Err;
using core::Result;
using core::Status;

namespace {

// Appends zero bytes up to `size - 4`, then the CRC-32C of everything before it.
void SealWithCrc(std::string* buf, size_t size) {
  buf->resize(size - 4, '\0');
  core::PutU32(buf, core::Crc32c(*buf));
}

bool CrcMatches(std::string_view fixed) {
  return core::GetU32(fixed.data() + fixed.size() - 4) ==
         core::Crc32c(fixed.substr(0, fixed.size() - 4));
}

bool AllZero(std::string_view s) {
  for (char c : s)
    if (c != 0) return false;
  return true;
}

}  // namespace

std::string SegmentFileName(uint64_t segment) {
  return fmt::format("segment-{:012d}.dfrp", segment);
}

bool ParseSegmentFileName(std::string_view name, uint64_t* segment) {
  constexpr std::string_view kPrefix = "segment-", kSuffix = ".dfrp";
  if (name.size() != kPrefix.size() + 12 + kSuffix.size() || !name.starts_with(kPrefix) ||
      !name.ends_with(kSuffix))
    return false;
  std::string_view digits = name.substr(kPrefix.size(), 12);
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), *segment);
  return ec == std::errc() && p == digits.data() + digits.size();
}

std::string EncodeVolumeHeader(const VolumeHeader& h) {
  std::string b(kVolumeMagic);
  core::PutU16(&b, kFormatVersion);
  core::PutU16(&b, 0);
  core::PutU32(&b, h.volume);
  b.append(h.store_id.AsBytes());
  core::PutU64(&b, static_cast<uint64_t>(h.created_unix_ms));
  SealWithCrc(&b, kVolumeHeaderSize);
  return b;
}

Result<VolumeHeader> DecodeVolumeHeader(std::string_view b, std::string_view where) {
  if (b.size() != kVolumeHeaderSize || !b.starts_with(kVolumeMagic))
    return Err(Status::Corruption(fmt::format("{} is not a dfrp volume header", where)));
  if (!CrcMatches(b))
    return Err(Status::Corruption(fmt::format("{} is damaged (checksum mismatch)", where)));
  uint16_t version = core::GetU16(b.data() + 8);
  if (version != kFormatVersion)
    return Err(Status::Corruption(
        fmt::format("{} has format version {}, this dfrp reads version {}: upgrade dfrp", where,
                    version, kFormatVersion)));
  VolumeHeader h;
  h.volume = core::GetU32(b.data() + 12);
  h.store_id = core::Uuid::FromBytes(b.substr(16, 16));
  h.created_unix_ms = static_cast<int64_t>(core::GetU64(b.data() + 32));
  return h;
}

std::string EncodeSegmentHeader(const SegmentHeader& h) {
  std::string b(kSegmentMagic);
  core::PutU16(&b, kFormatVersion);
  core::PutU16(&b, 0);
  core::PutU32(&b, h.volume);
  b.append(h.store_id.AsBytes());
  core::PutU64(&b, h.segment);
  SealWithCrc(&b, kSegmentHeaderSize);
  return b;
}

Result<SegmentHeader> DecodeSegmentHeader(std::string_view b, std::string_view where) {
  if (b.size() != kSegmentHeaderSize || !b.starts_with(kSegmentMagic) || !CrcMatches(b))
    return Err(Status::Corruption(fmt::format("{} has no valid segment header", where)));
  uint16_t version = core::GetU16(b.data() + 8);
  if (version != kFormatVersion)
    return Err(
        Status::Corruption(fmt::format("{} has format version {}: upgrade dfrp", where, version)));
  SegmentHeader h;
  h.volume = core::GetU32(b.data() + 12);
  h.store_id = core::Uuid::FromBytes(b.substr(16, 16));
  h.segment = core::GetU64(b.data() + 32);
  return h;
}

std::string EncodeCommit(const CommitRecord& c) {
  std::string b(kCommitMagic);
  core::PutU8(&b, static_cast<uint8_t>(kFormatVersion));
  b.append(3, '\0');
  core::PutU32(&b, c.records);
  core::PutU64(&b, c.bytes);
  SealWithCrc(&b, kCommitSize);
  return b;
}

Result<CommitRecord> DecodeCommit(std::string_view b) {
  if (b.size() != kCommitSize || !b.starts_with(kCommitMagic) || !CrcMatches(b) ||
      static_cast<uint8_t>(b[8]) != kFormatVersion || !AllZero(b.substr(9, 3)))
    return Err(Status::Corruption("no valid commit record here"));
  return CommitRecord{core::GetU32(b.data() + 12), core::GetU64(b.data() + 16)};
}

uint64_t TreeSectionSize(uint64_t payload_len, uint32_t leaf_size) {
  return crypto::TreeLevelsNodeCount(crypto::LeafCount(payload_len, leaf_size)) * kRootSize;
}

std::string EncodeRecordPrefix(const RecordHeader& h, const crypto::Hash& root,
                               std::string_view metadata) {
  std::string b;
  b.reserve(kRecordPrefixSize + metadata.size());
  b.append(kRecordMagic);
  core::PutU8(&b, static_cast<uint8_t>(kFormatVersion));
  core::PutU8(&b, 0);
  core::PutU16(&b, h.flags);
  core::PutU32(&b, h.metadata_len);
  b.append(h.shard_id.AsBytes());
  core::PutU64(&b, h.payload_len);
  core::PutU32(&b, h.leaf_size);
  core::PutU32(&b, 0);
  core::PutU64(&b, h.tree_len);
  core::PutU32(&b, 0);
  uint32_t crc = core::Crc32cExtend(0, b.data(), b.size());
  crc = core::Crc32cExtend(crc, root.data(), root.size());
  crc = core::Crc32cExtend(crc, metadata.data(), metadata.size());
  core::PutU32(&b, crc);
  b.append(crypto::HashBytes(root));
  b.append(metadata);
  return b;
}

Result<RecordHeader> DecodeRecordHeader(std::string_view b) {
  if (b.size() != kRecordHeaderSize || !b.starts_with(kRecordMagic))
    return Err(Status::Corruption("no record header here (bad magic)"));
  if (static_cast<uint8_t>(b[8]) != kFormatVersion)
    return Err(Status::Corruption(fmt::format("record format version {} is not {}",
                                              static_cast<int>(static_cast<uint8_t>(b[8])),
                                              kFormatVersion)));
  if (b[9] != 0 || !AllZero(b.substr(44, 4)) || !AllZero(b.substr(56, 4)))
    return Err(Status::Corruption("record header has non-zero reserved bytes"));
  RecordHeader h;
  h.flags = core::GetU16(b.data() + 10);
  h.metadata_len = core::GetU32(b.data() + 12);
  h.shard_id = core::Uuid::FromBytes(b.substr(16, 16));
  h.payload_len = core::GetU64(b.data() + 32);
  h.leaf_size = core::GetU32(b.data() + 40);
  h.tree_len = core::GetU64(b.data() + 48);
  if ((h.flags & ~kFlagTree) != 0)
    return Err(Status::Corruption("record header has unknown flags"));
  if (h.metadata_len > kMaxMetadataSize)
    return Err(Status::Corruption("record metadata length is out of range"));
  if (h.leaf_size < kMinLeafSize || h.leaf_size > kMaxLeafSize ||
      (h.leaf_size & (h.leaf_size - 1)) != 0)
    return Err(Status::Corruption("record leaf size is out of range"));
  if (h.payload_len > (uint64_t{1} << 50))
    return Err(Status::Corruption("record payload length is out of range"));
  uint64_t want_tree = TreeSectionSize(h.payload_len, h.leaf_size);
  if (h.tree_len != ((h.flags & kFlagTree) ? want_tree : 0) ||
      ((h.flags & kFlagTree) == 0) != (want_tree == 0))
    return Err(Status::Corruption("record tree section length does not match its payload"));
  return h;
}

bool CheckRecordCrc(std::string_view header64, std::string_view root, std::string_view metadata) {
  uint32_t crc = core::Crc32cExtend(0, header64.data(), kRecordHeaderSize - 4);
  crc = core::Crc32cExtend(crc, root.data(), root.size());
  crc = core::Crc32cExtend(crc, metadata.data(), metadata.size());
  return crc == core::GetU32(header64.data() + kRecordHeaderSize - 4);
}

}  // namespace dfrp::storage
