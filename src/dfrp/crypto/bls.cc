#include "dfrp/crypto/bls.h"

#include <fmt/format.h>
#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "blst.h"
#include "dfrp/core/thread_annotations.h"

namespace dfrp::crypto::bls {
namespace {

static_assert(sizeof(blst_p1_affine) <= sizeof(G1Affine));
static_assert(sizeof(blst_p2_affine) <= sizeof(G2Affine));
static_assert(alignof(blst_p1_affine) <= alignof(G1Affine));
static_assert(alignof(blst_p2_affine) <= alignof(G2Affine));

const blst_p1_affine* P1(const G1Affine& g) {
  return reinterpret_cast<const blst_p1_affine*>(g.raw.data());
}
blst_p1_affine* P1(G1Affine& g) { return reinterpret_cast<blst_p1_affine*>(g.raw.data()); }
const blst_p2_affine* P2(const G2Affine& g) {
  return reinterpret_cast<const blst_p2_affine*>(g.raw.data());
}
blst_p2_affine* P2(G2Affine& g) { return reinterpret_cast<blst_p2_affine*>(g.raw.data()); }

// The last kCapacity encodings that passed FromBytes's full validation (decompression, not
// infinity, subgroup check), with the point they decode to. A message's keys and signatures
// are decoded where the message is parsed and again where it is verified, and an authority
// meets the same order's in the order, its certificate and its peers' logs: each is checked
// once. Only what passed is kept, so a hit answers exactly what the check would.
template <typename T, size_t N>
class ValidatedPoints {
 public:
  std::optional<T> Find(const uint8_t* bytes) EXCLUDES(mu_) {
    std::array<uint8_t, N> k;
    std::memcpy(k.data(), bytes, N);
    core::MutexLock lock(&mu_);
    auto it = points_.find(k);
    if (it == points_.end()) return std::nullopt;
    return it->second;
  }
  void Add(const std::array<uint8_t, N>& k, const T& value) EXCLUDES(mu_) {
    core::MutexLock lock(&mu_);
    if (points_.contains(k)) return;
    if (ring_.size() < kCapacity) {
      ring_.push_back(k);
    } else {
      points_.erase(ring_[next_]);  // the oldest goes
      ring_[next_] = k;
      next_ = (next_ + 1) % kCapacity;
    }
    points_.emplace(k, value);
  }

