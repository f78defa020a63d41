#include "dfrp/node/mesh_service.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "dfrp/core/bytes.h"
#include "dfrp/economy/policy.h"
#include "dfrp/mesh/test_keys.h"
#include "dfrp/wallet/address.h"

namespace dfrp::node {
namespace {

namespace bls = crypto::bls;

bls::SecretKey Key(char seed) { return mesh::TestKey(seed); }

constexpr int64_t kDayMs = 86'400'000;

class MeshServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dfrp-mesh-service-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto p = economy::LoadEconomicPolicy(core::DefaultFileSystem(), "", dir_);
    ASSERT_TRUE(p.has_value()) << p.error().ToString();
    policy_ = *p;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // An exchange request from another node (its wallet `seed`), signed at the clock's now.
  std::string PeerExchange(char seed, std::vector<mesh::OpinionEntry> opinion = {}) {
    const int64_t now = clock_.NowUnixMillis();
    const bls::SecretKey wallet = Key(seed), node = Key(static_cast<char>(seed + 1));
    const mesh::Delegation d = mesh::SignDelegation(
        wallet, node.GetPublicKey(), static_cast<uint64_t>(now + kDayMs), policy_.network_id);
    mesh::NodeRecord r;
    r.sender = d;
    r.seq = static_cast<uint64_t>(now);
    r.expiry_unix_ms = static_cast<uint64_t>(now + 60'000);
    r.url = "http://127.0.0.1:9";
    r.roles = mesh::kRoleStorage;
    r.opinion = std::move(opinion);
    EXPECT_TRUE(mesh::SignRecord(&r, node, policy_.network_id).ok());
    auto e = mesh::SignEnvelope(d, node, std::string(mesh::kExchangeKind),
                                mesh::EncodeRecordList({mesh::EncodeRecord(r)}),
                                static_cast<uint64_t>(now + 60'000), policy_.network_id);
    EXPECT_TRUE(e.has_value());
    return nlohmann::json{{"network", core::ToHex(policy_.network_id)},
                          {"envelope", core::ToHex(mesh::EncodeEnvelope(*e))}}
        .dump();
  }

  // The delegation expiry in this node's answer to an exchange.
  uint64_t AnswerDelegationExpiry(MeshService& m, char peer_seed) {
    auto answer = m.HandleExchange(PeerExchange(peer_seed));
    EXPECT_TRUE(answer.has_value()) << answer.error().ToString();
    if (!answer) return 0;
    auto bytes = core::FromHex((*answer)["envelope"].get<std::string>());
    auto e = mesh::DecodeEnvelope(*bytes);
    EXPECT_TRUE(e.has_value());
    auto list = mesh::DecodeRecordList(e->body);
    auto own = mesh::DecodeRecord((*list)[0]);
    EXPECT_EQ(own->sender.expiry_unix_ms, e->sender.expiry_unix_ms);  // its record's too
    EXPECT_TRUE(mesh::VerifyRecord(*own, policy_.network_id, clock_.NowUnixMillis()).ok());
    return e->sender.expiry_unix_ms;
  }

  std::string dir_;
  economy::EconomicPolicy policy_;
  core::ManualClock clock_{1'800'000'000'000};
};

TEST_F(MeshServiceTest, TheWalletSignsTheDelegationAgainAtHalfItsLife) {
  const bls::SecretKey wallet = Key('w');
  MeshOptions mo;
  mo.policy = &policy_;
  mo.network_id = policy_.network_id;
  mo.vector = {1.0f, 0.0f};
  mo.interval_ms = 3'600'000;  // no round during the test
  auto m = MeshService::Open(core::DefaultFileSystem(), &clock_, dir_, wallet, mo);
  ASSERT_TRUE(m.has_value()) << m.error().ToString();
  (*m)->Start("http://127.0.0.1:7999");
  const int64_t t0 = clock_.NowUnixMillis();
  EXPECT_EQ(AnswerDelegationExpiry(**m, 'a'), static_cast<uint64_t>(t0 + 30 * kDayMs));
  clock_.AdvanceMillis(14 * kDayMs);  // before half its life: the same delegation
  EXPECT_EQ(AnswerDelegationExpiry(**m, 'c'), static_cast<uint64_t>(t0 + 30 * kDayMs));
  clock_.AdvanceMillis(2 * kDayMs);  // past half: signed again, and the record with it
  EXPECT_EQ(AnswerDelegationExpiry(**m, 'e'), static_cast<uint64_t>(t0 + 46 * kDayMs));
  (*m)->Stop();
}

TEST_F(MeshServiceTest, TrustFlowsFromThePretrustedAlongOpinionsAndTrustedPayersProofs) {
  // This node pre-trusts A (TRUSTED_PEERS or the committee). A vouches for B; Sybils S and T
  // vouch for each other and for their provider X, and their client P "paid" X for 50 proven
  // periods. A paid B for 10.
  auto pub = [](char seed) { return Key(seed).GetPublicKey().bytes(); };
  const auto a = pub('a'), b = pub('c'), s = pub('e'), t = pub('g'), x = pub('i'), p = pub('k');
  MeshOptions mo;
  mo.policy = &policy_;
  mo.network_id = policy_.network_id;
  mo.vector = {1.0f, 0.0f};
  mo.interval_ms = 3'600'000;  // no round during the test
  mo.pretrusted = {a};
  std::vector<mesh::PayerOutcome> outcomes = {{.payer = p, .provider = x, .released = 50},
                                              {.payer = a, .provider = b, .released = 10}};
  mo.proof_outcomes = [&] { return outcomes; };
  size_t b_frauds = 0, b_equivocations = 0;
  mo.fraud_records = [&](const ledger::KeyBytes& k) { return k == b ? b_frauds : 0; };
  mo.equivocations = [&](const ledger::KeyBytes& k) { return k == b ? b_equivocations : 0; };
  const bls::SecretKey wallet = Key('w');
  auto m = MeshService::Open(core::DefaultFileSystem(), &clock_, dir_, wallet, mo);
  ASSERT_TRUE(m.has_value()) << m.error().ToString();
  (*m)->Start("http://127.0.0.1:7999");
  for (auto [seed, opinion] : std::vector<std::pair<char, std::vector<mesh::OpinionEntry>>>{
           {'a', {{b, 65535}}},
           {'c', {{a, 65535}}},
           {'e', {{t, 30000}, {x, 35535}}},
           {'g', {{s, 30000}, {x, 35535}}},
           {'i', {{s, 30000}, {t, 35535}}}}) {
    auto r = (*m)->HandleExchange(PeerExchange(seed, opinion));
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
  }
  (*m)->RecomputeTrust();
  EXPECT_GT((*m)->TrustOf(a), 0.5);
  EXPECT_GT((*m)->TrustOf(b), 0.5);
  EXPECT_EQ((*m)->TrustOf(s), 0.0);
  EXPECT_EQ((*m)->TrustOf(t), 0.0);
  EXPECT_EQ((*m)->TrustOf(x), 0.0);
  EXPECT_EQ((*m)->TrustOf(wallet.GetPublicKey().bytes()), 1.0);
  // B's paid proofs count (its payer is pre-trusted: this node's direct evidence); X's are shown
  // but count nothing (P, their payer, is trusted by nobody), nor do the Sybils' opinions.
  const std::string x_addr = ledger::AddressOfKey(x), b_addr = ledger::AddressOfKey(b);
  int seen = 0;
  const nlohmann::json peers = (*m)->PeersJson();
  for (const auto& peer : peers["peers"]) {
    const auto& tr = peer["trust"];
    const std::string address = peer["address"];
    if (address == x_addr) {
      ++seen;
      EXPECT_EQ(tr["evidence"]["proofs_passed"], 50) << peer.dump();
      EXPECT_EQ(tr["local"], 0.0) << peer.dump();
      EXPECT_EQ(tr["score"], 0.0) << peer.dump();
    } else if (address == b_addr) {
      ++seen;
      EXPECT_EQ(tr["evidence"]["proofs_passed"], 10) << peer.dump();
      EXPECT_EQ(tr["local"], 10.0) << peer.dump();
    } else if (peer["opinion"].size() != 1) {  // the Sybils
      EXPECT_EQ(tr["score"], 0.0) << peer.dump();
    }
  }
  EXPECT_EQ(seen, 2);
  // Its own opinion, as an authority node: its trust in the providers its ledger shows paid
  // (B), not X, whose only payer nobody trusts.
  const nlohmann::json self = (*m)->Json()["trust"];
  ASSERT_EQ(self["opinion"].size(), 1u) << self.dump();
  auto addr = ledger::KeyFrom(b);
  EXPECT_EQ(self["opinion"][0]["address"], wallet::AddressOf(*addr));
  EXPECT_EQ(self["pretrusted"].size(), 1u);
  // Its next record carries that opinion, signed.
  auto answer = (*m)->HandleExchange(PeerExchange('m'));
  ASSERT_TRUE(answer.has_value());
  auto e = mesh::DecodeEnvelope(*core::FromHex((*answer)["envelope"].get<std::string>()));
  auto own = mesh::DecodeRecord((*mesh::DecodeRecordList(e->body))[0]);
  ASSERT_TRUE(own.has_value());
  ASSERT_EQ(own->opinion.size(), 1u);
  EXPECT_EQ(own->opinion[0].peer, b);
  EXPECT_EQ(own->opinion[0].weight, 65535);
  EXPECT_TRUE(mesh::VerifyRecord(*own, policy_.network_id, clock_.NowUnixMillis()).ok());

  // B's periods refunded (counted twice against): no payer's testimony is left for it and this
  // node's opinion drops it; A's still carries it.
  outcomes[1].refunded = 10;
  (*m)->RecomputeTrust();
  EXPECT_TRUE((*m)->Json()["trust"]["opinion"].empty());
  EXPECT_GT((*m)->TrustOf(b), 0.5);
  // A certified fraud record against B: this node's evidence of it is 0 whatever else.
  outcomes[1].refunded = 0;
  b_frauds = 1;
  (*m)->RecomputeTrust();
  EXPECT_TRUE((*m)->Json()["trust"]["opinion"].empty());
  // ...and nothing flows to it along anyone's opinion: A still vouches for B, but B is cut off.
  EXPECT_EQ((*m)->TrustOf(b), 0.0);
  EXPECT_GT((*m)->TrustOf(a), 0.5);
  // An equivocation proof against B's wallet (the ledger keeps two orders it signed for one
  // sequence number) does the same.
  b_frauds = 0;
  (*m)->RecomputeTrust();
  EXPECT_GT((*m)->TrustOf(b), 0.5);
  b_equivocations = 1;
  (*m)->RecomputeTrust();
  EXPECT_EQ((*m)->TrustOf(b), 0.0);
  EXPECT_TRUE((*m)->Json()["trust"]["opinion"].empty());
  (*m)->Stop();
}

TEST_F(MeshServiceTest, ANodeKeyFileOfAnotherShapeStopsTheStart) {
  std::ofstream(dir_ + "/node.key") << "not hex\n";
  const bls::SecretKey wallet = Key('w');
  MeshOptions mo;
  mo.policy = &policy_;
  mo.network_id = policy_.network_id;
  auto m = MeshService::Open(core::DefaultFileSystem(), &clock_, dir_, wallet, mo);
  ASSERT_FALSE(m.has_value());
  EXPECT_TRUE(m.error().IsCorruption());
  EXPECT_NE(m.error().message().find("move it aside"), std::string::npos);
}

}  // namespace
}  // namespace dfrp::node
