// Fuzzes the proof-of-storage parser and verifier (storage/proof.h), the input of
// `dfrp-storage verify-proof`.
//
//   1. Any bytes: DecodeProof must not crash; whatever it accepts must verify (or fail)
//      without crashing against its own root, and must survive a JSON and a binary round
//      trip unchanged.
//   2. Soundness: a real audit over a payload taken from the input is encoded, then one byte
//      of the encoding (position and value from the input) is changed. If the result still
//      decodes and verifies against the true root, every leaf it carries must be the true
//      leaf: no mutation may make wrong bytes pass.
#include <cstdint>
#include <string>
#include <vector>

#include "dfrp/core/bytes.h"
#include "dfrp/crypto/merkle.h"
#include "dfrp/storage/proof.h"
#include "fuzz_util.h"

namespace {

using dfrp::storage::ProofSet;

void RoundTrip(std::string_view bytes) {
  auto p = dfrp::storage::DecodeProof(bytes);
  if (!p) return;
  (void)dfrp::storage::VerifyProofSet(*p, p->root);
  auto j = dfrp::storage::DecodeProof(dfrp::storage::EncodeProofJson(*p));
  DFRP_FUZZ_CHECK(j.has_value() && *j == *p);
  auto b = dfrp::storage::DecodeProof(dfrp::storage::EncodeProofBinary(*p));
  DFRP_FUZZ_CHECK(b.has_value() && *b == *p);
}

void Soundness(std::string_view input) {
  if (input.size() < 8) return;
  const uint32_t pos = dfrp::core::GetU32(input.data());
  const uint8_t value = static_cast<uint8_t>(input[4]);
  const bool json = input[5] & 1;
  const std::string payload(input.substr(6));
  constexpr uint32_t kLeaf = 512;
  std::vector<dfrp::crypto::Hash> leaves(dfrp::crypto::LeafCount(payload.size(), kLeaf));
  dfrp::crypto::HashLeaves(payload, kLeaf, leaves, 1);
  ProofSet p;
  p.shard_id.bytes[0] = static_cast<uint8_t>(payload.size());
  p.root = dfrp::crypto::RootFromLeafHashes(leaves);
  p.tree_size = leaves.size();
  p.leaf_size = kLeaf;
  p.seed = std::string(input.substr(0, 4));
  for (uint64_t i : dfrp::storage::ChallengeIndices(*p.seed, p.shard_id, p.tree_size, 3)) {
    dfrp::storage::LeafProof lp;
    lp.leaf_index = i;
    lp.leaf = payload.substr(i * kLeaf, kLeaf);
    lp.path = dfrp::crypto::ProofFromLeafHashes(leaves, i).path;
    p.proofs.push_back(lp);
  }
  if (p.proofs.empty()) return;
  DFRP_FUZZ_CHECK(dfrp::storage::VerifyProofSet(p, p.root).ok());
  std::string enc =
      json ? dfrp::storage::EncodeProofJson(p, -1) : dfrp::storage::EncodeProofBinary(p);
  enc[pos % enc.size()] = static_cast<char>(value);
  auto q = dfrp::storage::DecodeProof(enc);
  if (!q || !dfrp::storage::VerifyProofSet(*q, p.root).ok()) return;
  for (const auto& lp : q->proofs)
    DFRP_FUZZ_CHECK(lp.leaf == payload.substr(lp.leaf_index * kLeaf, kLeaf));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in = dfrp::fuzz::AsView(data, size);
  RoundTrip(in);
  if (size < 64 * 1024) Soundness(in);
  return 0;
}
