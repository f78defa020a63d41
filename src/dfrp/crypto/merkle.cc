#include "dfrp/crypto/merkle.h"

#include <algorithm>
#include <cstring>
#include <thread>

namespace dfrp::crypto {

namespace {

// Below this many bytes the thread start-up costs more than it saves.
constexpr size_t kParallelThreshold = 1 << 20;

void HashLeavesRange(std::string_view data, uint32_t leaf_size, std::span<Hash> out, uint64_t first,
                     uint64_t last) {
  Sha256 h;
  static constexpr char kLeafPrefix = 0x00;
  for (uint64_t i = first; i < last; ++i) {
    size_t off = static_cast<size_t>(i) * leaf_size;
    size_t len = std::min<size_t>(leaf_size, data.size() - off);
    h.Update(std::string_view(&kLeafPrefix, 1));
    h.Update(data.substr(off, len));
    out[i] = h.Final();
  }
}

uint64_t LargestPowerOfTwoBelow(uint64_t n) {  // n >= 2
  uint64_t k = 1;
  while (k << 1 < n) k <<= 1;
  return k;
}

}  // namespace

Hash LeafHash(std::string_view chunk) {
  thread_local Sha256 h;
  static constexpr char kPrefix = 0x00;
  h.Update(std::string_view(&kPrefix, 1));
  h.Update(chunk);
  return h.Final();
}

Hash NodeHash(const Hash& left, const Hash& right) {
  char buf[65];
  buf[0] = 0x01;
  std::memcpy(buf + 1, left.data(), 32);
  std::memcpy(buf + 33, right.data(), 32);
  return Sha256Of(std::string_view(buf, sizeof(buf)));
}

Hash EmptyRoot() { return Sha256Of(std::string_view()); }

uint64_t LeafCount(uint64_t size, uint32_t leaf_size) {
  return size == 0 ? 0 : (size + leaf_size - 1) / leaf_size;
}

void HashLeaves(std::string_view data, uint32_t leaf_size, std::span<Hash> out, int threads) {
  const uint64_t n = LeafCount(data.size(), leaf_size);
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (data.size() < kParallelThreshold || threads == 1 || n < 2) {
    HashLeavesRange(data, leaf_size, out, 0, n);
    return;
  }
  const uint64_t t = std::min<uint64_t>(static_cast<uint64_t>(threads), n);
  const uint64_t per = (n + t - 1) / t;
  std::vector<std::jthread> workers;
  for (uint64_t w = 1; w < t; ++w) {
    uint64_t first = w * per, last = std::min(n, first + per);
    if (first >= last) break;
    workers.emplace_back([=] { HashLeavesRange(data, leaf_size, out, first, last); });
  }
  HashLeavesRange(data, leaf_size, out, 0, std::min(n, per));
}

Hash RootFromLeafHashes(std::span<const Hash> leaves) {
  if (leaves.empty()) return EmptyRoot();
  if (leaves.size() == 1) return leaves[0];
  std::vector<Hash> level((leaves.size() + 1) / 2);
  size_t n = leaves.size();
  for (size_t j = 0; j < level.size(); ++j)
    level[j] = (2 * j + 1 < n) ? NodeHash(leaves[2 * j], leaves[2 * j + 1]) : leaves[2 * j];
  n = level.size();
  while (n > 1) {
    size_t next = (n + 1) / 2;
    for (size_t j = 0; j < next; ++j)
      level[j] = (2 * j + 1 < n) ? NodeHash(level[2 * j], level[2 * j + 1]) : level[2 * j];
    n = next;
  }
  return level[0];
}

Hash MerkleRoot(std::string_view data, uint32_t leaf_size, int threads) {
  std::vector<Hash> leaves(LeafCount(data.size(), leaf_size));
  HashLeaves(data, leaf_size, leaves, threads);
  return RootFromLeafHashes(leaves);
}

std::vector<uint64_t> TreeLevelSizes(uint64_t leaves) {
  std::vector<uint64_t> sizes;
  for (uint64_t n = leaves; n > 1; n = (n + 1) / 2) sizes.push_back(n);
  return sizes;
}

uint64_t TreeLevelsNodeCount(uint64_t leaves) {
  uint64_t total = 0;
  for (uint64_t n : TreeLevelSizes(leaves)) total += n;
  return total;
}

std::vector<Hash> TreeLevels(std::span<const Hash> leaves, Hash* root) {
  std::vector<Hash> out;
  if (leaves.size() <= 1) {
    *root = leaves.empty() ? EmptyRoot() : leaves[0];
    return out;
  }
  out.reserve(TreeLevelsNodeCount(leaves.size()));
  out.insert(out.end(), leaves.begin(), leaves.end());
  size_t start = 0, n = leaves.size();
  while (n > 1) {
    size_t next = (n + 1) / 2;
    if (next == 1) {
      *root = NodeHash(out[start], out[start + 1]);
      break;
    }
    for (size_t j = 0; j < next; ++j) {
      const size_t a = start + 2 * j;
      out.push_back(2 * j + 1 < n ? NodeHash(out[a], out[a + 1]) : out[a]);
    }
    start += n;
    n = next;
  }
  return out;
}

InclusionProof ProofFromLevels(std::span<const Hash> levels, uint64_t tree_size,
                               uint64_t leaf_index) {
  InclusionProof p{leaf_index, tree_size, {}};
  uint64_t start = 0, i = leaf_index;
  for (uint64_t n : TreeLevelSizes(tree_size)) {
    uint64_t sibling = i ^ 1;
    if (sibling < n) p.path.push_back(levels[start + sibling]);
    start += n;
    i >>= 1;
  }
  return p;
}

namespace {
void PathRecursive(std::span<const Hash> d, uint64_t m, std::vector<Hash>* out) {
  if (d.size() <= 1) return;
  uint64_t k = LargestPowerOfTwoBelow(d.size());
  if (m < k) {
    PathRecursive(d.subspan(0, k), m, out);
    out->push_back(RootFromLeafHashes(d.subspan(k)));
  } else {
    PathRecursive(d.subspan(k), m - k, out);
    out->push_back(RootFromLeafHashes(d.subspan(0, k)));
  }
}
}  // namespace

InclusionProof ProofFromLeafHashes(std::span<const Hash> leaves, uint64_t leaf_index) {
  InclusionProof p{leaf_index, leaves.size(), {}};
  if (leaf_index < leaves.size()) PathRecursive(leaves, leaf_index, &p.path);
  return p;
}

bool VerifyInclusion(const Hash& leaf_hash, uint64_t leaf_index, uint64_t tree_size,
                     std::span<const Hash> path, const Hash& root) {
  if (leaf_index >= tree_size) return false;
  uint64_t fn = leaf_index, sn = tree_size - 1;
  Hash r = leaf_hash;
  for (const Hash& p : path) {
    if (sn == 0) return false;
    if ((fn & 1) || fn == sn) {
      r = NodeHash(p, r);
      if (!(fn & 1)) {
        while (!(fn & 1) && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      r = NodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn == 0 && r == root;
}

}  // namespace dfrp::crypto
