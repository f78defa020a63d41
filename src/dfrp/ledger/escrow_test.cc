// Escrows, settlements and the beacon at the authority (ledger/escrow.h): the provider's
// acceptance, releases only inside the answer window with a proof that answers the period's
// seed, refunds only after the grace, never both for one period, the margin, conservation.
#include "dfrp/ledger/escrow.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "dfrp/crypto/merkle.h"
#include "dfrp/ledger/audit.h"
#include "dfrp/ledger/epoch.h"
#include "dfrp/ledger/ledger_test_util.h"
#include "dfrp/ledger/wire.h"
#include "dfrp/storage/proof.h"

namespace dfrp::ledger {
namespace {

using namespace testing;  // NOLINT: the fixture

// Periods of 10 s with a 4 s answer window, 2 s of grace, a 0.5 s guard, 1 s beacon slots,
// 3 challenges; the owner (user 9) takes 5% of every payout.
std::string StorageToml() {
  return fmt::format(
      "owner = \"{}\"\nmargin_bps = 500\n\n[storage]\nperiod_seconds = 10\nchallenges_per_period "
      "= 3\nanswer_window_seconds = 4\ngrace_seconds = 2\nmax_skew_ms = 500\nbeacon_slot_seconds "
      "= 1\n",
      wallet::AddressOf(KeyOf(9).GetPublicKey()));
}

// A shard held in memory: its bytes, tree and an audit answer for any seed.
struct Shard {
  core::Uuid id;
  std::string data;
  uint32_t leaf_size = 512;
  std::vector<crypto::Hash> leaves;
  crypto::Hash root{};

  explicit Shard(int seed, size_t size = 5000) {
    id.bytes.fill(static_cast<uint8_t>(seed));
    id.bytes[6] = 0x70;
    id.bytes[8] = 0x80;
    data.resize(size);
    for (size_t i = 0; i < size; ++i) data[i] = static_cast<char>((i * 31 + seed) % 251);
    leaves.resize(crypto::LeafCount(size, leaf_size));
    crypto::HashLeaves(data, leaf_size, leaves, 1);
    root = crypto::RootFromLeafHashes(leaves);
  }
  std::string Audit(const std::string& seed, uint32_t k) const {
    storage::ProofSet p;
    p.shard_id = id;
    p.root = root;
    p.tree_size = leaves.size();
    p.leaf_size = leaf_size;
    p.seed = seed;
    for (uint64_t i : storage::ChallengeIndices(seed, id, leaves.size(), k)) {
      auto inc = crypto::ProofFromLeafHashes(leaves, i);
      p.proofs.push_back({i, data.substr(i * leaf_size, leaf_size), inc.path});
    }
    return storage::EncodeProofBinary(p);
  }
};

class EscrowTest : public LedgerTest {
 protected:
  void Start(int n) {
    StartCommittee(n, 10, StorageToml());
    clock_.SetMillis(1'800'000'000'000);
  }
  StorageTerms Terms(const Shard& s, uint32_t periods = 3) {
    StorageTerms t;
    t.shard_id = s.id;
    t.root = s.root;
    t.size = s.data.size();
    t.leaf_size = s.leaf_size;
    t.periods = periods;
    t.period_seconds = 10;
    t.start_unix = static_cast<uint64_t>(clock_.NowUnixMillis() / 1000);
    t.challenges = 3;
    return t;
  }
  // User `payer` opens an escrow of `amount` for user `provider` (who accepts) at `seq`.
  SignedOrder Open(int payer, int provider, uint64_t amount, const StorageTerms& t, uint64_t seq,
                   int acceptor = -1) {
    Order o;
    o.kind = OrderKind::kEscrowOpen;
    o.sender = Pub(KeyOf(payer));
    o.seq = seq;
    o.fee = 1;
    o.escrow.provider = Pub(KeyOf(provider));
    o.escrow.amount = amount;
    o.escrow.terms = t;
    const std::string accept =
        AcceptanceSigningBytes(o.sender, seq, 0, o.escrow.provider, amount, t, Net());
    o.escrow.acceptance =
        KeyOf(acceptor < 0 ? provider : acceptor).Sign(core::AsBytes(accept)).bytes();
    return SignOrder(o, KeyOf(payer), Net());
  }
  // The beacon of `slot` signed by the first quorum of authorities.
  Beacon BeaconOf(uint64_t slot) {
    std::vector<Vote> votes;
    for (auto& a : authorities_) {
      auto v = a->BeaconShare(slot);
      EXPECT_TRUE(v.has_value()) << v.error().ToString();
      if (v) votes.push_back(*v);
    }
    auto b = MakeBeacon(slot, votes, authorities_[0]->committee());
    EXPECT_TRUE(b.has_value()) << b.error().ToString();
    return *b;
  }
  Settlement Release(const crypto::Hash& id, uint32_t k, const Shard& shard, const Beacon& b,
                     uint32_t challenges = 3) {
    const std::string seed = PeriodSeed(BeaconSeed(b, Net()), id, k);
    return MakeSettlement(id, k, SettleKind::kRelease, 0, shard.Audit(seed, challenges),
                          EncodeBeacon(b), Net());
  }
  Settlement Refund(const crypto::Hash& id, uint32_t k) {
    return MakeSettlement(id, k, SettleKind::kRefund, 0, "", "", Net());
  }
  PeriodWindow Window(const crypto::Hash& id, const StorageTerms& t, uint32_t k) {
    return WindowOf(id, t, k, policy_.storage);
  }
};

TEST(EscrowMath, PeriodsSumToTheAmountAndTheMarginRoundsDown) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 2000; ++trial) {
    const uint64_t amount = trial < 1000 ? rng() % 100000 : rng();
    const uint32_t periods = 1 + static_cast<uint32_t>(rng() % 97);
    uint64_t sum = 0;
    for (uint32_t k = 0; k < periods; ++k) {
      const uint64_t p = PeriodAmount(amount, periods, k);
      ASSERT_LE(MarginOf(p, 500), p);
      sum += p;
    }
    ASSERT_EQ(sum, amount) << amount << " over " << periods;
  }
  EXPECT_EQ(PeriodAmount(10, 3, 0), 3u);
  EXPECT_EQ(PeriodAmount(10, 3, 1), 3u);
  EXPECT_EQ(PeriodAmount(10, 3, 2), 4u);
  EXPECT_EQ(MarginOf(999, 500), 49u);
  EXPECT_EQ(MarginOf(UINT64_MAX, 10000), UINT64_MAX);
}

