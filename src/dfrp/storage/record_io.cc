#include "dfrp/storage/record_io.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "dfrp/core/bytes.h"
#include "dfrp/crypto/merkle.h"

namespace dfrp::storage {

using core::Err;
using core::Result;
using core::Status;
using crypto::Hash;

uint64_t PayloadChunkBytes(uint32_t leaf_size) {
  constexpr uint64_t kChunkBytes = 8 << 20;
  return std::max<uint64_t>(leaf_size, kChunkBytes / leaf_size * leaf_size);
}

namespace {

std::string HashHex(const Hash& h) { return core::ToHex(crypto::HashBytes(h)); }

}  // namespace

Result<RecordPrefix> ReadRecordPrefix(const core::RandomAccessFile& file, uint64_t offset,
                                      uint64_t file_size) {
  if (offset + kRecordPrefixSize > file_size)
    return Err(Status::Corruption("record header runs past the end of the segment"));
  char fixed[kRecordPrefixSize];
  DFRP_RETURN_IF_ERROR(file.ReadExact(offset, sizeof(fixed), fixed));
  std::string_view header(fixed, kRecordHeaderSize);
  DFRP_ASSIGN_OR_RETURN(RecordHeader h, DecodeRecordHeader(header));
  if (offset + h.record_len() > file_size || h.record_len() < kRecordPrefixSize)
    return Err(Status::Corruption(
        fmt::format("record of {} bytes runs past the end of the segment", h.record_len())));
  RecordPrefix p;
  p.header = h;
  std::memcpy(p.root.data(), fixed + kRecordHeaderSize, kRootSize);
  p.metadata.resize(h.metadata_len);
  DFRP_RETURN_IF_ERROR(
      file.ReadExact(offset + kRecordPrefixSize, h.metadata_len, p.metadata.data()));
  if (!CheckRecordCrc(header, std::string_view(fixed + kRecordHeaderSize, kRootSize), p.metadata))
    return Err(Status::Corruption("record header or metadata is damaged (checksum mismatch)"));
  return p;
}

namespace {

// Reads the payload leaves [first, last) and hashes them into out, in pieces of `chunk` bytes.
Status HashPayloadLeaves(const core::RandomAccessFile& file, uint64_t payload_at,
                         const RecordHeader& h, uint64_t first, uint64_t last, uint64_t chunk,
                         std::span<Hash> out, const std::function<void(uint64_t)>& on_bytes) {
  const uint64_t begin = first * h.leaf_size;
  const uint64_t end = std::min(h.payload_len, last * h.leaf_size);
  std::string buf(static_cast<size_t>(std::min(chunk, end - begin)), '\0');
  for (uint64_t pos = begin; pos < end;) {
    const size_t n = static_cast<size_t>(std::min(chunk, end - pos));
    DFRP_RETURN_IF_ERROR(file.ReadExact(payload_at + pos, n, buf.data()));
    crypto::HashLeaves(std::string_view(buf.data(), n), h.leaf_size, out.subspan(pos / h.leaf_size),
                       1);
    pos += n;
    if (on_bytes) on_bytes(n);
  }
  return Status::OK();
}

// Hashes every leaf of the payload on `threads` threads, each reading its own contiguous
// range so that copying from the page cache runs in parallel with hashing too.
Status HashAllLeaves(const core::RandomAccessFile& file, uint64_t offset, const RecordHeader& h,
                     int threads, std::span<Hash> out,
                     const std::function<void(uint64_t)>& on_bytes) {
  const uint64_t leaves = out.size();
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const uint64_t chunk = PayloadChunkBytes(h.leaf_size) / 2;
  uint64_t t = std::min<uint64_t>(threads, std::max<uint64_t>(1, h.payload_len / chunk));
  t = std::min<uint64_t>(t, std::max<uint64_t>(leaves, 1));
  const uint64_t per = (leaves + t - 1) / std::max<uint64_t>(t, 1);
  std::mutex mu;
  auto report = [&](uint64_t n) {
    if (!on_bytes) return;
    std::lock_guard<std::mutex> lock(mu);
    on_bytes(n);
  };
  std::vector<Status> results(t);
  {
    std::vector<std::jthread> workers;
    for (uint64_t w = 1; w < t; ++w)
      workers.emplace_back([&, w] {
        results[w] = HashPayloadLeaves(file, offset + h.payload_offset(), h, w * per,
                                       std::min(leaves, (w + 1) * per), chunk, out, report);
      });
    results[0] = HashPayloadLeaves(file, offset + h.payload_offset(), h, 0, std::min(leaves, per),
                                   chunk, out, report);
  }
  for (const Status& r : results) DFRP_RETURN_IF_ERROR(r);
  return Status::OK();
}

}  // namespace

Status VerifyRecordBody(const core::RandomAccessFile& file, uint64_t offset, const RecordPrefix& p,
                        bool check_tree, int threads,
                        const std::function<void(uint64_t)>& on_bytes) {
  const RecordHeader& h = p.header;
  std::vector<Hash> leaf_hashes(crypto::LeafCount(h.payload_len, h.leaf_size));
  DFRP_RETURN_IF_ERROR(HashAllLeaves(file, offset, h, threads, leaf_hashes, on_bytes));
  Hash root;
  std::vector<Hash> levels = crypto::TreeLevels(leaf_hashes, &root);
  if (root != p.root)
    return Status::Corruption(fmt::format("payload does not match its Merkle root {} (computed {})",
                                          HashHex(p.root), HashHex(root)));
  if (check_tree && h.tree_len > 0) {
    std::string stored(static_cast<size_t>(h.tree_len), '\0');
    DFRP_RETURN_IF_ERROR(file.ReadExact(offset + h.tree_offset(), stored.size(), stored.data()));
    for (size_t i = 0; i < levels.size(); ++i) {
      if (std::memcmp(stored.data() + i * kRootSize, levels[i].data(), kRootSize) != 0)
        return Status::Corruption(
            fmt::format("stored Merkle tree node {} is damaged (the payload itself verifies)", i));
    }
  }
  return Status::OK();
}

Status StreamVerifiedPayload(const core::RandomAccessFile& file, uint64_t offset,
                             const RecordPrefix& p, int threads,
                             const std::function<Status(std::string_view)>& sink) {
  const RecordHeader& h = p.header;
  const uint64_t leaves = crypto::LeafCount(h.payload_len, h.leaf_size);
  if (leaves <= 1) {
    std::string payload(static_cast<size_t>(h.payload_len), '\0');
    DFRP_RETURN_IF_ERROR(
        file.ReadExact(offset + h.payload_offset(), payload.size(), payload.data()));
    Hash root = leaves == 0 ? crypto::EmptyRoot() : crypto::LeafHash(payload);
    if (root != p.root)
      return Status::Corruption(
          fmt::format("payload does not match its Merkle root {}", HashHex(p.root)));
    return payload.empty() ? Status::OK() : sink(payload);
  }
  // The leaf level is the first part of the tree section; check it against the root.
  std::vector<Hash> stored(leaves);
  DFRP_RETURN_IF_ERROR(file.ReadExact(offset + h.tree_offset(), leaves * kRootSize,
                                      reinterpret_cast<char*>(stored.data())));
  if (crypto::RootFromLeafHashes(stored) != p.root)
    return Status::Corruption("stored leaf hashes do not match the Merkle root");
  const uint64_t chunk = PayloadChunkBytes(h.leaf_size);
  std::string buf(static_cast<size_t>(std::min<uint64_t>(chunk, h.payload_len)), '\0');
  std::vector<Hash> got(chunk / h.leaf_size);
  for (uint64_t done = 0; done < h.payload_len;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(chunk, h.payload_len - done));
    DFRP_RETURN_IF_ERROR(file.ReadExact(offset + h.payload_offset() + done, n, buf.data()));
    const uint64_t first = done / h.leaf_size;
    const uint64_t count = crypto::LeafCount(n, h.leaf_size);
    crypto::HashLeaves(std::string_view(buf.data(), n), h.leaf_size,
                       std::span<Hash>(got).subspan(0, count), threads);
    for (uint64_t i = 0; i < count; ++i)
      if (got[i] != stored[first + i])
        return Status::Corruption(fmt::format(
            "leaf {} (payload bytes {}..{}) does not verify", first + i, (first + i) * h.leaf_size,
            std::min(h.payload_len, (first + i + 1) * h.leaf_size) - 1));
    DFRP_RETURN_IF_ERROR(sink(std::string_view(buf.data(), n)));
    done += n;
  }
  return Status::OK();
}

}  // namespace dfrp::storage
