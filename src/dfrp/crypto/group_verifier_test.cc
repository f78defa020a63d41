#include "dfrp/crypto/group_verifier.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace dfrp::crypto::bls {
namespace {

struct Triple {
  PublicKey key;
  std::string message;
  Signature sig;
  bool good;
};

// Keys and signatures; every third is bad in one of three ways (another message, another
// key's signature, a signature of the right key over other bytes).
std::vector<Triple> Make(size_t n) {
  std::vector<Triple> out;
  for (size_t i = 0; i < n; ++i) {
    std::string ikm(32, static_cast<char>(i + 1));
    auto key = SecretKey::FromIkm(core::AsBytes(ikm));
    auto other = SecretKey::FromIkm(core::AsBytes(std::string(32, static_cast<char>(i + 101))));
    EXPECT_TRUE(key.has_value() && other.has_value());
    const std::string msg = "message " + std::to_string(i);
    Signature sig = key->Sign(core::AsBytes(msg));
    bool good = true;
    if (i % 3 == 1) {
      sig = other->Sign(core::AsBytes(msg));
      good = false;
    } else if (i % 6 == 2) {
      sig = key->Sign(core::AsBytes(msg + "!"));
      good = false;
    }
    out.push_back({key->GetPublicKey(), msg, sig, good});
  }
  return out;
}

TEST(GroupVerifier, OneCallerGetsVerifysAnswers) {
  const auto triples = Make(9);
  GroupVerifier v;
  for (const auto& t : triples) {
    EXPECT_EQ(v.Verify(t.key, core::AsBytes(t.message), t.sig), t.good) << t.message;
    EXPECT_EQ(Verify(t.key, core::AsBytes(t.message), t.sig).ok(), t.good) << t.message;
  }
  EXPECT_EQ(v.verified(), 9u);
  EXPECT_EQ(v.batches(), 9u);  // alone, each call is a batch of one
}

TEST(GroupVerifier, ConcurrentCallersEachGetTheirOwnAnswer) {
  // Good and bad signatures checked together: a bad one fails its batch, which is then
  // checked one by one, so no good signature is refused and no bad one accepted.
  const auto triples = Make(48);
  GroupVerifier v({.max_batch = 16});
  std::vector<int> answers(triples.size() * 4, -1);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (size_t k = t; k < answers.size(); k += 8) {
        const Triple& x = triples[k % triples.size()];
        answers[k] = v.Verify(x.key, core::AsBytes(x.message), x.sig) ? 1 : 0;
      }
    });
  for (auto& th : threads) th.join();
  for (size_t k = 0; k < answers.size(); ++k)
    EXPECT_EQ(answers[k], triples[k % triples.size()].good ? 1 : 0) << k;
  EXPECT_EQ(v.verified(), answers.size());
  EXPECT_LE(v.batches(), answers.size());
}

TEST(GroupVerifier, BusyVerifierGathersABatch) {
  // Busy (a batch ended within the hour), the next caller waits for more triples, up to a
  // full batch of four (never the ten minutes: a full batch starts at once).
  const auto triples = Make(6);
  GroupVerifier v(
      {.max_batch = 4, .gather = std::chrono::minutes(10), .busy = std::chrono::hours(1)});
  EXPECT_EQ(v.Verify(triples[0].key, core::AsBytes(triples[0].message), triples[0].sig),
            triples[0].good);
  EXPECT_EQ(v.batches(), 1u);  // idle: the first call did not wait
  std::vector<int> answers(4, -1);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      const Triple& x = triples[t + 1];
      answers[t] = v.Verify(x.key, core::AsBytes(x.message), x.sig) ? 1 : 0;
    });
  for (auto& th : threads) th.join();
  for (size_t t = 0; t < 4; ++t) EXPECT_EQ(answers[t], triples[t + 1].good ? 1 : 0) << t;
  EXPECT_EQ(v.verified(), 5u);
  EXPECT_EQ(v.batches(), 2u);  // the four as one batch
}

TEST(BatchVerifyEach, NamesEachBadTriple) {
  const auto triples = Make(12);
  std::vector<SignedMessage> batch;
  for (const auto& t : triples) batch.push_back({&t.key, core::AsBytes(t.message), &t.sig});
  const std::vector<bool> ok = BatchVerifyEach(batch, 2);
  ASSERT_EQ(ok.size(), triples.size());
  for (size_t i = 0; i < triples.size(); ++i) EXPECT_EQ(ok[i], triples[i].good) << i;
  // All good: one batch check answers for all.
  std::vector<SignedMessage> good;
  for (size_t i = 0; i < triples.size(); ++i)
    if (triples[i].good) good.push_back(batch[i]);
  for (bool b : BatchVerifyEach(good, 2)) EXPECT_TRUE(b);
  EXPECT_TRUE(BatchVerifyEach({}, 2).empty());
}

}  // namespace
}  // namespace dfrp::crypto::bls