TEST_F(EscrowTest, OpeningNeedsTheProvidersAcceptanceAndLocksTheAmount) {
  Start(1);
  const Shard shard(1);
  const StorageTerms t = Terms(shard);
  // Accepted by someone else: refused before any lock.
  auto forged = authorities_[0]->HandleOrder(Open(0, 1, 300, t, 0, /*acceptor=*/2));
  ASSERT_FALSE(forged.has_value());
  EXPECT_EQ(forged.error().code(), core::Status::Code::kInvalidArgument)
      << forged.error().ToString();
  EXPECT_NE(forged.error().message().find("acceptance"), std::string::npos);
  // Terms of another period length, too few challenges: refused, naming the key.
  StorageTerms other = t;
  other.period_seconds = 11;
  auto bad = authorities_[0]->HandleOrder(Open(0, 1, 300, other, 0));
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message().find("period_seconds"), std::string::npos);
  other = t;
  other.challenges = 2;
  bad = authorities_[0]->HandleOrder(Open(0, 1, 300, other, 0));
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message().find("challenges_per_period"), std::string::npos);
  // An audit answer that could not travel in a release (1000 leaves of 1 MiB).
  other = t;
  other.challenges = 1000;
  other.leaf_size = 1 << 20;
  other.size = uint64_t{1} << 30;
  EXPECT_FALSE(AuditAnswerFits(other));
  EXPECT_GT(MaxAuditAnswerBytes(other), uint64_t{1000} << 20);
  bad = authorities_[0]->HandleOrder(Open(0, 1, 300, other, 0));
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message().find("more than a release carries"), std::string::npos)
      << bad.error().ToString();
  EXPECT_TRUE(AuditAnswerFits(t));
  // More than the payer has: refused for funds.
  auto poor = authorities_[0]->HandleOrder(Open(0, 1, 1000, t, 0));
  ASSERT_FALSE(poor.has_value());
  EXPECT_EQ(poor.error().code(), core::Status::Code::kRefused);

  const SignedOrder open = Open(0, 1, 300, t, 0);
  ASSERT_TRUE(authorities_[0]->HandleCertificate(Certify(open, {0})).has_value());
  EXPECT_EQ(Balance(0, Pub(KeyOf(0))), 1000 - 300 - 1);
  EXPECT_EQ(Balance(0, Pub(KeyOf(1))), 1000);  // nothing paid yet
  const crypto::Hash id = EscrowId(Pub(KeyOf(0)), 0);
  auto e = authorities_[0]->Escrow(id);
  ASSERT_TRUE(e.has_value()) << e.error().ToString();
  EXPECT_EQ(e->remaining, 300u);
  EXPECT_EQ(e->margin_bps, 500u);
  EXPECT_EQ(e->terms.root, shard.root);
  ExpectConserved();  // the 300 in escrow still counts in the supply
  auto listed = authorities_[0]->OpenEscrows(Pub(KeyOf(1)));
  ASSERT_TRUE(listed.has_value());
  ASSERT_EQ(listed->size(), 1u);
  // Two more for the same provider: listed a page at a time, by id, each page after the last.
  for (uint64_t seq : {1u, 2u})
    for (auto& a : authorities_)
      ASSERT_TRUE(a->HandleCertificate(Certify(Open(0, 1, 100, t, seq), {0})).has_value());
  auto page1 = authorities_[0]->OpenEscrows(Pub(KeyOf(1)), 2);
  ASSERT_TRUE(page1.has_value());
  ASSERT_EQ(page1->size(), 2u);
  EXPECT_LT((*page1)[0].id, (*page1)[1].id);
  auto page2 = authorities_[0]->OpenEscrows(Pub(KeyOf(1)), 2, page1->back().id);
  ASSERT_TRUE(page2.has_value());
  ASSERT_EQ(page2->size(), 1u);
  EXPECT_LT((*page1)[1].id, (*page2)[0].id);

  // The wire form round-trips, and every truncation is refused.
  const std::string wire = EncodeSignedOrder(open, Net());
  auto back = DecodeSignedOrder(wire, Net());
  ASSERT_TRUE(back.has_value()) << back.error().ToString();
  EXPECT_EQ(EncodeSignedOrder(*back, Net()), wire);
  EXPECT_EQ(back->hash, open.hash);
  for (size_t n = 0; n < wire.size(); ++n)
    ASSERT_FALSE(DecodeSignedOrder(wire.substr(0, n), Net()).has_value()) << n;
}

TEST_F(EscrowTest, AReleaseIsPaidOnlyInsideItsWindowWithAProofOfThatPeriodsSeed) {
  Start(4);
  const Shard shard(1), other_shard(2);
  const StorageTerms t = Terms(shard);
  ApplyEverywhere(Certify(Open(0, 1, 300, t, 0), {0, 1, 2}));
  const crypto::Hash id = EscrowId(Pub(KeyOf(0)), 0);
  const PeriodWindow w = Window(id, t, 0);
  ASSERT_GE(w.open_ms, clock_.NowUnixMillis());

  // Before its slot begins no authority signs the beacon: nobody knows the seed early.
  clock_.SetMillis(w.open_ms - 1000);
  auto early_share = authorities_[0]->BeaconShare(w.slot);
  ASSERT_FALSE(early_share.has_value());
  EXPECT_EQ(early_share.error().code(), core::Status::Code::kRefused);

  clock_.SetMillis(w.open_ms + 100);
  const Beacon b = BeaconOf(w.slot);
  ASSERT_TRUE(VerifyBeacon(b, authorities_[0]->committee(), Net()).ok());
  auto expect_refused = [&](const Settlement& s, const char* why) {
    auto v = authorities_[1]->HandleSettlement(s);
    ASSERT_FALSE(v.has_value()) << why;
    EXPECT_EQ(v.error().code(), core::Status::Code::kRefused)
        << why << ": " << v.error().ToString();
    EXPECT_NE(v.error().message().find("release"), std::string::npos) << v.error().ToString();
  };
  // The seed of another period, another shard's proof, fewer challenges, a beacon of another
  // slot: each refused.
  expect_refused(Release(id, 0, shard, BeaconOf(w.slot - 1)), "a beacon of another slot");
  {
    Settlement s = Release(id, 0, shard, b);
    const std::string seed1 = PeriodSeed(BeaconSeed(b, Net()), id, 1);
    s = MakeSettlement(id, 0, SettleKind::kRelease, 0, shard.Audit(seed1, 3), EncodeBeacon(b),
                       Net());
    expect_refused(s, "an answer to period 1's seed");
  }
  expect_refused(Release(id, 0, other_shard, b), "another shard's proof");
  expect_refused(Release(id, 0, shard, b, 2), "two challenges of three");
  // A refund of the period is not due yet.
  auto refund = authorities_[1]->HandleSettlement(Refund(id, 0));
  ASSERT_FALSE(refund.has_value());
  EXPECT_NE(refund.error().message().find("refundable from"), std::string::npos);

  const Settlement good = Release(id, 0, shard, b);
  const SettleCertificate cert = CertifySettlement(good, {0, 1, 3});
  for (auto& a : authorities_) {
    auto r = a->HandleSettleCertificate(cert);
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    EXPECT_EQ(*r, ApplyOutcome::kApplied);
    EXPECT_EQ(*a->HandleSettleCertificate(cert), ApplyOutcome::kAlreadyApplied);
  }
  // Period 0 pays 100: 5 to the owner, 95 to the provider.
  for (size_t a = 0; a < authorities_.size(); ++a) {
    EXPECT_EQ(Balance(a, Pub(KeyOf(1))), 1000 + 95);
    EXPECT_EQ(Balance(a, Pub(KeyOf(9))), 1000 + 5);
    EXPECT_EQ(authorities_[a]->Escrow(id)->remaining, 200u);
  }
  ExpectConserved();
  // After the window (less the guard), no release is voted, even a valid one.
  clock_.SetMillis(w.vote_until_ms);
  auto late = authorities_[2]->HandleSettlement(good);
  ASSERT_FALSE(late.has_value());
  EXPECT_EQ(late.error().code(), core::Status::Code::kRefused);
  // The certificate round-trips on the wire and a tampered one is refused.
  const std::string wire = EncodeSettleCertificate(cert, Net());
  auto back = DecodeSettleCertificate(wire, Net());
  ASSERT_TRUE(back.has_value()) << back.error().ToString();
  EXPECT_EQ(EncodeSettleCertificate(*back, Net()), wire);
  SettleCertificate tampered = cert;
  tampered.settlement = Refund(id, 0);
  EXPECT_FALSE(VerifySettleCertificate(tampered, authorities_[0]->committee(), Net()).ok());
  SettleCertificate few = cert;
  few.signers = {true, true, false, false};
  EXPECT_FALSE(VerifySettleCertificate(few, authorities_[0]->committee(), Net()).ok());
}

