#include "dfrp/crypto/bls.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "blst.h"

namespace dfrp::crypto::bls {
namespace {

using core::AsBytes;

std::string Hex2Bin(std::string_view hex) {
  auto raw = core::FromHex(hex);
  EXPECT_TRUE(raw.has_value()) << hex;
  return raw.value_or("");
}

ByteSpan Bytes(const std::string& s) { return AsBytes(s); }

SecretKey KeyFromSeed(uint8_t seed) {
  std::string ikm(32, static_cast<char>(seed));
  return *SecretKey::FromIkm(Bytes(ikm));
}

TEST(Bls, EthereumSignVectors) {
  const char* src = std::getenv("DFRP_SOURCE_DIR");
  ASSERT_NE(src, nullptr) << "DFRP_SOURCE_DIR is set by ctest";
  std::ifstream in(std::string(src) + "/../shared/testdata/bls_sign_vectors.json");
  ASSERT_TRUE(in.good());
  auto doc = nlohmann::json::parse(in);
  ASSERT_EQ(doc["ciphersuite"], std::string(kSigDst));
  int n = 0;
  for (const auto& c : doc["cases"]) {
    auto sk = SecretKey::FromBytes(Bytes(Hex2Bin(c["secret_key"].get<std::string>())));
    ASSERT_TRUE(sk.has_value()) << sk.error().ToString();
    PublicKey pk = sk->GetPublicKey();
    EXPECT_EQ(pk.ToHex(), c["public_key"].get<std::string>());
    std::string msg = Hex2Bin(c["message"].get<std::string>());
    Signature sig = sk->Sign(Bytes(msg));
    EXPECT_EQ(sig.ToHex(), c["signature"].get<std::string>());
    EXPECT_TRUE(Verify(pk, Bytes(msg), sig).ok());
    auto decoded = Signature::FromHex(c["signature"].get<std::string>());
    ASSERT_TRUE(decoded.has_value());
    EXPECT_TRUE(Verify(pk, Bytes(msg), *decoded).ok());
    std::array<uint8_t, 32> back;
    sk->ExportTo(back);
    EXPECT_EQ(core::ToHex(back), c["secret_key"].get<std::string>());
    ++n;
  }
  EXPECT_GE(n, 3);
}

TEST(Bls, GenerateSignVerifyAndWrongMessage) {
  auto sk = SecretKey::Generate();
  ASSERT_TRUE(sk.has_value());
  PublicKey pk = sk->GetPublicKey();
  std::string msg = "hello", other = "hellp";
  Signature sig = sk->Sign(Bytes(msg));
  EXPECT_TRUE(Verify(pk, Bytes(msg), sig).ok());
  Status bad = Verify(pk, Bytes(other), sig);
  EXPECT_TRUE(bad.IsCorruption());
  EXPECT_EQ(core::ExitCodeFor(bad), core::kExitIntegrity);
  auto pk2 = PublicKey::FromBytes(
      AsBytes(std::string_view(reinterpret_cast<const char*>(pk.bytes().data()), kPublicKeySize)));
  ASSERT_TRUE(pk2.has_value());
  EXPECT_EQ(*pk2, pk);
}

TEST(Bls, RejectsBadSecretKeys) {
  EXPECT_FALSE(SecretKey::FromBytes(Bytes(std::string(31, '\1'))).has_value());
  EXPECT_FALSE(SecretKey::FromBytes(Bytes(std::string(32, '\0'))).has_value());
  EXPECT_FALSE(SecretKey::FromBytes(Bytes(std::string(32, '\xff'))).has_value());  // >= r
  EXPECT_FALSE(SecretKey::FromIkm(Bytes(std::string(31, 'x'))).has_value());
}

TEST(Bls, RejectsBadEncodings) {
  auto sk = KeyFromSeed(1);
  std::string pk_hex = sk.GetPublicKey().ToHex();
  std::string sig_hex = sk.Sign(Bytes(std::string("m"))).ToHex();
  for (const std::string& h :
       {pk_hex.substr(2), pk_hex + "00", std::string("zz") + pk_hex.substr(2), std::string()}) {
    auto r = PublicKey::FromHex(h);
    ASSERT_FALSE(r.has_value()) << h;
    EXPECT_EQ(core::ExitCodeFor(r.error()), core::kExitUsage);
  }
  for (const std::string& h : {sig_hex.substr(2), sig_hex + "00", pk_hex}) {
    EXPECT_FALSE(Signature::FromHex(h).has_value()) << h;
  }
  // Uncompressed-form flag cleared: blst reads 48 bytes as compressed only.
  std::string raw = Hex2Bin(pk_hex);
  raw[0] = static_cast<char>(raw[0] & 0x7f);
  EXPECT_FALSE(PublicKey::FromBytes(Bytes(raw)).has_value());
}

TEST(Bls, RejectsInfinity) {
  std::string inf1(48, '\0'), inf2(96, '\0');
  inf1[0] = inf2[0] = static_cast<char>(0xc0);
  auto pk = PublicKey::FromBytes(Bytes(inf1));
  ASSERT_FALSE(pk.has_value());
  EXPECT_NE(pk.error().message().find("infinity"), std::string::npos) << pk.error().message();
  auto sig = Signature::FromBytes(Bytes(inf2));
  ASSERT_FALSE(sig.has_value());
  EXPECT_NE(sig.error().message().find("infinity"), std::string::npos);
}

// Small x coordinates give points on the curve but, with overwhelming probability, outside
// the prime-order subgroup (the cofactors are large); none may be accepted.
TEST(Bls, RejectsPointsOutsideSubgroupOrOffCurve) {
  int subgroup = 0, off_curve = 0;
  for (int x = 1; x < 40; ++x) {
    std::string g1(48, '\0'), g2(96, '\0');
    g1[0] = g2[0] = static_cast<char>(0x80);
    g1[47] = static_cast<char>(x);
    g2[95] = static_cast<char>(x);  // x = x0 + x1*u with x1 first: here x0 = x, x1 = 0... or
                                    // the reverse; either way a small coordinate
    for (auto r :
         {PublicKey::FromBytes(Bytes(g1)).status(), Signature::FromBytes(Bytes(g2)).status()}) {
      ASSERT_FALSE(r.ok());
      if (r.message().find("subgroup") != std::string::npos) ++subgroup;
      if (r.message().find("not on the curve") != std::string::npos) ++off_curve;
    }
  }
  EXPECT_GT(subgroup, 0);
  EXPECT_GT(off_curve, 0);
}

// Validated encodings are kept (bls.cc): a point met again decodes to the same point, a
// refused one is refused again (nothing but what passed is kept), and one that passed still
// verifies after thousands of others pushed it out of the cache.
TEST(Bls, ValidatedPointsAreKeptAndRefusedOnesAreNot) {
  auto k = KeyFromSeed(7);
  const Signature s = k.Sign(Bytes("m"));
  auto a = Signature::FromBytes(Bytes(std::string(s.bytes().begin(), s.bytes().end())));
  auto b = Signature::FromBytes(Bytes(std::string(s.bytes().begin(), s.bytes().end())));
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_EQ(a->point().raw, b->point().raw);
  EXPECT_EQ(a->point().raw, s.point().raw);
  EXPECT_TRUE(Verify(k.GetPublicKey(), Bytes("m"), *b).ok());
  std::string bad(96, '\0');
  bad[0] = static_cast<char>(0x80);
  bad[95] = 5;
  EXPECT_FALSE(Signature::FromBytes(Bytes(bad)).has_value());
  EXPECT_FALSE(Signature::FromBytes(Bytes(bad)).has_value());
  const PublicKey mine = k.GetPublicKey();
  const std::string pk(mine.bytes().begin(), mine.bytes().end());
  // More distinct keys than the cache holds (4,096), each decoded once.
  for (int i = 0; i < 5000; ++i) {
    std::string ikm(32, 'x');
    std::memcpy(ikm.data(), &i, sizeof i);
    const PublicKey other = SecretKey::FromIkm(Bytes(ikm))->GetPublicKey();
    ASSERT_TRUE(PublicKey::FromBytes(Bytes(std::string(other.bytes().begin(), other.bytes().end())))
                    .has_value());
  }
  auto again = PublicKey::FromBytes(Bytes(pk));
  ASSERT_TRUE(again.has_value());
  EXPECT_TRUE(Verify(*again, Bytes("m"), s).ok());
}

TEST(Bls, ProofOfPossession) {
  auto a = KeyFromSeed(2), b = KeyFromSeed(3);
  EXPECT_TRUE(VerifyPossession(a.GetPublicKey(), a.ProvePossession()).has_value());
  EXPECT_FALSE(VerifyPossession(a.GetPublicKey(), b.ProvePossession()).has_value());
  // A plain signature over the key bytes is not a proof (different domain tag).
  auto pk = a.GetPublicKey();
  std::string pk_bytes(reinterpret_cast<const char*>(pk.bytes().data()), kPublicKeySize);
  EXPECT_FALSE(VerifyPossession(pk, a.Sign(Bytes(pk_bytes))).has_value());
}

TEST(Bls, FastAggregateVerify) {
  std::string msg = "same message";
  std::vector<ProvenPublicKey> keys;
  std::vector<Signature> sigs;
  for (uint8_t i = 10; i < 20; ++i) {
    auto sk = KeyFromSeed(i);
    keys.push_back(*VerifyPossession(sk.GetPublicKey(), sk.ProvePossession()));
    sigs.push_back(sk.Sign(Bytes(msg)));
  }
  auto agg = AggregateSignatures(sigs);
  ASSERT_TRUE(agg.has_value());
  EXPECT_TRUE(FastAggregateVerify(keys, Bytes(msg), *agg).ok());
  EXPECT_TRUE(FastAggregateVerify(keys, Bytes(std::string("other")), *agg).IsCorruption());
  keys.pop_back();
  EXPECT_TRUE(FastAggregateVerify(keys, Bytes(msg), *agg).IsCorruption());
  EXPECT_FALSE(FastAggregateVerify({}, Bytes(msg), *agg).ok());
  EXPECT_FALSE(AggregateSignatures({}).has_value());
}

// The rogue-key attack: Mallory publishes pk_r = a*G - pk_honest. The naive sum
// pk_honest + pk_r = a*G, so Mallory alone can forge an "aggregate" signature in the honest
// signer's name. The attack works on unchecked keys, and fails because Mallory cannot prove
// possession of pk_r.
TEST(Bls, RogueKeyAggregateRefusedWithoutPossession) {
  auto honest = KeyFromSeed(42), mallory = KeyFromSeed(43);
  PublicKey pk_h = honest.GetPublicKey();
  blst_p1 neg_h, rogue;
  blst_p1_from_affine(&neg_h, reinterpret_cast<const blst_p1_affine*>(pk_h.point().raw.data()));
  blst_p1_cneg(&neg_h, true);
  PublicKey pk_a = mallory.GetPublicKey();
  blst_p1_add_or_double_affine(&rogue, &neg_h,
                               reinterpret_cast<const blst_p1_affine*>(pk_a.point().raw.data()));
  std::array<uint8_t, 48> rogue_bytes;
  blst_p1_compress(rogue_bytes.data(), &rogue);
  auto pk_r = PublicKey::FromBytes(
      AsBytes(std::string_view(reinterpret_cast<const char*>(rogue_bytes.data()), 48)));
  ASSERT_TRUE(pk_r.has_value()) << "the rogue key is a valid point";

  std::string msg = "transfer everything to mallory";
  Signature forged = mallory.Sign(Bytes(msg));
  std::vector<PublicKey> pair = {pk_h, *pk_r};
  auto naive_sum = AggregatePublicKeysUnchecked(pair);
  ASSERT_TRUE(naive_sum.has_value());
  EXPECT_TRUE(Verify(*naive_sum, Bytes(msg), forged).ok()) << "attack works without PoP";

  // Mallory's best attempts at a proof for pk_r fail, so no ProvenPublicKey exists for it.
  EXPECT_FALSE(VerifyPossession(*pk_r, mallory.ProvePossession()).has_value());
  EXPECT_FALSE(VerifyPossession(*pk_r, honest.ProvePossession()).has_value());
  // With honest keys only (the only thing FastAggregateVerify accepts), the forgery fails.
  std::vector<ProvenPublicKey> proven = {*VerifyPossession(pk_h, honest.ProvePossession())};
  EXPECT_TRUE(FastAggregateVerify(proven, Bytes(msg), forged).IsCorruption());
}

TEST(Bls, AggregateVerifyDistinctMessages) {
  std::vector<PublicKey> keys;
  std::vector<std::string> msgs;
  std::vector<Signature> sigs;
  for (uint8_t i = 0; i < 8; ++i) {
    auto sk = KeyFromSeed(100 + i);
    keys.push_back(sk.GetPublicKey());
    msgs.push_back("message " + std::to_string(i));
    sigs.push_back(sk.Sign(Bytes(msgs.back())));
  }
  std::vector<ByteSpan> spans;
  for (const auto& m : msgs) spans.push_back(Bytes(m));
  auto agg = *AggregateSignatures(sigs);
  EXPECT_TRUE(AggregateVerify(keys, spans, agg).ok());
  std::swap(spans[0], spans[1]);
  EXPECT_TRUE(AggregateVerify(keys, spans, agg).IsCorruption());
  std::swap(spans[0], spans[1]);
  spans[1] = spans[0];
  Status dup = AggregateVerify(keys, spans, agg);
  EXPECT_EQ(dup.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(dup.message().find("twice"), std::string::npos);
  spans.pop_back();
  EXPECT_EQ(AggregateVerify(keys, spans, agg).code(), Status::Code::kInvalidArgument);
}

TEST(Bls, BatchVerifyFindsOneBadSignature) {
  constexpr int kN = 48;
  std::vector<PublicKey> keys;
  std::vector<std::string> msgs;
  std::vector<Signature> sigs;
  for (int i = 0; i < kN; ++i) {
    auto sk = KeyFromSeed(static_cast<uint8_t>(i % 7));  // repeated keys are allowed
    keys.push_back(sk.GetPublicKey());
    msgs.push_back("batch " + std::to_string(i % 5));  // and repeated messages
    sigs.push_back(sk.Sign(Bytes(msgs.back())));
  }
  std::vector<SignedMessage> batch;
  for (int i = 0; i < kN; ++i) batch.push_back({&keys[i], Bytes(msgs[i]), &sigs[i]});
  for (unsigned threads : {1u, 2u, 3u, 0u}) EXPECT_TRUE(BatchVerify(batch, threads).ok());
  EXPECT_TRUE(BatchVerify({}, 2).ok());

  std::string wrong = "not what was signed";
  batch[29].message = Bytes(wrong);
  Status s = BatchVerify(batch, 2);
  ASSERT_TRUE(s.IsCorruption());
  EXPECT_NE(s.message().find("signature 29 "), std::string::npos) << s.message();

  // Two valid signatures swapped between equal-message slots must still be caught when their
  // keys differ.
  batch[29].message = Bytes(msgs[29]);
  std::swap(batch[0].signature, batch[1].signature);
  EXPECT_TRUE(BatchVerify(batch, 2).IsCorruption());
}

}  // namespace
}  // namespace dfrp::crypto::bls
