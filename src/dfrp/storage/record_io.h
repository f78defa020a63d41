// Reading records back: the prefix (header, root, metadata) with its CRC checked, and the
// payload either fully re-verified (verify, recovery) or streamed leaf by leaf against the
// stored leaf hashes (read), so that no unverified byte is ever handed out.
//
// Thread-safety: free functions; the file may be shared by concurrent readers.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "dfrp/core/file_system.h"
#include "dfrp/core/status.h"
#include "dfrp/crypto/sha256.h"
#include "dfrp/storage/format.h"

namespace dfrp::storage {

// How many payload bytes to move at a time for a leaf size: about 8 MiB, in whole leaves.
uint64_t PayloadChunkBytes(uint32_t leaf_size);

struct RecordPrefix {
  RecordHeader header;
  crypto::Hash root{};
  std::string metadata;
};

// Reads and checks the record prefix at `offset` of a segment whose readable size is
// `file_size`: magic, version, field ranges, CRC, and that the whole record fits in the file.
// Corruption with a plain reason otherwise.
core::Result<RecordPrefix> ReadRecordPrefix(const core::RandomAccessFile& file, uint64_t offset,
                                            uint64_t file_size);

// Recomputes the Merkle root (and, with check_tree, the stored tree section) from the
// payload. Corruption naming the part that does not match.
core::Status VerifyRecordBody(const core::RandomAccessFile& file, uint64_t offset,
                              const RecordPrefix& prefix, bool check_tree, int threads,
                              const std::function<void(uint64_t)>& on_bytes = nullptr);

// Streams the payload to sink, checking each leaf against the stored leaf hashes (which are
// themselves checked against the root first). Single-leaf records are checked whole.
core::Status StreamVerifiedPayload(const core::RandomAccessFile& file, uint64_t offset,
                                   const RecordPrefix& prefix, int threads,
                                   const std::function<core::Status(std::string_view)>& sink);

}  // namespace dfrp::storage