TEST_F(EscrowTest, ARefundComesOnlyAfterTheGraceAndAPeriodIsNeverSettledBothWays) {
  Start(4);
  const Shard shard(1);
  const StorageTerms t = Terms(shard);
  ApplyEverywhere(Certify(Open(0, 1, 300, t, 0), {0, 1, 2}));
  const crypto::Hash id = EscrowId(Pub(KeyOf(0)), 0);

  // Period 1: two authorities vote its release in the window (no quorum: the provider's
  // message reached only them).
  const PeriodWindow w1 = Window(id, t, 1);
  clock_.SetMillis(w1.open_ms + 10);
  const Settlement release = Release(id, 1, shard, BeaconOf(w1.slot));
  ASSERT_TRUE(authorities_[0]->HandleSettlement(release).has_value());
  ASSERT_TRUE(authorities_[1]->HandleSettlement(release).has_value());
  // At the window's close plus the grace, less one millisecond: no refund yet.
  clock_.SetMillis(w1.refund_ms - 1);
  EXPECT_FALSE(authorities_[2]->HandleSettlement(Refund(id, 1)).has_value());
  clock_.SetMillis(w1.refund_ms);
  // The two that voted the release refuse the refund: neither way gathers a quorum (the
  // epoch change resolves such a split).
  for (int a : {0, 1}) {
    auto v = authorities_[a]->HandleSettlement(Refund(id, 1));
    ASSERT_FALSE(v.has_value());
    EXPECT_NE(v.error().message().find("never votes both"), std::string::npos)
        << v.error().ToString();
  }
  ASSERT_TRUE(authorities_[2]->HandleSettlement(Refund(id, 1)).has_value());
  ASSERT_TRUE(authorities_[3]->HandleSettlement(Refund(id, 1)).has_value());

  // Period 2: nothing was released; after the grace, the payer is refunded by a quorum.
  const PeriodWindow w2 = Window(id, t, 2);
  clock_.SetMillis(w2.refund_ms + 5);
  const SettleCertificate refund = CertifySettlement(Refund(id, 2), {1, 2, 3});
  for (auto& a : authorities_) ASSERT_TRUE(a->HandleSettleCertificate(refund).has_value());
  // Period 2 pays 100 (of 300 over 3): back to the payer, no margin.
  for (size_t a = 0; a < authorities_.size(); ++a) {
    EXPECT_EQ(Balance(a, Pub(KeyOf(0))), 1000 - 300 - 1 + 100);
    EXPECT_EQ(Balance(a, Pub(KeyOf(9))), 1000);
  }
  // A release of a refunded period is refused, and a certificate for it (which a correct
  // committee never signs) is an alarm.
  ExpectConserved();
  auto e = authorities_[0]->Escrow(id);
  ASSERT_EQ(e->settled.size(), 1u);
  EXPECT_EQ(e->settled[0].kind, SettleKind::kRefund);
  EXPECT_EQ(e->settled[0].paid, 100u);
  // Across a restart the locks hold.
  authorities_[0].reset();
  authorities_[0] = OpenAuthority(0);
  auto v = authorities_[0]->HandleSettlement(Refund(id, 1));
  ASSERT_FALSE(v.has_value());
  EXPECT_NE(v.error().message().find("never votes both"), std::string::npos);
}

TEST_F(EscrowTest, SettlementAndBeaconDecodersRefuseEveryTruncationAndBadFields) {
  Start(4);
  const Shard shard(3);
  const StorageTerms t = Terms(shard);
  const crypto::Hash id = EscrowId(Pub(KeyOf(0)), 0);
  const PeriodWindow w = Window(id, t, 0);
  clock_.SetMillis(w.open_ms);
  const Beacon b = BeaconOf(w.slot);
  const Settlement s = Release(id, 0, shard, b);
  const std::string wire = SettlementBytes(s, Net());
  auto back = DecodeSettlement(wire, Net());
  ASSERT_TRUE(back.has_value()) << back.error().ToString();
  EXPECT_EQ(back->hash, s.hash);
  for (size_t n = 0; n < wire.size(); n += (n < 200 ? 1 : 97))
    ASSERT_FALSE(DecodeSettlement(wire.substr(0, n), Net()).has_value()) << n;
  ASSERT_FALSE(DecodeSettlement(wire + "x", Net()).has_value());
  // A refund with a proof, a release without: refused by name.
  auto odd = DecodeSettlement(
      SettlementBytes(MakeSettlement(id, 0, SettleKind::kRefund, 0, "p", "", Net()), Net()), Net());
  ASSERT_FALSE(odd.has_value());
  EXPECT_NE(odd.error().message().find("refund carries no proof"), std::string::npos);

  const std::string bw = EncodeBeacon(b);
  ASSERT_TRUE(DecodeBeacon(bw).has_value());
  for (size_t n = 0; n < bw.size(); ++n) ASSERT_FALSE(DecodeBeacon(bw.substr(0, n)).has_value());
  // All four signed: more than a quorum is refused (one seed per quorum, no extra choice).
  std::vector<Vote> all;
  for (auto& a : authorities_) all.push_back(*a->BeaconShare(w.slot));
  auto q = wire::AggregateVotes(all.front().order_hash, all, authorities_[0]->committee(), 3);
  ASSERT_TRUE(q.has_value());
  const Beacon four{w.slot, 0, q->signers, q->aggregate};
  auto st = VerifyBeacon(four, authorities_[0]->committee(), Net());
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("exactly a quorum"), std::string::npos) << st.ToString();
  // Two beacons of one slot from different quorums give different seeds (what
  // log2 C(n, 2f+1) extra challenges pay for), and every beacon of a slot verifies only there.
  std::vector<Vote> last3(all.begin() + 1, all.end());
  auto other = MakeBeacon(w.slot, last3, authorities_[0]->committee());
  ASSERT_TRUE(other.has_value());
  EXPECT_NE(BeaconSeed(*other, Net()), BeaconSeed(b, Net()));
  Beacon moved = b;
  moved.slot += 1;
  EXPECT_FALSE(VerifyBeacon(moved, authorities_[0]->committee(), Net()).ok());
}

