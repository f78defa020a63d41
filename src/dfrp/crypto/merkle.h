// Merkle trees over a payload, exactly as ../shared/DESIGN.md fixes them:
//   leaves are the payload cut into `leaf_size` chunks (the last may be short);
//   leaf hash H(0x00 || chunk), node hash H(0x01 || left || right);
//   shape as RFC 9162 section 2.1 (split at the largest power of two below n);
//   the root of an empty payload is H("").
//
// The RFC 9162 shape equals the bottom-up construction that pairs nodes left to right and
// promotes an unpaired last node unchanged; TreeLevels() stores the tree that way, which lets
// a proof for any leaf be read off the stored levels without rehashing the payload.
//
// Thread-safety: all functions are pure; HashLeaves may use several threads internally.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "dfrp/crypto/sha256.h"

namespace dfrp::crypto {

Hash LeafHash(std::string_view chunk);
Hash NodeHash(const Hash& left, const Hash& right);
Hash EmptyRoot();

// Number of leaves of a payload: ceil(size / leaf_size); 0 for an empty payload.
uint64_t LeafCount(uint64_t size, uint32_t leaf_size);

// Hashes the leaves of `data` (whose first leaf is leaf number 0 of its tree) into out, which
// must hold LeafCount(data.size(), leaf_size) hashes. Uses up to `threads` threads when the
// data is large enough to gain from it (0: one per CPU).
void HashLeaves(std::string_view data, uint32_t leaf_size, std::span<Hash> out, int threads = 0);

// The root over a list of leaf hashes (EmptyRoot() when there are none).
Hash RootFromLeafHashes(std::span<const Hash> leaves);

// Convenience: root of a whole in-memory payload.
Hash MerkleRoot(std::string_view data, uint32_t leaf_size, int threads = 0);

// Stored tree: the hashes of every level below the root, level 0 (the leaves) first, each
// level holding ceil(previous / 2) nodes (an unpaired last node is carried up unchanged).
// Empty when there is at most one leaf (the root alone describes the tree).
uint64_t TreeLevelsNodeCount(uint64_t leaves);
// Sizes of each stored level, leaves first.
std::vector<uint64_t> TreeLevelSizes(uint64_t leaves);
// Builds the stored levels from the leaf hashes; returns them concatenated and sets *root.
std::vector<Hash> TreeLevels(std::span<const Hash> leaves, Hash* root);

// An RFC 9162 inclusion proof (audit path) for one leaf.
struct InclusionProof {
  uint64_t leaf_index = 0;
  uint64_t tree_size = 0;  // leaves
  std::vector<Hash> path;  // bottom up
};

// Reads the audit path of `leaf_index` off stored levels (as TreeLevels returns them).
InclusionProof ProofFromLevels(std::span<const Hash> levels, uint64_t tree_size,
                               uint64_t leaf_index);
// Builds the audit path from the leaf hashes alone (RFC 9162 PATH); slower, for tests and
// for trees that were not stored.
InclusionProof ProofFromLeafHashes(std::span<const Hash> leaves, uint64_t leaf_index);

// Checks an audit path against a root (RFC 9162 section 2.1.3.2). False for any mismatch,
// an index beyond the tree, or a path of the wrong length.
bool VerifyInclusion(const Hash& leaf_hash, uint64_t leaf_index, uint64_t tree_size,
                     std::span<const Hash> path, const Hash& root);

}  // namespace dfrp::crypto
