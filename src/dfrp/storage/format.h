// On-disk formats of the shard store: volume headers, segment headers and shard records.
// docs/FORMAT.md describes every byte; the constants here are the same ones.
//
// All integers are little-endian. Every fixed header ends in a CRC-32C of the bytes before
// it; a record's CRC also covers its Merkle root and metadata, and its payload is covered by
// the Merkle root, so every byte of a record is checked.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "dfrp/core/status.h"
#include "dfrp/core/uuid.h"
#include "dfrp/crypto/sha256.h"

namespace dfrp::storage {

inline constexpr uint16_t kFormatVersion = 1;
inline constexpr std::string_view kVolumeMagic = "DFRPVOLM";
inline constexpr std::string_view kSegmentMagic = "DFRPSEGM";
inline constexpr std::string_view kRecordMagic = "DFRPSHRD";
inline constexpr std::string_view kCommitMagic = "DFRPCMIT";
inline constexpr size_t kCommitSize = 32;
inline constexpr size_t kVolumeHeaderSize = 64;
inline constexpr size_t kSegmentHeaderSize = 64;
inline constexpr size_t kRecordHeaderSize = 64;
inline constexpr size_t kRootSize = 32;
// Header plus Merkle root: the fixed prefix of every record.
inline constexpr size_t kRecordPrefixSize = kRecordHeaderSize + kRootSize;
inline constexpr uint32_t kMaxMetadataSize = 64 * 1024;
inline constexpr uint32_t kMinLeafSize = 512;
inline constexpr uint32_t kMaxLeafSize = 1 << 20;

// Record flags.
inline constexpr uint16_t kFlagTree = 1;  // a tree section follows the payload

// File names inside a volume folder.
inline constexpr std::string_view kVolumeFileName = "DFRP-VOLUME";
std::string SegmentFileName(uint64_t segment);  // "segment-000000000001.dfrp"
// Parses a segment file name; false for any other name.
bool ParseSegmentFileName(std::string_view name, uint64_t* segment);

struct VolumeHeader {
  uint32_t volume = 0;
  core::Uuid store_id;
  int64_t created_unix_ms = 0;
};
std::string EncodeVolumeHeader(const VolumeHeader& h);
core::Result<VolumeHeader> DecodeVolumeHeader(std::string_view bytes, std::string_view where);

struct SegmentHeader {
  uint32_t volume = 0;
  core::Uuid store_id;
  uint64_t segment = 0;
};
std::string EncodeSegmentHeader(const SegmentHeader& h);
core::Result<SegmentHeader> DecodeSegmentHeader(std::string_view bytes, std::string_view where);

struct RecordHeader {
  uint16_t flags = 0;
  uint32_t metadata_len = 0;
  core::Uuid shard_id;
  uint64_t payload_len = 0;
  uint32_t leaf_size = 0;
  uint64_t tree_len = 0;  // bytes of the tree section (0 without kFlagTree)

  uint64_t payload_offset() const { return kRecordPrefixSize + metadata_len; }
  uint64_t tree_offset() const { return payload_offset() + payload_len; }
  uint64_t record_len() const { return tree_offset() + tree_len; }
};

// A commit record closes the records a batch appended to one segment. It is written only
// after those records are durable, and a batch is acknowledged only after its commit records
// are durable too: records after a segment's last commit were never acknowledged.
struct CommitRecord {
  uint32_t records = 0;  // how many records it closes (those since the previous commit)
  uint64_t bytes = 0;    // their total length
};
std::string EncodeCommit(const CommitRecord& c);
// Parses 32 bytes; nullopt-like error unless magic, version, reserved bytes and CRC check out.
core::Result<CommitRecord> DecodeCommit(std::string_view bytes32);

// Bytes of the stored tree section for a payload (0 when it has at most one leaf).
uint64_t TreeSectionSize(uint64_t payload_len, uint32_t leaf_size);

// header (64) + root (32) + metadata, CRC filled in.
std::string EncodeRecordPrefix(const RecordHeader& h, const crypto::Hash& root,
                               std::string_view metadata);
// Parses the fixed 64-byte header (magic, version, reserved bytes, field ranges). Does not
// check the CRC, which also covers the root and metadata: see CheckRecordCrc.
core::Result<RecordHeader> DecodeRecordHeader(std::string_view header64);
// Checks the header CRC given the header, root and metadata bytes as read.
bool CheckRecordCrc(std::string_view header64, std::string_view root, std::string_view metadata);

}  // namespace dfrp::storage