// What dfrp-ledger audit reads from authority a.
TEST_F(EscrowTest, TheAuditorReplaysEveryLogAndNamesTheFirstViolation) {
  Start(4);
  const Shard shard(1);
  const StorageTerms t = Terms(shard);
  ApplyEverywhere(Certify(Transfer(0, 2, 50, 0), {0, 1, 2}));
  ApplyEverywhere(Certify(Open(0, 1, 300, t, 1), {0, 1, 3}));
  const crypto::Hash id = EscrowId(Pub(KeyOf(0)), 1);
  const PeriodWindow w0 = Window(id, t, 0);
  clock_.SetMillis(w0.open_ms + 5);
  const SettleCertificate release =
      CertifySettlement(Release(id, 0, shard, BeaconOf(w0.slot)), {0, 1, 2});
  clock_.SetMillis(Window(id, t, 1).refund_ms);
  const SettleCertificate refund = CertifySettlement(Refund(id, 1), {1, 2, 3});
  for (auto& a : authorities_) {
    ASSERT_TRUE(a->HandleSettleCertificate(release).has_value());
    ASSERT_TRUE(a->HandleSettleCertificate(refund).has_value());
  }
  ApplyEverywhere(Certify(Transfer(2, 3, 7, 0), {0, 1, 2}));
  std::vector<AuthorityLog> logs;
  for (size_t a = 0; a < authorities_.size(); ++a)
    logs.push_back(LogOf(*authorities_[a], fmt::format("authority {}", a)));
  AuditReport r = AuditLedger(policy_, logs);
  ASSERT_TRUE(r.ok()) << r.violations.front();
  EXPECT_EQ(r.certificates, 3u);
  EXPECT_EQ(r.settlements, 2u);
  EXPECT_EQ(r.releases_verified, 1u);

  // A lagging log (its last certificate missing, its state as it would be) is a note.
  {
    auto lag = logs;
    lag[3].certificates.pop_back();
    lag[3].accounts[Pub(KeyOf(2))] = {1000 + 50, 0};
    lag[3].accounts[Pub(KeyOf(3))] = {1000, 0};
    lag[3].accounts[kCommitteeAccount].first -= 1;
    const AuditReport lr = AuditLedger(policy_, lag);
    EXPECT_TRUE(lr.ok()) << lr.violations.front();
    ASSERT_EQ(lr.notes.size(), 1u);
    EXPECT_NE(lr.notes[0].find("authority 3 has applied 2 of 3"), std::string::npos);
  }
  // A gap in a sender's sequence.
  {
    auto bad = logs;
    bad[1].certificates.erase(bad[1].certificates.begin());
    const AuditReport br = AuditLedger(policy_, bad);
    ASSERT_FALSE(br.ok());
    EXPECT_NE(br.violations[0].find("authority 1: certificate 1 of its log"), std::string::npos)
        << br.violations[0];
    EXPECT_NE(br.violations[0].find("where 0 was next"), std::string::npos) << br.violations[0];
  }
  // Balances that its own log does not give (one unit moved: the sum still holds), and one
  // unit made out of nothing.
  {
    auto bad = logs;
    bad[2].accounts[Pub(KeyOf(1))].first += 1;
    bad[2].accounts[Pub(KeyOf(0))].first -= 1;
    AuditReport br = AuditLedger(policy_, bad);
    ASSERT_FALSE(br.ok());
    EXPECT_NE(br.violations[0].find("its own log gives"), std::string::npos) << br.violations[0];
    bad[2].accounts[Pub(KeyOf(0))].first += 1;
    br = AuditLedger(policy_, bad);
    ASSERT_FALSE(br.ok());
    EXPECT_NE(br.violations[0].find("sum to 10001 base units, the supply is 10000"),
              std::string::npos)
        << br.violations[0];
  }
  // A byte changed in a certificate.
  {
    auto bad = logs;
    bad[0].certificates[0][bad[0].certificates[0].size() - 5] ^= 1;
    EXPECT_FALSE(AuditLedger(policy_, bad).ok());
  }
  // More than f faulty authorities (test code with three keys) certify a release without a
  // valid proof, and a second order at an applied (sender, seq): both named.
  {
    const Settlement forged = MakeSettlement(id, 2, SettleKind::kRelease, 0, Shard(9).Audit("x", 3),
                                             EncodeBeacon(BeaconOf(w0.slot)), Net());
    std::vector<Vote> votes;
    for (int a = 0; a < 3; ++a)
      votes.push_back(SignVote(forged.hash, 0, static_cast<uint32_t>(a), KeyOf(100 + a), Net()));
    auto bad = logs;
    bad[0].settlements.push_back(EncodeSettleCertificate(
        *MakeSettleCertificate(forged, votes, authorities_[0]->committee()), Net()));
    const AuditReport br = AuditLedger(policy_, bad);
    ASSERT_FALSE(br.ok());
    EXPECT_NE(br.violations[0].find("a certified release without a valid proof"), std::string::npos)
        << br.violations[0];

    const SignedOrder twin = Transfer(0, 3, 5, 0);
    std::vector<Vote> tv;
    for (int a = 0; a < 3; ++a)
      tv.push_back(SignVote(twin.hash, 0, static_cast<uint32_t>(a), KeyOf(100 + a), Net()));
    auto twins = logs;
    twins[2].certificates[0] =
        EncodeCertificate(*MakeCertificate(twin, tv, authorities_[0]->committee()), Net());
    const AuditReport tr = AuditLedger(policy_, twins);
    ASSERT_FALSE(tr.ok());
    EXPECT_NE(tr.violations[0].find("two certified orders at sequence number 0"), std::string::npos)
        << tr.violations[0];
  }
}

// --- The epoch change (ledger/epoch.h).

