#include "dfrp/mesh/envelope.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "dfrp/mesh/node_record.h"
#include "dfrp/mesh/test_keys.h"

namespace dfrp::mesh {
namespace {

namespace bls = crypto::bls;

bls::SecretKey Key(char seed) { return TestKey(seed); }

class EnvelopeTest : public ::testing::Test {
 protected:
  EnvelopeTest()
      : wallet_(Key('w')),
        node_(Key('n')),
        net_(crypto::Sha256Of("a test genesis")),
        clock_(1'800'000'000'000),
        delegation_(SignDelegation(wallet_, node_.GetPublicKey(), Now() + kDay, net_)) {}

  static constexpr uint64_t kDay = 86'400'000;
  uint64_t Now() const { return static_cast<uint64_t>(clock_.NowUnixMillis()); }
  std::string Wire(std::string kind, std::string body, uint64_t ttl_ms = 60'000,
                   const MessageId& id = NewMessageId()) {
    auto e = SignEnvelope(delegation_, node_, std::move(kind), std::move(body), Now() + ttl_ms,
                          net_, id);
    EXPECT_TRUE(e.has_value()) << e.error().ToString();
    return EncodeEnvelope(*e);
  }

  bls::SecretKey wallet_, node_;
  crypto::Hash net_;
  core::ManualClock clock_;
  Delegation delegation_;
};

TEST_F(EnvelopeTest, RoundTripsAndTheEncodingIsCanonical) {
  const std::string wire = Wire("DFRP-PING-V1", "hello");
  auto e = DecodeEnvelope(wire);
  ASSERT_TRUE(e.has_value()) << e.error().ToString();
  EXPECT_EQ(e->kind, "DFRP-PING-V1");
  EXPECT_EQ(e->body, "hello");
  EXPECT_EQ(e->sender.wallet, wallet_.GetPublicKey().bytes());
  EXPECT_EQ(e->sender.node, node_.GetPublicKey().bytes());
  EXPECT_EQ(EncodeEnvelope(*e), wire);
  EXPECT_EQ(wire.size(), kDelegationBytes + 1 + 12 + 16 + 8 + 4 + 5 + 96);
  auto d = DecodeDelegation(EncodeDelegation(delegation_));
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(EncodeDelegation(*d), EncodeDelegation(delegation_));
  EXPECT_TRUE(VerifyDelegation(*d, net_, clock_.NowUnixMillis()).ok());
}

TEST_F(EnvelopeTest, EveryTruncationIsRefusedNamingAField) {
  const std::string wire = Wire("DFRP-PING-V1", "body bytes");
  for (size_t n = 0; n < wire.size(); ++n) {
    auto e = DecodeEnvelope(wire.substr(0, n));
    ASSERT_FALSE(e.has_value()) << n;
    EXPECT_EQ(e.error().code(), core::Status::Code::kInvalidArgument) << n;
    EXPECT_NE(e.error().message().find("envelope"), std::string::npos) << n;
  }
  EXPECT_FALSE(DecodeEnvelope(wire + "x").has_value());  // bytes after the signature
}

TEST_F(EnvelopeTest, TheGateAdmitsOnceAndCountsEachDrop) {
  EnvelopeGate gate(net_, &clock_);
  const std::string wire = Wire("DFRP-PING-V1", "once");
  ASSERT_TRUE(gate.Admit(wire).has_value());
  Drop why{};
  auto again = gate.Admit(wire, &why);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(why, Drop::kReplayed);
  EXPECT_NE(again.error().message().find("replay"), std::string::npos);

  // Forged: one byte of the body changed (the node key's signature no longer holds).
  std::string forged = Wire("DFRP-PING-V1", "original");
  forged[forged.size() - 96 - 1] ^= 1;
  auto f = gate.Admit(forged, &why);
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(why, Drop::kForged);
  EXPECT_TRUE(f.error().IsCorruption());

  // Oversized before anything is decoded.
  EXPECT_FALSE(gate.Admit(std::string(kMaxEnvelopeBytes + 1, 'x'), &why).has_value());
  EXPECT_EQ(why, Drop::kOversized);
  EXPECT_FALSE(SignEnvelope(delegation_, node_, "DFRP-BIG-V1", std::string(kMaxEnvelopeBytes, 'b'),
                            Now() + 1000, net_)
                   .has_value());

  // Malformed.
  EXPECT_FALSE(gate.Admit("not an envelope", &why).has_value());
  EXPECT_EQ(why, Drop::kMalformed);

  // Expired (past the skew), and too far ahead (beyond the TTL plus the skew).
  const std::string old = Wire("DFRP-PING-V1", "old", 1000);
  clock_.AdvanceMillis(1000 + GateOptions{}.skew_ms);
  EXPECT_FALSE(gate.Admit(old, &why).has_value());
  EXPECT_EQ(why, Drop::kExpired);
  const std::string far = Wire("DFRP-PING-V1", "far", GateOptions{}.max_ttl_ms + 60'000);
  EXPECT_FALSE(gate.Admit(far, &why).has_value());
  EXPECT_EQ(why, Drop::kClock);

  EXPECT_EQ(gate.admitted(), 1u);
  EXPECT_EQ(gate.dropped(Drop::kReplayed), 1u);
  EXPECT_EQ(gate.dropped(Drop::kForged), 1u);
  EXPECT_EQ(gate.dropped(Drop::kOversized), 1u);
  EXPECT_EQ(gate.dropped(Drop::kMalformed), 1u);
  EXPECT_EQ(gate.dropped(Drop::kExpired), 1u);
  EXPECT_EQ(gate.dropped(Drop::kClock), 1u);
}

TEST_F(EnvelopeTest, AnotherWalletCannotClaimThisNodesMessages) {
  // A thief's wallet signs a delegation of this node's (public) key and wraps this node's
  // signed message in it: the node key signed for its own wallet, so it does not verify.
  EnvelopeGate gate(net_, &clock_);
  auto e = SignEnvelope(delegation_, node_, "DFRP-PING-V1", "mine", Now() + 60'000, net_);
  ASSERT_TRUE(e.has_value());
  const bls::SecretKey thief = Key('t');
  e->sender = SignDelegation(thief, node_.GetPublicKey(), Now() + kDay, net_);
  Drop why{};
  auto r = gate.Admit(EncodeEnvelope(*e), &why);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(why, Drop::kForged);

  // A delegation the wallet did not sign (another wallet key in it) is forged too.
  Delegation fake = delegation_;
  fake.wallet = thief.GetPublicKey().bytes();
  EXPECT_TRUE(VerifyDelegation(fake, net_, clock_.NowUnixMillis()).IsCorruption());
  // For another network, the same.
  EXPECT_TRUE(
      VerifyDelegation(delegation_, crypto::Sha256Of("another genesis"), clock_.NowUnixMillis())
          .IsCorruption());
}

TEST_F(EnvelopeTest, DelegationsExpireAndAreBounded) {
  EnvelopeGate gate(net_, &clock_);
  const std::string wire = Wire("DFRP-PING-V1", "before");
  clock_.AdvanceMillis(static_cast<int64_t>(kDay));
  Drop why{};
  const std::string late = Wire("DFRP-PING-V1", "after the delegation");
  auto r = gate.Admit(late, &why);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(why, Drop::kExpired);
  EXPECT_NE(r.error().message().find("dfrp-wallet delegate"), std::string::npos)
      << r.error().message();
  const Delegation long_one =
      SignDelegation(wallet_, node_.GetPublicKey(), Now() + 2 * kMaxDelegationMs, net_);
  EXPECT_EQ(VerifyDelegation(long_one, net_, clock_.NowUnixMillis()).code(),
            core::Status::Code::kInvalidArgument);
  const Delegation self = SignDelegation(wallet_, wallet_.GetPublicKey(), Now() + kDay, net_);
  EXPECT_EQ(VerifyDelegation(self, net_, clock_.NowUnixMillis()).code(),
            core::Status::Code::kInvalidArgument);
}

TEST_F(EnvelopeTest, TheSeenCacheForgetsAtExpiryAndEvictsTheOldestWhenFull) {
  EnvelopeGate gate(net_, &clock_, {.seen_capacity = 3});
  std::vector<std::string> wires;
  // The first admitted expires last: full, the cache still forgets the oldest admitted first.
  for (int i = 0; i < 4; ++i) wires.push_back(Wire("DFRP-PING-V1", std::to_string(i), 10'000 - i));
  for (const auto& w : wires) ASSERT_TRUE(gate.Admit(w).has_value());
  EXPECT_EQ(gate.remembered(), 3u);
  // The first admitted was evicted: its replay passes (after 3 newer ones), the others' do
  // not; admitting it again evicted the next oldest, wires[1].
  EXPECT_TRUE(gate.Admit(wires[0]).has_value());
  for (int i = 2; i < 4; ++i) EXPECT_FALSE(gate.Admit(wires[i]).has_value()) << i;
  EXPECT_FALSE(gate.Admit(wires[0]).has_value());  // the newest is never the one evicted
  EXPECT_EQ(gate.remembered(), 3u);
  // Past expiry plus skew, everything is forgotten, and refused as expired.
  clock_.AdvanceMillis(20'000 + GateOptions{}.skew_ms);
  Drop why{};
  EXPECT_FALSE(gate.Admit(wires[3], &why).has_value());
  EXPECT_EQ(why, Drop::kExpired);
}

TEST_F(EnvelopeTest, ConcurrentCopiesOfOneEnvelopeAreAdmittedOnce) {
  EnvelopeGate gate(net_, &clock_);
  const std::string wire = Wire("DFRP-PING-V1", "race");
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      if (gate.Admit(wire)) ++admitted;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(admitted.load(), 1);
  EXPECT_EQ(gate.dropped(Drop::kReplayed), 7u);
}

TEST_F(EnvelopeTest, KindsAreShortPrintableTags) {
  for (const std::string bad :
       {std::string(), std::string(33, 'K'), std::string("A B"), std::string("tab\t")}) {
    auto e = SignEnvelope(delegation_, node_, bad, "x", Now() + 1000, net_);
    ASSERT_FALSE(e.has_value()) << bad;
    EXPECT_EQ(e.error().code(), core::Status::Code::kInvalidArgument);
  }
  // Signed by a key that is not the delegation's node key.
  EXPECT_FALSE(
      SignEnvelope(delegation_, wallet_, "DFRP-PING-V1", "x", Now() + 1000, net_).has_value());
}

// Seeds for fuzz_mesh_envelope: DFRP_WRITE_MESH_SEEDS=DIR mesh_test --gtest_filter=*Seeds*
TEST_F(EnvelopeTest, WriteSeeds) {
  const char* dir = std::getenv("DFRP_WRITE_MESH_SEEDS");
  if (!dir) GTEST_SKIP() << "set DFRP_WRITE_MESH_SEEDS to write the fuzz seeds";
  crypto::Hash zero{};  // the fuzz target's network id
  const Delegation d = SignDelegation(wallet_, node_.GetPublicKey(), Now() + kDay, zero);
  auto e = SignEnvelope(d, node_, "DFRP-PING-V1", "seed", Now() + 60'000, zero);
  ASSERT_TRUE(e.has_value());
  std::ofstream(std::string(dir) + "/envelope", std::ios::binary)
      << std::string(1, '\0') + EncodeEnvelope(*e);
  std::ofstream(std::string(dir) + "/delegation", std::ios::binary)
      << std::string(1, '\1') + EncodeDelegation(d);
  NodeRecord r;
  r.sender = d;
  r.seq = 1;
  r.expiry_unix_ms = Now() + 600'000;
  r.url = "http://127.0.0.1:7480";
  r.roles = kRoleStorage;
  r.vector = {1.0f, 0.0f};
  r.prices = {1, 2, 3, 4, 5, 6};
  ledger::KeyBytes peer{};
  peer[0] = 0xa0;
  r.opinion = {{peer, 65535}};
  ASSERT_TRUE(SignRecord(&r, node_, zero).ok());
  std::ofstream(std::string(dir) + "/record", std::ios::binary)
      << std::string(1, '\2') + EncodeRecord(r);
  std::ofstream(std::string(dir) + "/record_list", std::ios::binary)
      << std::string(1, '\3') + EncodeRecordList({EncodeRecord(r)});
}

}  // namespace
}  // namespace dfrp::mesh
