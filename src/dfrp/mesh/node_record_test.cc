#include "dfrp/mesh/node_record.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "dfrp/mesh/test_keys.h"

namespace dfrp::mesh {
namespace {

namespace bls = crypto::bls;

bls::SecretKey RecordKey(char seed) { return TestKey(seed); }

constexpr int64_t kNow = 1'800'000'000'000;
constexpr uint64_t kDay = 86'400'000;

struct NodeKeys {
  explicit NodeKeys(char seed, const crypto::Hash& net)
      : wallet(RecordKey(seed)),
        node(RecordKey(static_cast<char>(seed + 1))),
        delegation(SignDelegation(wallet, node.GetPublicKey(), kNow + kDay, net)) {}
  bls::SecretKey wallet, node;
  Delegation delegation;
};

class NodeRecordTest : public ::testing::Test {
 protected:
  NodeRecordTest() : net_(crypto::Sha256Of("a test genesis")), a_('a', net_), b_('c', net_) {}

  NodeRecord Record(const NodeKeys& k, uint64_t seq, std::string url = "http://127.0.0.1:7000") {
    NodeRecord r;
    r.sender = k.delegation;
    r.seq = seq;
    r.expiry_unix_ms = kNow + 600'000;
    r.url = std::move(url);
    r.roles = kRoleStorage;
    r.policy_version = 3;
    r.vector = {0.5f, -0.25f, 0.125f, 1.0f};
    r.prices = {1, 2, 3, 4, 5, 6};
    r.capacity = {.sha256_per_sec = 1e7,
                  .read_mb_per_sec = 500,
                  .read_iops = 20'000,
                  .storage_free_bytes = 3ull << 30,
                  .storage_quota_bytes = 8ull << 30};
    EXPECT_TRUE(SignRecord(&r, k.node, net_).ok());
    return r;
  }