TEST_F(EscrowTest, TheEpochChangeUnfreezesAnEquivocatorAndSettlesASplitPeriod) {
  Start(4);
  const Shard shard(1);
  const StorageTerms t = Terms(shard);
  ApplyEverywhere(Certify(Open(0, 1, 300, t, 0), {0, 1, 2}));
  const crypto::Hash id = EscrowId(Pub(KeyOf(0)), 0);

  // User 2 equivocates: two orders for seq 0, each voted by two authorities: frozen.
  ASSERT_EQ(Votes(Transfer(2, 3, 10, 0), {0, 1}).size(), 2u);
  ASSERT_EQ(Votes(Transfer(2, 4, 10, 0), {2, 3}).size(), 2u);
  EXPECT_EQ(authorities_[0]->HandleOrder(Transfer(2, 4, 10, 0)).error().code(),
            core::Status::Code::kRefused);
  // Period 1's votes split: releases at 0 and 1 in the window, refunds at 2 and 3 after it.
  const PeriodWindow w1 = Window(id, t, 1);
  clock_.SetMillis(w1.open_ms + 10);
  const Settlement release = Release(id, 1, shard, BeaconOf(w1.slot));
  ASSERT_TRUE(authorities_[0]->HandleSettlement(release).has_value());
  ASSERT_TRUE(authorities_[1]->HandleSettlement(release).has_value());
  clock_.SetMillis(w1.refund_ms);
  ASSERT_TRUE(authorities_[2]->HandleSettlement(Refund(id, 1)).has_value());
  ASSERT_TRUE(authorities_[3]->HandleSettlement(Refund(id, 1)).has_value());
  // A transfer that authority 3 has not applied yet (it lags), and one certified but never
  // sent to anyone (its client vanished).
  const Certificate lagging = Certify(Transfer(5, 6, 50, 0), {0, 1, 2});
  for (int a : {0, 1, 2}) ASSERT_TRUE(authorities_[a]->HandleCertificate(lagging).has_value());
  const Certificate unsent = Certify(Transfer(7, 8, 20, 0), {0, 1, 2});

  // A seal by authority 0: no authority votes in epoch 0 any more.
  const Vote seal = SignVote(SealItemHash(0, Net()), 0, 0, *keys_[0], Net());
  for (auto& a : authorities_) ASSERT_TRUE(a->Seal(seal).ok());
  EXPECT_EQ(authorities_[1]->HandleOrder(Transfer(8, 9, 1, 0)).error().code(),
            core::Status::Code::kBusy);
  // A seal of another epoch, or forged, is refused.
  EXPECT_FALSE(
      authorities_[0]->Seal(SignVote(SealItemHash(5, Net()), 0, 0, *keys_[0], Net())).ok());
  Vote forged = seal;
  forged.authority = 1;
  EXPECT_FALSE(authorities_[0]->Seal(forged).ok());

  // 0, 1 and 2 hold one state; 3 lags, and refuses to vote for a checkpoint that is not its
  // own.
  auto s0 = authorities_[0]->GetEpochState();
  auto s3 = authorities_[3]->GetEpochState();
  ASSERT_TRUE(s0 && s3);
  EXPECT_TRUE(s0->sealed);
  EXPECT_EQ(s0->checkpoint.certificates, 2u);
  EXPECT_EQ(s3->checkpoint.certificates, 1u);
  for (int a : {1, 2}) EXPECT_EQ(authorities_[a]->GetEpochState()->checkpoint, s0->checkpoint);
  const Committee& committee = authorities_[0]->committee();
  const EpochProposal p = MakeEpochProposal(0, committee, policy_.version, s0->checkpoint, Net());
  std::vector<Vote> votes;
  for (int a : {0, 1, 2}) {
    auto v = authorities_[a]->HandleEpochProposal(p);
    ASSERT_TRUE(v.has_value()) << v.error().ToString();
    votes.push_back(*v);
  }
  auto refused = authorities_[3]->HandleEpochProposal(p);
  ASSERT_FALSE(refused.has_value());
  EXPECT_NE(refused.error().message().find("only for its own state"), std::string::npos);
  // One proposal per epoch: another checkpoint is refused by those that voted.
  EpochProposal other = MakeEpochProposal(0, committee, policy_.version, s3->checkpoint, Net());
  EXPECT_EQ(authorities_[0]->HandleEpochProposal(other).error().code(),
            core::Status::Code::kRefused);
  // Having voted, an authority applies nothing more of epoch 0.
  EXPECT_EQ(authorities_[0]->HandleCertificate(unsent).error().code(),
            core::Status::Code::kRefused);

  auto cert = MakeEpochCertificate(p, votes, committee);
  ASSERT_TRUE(cert.has_value()) << cert.error().ToString();
  // Too few signers, or a proposal altered after signing, do not verify.
  EpochCertificate short_cert = *cert;
  short_cert.signers[2] = false;
  EXPECT_FALSE(VerifyEpochCertificate(short_cert, committee, Net()).ok());
  EpochCertificate altered = *cert;
  altered.proposal.checkpoint.certificates = 1;
  altered.proposal.hash = crypto::Sha256Of(EpochProposalBytes(altered.proposal, Net()));
  EXPECT_FALSE(VerifyEpochCertificate(altered, committee, Net()).ok());

  for (int a : {0, 1, 2})
    ASSERT_EQ(authorities_[a]->HandleEpochCertificate(*cert).value(), ApplyOutcome::kApplied);
  // The laggard first applies what the checkpoint holds, then follows.
  auto behind = authorities_[3]->HandleEpochCertificate(*cert);
  ASSERT_FALSE(behind.has_value());
  EXPECT_EQ(behind.error().code(), core::Status::Code::kNotFound) << behind.error().ToString();
  ASSERT_TRUE(authorities_[3]->HandleCertificate(lagging).has_value());
  ASSERT_EQ(authorities_[3]->HandleEpochCertificate(*cert).value(), ApplyOutcome::kApplied);
  EXPECT_EQ(authorities_[3]->HandleEpochCertificate(*cert).value(), ApplyOutcome::kAlreadyApplied);
  for (auto& a : authorities_) EXPECT_EQ(a->epoch(), 1u);

  // Epoch 1. Orders and certificates of epoch 0 are void...
  EXPECT_EQ(authorities_[0]->HandleOrder(Transfer(2, 3, 10, 0)).error().code(),
            core::Status::Code::kInvalidArgument);
  EXPECT_EQ(authorities_[0]->HandleCertificate(unsent).error().code(),
            core::Status::Code::kRefused);
  // ...the equivocator signs its seq 0 again, and so does the vanished client.
  for (auto [from, to] : {std::pair{2, 3}, std::pair{7, 8}}) {
    const SignedOrder again = Transfer(from, to, 10, 0, "", 1, 1);
    std::vector<Vote> v1;
    for (auto& a : authorities_) {
      auto v = a->HandleOrder(again);
      ASSERT_TRUE(v.has_value()) << v.error().ToString();
      v1.push_back(*v);
    }
    auto c1 = MakeCertificate(again, v1, committee.AtEpoch(1));
    ASSERT_TRUE(c1.has_value()) << c1.error().ToString();
    for (auto& a : authorities_) ASSERT_TRUE(a->HandleCertificate(*c1).has_value());
  }
  // The held-back certificate, now that its sequence number holds the order signed again: void,
  // not an alarm (two certificates of different epochs).
  auto late = authorities_[1]->HandleCertificate(unsent);
  ASSERT_FALSE(late.has_value());
  EXPECT_EQ(late.error().code(), core::Status::Code::kRefused) << late.error().ToString();
  EXPECT_NE(late.error().message().find("void"), std::string::npos) << late.error().ToString();
  // ...and the split period is refunded by every authority now.
  const Settlement refund1 = MakeSettlement(id, 1, SettleKind::kRefund, 1, "", "", Net());
  std::vector<Vote> rv;
  for (auto& a : authorities_) {
    auto v = a->HandleSettlement(refund1);
    ASSERT_TRUE(v.has_value()) << v.error().ToString();
    rv.push_back(*v);
  }
  auto rc = MakeSettleCertificate(refund1, rv, committee.AtEpoch(1));
  ASSERT_TRUE(rc.has_value());
  for (auto& a : authorities_) ASSERT_TRUE(a->HandleSettleCertificate(*rc).has_value());
  // A release of that period certified in epoch 0 (by a quorum that included a faulty
  // authority's second vote, say) comes too late: void, not an alarm.
  std::vector<Vote> old_votes;
  for (uint32_t a = 0; a < 3; ++a)
    old_votes.push_back(SignVote(release.hash, 0, a, *keys_[a], Net()));
  auto old_release = MakeSettleCertificate(release, old_votes, committee);
  ASSERT_TRUE(old_release.has_value());
  auto void_release = authorities_[0]->HandleSettleCertificate(*old_release);
  ASSERT_FALSE(void_release.has_value());
  EXPECT_EQ(void_release.error().code(), core::Status::Code::kRefused)
      << void_release.error().ToString();
  // Payouts by period: the one refund, in the bucket of the period's start.
  auto pay = authorities_[3]->Payouts(10);
  ASSERT_TRUE(pay.has_value()) << pay.error().ToString();
  ASSERT_EQ(pay->size(), 1u);
  const int64_t began = static_cast<int64_t>(t.start_unix) + 10;
  EXPECT_EQ((*pay)[0].start_unix, began - began % 10);
  EXPECT_EQ((*pay)[0].refunded, 100u);
  EXPECT_EQ((*pay)[0].refunds, 1u);
  EXPECT_EQ((*pay)[0].to_providers + (*pay)[0].margin + (*pay)[0].releases, 0u);
  for (size_t a = 0; a < authorities_.size(); ++a) {
    EXPECT_EQ(Balance(a, Pub(KeyOf(0))), 1000 - 300 - 1 + 100);
    EXPECT_EQ(Balance(a, Pub(KeyOf(2))), 1000 - 10 - 1);
    EXPECT_EQ(Balance(a, Pub(KeyOf(8))), 1000 + 10);
  }
  ExpectConserved();
  // The epoch survives a restart, and the certificate is served to peers.
  authorities_[2].reset();
  authorities_[2] = OpenAuthority(2);
  EXPECT_EQ(authorities_[2]->epoch(), 1u);
  EXPECT_FALSE(authorities_[2]->GetEpochState()->sealed);
  auto served = authorities_[2]->EpochCertificates(0);
  ASSERT_TRUE(served && served->size() == 1u);
  EXPECT_EQ((*served)[0], EncodeEpochCertificate(*cert, Net()));
}

