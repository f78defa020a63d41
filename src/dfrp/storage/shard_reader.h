// ShardReader: verified random access to one shard record, for range reads, proofs of
// storage and the FUSE view.
//
// A range is checked without rehashing the shard: the leaves it touches are hashed, then
// folded up to the root with the stored tree nodes that border the range (at most two per
// level, 32-byte reads from the tree section), and the result must equal the root held in the
// CRC-checked record prefix. So a wrong leaf, or a wrong stored node, can never pass; no byte
// is handed out before the leaves holding it verified. Records of at most one leaf (which
// carry no tree) are checked whole.
//
// Thread-safety: a ShardReader is an immutable value; any number of threads may read through
// it at once. It borrows its file from the Store that opened it and must not outlive it.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dfrp/core/file_system.h"
#include "dfrp/core/status.h"
#include "dfrp/storage/index.h"
#include "dfrp/storage/proof.h"
#include "dfrp/storage/record_io.h"

namespace dfrp::storage {

// How a read may get its bytes: waiting for the device as needed, or only from memory (the
// page cache), ending with Busy (and nothing handed out) when a byte is not there.
enum class IoMode { kWait, kCachedOnly };

class ShardReader {
 public:
  // `file` holds the record at `loc.offset`, whose prefix was already read and checked.
  ShardReader(const core::RandomAccessFile* file, ShardLocation loc, RecordPrefix prefix)
      : file_(file), loc_(loc), prefix_(std::move(prefix)) {}

  const ShardLocation& location() const { return loc_; }
  const RecordPrefix& prefix() const { return prefix_; }
  const crypto::Hash& root() const { return prefix_.root; }
  uint64_t size() const { return prefix_.header.payload_len; }
  uint32_t leaf_size() const { return prefix_.header.leaf_size; }
  uint64_t leaves() const;
  const std::string& segment_path() const { return file_->path(); }

  // Streams payload bytes [offset, offset + length) to sink, in pieces of about 8 MiB, each
  // verified before it is handed over. InvalidArgument when the range runs past the end;
  // Corruption naming the first leaf that does not verify.
  // With IoMode::kCachedOnly the read never waits for the device: Busy (and no byte handed
  // to sink) when one is not in memory. A server thread tries that first, for small reads,
  // and leaves the rest to threads that may wait.
  core::Status ReadRange(uint64_t offset, uint64_t length,
                         const std::function<core::Status(std::string_view)>& sink, int threads = 1,
                         IoMode mode = IoMode::kWait) const;
  // Reads up to `length` bytes at `offset` into dst (fewer at the end of the payload; 0 past
  // it), verified. For callers with their own buffers (FUSE); meant for small reads. On an
  // error the bytes in dst are unspecified and must not be used.
  // `threads` as ReadRange (hashing uses them only for reads of 1 MiB and more).
  core::Result<size_t> ReadAt(uint64_t offset, size_t length, char* dst, int threads = 1) const;

  // A proof for one leaf: its bytes and audit path, read off the stored tree (a few small
  // reads, no rehash), checked against the root before it is returned. InvalidArgument for a
  // leaf beyond the shard (or an empty shard); Corruption if the leaf does not verify.
  core::Result<LeafProof> ProveLeaf(uint64_t leaf) const;
  // A ProofSet for these leaves (a single proof, or an audit answer when `seed` is set).
  core::Result<ProofSet> Prove(std::span<const uint64_t> leaves,
                               std::optional<std::string> seed = std::nullopt) const;

 private:
  // Checks hashes of leaves [first, first + hashes.size()) against the root.
  core::Status VerifyLeafHashes(uint64_t first, std::span<const crypto::Hash> hashes,
                                IoMode mode = IoMode::kWait) const;
  // Reads whole leaves [first, last) into buf and verifies them.
  core::Status ReadLeaves(uint64_t first, uint64_t last, std::string* buf, int threads,
                          IoMode mode = IoMode::kWait) const;
  // The same into dst, which must hold those leaves' bytes.
  core::Status ReadLeavesInto(uint64_t first, uint64_t last, char* dst, int threads,
                              IoMode mode = IoMode::kWait) const;
  // A node (its number in the tree section).
  core::Result<crypto::Hash> ReadNode(uint64_t node, IoMode mode = IoMode::kWait) const;
  // n bytes at `at` from the record's start.
  core::Status Fetch(uint64_t at, size_t n, char* dst, IoMode mode) const;
  core::Status Context(const core::Status& s) const;

  const core::RandomAccessFile* file_;
  ShardLocation loc_;
  RecordPrefix prefix_;
};

}  // namespace dfrp::storage