 private:
  static constexpr size_t kCapacity = 4096;
  // SipHash under a key drawn at start: points whose encodings collide in one bucket cannot
  // be made on purpose (valid points are cheap to make, so the raw bytes would not do).
  struct Hasher {
    const unsigned char* key;
    size_t operator()(const std::array<uint8_t, N>& a) const {
      unsigned char out[crypto_shorthash_BYTES];
      crypto_shorthash(out, a.data(), N, key);
      size_t h;
      std::memcpy(&h, out, sizeof h);
      return h;
    }
  };
  static const unsigned char* HashKey() {
    static const auto* key = [] {
      auto* k = new std::array<unsigned char, crypto_shorthash_KEYBYTES>;
      if (sodium_init() < 0) std::abort();  // libsodium cannot start: nothing else could
      randombytes_buf(k->data(), k->size());
      return k;
    }();
    return key->data();
  }
  core::Mutex mu_;
  std::unordered_map<std::array<uint8_t, N>, T, Hasher> points_ GUARDED_BY(mu_){16,
                                                                                Hasher{HashKey()}};
  std::vector<std::array<uint8_t, N>> ring_ GUARDED_BY(mu_);
  size_t next_ GUARDED_BY(mu_) = 0;
};

const byte* U8(std::string_view s) { return reinterpret_cast<const byte*>(s.data()); }
const byte* U8(ByteSpan s) { return reinterpret_cast<const byte*>(s.data()); }

Status EnsureSodium() {
  static const int rc = sodium_init();
  if (rc < 0) return Status::Internal("libsodium failed to initialise");
  return Status::OK();
}

const char* BlstErrorText(BLST_ERROR e) {
  switch (e) {
    case BLST_SUCCESS:
      return "ok";
    case BLST_BAD_ENCODING:
      return "bad encoding";
    case BLST_POINT_NOT_ON_CURVE:
      return "point not on the curve";
    case BLST_POINT_NOT_IN_GROUP:
      return "point not in the prime-order subgroup";
    case BLST_AGGR_TYPE_MISMATCH:
      return "aggregate type mismatch";
    case BLST_VERIFY_FAIL:
      return "verification failed";
    case BLST_PK_IS_INFINITY:
      return "point at infinity";
    case BLST_BAD_SCALAR:
      return "bad scalar";
  }
  return "unknown blst error";
}

Status DecodeError(std::string_view what, std::string_view why) {
  return Status::InvalidArgument(
      fmt::format("{} is not valid ({}): pass the {} exactly as it was produced", what, why, what));
}

std::vector<byte> RandomScalars(size_t n) {
  std::vector<byte> out(n * 8);
  randombytes_buf(out.data(), out.size());
  for (size_t i = 0; i < n; ++i) out[i * 8] |= 1;  // never zero
  return out;
}

// One thread's share of a batch: a pairing context over triples [begin, end).
struct PairingCtx {
  std::unique_ptr<uint64_t[]> buf;
  blst_pairing* get() { return reinterpret_cast<blst_pairing*>(buf.get()); }
};

PairingCtx NewPairing(std::string_view dst) {
  PairingCtx c{std::make_unique<uint64_t[]>((blst_pairing_sizeof() + 7) / 8)};
  blst_pairing_init(c.get(), true, U8(dst), dst.size());
  return c;
}

bool AccumulateBatch(PairingCtx& ctx, std::span<const SignedMessage> part, const byte* scalars) {
  for (size_t i = 0; i < part.size(); ++i) {
    const SignedMessage& t = part[i];
    BLST_ERROR e = blst_pairing_chk_n_mul_n_aggr_pk_in_g1(
        ctx.get(), P1(t.key->point()), false, P2(t.signature->point()), false, scalars + 8 * i, 64,
        U8(t.message), t.message.size(), nullptr, 0);
    if (e != BLST_SUCCESS) return false;
  }
  blst_pairing_commit(ctx.get());
  return true;
}

}  // namespace

// ---- PublicKey / Signature ----

Result<PublicKey> PublicKey::FromBytes(ByteSpan bytes) {
  if (bytes.size() != kPublicKeySize) {
    return Err(DecodeError("public key",
                           fmt::format("{} bytes, expected {}", bytes.size(), kPublicKeySize)));
  }
  // Never destroyed: a thread still decoding while the process exits finds it whole.
  static auto& validated = *new ValidatedPoints<PublicKey, kPublicKeySize>;
  if (auto hit = validated.Find(reinterpret_cast<const uint8_t*>(bytes.data()))) return *hit;
  PublicKey pk;
  std::memcpy(pk.bytes_.data(), bytes.data(), kPublicKeySize);
  BLST_ERROR e = blst_p1_uncompress(P1(pk.point_), pk.bytes_.data());
  if (e != BLST_SUCCESS) return Err(DecodeError("public key", BlstErrorText(e)));
  if (blst_p1_affine_is_inf(P1(pk.point_))) {
    return Err(DecodeError("public key", "point at infinity"));
  }
  if (!blst_p1_affine_in_g1(P1(pk.point_))) {
    return Err(DecodeError("public key", "point not in the prime-order subgroup"));
  }
  validated.Add(pk.bytes_, pk);
  return pk;
}

Result<PublicKey> PublicKey::FromHex(std::string_view hex) {
  auto raw = core::FromHex(hex);
  if (!raw) return Err(DecodeError("public key", "not hex"));
  return FromBytes(core::AsBytes(*raw));
}

Result<Signature> Signature::FromBytes(ByteSpan bytes) {
  if (bytes.size() != kSignatureSize) {
    return Err(DecodeError("signature",
                           fmt::format("{} bytes, expected {}", bytes.size(), kSignatureSize)));
  }
  static auto& validated = *new ValidatedPoints<Signature, kSignatureSize>;
  if (auto hit = validated.Find(reinterpret_cast<const uint8_t*>(bytes.data()))) return *hit;
  Signature sig;
  std::memcpy(sig.bytes_.data(), bytes.data(), kSignatureSize);
  BLST_ERROR e = blst_p2_uncompress(P2(sig.point_), sig.bytes_.data());
  if (e != BLST_SUCCESS) return Err(DecodeError("signature", BlstErrorText(e)));
  if (blst_p2_affine_is_inf(P2(sig.point_))) {
    return Err(DecodeError("signature", "point at infinity"));
  }
  if (!blst_p2_affine_in_g2(P2(sig.point_))) {
    return Err(DecodeError("signature", "point not in the prime-order subgroup"));
  }
  validated.Add(sig.bytes_, sig);
  return sig;
}

Result<Signature> Signature::FromHex(std::string_view hex) {
  auto raw = core::FromHex(hex);
  if (!raw) return Err(DecodeError("signature", "not hex"));
  return FromBytes(core::AsBytes(*raw));
}

// ---- SecretKey ----

struct SecretKey::Scalar {
  blst_scalar s;
};

void SecretKey::Free::operator()(Scalar* s) const { sodium_free(s); }  // wipes, then frees

Result<std::unique_ptr<SecretKey::Scalar, SecretKey::Free>> SecretKey::Allocate() {
  DFRP_RETURN_IF_ERROR(EnsureSodium());
  void* p = sodium_malloc(sizeof(Scalar));
  if (p == nullptr) return Err(Status::Internal("cannot allocate locked memory for a secret key"));
  std::memset(p, 0, sizeof(Scalar));
  return std::unique_ptr<Scalar, Free>(static_cast<Scalar*>(p));
}

Result<SecretKey> SecretKey::Generate() {
  DFRP_RETURN_IF_ERROR(EnsureSodium());
  std::array<uint8_t, 32> ikm;
  randombytes_buf(ikm.data(), ikm.size());
  auto sk = FromIkm(core::AsBytes(std::string_view(reinterpret_cast<char*>(ikm.data()), 32)));
  sodium_memzero(ikm.data(), ikm.size());
  return sk;
}

Result<SecretKey> SecretKey::FromIkm(ByteSpan ikm) {
  if (ikm.size() < 32) {
    return Err(Status::InvalidArgument("key material is shorter than 32 bytes: supply more"));
  }
  DFRP_ASSIGN_OR_RETURN(auto scalar, Allocate());
  blst_keygen(&scalar->s, U8(ikm), ikm.size(), nullptr, 0);
  return SecretKey(std::move(scalar));
}

Result<SecretKey> SecretKey::FromBytes(ByteSpan bytes) {
  if (bytes.size() != kSecretKeySize) {
    return Err(Status::InvalidArgument(
        fmt::format("secret key is {} bytes, expected {}: pass a 32-byte big-endian scalar in hex",
                    bytes.size(), kSecretKeySize)));
  }
  DFRP_ASSIGN_OR_RETURN(auto scalar, Allocate());
  blst_scalar_from_bendian(&scalar->s, U8(bytes));
  if (!blst_sk_check(&scalar->s)) {
    return Err(Status::InvalidArgument(
        "secret key is zero or not below the BLS12-381 group order: it is not a valid key"));
  }
  return SecretKey(std::move(scalar));
}

void SecretKey::ExportTo(std::span<uint8_t, kSecretKeySize> out) const {
  blst_bendian_from_scalar(out.data(), &scalar_->s);
}

PublicKey SecretKey::GetPublicKey() const {
  blst_p1 p;
  blst_sk_to_pk_in_g1(&p, &scalar_->s);
  PublicKey pk;
  blst_p1_to_affine(P1(pk.point_), &p);
  blst_p1_affine_compress(pk.bytes_.data(), P1(pk.point_));
  return pk;
}

namespace {
void SignWith(const blst_scalar* s, ByteSpan msg, std::string_view dst, blst_p2_affine* point,
              uint8_t* bytes) {
  blst_p2 h, sig;
  blst_hash_to_g2(&h, U8(msg), msg.size(), U8(dst), dst.size(), nullptr, 0);
  blst_sign_pk_in_g1(&sig, &h, s);
  blst_p2_to_affine(point, &sig);
  blst_p2_affine_compress(bytes, point);
}
}  // namespace

Signature SecretKey::Sign(ByteSpan message) const {
  Signature sig;
  SignWith(&scalar_->s, message, kSigDst, P2(sig.point_), sig.bytes_.data());
  return sig;
}

Signature SecretKey::ProvePossession() const {
  PublicKey pk = GetPublicKey();
  Signature sig;
  ByteSpan msg = core::AsBytes(
      std::string_view(reinterpret_cast<const char*>(pk.bytes().data()), kPublicKeySize));
  SignWith(&scalar_->s, msg, kPopDst, P2(sig.point_), sig.bytes_.data());
  return sig;
}

// ---- Verification ----

namespace {
Status CoreVerify(const PublicKey& key, ByteSpan msg, const Signature& sig, std::string_view dst,
                  std::string_view what) {
  BLST_ERROR e = blst_core_verify_pk_in_g1(P1(key.point()), P2(sig.point()), true, U8(msg),
                                           msg.size(), U8(dst), dst.size(), nullptr, 0);
  if (e != BLST_SUCCESS) {
    return Status::Corruption(fmt::format("{} does not verify for public key {} ({})", what,
                                          key.ToHex(), BlstErrorText(e)));
  }
  return Status::OK();
}
}  // namespace

Status Verify(const PublicKey& key, ByteSpan message, const Signature& sig) {
  return CoreVerify(key, message, sig, kSigDst, "signature");
}

Result<ProvenPublicKey> VerifyPossession(const PublicKey& key, const Signature& pop) {
  ByteSpan msg = core::AsBytes(
      std::string_view(reinterpret_cast<const char*>(key.bytes().data()), kPublicKeySize));
  DFRP_RETURN_IF_ERROR(CoreVerify(key, msg, pop, kPopDst, "proof of possession"));
  return ProvenPublicKey(key);
}

Result<Signature> AggregateSignatures(std::span<const Signature> sigs) {
  if (sigs.empty()) return Err(Status::InvalidArgument("no signatures to aggregate: pass some"));
  blst_p2 acc;
  blst_p2_from_affine(&acc, P2(sigs[0].point()));
  for (size_t i = 1; i < sigs.size(); ++i) {
    blst_p2_add_or_double_affine(&acc, &acc, P2(sigs[i].point()));
  }
  if (blst_p2_is_inf(&acc)) {
    return Err(Status::InvalidArgument("the signatures sum to the point at infinity"));
  }
  Signature out;
  blst_p2_to_affine(P2(out.point_), &acc);
  blst_p2_affine_compress(out.bytes_.data(), P2(out.point_));
  return out;
}

Result<PublicKey> AggregatePublicKeysUnchecked(std::span<const PublicKey> keys) {
  if (keys.empty()) return Err(Status::InvalidArgument("no public keys to aggregate: pass some"));
  blst_p1 acc;
  blst_p1_from_affine(&acc, P1(keys[0].point()));
  for (size_t i = 1; i < keys.size(); ++i) {
    blst_p1_add_or_double_affine(&acc, &acc, P1(keys[i].point()));
  }
  if (blst_p1_is_inf(&acc)) {
    return Err(Status::InvalidArgument("the public keys sum to the point at infinity"));
  }
  PublicKey out;
  blst_p1_to_affine(P1(out.point_), &acc);
  blst_p1_affine_compress(out.bytes_.data(), P1(out.point_));
  return out;
}

Status FastAggregateVerify(std::span<const ProvenPublicKey> keys, ByteSpan message,
                           const Signature& aggregate) {
  if (keys.empty()) return Status::InvalidArgument("no public keys: pass at least one");
  blst_p1 acc;
  blst_p1_from_affine(&acc, P1(keys[0].key().point()));
  for (size_t i = 1; i < keys.size(); ++i) {
    blst_p1_add_or_double_affine(&acc, &acc, P1(keys[i].key().point()));
  }
  blst_p1_affine sum;
  blst_p1_to_affine(&sum, &acc);
  BLST_ERROR e = blst_core_verify_pk_in_g1(&sum, P2(aggregate.point()), true, U8(message),
                                           message.size(), U8(kSigDst), kSigDst.size(), nullptr, 0);
  if (e != BLST_SUCCESS) {
    return Status::Corruption(
        fmt::format("aggregate signature does not verify for the {} keys on this message ({})",
                    keys.size(), BlstErrorText(e)));
  }
  return Status::OK();
}

Status AggregateVerify(std::span<const PublicKey> keys, std::span<const ByteSpan> messages,
                       const Signature& aggregate) {
  if (keys.empty()) return Status::InvalidArgument("no public keys: pass at least one");
  if (keys.size() != messages.size()) {
    return Status::InvalidArgument(fmt::format(
        "{} public keys but {} messages: pass one message per key", keys.size(), messages.size()));
  }
  std::vector<std::string_view> sorted;
  for (ByteSpan m : messages) sorted.push_back(core::AsChars(m));
  std::sort(sorted.begin(), sorted.end());
  if (auto dup = std::adjacent_find(sorted.begin(), sorted.end()); dup != sorted.end()) {
    return Status::InvalidArgument(
        fmt::format("message {} appears twice: aggregate-verify needs distinct messages (use the "
                    "same-message form with proofs of possession instead)",
                    core::ToHex(*dup)));
  }
  PairingCtx ctx = NewPairing(kSigDst);
  for (size_t i = 0; i < keys.size(); ++i) {
    BLST_ERROR e = blst_pairing_chk_n_aggr_pk_in_g1(
        ctx.get(), P1(keys[i].point()), false, i == 0 ? P2(aggregate.point()) : nullptr, false,
        U8(messages[i]), messages[i].size(), nullptr, 0);
    if (e != BLST_SUCCESS) {
      return Status::Corruption(fmt::format("aggregate input {}: {}", i, BlstErrorText(e)));
    }
  }
  blst_pairing_commit(ctx.get());
  if (!blst_pairing_finalverify(ctx.get(), nullptr)) {
    return Status::Corruption(fmt::format(
        "aggregate signature does not verify for the {} (key, message) pairs", keys.size()));
  }
  return Status::OK();
}

namespace {
bool BatchHolds(std::span<const SignedMessage> batch, unsigned threads) {
  std::vector<byte> scalars = RandomScalars(batch.size());
  threads = std::max(1u, std::min<unsigned>(threads, static_cast<unsigned>(batch.size())));
  std::vector<PairingCtx> ctxs;
  for (unsigned t = 0; t < threads; ++t) ctxs.push_back(NewPairing(kSigDst));
  std::vector<char> ok(threads, 0);
  auto work = [&](unsigned t) {
    size_t begin = batch.size() * t / threads, end = batch.size() * (t + 1) / threads;
    ok[t] = AccumulateBatch(ctxs[t], batch.subspan(begin, end - begin), &scalars[8 * begin]);
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work, t);
  work(0);
  for (auto& th : pool) th.join();
  for (unsigned t = 0; t < threads; ++t) {
    if (!ok[t]) return false;
    if (t > 0 && blst_pairing_merge(ctxs[0].get(), ctxs[t].get()) != BLST_SUCCESS) return false;
  }
  return blst_pairing_finalverify(ctxs[0].get(), nullptr);
}
}  // namespace

Status BatchVerify(std::span<const SignedMessage> batch, unsigned threads) {
  if (batch.empty()) return Status::OK();
  DFRP_RETURN_IF_ERROR(EnsureSodium());
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  if (BatchHolds(batch, threads)) return Status::OK();
  for (size_t i = 0; i < batch.size(); ++i) {
    if (!Verify(*batch[i].key, batch[i].message, *batch[i].signature).ok()) {
      return Status::Corruption(
          fmt::format("batch of {} signatures: signature {} (public key {}) does not verify",
                      batch.size(), i, batch[i].key->ToHex()));
    }
  }
  return Status::Corruption(
      fmt::format("batch of {} signatures does not verify as a whole although each one does: retry",
                  batch.size()));
}

std::vector<bool> BatchVerifyEach(std::span<const SignedMessage> batch, unsigned threads) {
  std::vector<bool> ok(batch.size(), true);
  if (batch.empty()) return ok;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  if (batch.size() > 1 && EnsureSodium().ok() && BatchHolds(batch, threads)) return ok;
  for (size_t i = 0; i < batch.size(); ++i)
    ok[i] = Verify(*batch[i].key, batch[i].message, *batch[i].signature).ok();
  return ok;
}

}  // namespace dfrp::crypto::bls