TEST_F(EscrowTest, ACommitteeOfOneChangesEpochWithItsOwnSignature) {
  Start(1);
  ASSERT_TRUE(authorities_[0]->HandleCertificate(Certify(Transfer(0, 1, 5, 0), {0})).has_value());
  ASSERT_TRUE(authorities_[0]->Seal(SignVote(SealItemHash(0, Net()), 0, 0, *keys_[0], Net())).ok());
  auto st = authorities_[0]->GetEpochState();
  ASSERT_TRUE(st.has_value());
  const EpochProposal p =
      MakeEpochProposal(0, authorities_[0]->committee(), policy_.version, st->checkpoint, Net());
  auto v = authorities_[0]->HandleEpochProposal(p);
  ASSERT_TRUE(v.has_value()) << v.error().ToString();
  auto cert = MakeEpochCertificate(p, {*v}, authorities_[0]->committee());
  ASSERT_TRUE(cert.has_value());
  ASSERT_TRUE(authorities_[0]->HandleEpochCertificate(*cert).has_value());
  EXPECT_EQ(authorities_[0]->epoch(), 1u);
  EXPECT_TRUE(authorities_[0]->HandleOrder(Transfer(0, 1, 5, 1, "", 1, 1)).has_value());
  ExpectConserved();
}

TEST_F(EscrowTest, EpochDecodersRefuseEveryTruncationAndRoundTrip) {
  Start(4);
  Checkpoint cp;
  cp.certificates = 7;
  cp.settlements = 2;
  cp.state.fill(0x5a);
  const EpochProposal p = MakeEpochProposal(3, authorities_[0]->committee(), 1, cp, Net());
  const std::string bytes = EpochProposalBytes(p, Net());
  EXPECT_EQ(bytes.size(), kEpochProposalWireBytes);
  auto back = DecodeEpochProposal(bytes, Net());
  ASSERT_TRUE(back.has_value()) << back.error().ToString();
  EXPECT_EQ(back->hash, p.hash);
  EXPECT_EQ(back->checkpoint, cp);
  for (size_t n = 0; n < bytes.size(); ++n)
    EXPECT_FALSE(DecodeEpochProposal(bytes.substr(0, n), Net()).has_value()) << n;
  EXPECT_FALSE(DecodeEpochProposal(bytes + "x", Net()).has_value());
  // A next epoch that does not follow.
  EpochProposal skip = p;
  skip.next_epoch = 5;
  EXPECT_FALSE(DecodeEpochProposal(EpochProposalBytes(skip, Net()), Net()).has_value());
  // Another network.
  crypto::Hash other = Net();
  other[0] ^= 1;
  EXPECT_FALSE(DecodeEpochProposal(bytes, other).has_value());
}

// --- Read escrows (ledger/escrow.h, "Read escrows").

