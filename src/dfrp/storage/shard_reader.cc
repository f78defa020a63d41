#include "dfrp/storage/shard_reader.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "dfrp/core/bytes.h"
#include "dfrp/crypto/merkle.h"

namespace dfrp::storage {

using core::Err;
using core::Result;
using core::Status;
using crypto::Hash;

uint64_t ShardReader::leaves() const { return crypto::LeafCount(size(), leaf_size()); }

Status ShardReader::Context(const Status& s) const {
  return s.WithContext(fmt::format("shard {} (volume {}, {} at offset {})", loc_.id.ToString(),
                                   loc_.volume, file_->path(), loc_.offset));
}

Status ShardReader::Fetch(uint64_t at, size_t n, char* dst, IoMode mode) const {
  return mode == IoMode::kCachedOnly ? file_->ReadExactCached(loc_.offset + at, n, dst)
                                     : file_->ReadExact(loc_.offset + at, n, dst);
}

Result<Hash> ShardReader::ReadNode(uint64_t node, IoMode mode) const {
  Hash h;
  DFRP_RETURN_IF_ERROR(
      Fetch(prefix_.header.tree_offset() + node * 32, 32, reinterpret_cast<char*>(h.data()), mode));
  return h;
}

Status ShardReader::VerifyLeafHashes(uint64_t first, std::span<const Hash> hashes,
                                     IoMode mode) const {
  const uint64_t n = leaves();
  if (n <= 1) {
    // No tree section: the root is the leaf hash itself.
    if (hashes.size() != 1 || first != 0 || hashes[0] != root())
      return Status::Corruption("the payload does not match its Merkle root");
    return Status::OK();
  }
  // Fold [lo, hi] up one level at a time, borrowing the stored neighbour on either side when
  // the range does not cover a whole pair. The last stored level has two nodes; their parent
  // is the root.
  std::vector<Hash> cur(hashes.begin(), hashes.end());
  uint64_t lo = first, hi = first + hashes.size() - 1, start = 0;
  for (uint64_t size : crypto::TreeLevelSizes(n)) {
    if (lo & 1) {
      DFRP_ASSIGN_OR_RETURN(Hash left, ReadNode(start + lo - 1, mode));
      cur.insert(cur.begin(), left);
      --lo;
    }
    if (!(hi & 1) && hi + 1 < size) {
      DFRP_ASSIGN_OR_RETURN(Hash right, ReadNode(start + hi + 1, mode));
      cur.push_back(right);
      ++hi;
    }
    std::vector<Hash> up;
    up.reserve(cur.size() / 2 + 1);
    for (size_t j = 0; j < cur.size(); j += 2)
      up.push_back(j + 1 < cur.size() ? crypto::NodeHash(cur[j], cur[j + 1]) : cur[j]);
    cur = std::move(up);
    start += size;
    lo >>= 1;
    hi >>= 1;
  }
  if (cur.size() != 1 || cur[0] != root())
    return Status::Corruption("the leaves do not verify against the Merkle root");
  return Status::OK();
}

Status ShardReader::ReadLeaves(uint64_t first, uint64_t last, std::string* buf, int threads,
                               IoMode mode) const {
  const RecordHeader& h = prefix_.header;
  buf->resize(
      static_cast<size_t>(std::min(h.payload_len, last * h.leaf_size) - first * h.leaf_size));
  return ReadLeavesInto(first, last, buf->data(), threads, mode);
}

Status ShardReader::ReadLeavesInto(uint64_t first, uint64_t last, char* dst, int threads,
                                   IoMode mode) const {
  const RecordHeader& h = prefix_.header;
  const uint64_t begin = first * h.leaf_size;
  const uint64_t end = std::min(h.payload_len, last * h.leaf_size);
  const std::string_view data(dst, static_cast<size_t>(end - begin));
  DFRP_RETURN_IF_ERROR(Fetch(h.payload_offset() + begin, data.size(), dst, mode));
  std::vector<Hash> hashes(last - first);
  crypto::HashLeaves(data, h.leaf_size, hashes, threads);
  Status whole = VerifyLeafHashes(first, hashes, mode);
  if (whole.ok() || whole.IsBusy()) return whole;
  // Name the first leaf that fails on its own (the range may hold good leaves too).
  for (uint64_t i = first; i < last; ++i)
    if (Status one = VerifyLeafHashes(i, std::span<const Hash>(&hashes[i - first], 1), mode);
        one.IsBusy())
      return one;
    else if (!one.ok())
      return Status::Corruption(
          fmt::format("leaf {} (payload bytes {}..{}) does not verify against the Merkle root", i,
                      i * h.leaf_size, std::min(h.payload_len, (i + 1) * h.leaf_size) - 1));
  return Status::Corruption(
      "the stored Merkle tree around these leaves is damaged (the leaves verify on their own)");
}

Status ShardReader::ReadRange(uint64_t offset, uint64_t length,
                              const std::function<Status(std::string_view)>& sink, int threads,
                              IoMode mode) const {
  if (offset > size() || length > size() - offset)
    return Status::InvalidArgument(fmt::format(
        "range {}:{} runs past the end of shard {} ({} bytes): give OFFSET:LENGTH within it",
        offset, length, loc_.id.ToString(), size()));
  if (length == 0) return Status::OK();
  const uint64_t ls = leaf_size();
  const uint64_t chunk_leaves = PayloadChunkBytes(leaf_size()) / ls;
  const uint64_t last_leaf = (offset + length - 1) / ls + 1;
  std::string buf;
  for (uint64_t first = offset / ls; first < last_leaf; first += chunk_leaves) {
    const uint64_t last = std::min(last_leaf, first + chunk_leaves);
    Status s = ReadLeaves(first, last, &buf, threads, mode);
    if (!s.ok()) return s.IsCorruption() ? Context(s) : s;
    const uint64_t from = std::max(offset, first * ls) - first * ls;
    const uint64_t to = std::min(offset + length, last * ls) - first * ls;
    DFRP_RETURN_IF_ERROR(sink(std::string_view(buf).substr(from, to - from)));
  }
  return Status::OK();
}

Result<size_t> ShardReader::ReadAt(uint64_t offset, size_t length, char* dst, int threads) const {
  if (offset >= size() || length == 0) return size_t{0};
  const uint64_t n = std::min<uint64_t>(length, size() - offset);
  const uint64_t ls = leaf_size();
  if (offset % ls == 0 && (n % ls == 0 || offset + n == size()) &&
      n <= PayloadChunkBytes(leaf_size())) {
    // Whole leaves: read and verify them in place, with no copy. On failure dst may hold
    // unverified bytes, but the caller gets an error and must not use them.
    Status s = ReadLeavesInto(offset / ls, (offset + n + ls - 1) / ls, dst, threads);
    if (!s.ok()) return Err(s.IsCorruption() ? Context(s) : s);
    return static_cast<size_t>(n);
  }
  size_t done = 0;
  DFRP_RETURN_IF_ERROR(ReadRange(
      offset, n,
      [&](std::string_view piece) {
        std::memcpy(dst + done, piece.data(), piece.size());
        done += piece.size();
        return Status::OK();
      },
      threads));
  return done;
}

Result<LeafProof> ShardReader::ProveLeaf(uint64_t leaf) const {
  const uint64_t n = leaves();
  if (leaf >= n)
    return Err(Status::InvalidArgument(
        n == 0 ? fmt::format("shard {} is empty: it has no leaf to prove", loc_.id.ToString())
               : fmt::format("leaf {} is beyond shard {}, which has {} leaves (0 to {})", leaf,
                             loc_.id.ToString(), n, n - 1)));
  const RecordHeader& h = prefix_.header;
  LeafProof p;
  p.leaf_index = leaf;
  const uint64_t begin = leaf * h.leaf_size;
  p.leaf.resize(static_cast<size_t>(std::min<uint64_t>(h.leaf_size, h.payload_len - begin)));
  DFRP_RETURN_IF_ERROR(
      file_->ReadExact(loc_.offset + h.payload_offset() + begin, p.leaf.size(), p.leaf.data()));
  uint64_t start = 0, i = leaf;
  for (uint64_t size : crypto::TreeLevelSizes(n)) {
    if ((i ^ 1) < size) {
      DFRP_ASSIGN_OR_RETURN(Hash sibling, ReadNode(start + (i ^ 1)));
      p.path.push_back(sibling);
    }
    start += size;
    i >>= 1;
  }
  // Hand out only a proof that holds: a damaged leaf or node is the prover's problem to report.
  if (!crypto::VerifyInclusion(crypto::LeafHash(p.leaf), leaf, n, p.path, root()))
    return Err(Context(Status::Corruption(
        fmt::format("leaf {} or its stored path does not verify against the Merkle root: run "
                    "`dfrp-storage verify-shard {}`",
                    leaf, loc_.id.ToString()))));
  return p;
}

Result<ProofSet> ShardReader::Prove(std::span<const uint64_t> leaf_list,
                                    std::optional<std::string> seed) const {
  ProofSet p;
  p.shard_id = loc_.id;
  p.root = root();
  p.tree_size = leaves();
  p.leaf_size = leaf_size();
  p.seed = std::move(seed);
  for (uint64_t leaf : leaf_list) {
    DFRP_ASSIGN_OR_RETURN(LeafProof lp, ProveLeaf(leaf));
    p.proofs.push_back(std::move(lp));
  }
  return p;
}

}  // namespace dfrp::storage
