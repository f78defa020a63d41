// Fuzzes Merkle inclusion proofs (RFC 9162 section 2.1.3).
//
// Input: u64 leaf_index | u64 tree_size | 32-byte leaf hash | 32-byte root | path, 32 bytes
// per node (a short tail is ignored).
//   1. VerifyInclusion on the raw values must not crash, whatever the index, size and path.
//   2. A real tree of 1..70 leaves (size and leaf chosen by the input) is built: the proof
//      read off the stored levels (ProofFromLevels) equals the one built from the leaf hashes
//      (ProofFromLeafHashes), TreeLevels and RootFromLeafHashes agree on the root, and the
//      proof verifies; with one bit of the path flipped, a node dropped, a node added, or a
//      wrong leaf hash, it must not.
#include <cstdint>
#include <cstring>
#include <vector>

#include "dfrp/core/bytes.h"
#include "dfrp/crypto/merkle.h"
#include "dfrp/crypto/sha256.h"
#include "fuzz_util.h"

namespace {

using dfrp::crypto::Hash;

Hash TakeHash(const uint8_t* p) {
  Hash h;
  std::memcpy(h.data(), p, h.size());
  return h;
}

void CheckRealTree(uint64_t a, uint64_t b, uint32_t flip, const Hash& salt) {
  using namespace dfrp::crypto;
  const uint64_t n = 1 + a % 70;
  const uint64_t m = b % n;
  // Distinct leaf hashes without hashing: the salt with the leaf number in its first bytes.
  std::vector<Hash> leaves(n, salt);
  for (uint64_t i = 0; i < n; ++i)
    for (int k = 0; k < 8; ++k) leaves[i][k] ^= static_cast<uint8_t>(i >> (8 * k));
  Hash root;
  std::vector<Hash> levels = TreeLevels(leaves, &root);
  DFRP_FUZZ_CHECK(root == RootFromLeafHashes(leaves));
  DFRP_FUZZ_CHECK(levels.size() == TreeLevelsNodeCount(n));
  InclusionProof from_levels = ProofFromLevels(levels, n, m);
  InclusionProof from_leaves = ProofFromLeafHashes(leaves, m);
  DFRP_FUZZ_CHECK(from_levels.path == from_leaves.path);
  DFRP_FUZZ_CHECK(VerifyInclusion(leaves[m], m, n, from_levels.path, root));

  std::vector<Hash> path = from_levels.path;
  if (!path.empty()) {
    std::vector<Hash> bad = path;
    const uint32_t bit = flip % (bad.size() * 256);
    bad[bit / 256][(bit % 256) / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    DFRP_FUZZ_CHECK(!VerifyInclusion(leaves[m], m, n, bad, root));
    bad = path;
    bad.pop_back();
    DFRP_FUZZ_CHECK(!VerifyInclusion(leaves[m], m, n, bad, root));
  }
  std::vector<Hash> longer = path;
  longer.push_back(salt);
  DFRP_FUZZ_CHECK(!VerifyInclusion(leaves[m], m, n, longer, root));
  Hash other = leaves[m];
  other[flip % 32] ^= 1;
  DFRP_FUZZ_CHECK(!VerifyInclusion(other, m, n, path, root));
  DFRP_FUZZ_CHECK(!VerifyInclusion(leaves[m], n, n, path, root));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr size_t kFixed = 8 + 8 + 32 + 32;
  if (size < kFixed) return 0;
  const uint64_t leaf_index = dfrp::core::GetU64(reinterpret_cast<const char*>(data));
  const uint64_t tree_size = dfrp::core::GetU64(reinterpret_cast<const char*>(data) + 8);
  const Hash leaf = TakeHash(data + 16);
  const Hash root = TakeHash(data + 48);
  std::vector<Hash> path;
  for (size_t off = kFixed; off + 32 <= size && path.size() < 128; off += 32)
    path.push_back(TakeHash(data + off));
  (void)dfrp::crypto::VerifyInclusion(leaf, leaf_index, tree_size, path, root);

  CheckRealTree(tree_size, leaf_index, static_cast<uint32_t>(size * 2654435761u) ^ leaf[0], root);
  return 0;
}