class ReadEscrowTest : public EscrowTest {
 protected:
  // 1 base unit per byte read (a price of 2^20 per MiB).
  ReadTerms RTerms(uint64_t seconds = 60) {
    return {uint64_t{1} << 20, static_cast<uint64_t>(clock_.NowUnixMillis() / 1000) + seconds};
  }
  SignedOrder OpenRead(int payer, int provider, uint64_t amount, const ReadTerms& t, uint64_t seq,
                       int acceptor = -1) {
    Order o;
    o.kind = OrderKind::kReadEscrowOpen;
    o.sender = Pub(KeyOf(payer));
    o.seq = seq;
    o.fee = 1;
    o.escrow.provider = Pub(KeyOf(provider));
    o.escrow.amount = amount;
    o.escrow.read = t;
    const std::string accept =
        ReadAcceptanceSigningBytes(o.sender, seq, 0, o.escrow.provider, amount, t, Net());
    o.escrow.acceptance =
        KeyOf(acceptor < 0 ? provider : acceptor).Sign(core::AsBytes(accept)).bytes();
    return SignOrder(o, KeyOf(payer), Net());
  }
  std::string Receipt(const crypto::Hash& id, uint64_t bytes, uint64_t expiry, int signer = 0,
                      int provider = 1) {
    return EncodeReceipt(SignReceipt(id, Pub(KeyOf(provider)), bytes, expiry, KeyOf(signer), Net()),
                         Net());
  }
  Settlement Redeem(const crypto::Hash& id, const std::string& receipt) {
    return MakeSettlement(id, 0, SettleKind::kRedeem, 0, receipt, "", Net());
  }
  Settlement Close(const crypto::Hash& id, const std::string& receipt) {
    return MakeSettlement(id, 0, SettleKind::kClose, 0, receipt, "", Net());
  }
};

TEST_F(ReadEscrowTest, EachReceiptPaysOnlyWhatItAddsAndTheCloseRefundsTheRest) {
  Start(4);
  const ReadTerms t = RTerms();
  // Accepted by another key: refused; an end in the past: refused.
  auto forged = authorities_[0]->HandleOrder(OpenRead(0, 1, 500, t, 0, /*acceptor=*/2));
  ASSERT_FALSE(forged.has_value());
  EXPECT_NE(forged.error().message().find("acceptance"), std::string::npos);
  ReadTerms past = t;
  past.end_unix = static_cast<uint64_t>(clock_.NowUnixMillis() / 1000) - 1;
  auto stale = authorities_[0]->HandleOrder(OpenRead(0, 1, 500, past, 0));
  ASSERT_FALSE(stale.has_value());
  EXPECT_NE(stale.error().message().find("in the future"), std::string::npos);

  const SignedOrder open = OpenRead(0, 1, 500, t, 0);
  ApplyEverywhere(Certify(open, {0, 1, 2}));
  const crypto::Hash id = EscrowId(Pub(KeyOf(0)), 0);
  auto e = authorities_[3]->Escrow(id);
  ASSERT_TRUE(e.has_value()) << e.error().ToString();
  EXPECT_TRUE(e->is_read);
  EXPECT_EQ(e->read.end_unix, t.end_unix);
  EXPECT_EQ(e->remaining, 500u);
  EXPECT_EQ(Balance(0, Pub(KeyOf(0))), 1000 - 500 - 1);
  ExpectConserved();

  // 100 bytes: 100 base units, 5 of them the owner's margin.
  const Settlement r100 = Redeem(id, Receipt(id, 100, t.end_unix));
  const SettleCertificate c100 = CertifySettlement(r100, {0, 1, 2});
  ApplySettleEverywhere(c100);
  EXPECT_EQ(Balance(3, Pub(KeyOf(1))), 1000 + 95);
  EXPECT_EQ(Balance(3, Pub(KeyOf(9))), 1000 + 5);
  EXPECT_EQ(authorities_[3]->Escrow(id)->redeemed_bytes, 100u);
  ExpectConserved();
  // The same receipt again, or a lower one: earns nothing (refused, naming why).
  core::Status replay = VoteError(3, r100);
  EXPECT_EQ(replay.code(), core::Status::Code::kRefused) << replay.ToString();
  EXPECT_NE(replay.message().find("earns nothing"), std::string::npos) << replay.ToString();
  EXPECT_EQ(VoteError(0, Redeem(id, Receipt(id, 60, t.end_unix))).code(),
            core::Status::Code::kRefused);
  // The same certificate again: applied once.
  EXPECT_EQ(*authorities_[0]->HandleSettleCertificate(c100), ApplyOutcome::kAlreadyApplied);
  // Forged (signed by the provider), for another provider, past the escrow's end: refused.
  core::Status bad = VoteError(0, Redeem(id, Receipt(id, 400, t.end_unix, /*signer=*/1)));
  EXPECT_EQ(bad.code(), core::Status::Code::kCorruption) << bad.ToString();
  bad = VoteError(0, Redeem(id, Receipt(id, 400, t.end_unix, 0, /*provider=*/2)));
  EXPECT_EQ(bad.code(), core::Status::Code::kInvalidArgument) << bad.ToString();
  bad = VoteError(0, Redeem(id, Receipt(id, 400, t.end_unix + 1)));
  EXPECT_NE(bad.message().find("after the escrow's end"), std::string::npos) << bad.ToString();
  // A storage escrow's settlement for a read escrow: refused.
  bad = VoteError(0, Refund(id, 0));
  EXPECT_EQ(bad.code(), core::Status::Code::kInvalidArgument) << bad.ToString();

  // Two redemptions applied in either order end in one state.
  const SettleCertificate c250 =
      CertifySettlement(Redeem(id, Receipt(id, 250, t.end_unix)), {1, 2, 3});
  const SettleCertificate c300 =
      CertifySettlement(Redeem(id, Receipt(id, 300, t.end_unix)), {1, 2, 3});
  ASSERT_TRUE(authorities_[0]->HandleSettleCertificate(c300).has_value());
  ASSERT_TRUE(authorities_[0]->HandleSettleCertificate(c250).has_value());  // pays nothing
  for (int a = 1; a < 4; ++a) {
    ASSERT_TRUE(authorities_[a]->HandleSettleCertificate(c250).has_value());
    ASSERT_TRUE(authorities_[a]->HandleSettleCertificate(c300).has_value());
  }
  for (int a = 0; a < 4; ++a) {
    EXPECT_EQ(Balance(a, Pub(KeyOf(1))), 1000 + 285) << a;  // 300 less the margin of 300
    EXPECT_EQ(Balance(a, Pub(KeyOf(9))), 1000 + 15) << a;
    EXPECT_EQ(authorities_[a]->Escrow(id)->remaining, 200u) << a;
  }
  ExpectConserved();
  auto cp0 = authorities_[0]->GetEpochState();
  auto cp3 = authorities_[3]->GetEpochState();
  ASSERT_TRUE(cp0.has_value() && cp3.has_value());
  EXPECT_EQ(cp0->checkpoint, cp3->checkpoint);  // one state, whatever the order

  // Authority 0 votes for a receipt of 350 that never gathers a quorum.
  const std::string r350 = Receipt(id, 350, t.end_unix);
  ASSERT_TRUE(authorities_[0]->HandleSettlement(Redeem(id, r350)).has_value());
  // No close before the end plus the grace; no redemption from then on.
  const Settlement close300 = Close(id, Receipt(id, 300, t.end_unix));
  bad = VoteError(1, close300);
  EXPECT_NE(bad.message().find("closable from"), std::string::npos) << bad.ToString();
  clock_.SetMillis(static_cast<int64_t>(t.end_unix + 2) * 1000);
  bad = VoteError(1, Redeem(id, r350));
  EXPECT_NE(bad.message().find("votes redemptions until"), std::string::npos) << bad.ToString();
  // Authority 0 closes only at 350 or more (it voted to redeem 350); the others at 300.
  bad = VoteError(0, close300);
  EXPECT_NE(bad.message().find("at least 350"), std::string::npos) << bad.ToString();
  bad = VoteError(1, Close(id, ""));
  EXPECT_NE(bad.message().find("at least 300"), std::string::npos) << bad.ToString();
  const SettleCertificate closed = CertifySettlement(close300, {1, 2, 3});
  // Having voted that close, authority 1 votes for no other.
  bad = VoteError(1, Close(id, r350));
  EXPECT_NE(bad.message().find("another close"), std::string::npos) << bad.ToString();
  ApplySettleEverywhere(closed);
  for (int a = 0; a < 4; ++a) {
    auto after = authorities_[a]->Escrow(id);
    EXPECT_TRUE(after->closed);
    EXPECT_EQ(after->remaining, 0u);
    EXPECT_EQ(Balance(a, Pub(KeyOf(0))), 1000 - 500 - 1 + 200) << a;  // the unread rest back
    EXPECT_EQ(Balance(a, Pub(KeyOf(1))), 1000 + 285) << a;
  }
  bad = VoteError(2, Close(id, r350));
  EXPECT_NE(bad.message().find("closed"), std::string::npos) << bad.ToString();
  ExpectConserved();
  // The auditor replays it all: four receipts checked again (100, 250, 300 and the close's).
  std::vector<AuthorityLog> logs;
  for (int a = 0; a < 4; ++a) logs.push_back(LogOf(*authorities_[a], fmt::format("auth{}", a)));
  AuditReport rep = AuditLedger(policy_, logs);
  EXPECT_TRUE(rep.ok()) << (rep.violations.empty() ? "" : rep.violations.front());
  EXPECT_EQ(rep.receipts_verified, 4u);
  EXPECT_EQ(rep.settlements, 4u);
  // Everything survives a restart.
  authorities_[2].reset();
  authorities_[2] = OpenAuthority(2);
  EXPECT_TRUE(authorities_[2]->Escrow(id)->closed);
  // (Authority 1 applied the same certificates in the same order; 0 in another.)
  EXPECT_TRUE(*authorities_[2]->SettleLog(1, 100) == *authorities_[1]->SettleLog(1, 100));
  EXPECT_EQ(authorities_[2]->SettleLog(1, 100)->size(), 4u);
}