  crypto::Hash net_;
  NodeKeys a_, b_;
};

TEST_F(NodeRecordTest, RoundTripsVerifiesAndStaysSmall) {
  const NodeRecord r = Record(a_, 7);
  const std::string wire = EncodeRecord(r);
  EXPECT_LT(wire.size(), 1024u);  // about 1 KiB at most with 16 dimensions
  auto d = DecodeRecord(wire);
  ASSERT_TRUE(d.has_value()) << d.error().ToString();
  EXPECT_EQ(EncodeRecord(*d), wire);
  EXPECT_EQ(d->vector, r.vector);
  EXPECT_EQ(d->prices, r.prices);
  EXPECT_EQ(d->capacity, r.capacity);
  EXPECT_EQ(d->capacity.storage_free_bytes, 3ull << 30);
  EXPECT_TRUE(VerifyRecord(*d, net_, kNow).ok());
  for (size_t n = 0; n < wire.size(); ++n) {
    auto t = DecodeRecord(wire.substr(0, n));
    ASSERT_FALSE(t.has_value()) << n;
    EXPECT_EQ(t.error().code(), core::Status::Code::kInvalidArgument) << n;
  }
  // Storage free bytes (free and quota, then an empty opinion, end the body) past the quota:
  // refused.
  std::string roomy = wire;
  roomy[roomy.size() - 96 - 1 - 16] = '\x7f';
  auto rm = DecodeRecord(roomy);
  ASSERT_FALSE(rm.has_value());
  EXPECT_NE(rm.error().message().find("more than the quota"), std::string::npos)
      << rm.error().message();
  std::string altered = wire;
  altered[kDelegationBytes + 3] ^= 1;  // the seq
  auto a = DecodeRecord(altered);
  ASSERT_TRUE(a.has_value());
  EXPECT_TRUE(VerifyRecord(*a, net_, kNow).IsCorruption());
}

TEST_F(NodeRecordTest, AnOpinionRoundTripsAndBadOnesAreRefused) {
  NodeRecord r = Record(a_, 7);
  const ledger::KeyBytes b = b_.wallet.GetPublicKey().bytes();
  ledger::KeyBytes c{};
  c[0] = 0xc0;
  r.opinion = {{b, 60000}, {c, 5535}};
  ASSERT_TRUE(SignRecord(&r, a_.node, net_).ok());
  const std::string wire = EncodeRecord(r);
  auto d = DecodeRecord(wire);
  ASSERT_TRUE(d.has_value()) << d.error().ToString();
  EXPECT_EQ(d->opinion, r.opinion);
  EXPECT_TRUE(VerifyRecord(*d, net_, kNow).ok());
  // A full opinion keeps the record near 1 KiB with 16 dimensions.
  r.opinion.clear();
  for (size_t i = 0; i < kMaxOpinion; ++i) {
    ledger::KeyBytes k{};
    k[1] = static_cast<uint8_t>(i);
    r.opinion.push_back({k, 4096});
  }
  ASSERT_TRUE(SignRecord(&r, a_.node, net_).ok());
  EXPECT_LT(EncodeRecord(r).size(), 2048u);
  // Changing a weight after signing breaks the signature.
  std::string altered = wire;
  altered[altered.size() - 96 - 1] ^= 1;
  auto al = DecodeRecord(altered);
  ASSERT_TRUE(al.has_value());
  EXPECT_TRUE(VerifyRecord(*al, net_, kNow).IsCorruption());
  // Too many entries, a weight of 0, the node itself, a peer twice: refused.
  r.opinion.push_back({c, 1});
  EXPECT_FALSE(SignRecord(&r, a_.node, net_).ok());
  r.opinion = {{b, 0}};
  EXPECT_FALSE(SignRecord(&r, a_.node, net_).ok());
  r.opinion = {{a_.wallet.GetPublicKey().bytes(), 1}};
  EXPECT_FALSE(SignRecord(&r, a_.node, net_).ok());
  r.opinion = {{b, 1}, {b, 2}};
  EXPECT_FALSE(SignRecord(&r, a_.node, net_).ok());
  // The count past the limit on the wire names the field.
  std::string many = wire;
  many[many.size() - 96 - 2 * 50 - 1] = static_cast<char>(kMaxOpinion + 1);
  auto m = DecodeRecord(many);
  ASSERT_FALSE(m.has_value());
  EXPECT_NE(m.error().message().find("opinion"), std::string::npos) << m.error().message();
}

TEST_F(NodeRecordTest, NonFiniteNumbersAndLongFieldsAreRefused) {
  NodeRecord r = Record(a_, 1);
  r.vector[0] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(SignRecord(&r, a_.node, net_).ok());
  r = Record(a_, 1);
  r.capacity.gpu_tflops = -1;
  EXPECT_FALSE(SignRecord(&r, a_.node, net_).ok());
  r.capacity.gpu_tflops = 0;
  r.capacity.storage_free_bytes = r.capacity.storage_quota_bytes + 1;  // more free than quota
  EXPECT_FALSE(SignRecord(&r, a_.node, net_).ok());
  r = Record(a_, 1);
  r.url = "http://" + std::string(kMaxUrlBytes, 'h');
  EXPECT_FALSE(SignRecord(&r, a_.node, net_).ok());
  r = Record(a_, 1);
  r.url = "ftp://x";
  EXPECT_FALSE(SignRecord(&r, a_.node, net_).ok());
  EXPECT_FALSE(SignRecord(&r, b_.node, net_).ok());  // not the delegation's key
}

TEST_F(NodeRecordTest, TheTableKeepsOnlyNewerVerifiedRecords) {
  PeerTable table(net_, a_.wallet.GetPublicKey().bytes(), {.record_ttl_ms = 3'600'000});
  EXPECT_EQ(*table.Offer(EncodeRecord(Record(a_, 5)), kNow), OfferOutcome::kOwn);
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(*table.Offer(EncodeRecord(Record(b_, 5)), kNow), OfferOutcome::kNew);
  EXPECT_EQ(*table.Offer(EncodeRecord(Record(b_, 5)), kNow), OfferOutcome::kStale);
  EXPECT_EQ(*table.Offer(EncodeRecord(Record(b_, 4)), kNow), OfferOutcome::kStale);  // replayed
  EXPECT_EQ(*table.Offer(EncodeRecord(Record(b_, 6, "http://127.0.0.1:7001")), kNow),
            OfferOutcome::kNewer);
  EXPECT_EQ(table.Get(b_.wallet.GetPublicKey().bytes())->record.url, "http://127.0.0.1:7001");

  // A forged record (altered after signing) with a higher seq is refused and changes nothing.
  NodeRecord forged = Record(b_, 9);
  forged.url = "http://203.0.113.9:80";
  auto f = table.Offer(EncodeRecord(forged), kNow);
  ASSERT_FALSE(f.has_value());
  EXPECT_TRUE(f.error().IsCorruption());
  EXPECT_EQ(table.Get(b_.wallet.GetPublicKey().bytes())->record.seq, 6u);

  // Expiry: past, or further ahead than the TTL allows, is refused; kept ones expire.
  NodeRecord far = Record(b_, 10);
  far.expiry_unix_ms = kNow + 3 * 3'600'000;
  ASSERT_TRUE(SignRecord(&far, b_.node, net_).ok());
  EXPECT_EQ(table.Offer(EncodeRecord(far), kNow).error().code(),
            core::Status::Code::kInvalidArgument);
  EXPECT_EQ(table.Offer(EncodeRecord(Record(b_, 11)), kNow + 700'000).error().code(),
            core::Status::Code::kInvalidArgument);
  EXPECT_EQ(table.Tick(kNow + 600'001), 1u);
  EXPECT_EQ(table.size(), 0u);
}

TEST_F(NodeRecordTest, StatesMoveWithAnswersAndFailures) {
  PeerTable table(net_, a_.wallet.GetPublicKey().bytes(), {.suspect_timeout_ms = 5000});
  ASSERT_TRUE(table.Offer(EncodeRecord(Record(b_, 1)), kNow).has_value());
  const auto key = b_.wallet.GetPublicKey().bytes();
  EXPECT_EQ(table.Get(key)->state, PeerState::kUnverified);
  table.Answered(key, kNow);
  EXPECT_EQ(table.Get(key)->state, PeerState::kAlive);
  table.Failed(key, kNow + 1000);
  EXPECT_EQ(table.Get(key)->state, PeerState::kSuspect);
  table.Tick(kNow + 5001);
  EXPECT_EQ(table.Get(key)->state, PeerState::kDead);
  table.Answered(key, kNow + 6000);
  EXPECT_EQ(table.Get(key)->state, PeerState::kAlive);
  // A new URL must answer under its key again.
  ASSERT_TRUE(table.Offer(EncodeRecord(Record(b_, 2, "http://127.0.0.1:7999")), kNow).has_value());
  EXPECT_EQ(table.Get(key)->state, PeerState::kUnverified);
}

TEST_F(NodeRecordTest, AnAnswerRelayedByAnotherPeerRevivesOnlyAPeerThatAnsweredBefore) {
  PeerTable table(net_, a_.wallet.GetPublicKey().bytes(), {.suspect_timeout_ms = 5000});
  ASSERT_TRUE(table.Offer(EncodeRecord(Record(b_, 1)), kNow).has_value());
  const auto key = b_.wallet.GetPublicKey().bytes();
  // Never heard first-hand: a relayed answer does not verify its URL for this node.
  table.AnsweredIndirectly(key, kNow);
  EXPECT_EQ(table.Get(key)->state, PeerState::kUnverified);
  table.Answered(key, kNow);
  table.Failed(key, kNow + 1000);
  ASSERT_EQ(table.Get(key)->state, PeerState::kSuspect);
  table.AnsweredIndirectly(key, kNow + 4000);
  auto p = table.Get(key);
  EXPECT_EQ(p->state, PeerState::kAlive);
  EXPECT_EQ(p->last_answer_ms, kNow + 4000);  // the suspect timer starts again from here
  EXPECT_EQ(p->answers_total, 1u);            // first-hand uptime is not credited
  EXPECT_EQ(p->failures, 0u);
  table.Failed(key, kNow + 5000);
  table.Tick(kNow + 8000);  // 4 s after the relayed answer: still suspect, not dead
  EXPECT_EQ(table.Get(key)->state, PeerState::kSuspect);
  table.Tick(kNow + 9001);
  ASSERT_EQ(table.Get(key)->state, PeerState::kDead);
  table.AnsweredIndirectly(key, kNow + 9500);
  EXPECT_EQ(table.Get(key)->state, PeerState::kAlive);
}

TEST_F(NodeRecordTest, ASeqAheadOfTheClockIsRefused) {
  PeerTable table(net_, a_.wallet.GetPublicKey().bytes(), {});
  auto r = table.Offer(EncodeRecord(Record(b_, kNow + 3'600'000)), kNow);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("ahead of this node's clock"), std::string::npos);
  EXPECT_TRUE(table.Offer(EncodeRecord(Record(b_, kNow)), kNow).has_value());
}

TEST_F(NodeRecordTest, OnlyAliveRecordsArePassedOnAndGossipCannotEvictThem) {
  PeerTable table(net_, a_.wallet.GetPublicKey().bytes(), {.capacity = 1});
  const auto bkey = b_.wallet.GetPublicKey().bytes();
  ASSERT_EQ(*table.Offer(EncodeRecord(Record(b_, 1)), kNow), OfferOutcome::kNew);
  EXPECT_TRUE(table.Wires(1 << 20).empty());  // not heard first-hand yet
  table.Answered(bkey, kNow);
  EXPECT_EQ(table.Wires(1 << 20).size(), 1u);
  // A third node's record, known from gossip only, does not push the alive one out.
  NodeKeys c('e', net_);
  EXPECT_EQ(*table.Offer(EncodeRecord(Record(c, 1)), kNow), OfferOutcome::kStale);
  EXPECT_TRUE(table.Get(bkey).has_value());
  EXPECT_EQ(table.size(), 1u);
}

TEST_F(NodeRecordTest, APretrustedRecordHeardOnlyThroughGossipIsNeverEvicted) {
  const auto bkey = b_.wallet.GetPublicKey().bytes();
  PeerTable table(net_, a_.wallet.GetPublicKey().bytes(), {.capacity = 1, .keep = {bkey}});
  ASSERT_EQ(*table.Offer(EncodeRecord(Record(b_, 1)), kNow), OfferOutcome::kNew);
  // A flood of other records, each closer to expiry or not: B (unverified) stays.
  for (char seed : {'e', 'g', 'i'}) {
    NodeKeys other(seed, net_);
    EXPECT_EQ(*table.Offer(EncodeRecord(Record(other, 1)), kNow), OfferOutcome::kStale) << seed;
  }
  EXPECT_TRUE(table.Get(bkey).has_value());
  EXPECT_EQ(table.size(), 1u);
}

TEST_F(NodeRecordTest, RecordListsRoundTripAndRefuseBadLengths) {
  const std::vector<std::string> wires = {EncodeRecord(Record(a_, 1)), EncodeRecord(Record(b_, 2))};
  const std::string body = EncodeRecordList(wires);
  auto list = DecodeRecordList(body);
  ASSERT_TRUE(list.has_value());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[1], wires[1]);
  for (size_t n = 0; n < body.size(); ++n)
    EXPECT_FALSE(DecodeRecordList(body.substr(0, n)).has_value()) << n;
  EXPECT_FALSE(DecodeRecordList(body + "x").has_value());
}

}  // namespace
}  // namespace dfrp::mesh
