// Proofs of storage: a shard's leaf with its Merkle audit path, and audits (K such proofs for
// leaves chosen by a seed the prover does not control). docs/FORMAT.md ("Proofs") describes
// the JSON and binary encodings byte by byte.
//
// A proof is checked with nothing but the shard's Merkle root: the leaf bytes are hashed
// (H(0x00 || leaf)), folded up the path with the RFC 9162 rules (crypto::VerifyInclusion),
// and the result must equal the root. For an audit the leaf indices must also be the ones
// the seed derives (ChallengeIndices).
//
// Decoders take untrusted bytes (a file from a peer): any malformed input is a Corruption
// Status naming the field (never a crash), and nothing they accept can make a verifier read
// out of bounds.
//
// Thread-safety: pure functions over values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dfrp/core/status.h"
#include "dfrp/core/uuid.h"
#include "dfrp/crypto/sha256.h"

namespace dfrp::storage {

// Limits a decoder enforces (a proof is small; anything past these is not one of ours).
inline constexpr size_t kMaxProofPath = 64;  // a tree of 2^64 leaves has 64 levels
inline constexpr size_t kMaxAuditChallenges = 1024;
inline constexpr size_t kMaxSeedBytes = 256;
inline constexpr std::string_view kProofMagic = "DFRPPROF";

// One leaf and its audit path.
struct LeafProof {
  uint64_t leaf_index = 0;
  std::string leaf;                // the leaf's bytes (leaf_size, the last leaf may be shorter)
  std::vector<crypto::Hash> path;  // siblings, bottom up

  bool operator==(const LeafProof&) const = default;
};

// A single proof (no seed, one leaf) or an audit answer (a seed and one proof per challenge).
struct ProofSet {
  core::Uuid shard_id;
  crypto::Hash root{};
  uint64_t tree_size = 0;  // leaves
  uint32_t leaf_size = 0;
  std::optional<std::string> seed;  // set for an audit: the challenge seed (raw bytes)
  std::vector<LeafProof> proofs;

  bool is_audit() const { return seed.has_value(); }
  bool operator==(const ProofSet&) const = default;
};

// The K leaf indices an audit with `seed` asks of a shard of `tree_size` leaves:
//   index_j = u64le(SHA-256(seed || shard_id (16 bytes) || u32le(j))[0..8]) mod tree_size
// for j = 0 .. K-1 (repeats allowed). Empty when tree_size is 0.
std::vector<uint64_t> ChallengeIndices(std::string_view seed, const core::Uuid& shard_id,
                                       uint64_t tree_size, uint32_t k);

// How many path nodes a proof for leaf `index` of a `tree_size`-leaf tree has (RFC 9162).
size_t ExpectedPathLength(uint64_t index, uint64_t tree_size);

// Checks the proof set against `root` (and, for an audit, that its indices are the ones its
// seed asks for). Corruption naming what failed: the root, a leaf, a path, an index.
//
// On its own this trusts what the proof says of itself: its shard id, its tree size and how
// many challenges it answers. The root does not bind the tree size (leaf i of an n-leaf tree
// folds like leaf i of some smaller trees), so a prover holding part of a shard could claim
// a smaller tree, grind the shard id, or answer fewer challenges. A verifier must therefore
// check against what it knows independently: VerifyProofAgainst.
core::Status VerifyProofSet(const ProofSet& p, const crypto::Hash& root);

// What a verifier knows of the shard and the challenge, from its own records (the write
// receipt of the shard, the audit it issued).
struct ProofExpectation {
  crypto::Hash root{};
  std::optional<core::Uuid> shard_id;
  std::optional<uint64_t> size;       // payload bytes
  std::optional<uint32_t> leaf_size;  // with size, fixes the tree size and the last leaf's length
  std::optional<std::string> seed;    // the audit's seed (raw bytes)
  std::optional<uint32_t> challenges;
};

// VerifyProofSet, after checking the proof against every fact the verifier gives. An audit
// needs all of them (shard id, size, leaf size, seed, challenge count): without them it
// proves nothing, and that is InvalidArgument naming what is missing. A single proof with
// only the root proves that its leaf bytes belong to the shard; with size and leaf size it
// also proves the leaf's position.
core::Status VerifyProofAgainst(const ProofSet& p, const ProofExpectation& e);

// Encodings. JSON: one object (docs/FORMAT.md); binary: magic "DFRPPROF" and fixed fields.
std::string EncodeProofJson(const ProofSet& p, int indent = 2);
std::string EncodeProofBinary(const ProofSet& p);
// Decodes either encoding (binary when the bytes start with the magic). Corruption naming
// the field for anything malformed: truncated, trailing bytes, bad hex, a field out of
// range (leaf size, tree size, index, leaf length, path length, seed or challenge count).
core::Result<ProofSet> DecodeProof(std::string_view bytes);

}  // namespace dfrp::storage