TEST_F(ReadEscrowTest, ReceiptsAndReadOrdersRefuseEveryTruncationAndRoundTrip) {
  Start(1);
  const ReadTerms t = RTerms();
  const SignedOrder open = OpenRead(0, 1, 500, t, 0);
  const std::string wire = EncodeSignedOrder(open, Net());
  auto back = DecodeSignedOrder(wire, Net());
  ASSERT_TRUE(back.has_value()) << back.error().ToString();
  EXPECT_EQ(back->order.kind, OrderKind::kReadEscrowOpen);
  EXPECT_EQ(EncodeSignedOrder(*back, Net()), wire);
  for (size_t n = 0; n < wire.size(); ++n)
    ASSERT_FALSE(DecodeSignedOrder(wire.substr(0, n), Net()).has_value()) << n;
  const crypto::Hash id = EscrowId(Pub(KeyOf(0)), 0);
  const std::string r = Receipt(id, 1234, t.end_unix);
  ASSERT_EQ(r.size(), kReceiptWireBytes);
  auto rb = DecodeReceipt(r, Net());
  ASSERT_TRUE(rb.has_value()) << rb.error().ToString();
  EXPECT_EQ(rb->bytes_total, 1234u);
  EXPECT_EQ(EncodeReceipt(*rb, Net()), r);
  for (size_t n = 0; n < r.size(); ++n)
    ASSERT_FALSE(DecodeReceipt(r.substr(0, n), Net()).has_value());
  // A total past 2^62 is refused (totals are signed 64-bit integers in SQLite: one of 2^63
  // would compare below a small one and let a close undercut a voted redemption).
  for (uint64_t huge : {kMaxReceiptBytes + 1, uint64_t{1} << 63, ~uint64_t{0}}) {
    auto big = DecodeReceipt(Receipt(id, huge, t.end_unix), Net());
    ASSERT_FALSE(big.has_value()) << huge;
    EXPECT_NE(big.error().message().find("bytes total"), std::string::npos);
  }
  EXPECT_TRUE(DecodeReceipt(Receipt(id, kMaxReceiptBytes, t.end_unix), Net()).has_value());
  // Another network's receipt is refused by its id.
  crypto::Hash other_net = Net();
  other_net[0] ^= 1;
  EXPECT_FALSE(DecodeReceipt(r, other_net).has_value());
  // A redemption carries a receipt; read settlements are period 0 and have no beacon.
  auto odd = DecodeSettlement(SettlementBytes(Redeem(id, ""), Net()), Net());
  ASSERT_FALSE(odd.has_value());
  EXPECT_NE(odd.error().message().find("usage receipt"), std::string::npos);
  odd = DecodeSettlement(
      SettlementBytes(MakeSettlement(id, 1, SettleKind::kClose, 0, "", "", Net()), Net()), Net());
  ASSERT_FALSE(odd.has_value());
  EXPECT_NE(odd.error().message().find("period 0"), std::string::npos);
  // The price arithmetic: floor(bytes * price / 2^20), capped at the amount; margins cumulative.
  const ReadTerms cheap{3, t.end_unix};  // 3 base units per MiB
  EXPECT_EQ(ReadDue(uint64_t{1} << 20, cheap, 100), 3u);
  EXPECT_EQ(ReadDue((uint64_t{1} << 20) - 1, cheap, 100), 2u);
  EXPECT_EQ(ReadDue(uint64_t{1} << 40, cheap, 100), 100u);
  EXPECT_EQ(ReadDue(~uint64_t{0}, ReadTerms{~uint64_t{0}, 1}, 7), 7u);
  uint64_t paid = 0, margin = 0, at = 0;
  for (uint64_t step : {1u, 7u, 333u, 1000u, 5u}) {
    const ReadPayout p = ReadPayoutOf(at, at + step, t, 1000, 500);
    paid += p.paid;
    margin += p.margin;
    at += step;
  }
  const ReadPayout once = ReadPayoutOf(0, at, t, 1000, 500);
  EXPECT_EQ(paid, once.paid);
  EXPECT_EQ(margin, once.margin);
  EXPECT_EQ(once.paid, 1000u);  // capped
  EXPECT_EQ(once.margin, 50u);
}

}  // namespace
}  // namespace dfrp::ledger
