// BLS12-381 signatures through blst, ciphersuite BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_
// in the "minimal public key" variant (as Ethereum): public keys are 48-byte compressed G1
// points, signatures 96-byte compressed G2 points, secret keys 32-byte big-endian scalars.
// Proofs of possession sign the compressed public key under the POP tag (kPopDst).
//
// Validation: PublicKey::FromBytes and Signature::FromBytes are the only ways to build a key
// or signature from outside bytes; they reject a wrong length, a bad encoding, a point off the
// curve or outside the prime-order subgroup, and the point at infinity. Every later operation
// can therefore trust its inputs. Failures are Status values: InvalidArgument for bytes that
// are not a valid key/signature, Corruption for a signature that does not verify.
//
// Aggregation safety: FastAggregateVerify (one message, many signers) takes only
// ProvenPublicKey values, which exist only after a proof of possession verified, so a
// rogue-key aggregate cannot be built through this API.
//
// Thread-safety: all types are values; const methods and free functions are safe to call from
// several threads at once. SecretKey memory is allocated with sodium_malloc (guarded, locked
// where the OS allows) and wiped when freed.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dfrp/core/bytes.h"
#include "dfrp/core/status.h"

namespace dfrp::crypto::bls {

using core::ByteSpan;
using core::Result;
using core::Status;

inline constexpr size_t kSecretKeySize = 32;
inline constexpr size_t kPublicKeySize = 48;
inline constexpr size_t kSignatureSize = 96;
inline constexpr std::string_view kSigDst = "BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";
inline constexpr std::string_view kPopDst = "BLS_POP_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_";

// Storage big enough for blst's affine points (checked against blst's types in bls.cc), so
// this header does not expose blst.h.
struct G1Affine {
  alignas(8) std::array<uint8_t, 96> raw;
};
struct G2Affine {
  alignas(8) std::array<uint8_t, 192> raw;
};

class PublicKey {
 public:
  // Decodes and validates a 48-byte compressed G1 point (see the header comment).
  static Result<PublicKey> FromBytes(ByteSpan bytes);
  static Result<PublicKey> FromHex(std::string_view hex);
  const std::array<uint8_t, kPublicKeySize>& bytes() const { return bytes_; }
  std::string ToHex() const { return core::ToHex(bytes_); }
  const G1Affine& point() const { return point_; }
  bool operator==(const PublicKey& o) const { return bytes_ == o.bytes_; }

 private:
  friend class SecretKey;
  friend Result<PublicKey> AggregatePublicKeysUnchecked(std::span<const PublicKey> keys);
  PublicKey() = default;
  std::array<uint8_t, kPublicKeySize> bytes_{};
  G1Affine point_{};
};

class Signature {
 public:
  // Decodes and validates a 96-byte compressed G2 point (see the header comment).
  static Result<Signature> FromBytes(ByteSpan bytes);
  static Result<Signature> FromHex(std::string_view hex);
  const std::array<uint8_t, kSignatureSize>& bytes() const { return bytes_; }
  std::string ToHex() const { return core::ToHex(bytes_); }
  const G2Affine& point() const { return point_; }
  bool operator==(const Signature& o) const { return bytes_ == o.bytes_; }

 private:
  friend class SecretKey;
  friend Result<Signature> AggregateSignatures(std::span<const Signature> sigs);
  Signature() = default;
  std::array<uint8_t, kSignatureSize> bytes_{};
  G2Affine point_{};
};

// A public key whose proof of possession has verified; the only key type that
// FastAggregateVerify accepts.
class ProvenPublicKey {
 public:
  const PublicKey& key() const { return key_; }

 private:
  friend Result<ProvenPublicKey> VerifyPossession(const PublicKey& key, const Signature& pop);
  explicit ProvenPublicKey(PublicKey key) : key_(std::move(key)) {}
  PublicKey key_;
};

// A secret scalar in wiped memory. Move-only.
class SecretKey {
 public:
  // IETF KeyGen (blst_keygen) from 32 bytes of OS randomness. Internal error only if the OS
  // refuses randomness.
  static Result<SecretKey> Generate();
  // IETF KeyGen from caller-supplied key material (at least 32 bytes).
  static Result<SecretKey> FromIkm(ByteSpan ikm);
  // A 32-byte big-endian scalar; InvalidArgument if it is zero or not below the group order.
  static Result<SecretKey> FromBytes(ByteSpan bytes);

  SecretKey(SecretKey&&) noexcept = default;
  SecretKey& operator=(SecretKey&&) noexcept = default;
  ~SecretKey() = default;

  // Writes the 32-byte big-endian scalar to `out` (the caller wipes it).
  void ExportTo(std::span<uint8_t, kSecretKeySize> out) const;
  PublicKey GetPublicKey() const;
  // Sign(msg) under kSigDst.
  Signature Sign(ByteSpan message) const;
  // PopProve: signs the compressed public key under kPopDst.
  Signature ProvePossession() const;

 private:
  struct Scalar;
  struct Free {
    void operator()(Scalar* s) const;
  };
  explicit SecretKey(std::unique_ptr<Scalar, Free> s) : scalar_(std::move(s)) {}
  static Result<std::unique_ptr<Scalar, Free>> Allocate();
  std::unique_ptr<Scalar, Free> scalar_;
};

// Ok if `sig` is a valid signature of `message` by `key`; Corruption otherwise.
Status Verify(const PublicKey& key, ByteSpan message, const Signature& sig);

// PopVerify: a ProvenPublicKey if `pop` proves possession of `key`; Corruption otherwise.
Result<ProvenPublicKey> VerifyPossession(const PublicKey& key, const Signature& pop);

// Sum of signatures. InvalidArgument for an empty list or if the sum is the point at infinity.
Result<Signature> AggregateSignatures(std::span<const Signature> sigs);

// Sum of public keys WITHOUT any proof-of-possession check: only for building test cases and
// for callers that hold their own proofs. InvalidArgument on empty input or infinity.
Result<PublicKey> AggregatePublicKeysUnchecked(std::span<const PublicKey> keys);

// FastAggregateVerify: every key signed the same `message`; `aggregate` is their summed
// signature. InvalidArgument on no keys; Corruption if it does not verify.
Status FastAggregateVerify(std::span<const ProvenPublicKey> keys, ByteSpan message,
                           const Signature& aggregate);

// AggregateVerify: keys[i] signed messages[i]; the messages must be pairwise distinct
// (InvalidArgument names the first duplicate). Corruption if it does not verify.
Status AggregateVerify(std::span<const PublicKey> keys, std::span<const ByteSpan> messages,
                       const Signature& aggregate);

struct SignedMessage {
  const PublicKey* key;
  ByteSpan message;
  const Signature* signature;
};

// Verifies many independent (key, message, signature) triples at once by a random linear
// combination (random odd 64-bit scalars from the OS), spread over `threads` threads (0: the
// hardware concurrency). Ok iff every triple verifies, except with probability about 2^-63.
// On failure, the triples are re-checked one by one and the Corruption message names the
// first bad index. An empty batch is ok.
Status BatchVerify(std::span<const SignedMessage> batch, unsigned threads = 0);

// Each triple's own answer, as Verify would give it: the batch is checked at once, and only
// when it does not hold is each triple checked alone. The answers keep the batch's order.
std::vector<bool> BatchVerifyEach(std::span<const SignedMessage> batch, unsigned threads = 0);

}  // namespace dfrp::crypto::bls
