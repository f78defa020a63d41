// Compute escrows (ledger/escrow.h, "Compute escrows"): opened only with the provider's
// acceptance of the job's terms; released on the provider's signed claim only inside the
// release window, paying the quoted price (the margin to the owner, the rest of the amount back
// to the payer) whatever usage the claim reports; refunded on a fraud proof before the settle
// time or with no proof after the grace; never both ways; money conserved; the auditor replays
// it.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "dfrp/ledger/audit.h"
#include "dfrp/ledger/escrow.h"
#include "dfrp/ledger/job_claim.h"
#include "dfrp/ledger/ledger_test_util.h"

namespace dfrp::ledger {
namespace {

using namespace testing;  // NOLINT: the fixture

constexpr int kPayer = 0, kProvider = 1, kVerifier = 2, kOwner = 9;

// Disputes until settle less 500 ms; releases from settle to settle + 2 s less 500 ms; refunds
// without proof from settle + 2 s. The owner (user 9) takes 5%.
std::string JobToml() {
  return fmt::format(
      "owner = \"{}\"\nmargin_bps = 500\n\n[storage]\nperiod_seconds = 10\nchallenges_per_period "
      "= 3\nanswer_window_seconds = 4\ngrace_seconds = 2\nmax_skew_ms = 500\nbeacon_slot_seconds "
      "= 1\n",
      wallet::AddressOf(KeyOf(kOwner).GetPublicKey()));
}

class JobEscrowTest : public LedgerTest {
 protected:
  void SetUp() override {
    LedgerTest::SetUp();
    StartCommittee(4, 10, JobToml());
    clock_.SetMillis(1'800'000'000'000);
    job_id_ = crypto::Sha256Of(std::string("a signed job"));
  }
  JobTerms Terms(uint64_t price = 300, bool verifier = true, uint64_t collateral = 0) {
    JobTerms t;
    t.collateral = collateral;
    t.job_id = job_id_;
    if (verifier) t.verifier = Pub(KeyOf(kVerifier));
    t.price = price;
    t.settle_unix = static_cast<uint64_t>(clock_.NowUnixMillis() / 1000) + 60;
    return t;
  }
  SignedOrder Open(uint64_t amount, const JobTerms& t, uint64_t seq, int acceptor = kProvider) {
    Order o;
    o.kind = OrderKind::kJobEscrowOpen;
    o.sender = Pub(KeyOf(kPayer));
    o.seq = seq;
    o.fee = 1;
    o.escrow.provider = Pub(KeyOf(kProvider));
    o.escrow.amount = amount;
    o.escrow.job = t;
    const std::string accept =
        JobAcceptanceSigningBytes(o.sender, seq, 0, o.escrow.provider, amount, t, Net());
    o.escrow.acceptance = KeyOf(acceptor).Sign(core::AsBytes(accept)).bytes();
    return SignOrder(o, KeyOf(kPayer), Net());
  }
  // A claim for `job` signed by user `signer`, with result root SHA-256(`result`).
  std::string Claim(int signer, const std::string& result, uint64_t cpu_ms = 1000,
                    const crypto::Hash* job = nullptr) {
    ResultClaim c;
    c.job_id = job ? *job : job_id_;
    c.result_root = crypto::Sha256Of(result);
    c.ranks = 2;
    c.usage.cpu_ms = cpu_ms;
    SignClaim(&c, KeyOf(signer), Net());
    return EncodeClaim(c, Net());
  }
  Settlement Release(const crypto::Hash& id, const std::string& claim) {
    return MakeSettlement(id, 0, SettleKind::kJobRelease, 0, claim, "", Net());
  }
  Settlement Refund(const crypto::Hash& id, const std::string& fraud_proof = "") {
    return MakeSettlement(id, 0, SettleKind::kJobRefund, 0, fraud_proof, "", Net());
  }
  // Opens an escrow of `amount` under `t` at the payer's `seq` everywhere; its id.
  crypto::Hash OpenEverywhere(uint64_t amount, const JobTerms& t, uint64_t seq = 0) {
    ApplyEverywhere(Certify(Open(amount, t, seq), {0, 1, 2}));
    return EscrowId(Pub(KeyOf(kPayer)), seq);
  }
  // The provider's job_collateral order at its `seq`.
  SignedOrder Stake(const crypto::Hash& escrow, uint64_t amount, uint64_t seq,
                    int signer = kProvider) {
    Order o;
    o.kind = OrderKind::kJobCollateral;
    o.sender = Pub(KeyOf(signer));
    o.seq = seq;
    o.fee = 1;
    o.collateral.escrow_id = escrow;
    o.collateral.amount = amount;
    return SignOrder(o, KeyOf(signer), Net());
  }
  core::Status OrderError(int a, const SignedOrder& o) {
    auto v = authorities_[a]->HandleOrder(o);
    return v ? core::Status::OK() : v.error();
  }
  void ExpectAudited(uint64_t releases_verified) {
    std::vector<AuthorityLog> logs;
    for (size_t a = 0; a < authorities_.size(); ++a)
      logs.push_back(LogOf(*authorities_[a], fmt::format("authority {}", a)));
    const AuditReport r = AuditLedger(policy_, logs);
    ASSERT_TRUE(r.ok()) << r.violations.front();
    EXPECT_EQ(r.releases_verified, releases_verified);
  }

  crypto::Hash job_id_{};
};

TEST_F(JobEscrowTest, OpeningNeedsTheProvidersAcceptanceAFutureSettleAndAPriceWithinTheAmount) {
  const JobTerms t = Terms();
  // Accepted by someone else than the provider.
  auto forged = authorities_[0]->HandleOrder(Open(500, t, 0, /*acceptor=*/kVerifier));
  ASSERT_FALSE(forged.has_value());
  EXPECT_NE(forged.error().message().find("acceptance"), std::string::npos);
  // A settle time already past.
  JobTerms past = t;
  past.settle_unix = static_cast<uint64_t>(clock_.NowUnixMillis() / 1000);
  auto stale = authorities_[0]->HandleOrder(Open(500, past, 0));
  ASSERT_FALSE(stale.has_value());
  EXPECT_NE(stale.error().message().find("in the future"), std::string::npos);
  // A price above the amount does not even decode.
  const SignedOrder over = Open(200, t, 0);
  auto decoded = DecodeSignedOrder(EncodeSignedOrder(over, Net()), Net());
  ASSERT_FALSE(decoded.has_value());
  EXPECT_NE(decoded.error().message().find("job_terms.price"), std::string::npos);

  const crypto::Hash id = OpenEverywhere(500, t);
  for (auto& a : authorities_) {
    auto e = a->Escrow(id);
    ASSERT_TRUE(e.has_value()) << e.error().ToString();
    EXPECT_TRUE(e->is_job);
    EXPECT_FALSE(e->is_read);
    EXPECT_EQ(e->job.job_id, job_id_);
    EXPECT_EQ(e->job.price, 300u);
    EXPECT_EQ(e->remaining, 500u);
    EXPECT_EQ(Balance(0, Pub(KeyOf(kPayer))), 1000 - 500 - 1);
  }
  ExpectConserved();
  // A storage period's settlement of a compute escrow is refused.
  auto wrong = authorities_[0]->HandleSettlement(
      MakeSettlement(id, 0, SettleKind::kRefund, 0, "", "", Net()));
  ASSERT_FALSE(wrong.has_value());
  EXPECT_NE(wrong.error().message().find("compute"), std::string::npos);
}

TEST_F(JobEscrowTest, AReleasePaysTheQuotedPriceOnlyInItsWindowOnTheProvidersOwnClaim) {
  const JobTerms t = Terms(/*price=*/300);
  const crypto::Hash id = OpenEverywhere(500, t);
  const JobWindow w = JobWindowOf(t, policy_.storage);
  // A claim that reports far more CPU than the price covers: the price is what is paid.
  const std::string claim = Claim(kProvider, "the result", /*cpu_ms=*/999'999'999);

  // Before the settle time: the dispute window, no release.
  clock_.SetMillis(w.release_from_ms - 1);
  core::Status early = VoteError(0, Release(id, claim));
  EXPECT_TRUE(early.IsRefused()) << early.ToString();
  EXPECT_NE(early.message().find("votes releases from"), std::string::npos);
  clock_.SetMillis(w.release_from_ms);
  // A claim signed by another key, or for another job: refused.
  core::Status forged = VoteError(0, Release(id, Claim(kVerifier, "the result")));
  EXPECT_TRUE(forged.IsRefused()) << forged.ToString();
  EXPECT_NE(forged.message().find("signed by"), std::string::npos);
  const crypto::Hash other = crypto::Sha256Of(std::string("another job"));
  core::Status other_job = VoteError(0, Release(id, Claim(kProvider, "x", 1, &other)));
  EXPECT_TRUE(other_job.IsRefused()) << other_job.ToString();
  EXPECT_NE(other_job.message().find("is for job"), std::string::npos);
  // A claim whose signature was made over other bytes (the CPU figure raised afterwards).
  std::string tampered = claim;
  tampered[tampered.size() - crypto::bls::kSignatureSize - 9] ^= 1;
  core::Status bad_sig = VoteError(0, Release(id, tampered));
  EXPECT_FALSE(bad_sig.ok());

  // A refund without proof is not yet due.
  core::Status refund_early = VoteError(0, Refund(id));
  EXPECT_TRUE(refund_early.IsRefused()) << refund_early.ToString();

  const SettleCertificate cert = CertifySettlement(Release(id, claim), {0, 1, 2});
  ApplySettleEverywhere(cert);
  ApplySettleEverywhere(cert);  // again: nothing changes
  for (size_t a = 0; a < authorities_.size(); ++a) {
    // 300 paid: 15 (5%) to the owner, 285 to the provider; 200 back to the payer.
    EXPECT_EQ(Balance(a, Pub(KeyOf(kProvider))), 1000 + 285);
    EXPECT_EQ(Balance(a, Pub(KeyOf(kOwner))), 1000 + 15);
    EXPECT_EQ(Balance(a, Pub(KeyOf(kPayer))), 1000 - 1 - 300);
    auto e = authorities_[a]->Escrow(id);
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->remaining, 0u);
    ASSERT_EQ(e->settled.size(), 1u);
    EXPECT_EQ(e->settled[0].kind, SettleKind::kJobRelease);
  }
  // Authority 3 voted for nothing; now it refuses the refund (the job is released).
  clock_.SetMillis(w.refund_from_ms);
  core::Status after = VoteError(3, Refund(id));
  EXPECT_TRUE(after.IsRefused()) << after.ToString();
  ExpectConserved();
  ExpectAudited(1);
  auto payouts = authorities_[0]->Payouts(3600);
  ASSERT_TRUE(payouts.has_value());
  uint64_t to_providers = 0, margin = 0, refunded = 0;
  for (const auto& b : *payouts) {
    to_providers += b.to_providers;
    margin += b.margin;
    refunded += b.refunded;
  }
  EXPECT_EQ(to_providers, 285u);
  EXPECT_EQ(margin, 15u);
  EXPECT_EQ(refunded, 200u);
  // The trust evidence (mesh/trust.h): one undisputed job for this (payer, provider) pair; a
  // payer asked for first is read whatever the limit.
  const KeyBytes payer = Pub(KeyOf(kPayer)), provider = Pub(KeyOf(kProvider));
  auto outcomes = authorities_[0]->ProofOutcomes(10);
  ASSERT_TRUE(outcomes.has_value()) << outcomes.error().ToString();
  ASSERT_EQ(outcomes->size(), 1u);
  EXPECT_EQ((*outcomes)[0].payer, payer);
  EXPECT_EQ((*outcomes)[0].provider, provider);
  EXPECT_EQ((*outcomes)[0].released, 1u);
  EXPECT_EQ((*outcomes)[0].refunded, 0u);
  EXPECT_TRUE(authorities_[0]->ProofOutcomes(0)->empty());
  EXPECT_EQ(authorities_[0]->ProofOutcomes(0, {payer})->size(), 1u);
  EXPECT_EQ(authorities_[0]->ProofOutcomes(10, {payer})->size(), 1u);  // not twice
}

TEST_F(JobEscrowTest, AFraudProofRefundsEverythingBeforeTheSettleTimeAndBlocksTheRelease) {
  const JobTerms t = Terms();
  const crypto::Hash id = OpenEverywhere(500, t);
  const JobWindow w = JobWindowOf(t, policy_.storage);
  const std::string provider_claim = Claim(kProvider, "random bytes");
  const std::string verifier_claim = Claim(kVerifier, "the true result");

  // Claims that agree prove nothing; a "verifier" claim signed by the provider (or anyone but
  // the named verifier) proves nothing; the claims in the wrong order prove nothing.
  core::Status agree = VoteError(0, Refund(id, provider_claim + Claim(kVerifier, "random bytes")));
  EXPECT_TRUE(agree.IsRefused()) << agree.ToString();
  EXPECT_NE(agree.message().find("agree"), std::string::npos);
  core::Status self = VoteError(0, Refund(id, provider_claim + Claim(kProvider, "other")));
  EXPECT_TRUE(self.IsRefused()) << self.ToString();
  core::Status swapped = VoteError(0, Refund(id, verifier_claim + provider_claim));
  EXPECT_TRUE(swapped.IsRefused()) << swapped.ToString();
  // None of those locked anything: a valid fraud proof gathers a quorum.
  const SettleCertificate refund =
      CertifySettlement(Refund(id, provider_claim + verifier_claim), {0, 1, 2});
  // After the settle time the provider's release is refused by the authorities that voted the
  // refund, so it never reaches a quorum (only authority 3 would vote for it).
  clock_.SetMillis(w.release_from_ms);
  for (int a : {0, 1, 2}) {
    core::Status r = VoteError(a, Release(id, provider_claim));
    EXPECT_TRUE(r.IsRefused()) << r.ToString();
    EXPECT_NE(r.message().find("never votes both ways"), std::string::npos) << r.ToString();
  }
  ApplySettleEverywhere(refund);
  for (size_t a = 0; a < authorities_.size(); ++a) {
    EXPECT_EQ(Balance(a, Pub(KeyOf(kPayer))), 1000 - 1);  // all back, the fee aside
    EXPECT_EQ(Balance(a, Pub(KeyOf(kProvider))), 1000);
    EXPECT_EQ(authorities_[a]->Escrow(id)->remaining, 0u);
  }
  ExpectConserved();
  ExpectAudited(0);
}

TEST_F(JobEscrowTest, DisputesCloseAtTheSettleTimeAndAJobWithNoVerifierCannotBeDisputed) {
  const crypto::Hash checked = OpenEverywhere(400, Terms());
  const crypto::Hash unchecked = OpenEverywhere(400, Terms(300, /*verifier=*/false), 1);
  const JobWindow w = JobWindowOf(Terms(), policy_.storage);
  const std::string proof = Claim(kProvider, "a") + Claim(kVerifier, "b");
  core::Status none = VoteError(0, Refund(unchecked, proof));
  EXPECT_TRUE(none.IsRefused()) << none.ToString();
  EXPECT_NE(none.message().find("names no verifier"), std::string::npos);
  // At the guard before the settle time the dispute window is over.
  clock_.SetMillis(w.dispute_until_ms);
  core::Status late = VoteError(0, Refund(checked, proof));
  EXPECT_TRUE(late.IsRefused()) << late.ToString();
  EXPECT_NE(late.message().find("dispute window is over"), std::string::npos);
}

TEST_F(JobEscrowTest, WithNoReleaseInItsWindowTheJobIsRefundedAfterTheGrace) {
  const JobTerms t = Terms();
  const crypto::Hash id = OpenEverywhere(500, t);
  const JobWindow w = JobWindowOf(t, policy_.storage);
  clock_.SetMillis(w.refund_from_ms - 1);
  EXPECT_TRUE(VoteError(0, Refund(id)).IsRefused());
  clock_.SetMillis(w.refund_from_ms);
  // The release window is over: a late claim is refused.
  core::Status late = VoteError(0, Release(id, Claim(kProvider, "r")));
  EXPECT_TRUE(late.IsRefused()) << late.ToString();
  const SettleCertificate refund = CertifySettlement(Refund(id), {1, 2, 3});
  ApplySettleEverywhere(refund);
  EXPECT_EQ(Balance(0, Pub(KeyOf(kPayer))), 1000 - 1);
  ExpectConserved();
  ExpectAudited(0);
}

TEST_F(JobEscrowTest, TermsClaimsAndJobSettlementsRefuseEveryTruncationAndRoundTrip) {
  const JobTerms t = Terms();
  const std::string terms = EncodeJobTerms(t);
  ASSERT_EQ(terms.size(), 104u);
  auto back = DecodeJobTerms(terms);
  ASSERT_TRUE(back.has_value()) << back.error().ToString();
  EXPECT_EQ(back->job_id, t.job_id);
  EXPECT_EQ(back->verifier, t.verifier);
  for (size_t n = 0; n < terms.size(); ++n)
    EXPECT_FALSE(DecodeJobTerms(terms.substr(0, n)).has_value()) << n;
  JobTerms zero_price = t;
  zero_price.price = 0;
  EXPECT_FALSE(DecodeJobTerms(EncodeJobTerms(zero_price)).has_value());
  JobTerms unchecked_stake = Terms(300, /*verifier=*/false);
  unchecked_stake.collateral = 10;  // nobody can dispute it: a stake means nothing
  EXPECT_FALSE(DecodeJobTerms(EncodeJobTerms(unchecked_stake)).has_value());
  JobTerms bad_verifier = t;
  bad_verifier.verifier[0] ^= 0x1f;  // not a point any more
  EXPECT_FALSE(DecodeJobTerms(EncodeJobTerms(bad_verifier)).has_value());

  const SignedOrder open = Open(500, t, 0);
  const std::string wire = EncodeSignedOrder(open, Net());
  auto order = DecodeSignedOrder(wire, Net());
  ASSERT_TRUE(order.has_value()) << order.error().ToString();
  EXPECT_EQ(order->hash, open.hash);
  EXPECT_EQ(order->order.escrow.job.settle_unix, t.settle_unix);
  for (size_t n = 0; n < wire.size(); ++n)
    EXPECT_FALSE(DecodeSignedOrder(wire.substr(0, n), Net()).has_value()) << n;

  const crypto::Hash id = EscrowId(Pub(KeyOf(kPayer)), 0);
  for (const Settlement& s : {Release(id, Claim(kProvider, "r")), Refund(id),
                              Refund(id, Claim(1, "a") + Claim(2, "b"))}) {
    const std::string sw = SettlementBytes(s, Net());
    auto d = DecodeSettlement(sw, Net());
    ASSERT_TRUE(d.has_value()) << d.error().ToString();
    EXPECT_EQ(d->hash, s.hash);
    for (size_t n = 0; n < sw.size(); n += 7)
      EXPECT_FALSE(DecodeSettlement(sw.substr(0, n), Net()).has_value()) << n;
  }
  // A release with half a claim, a refund with one claim: refused by their decoder.
  const std::string half = Claim(kProvider, "r").substr(0, 100);
  EXPECT_FALSE(DecodeSettlement(SettlementBytes(Release(id, half), Net()), Net()).has_value());
  EXPECT_FALSE(DecodeSettlement(SettlementBytes(Refund(id, Claim(kProvider, "r")), Net()), Net())
                   .has_value());
}

TEST_F(JobEscrowTest, TheStakeThatMakesCheatingALossFollowsTheCheckRate) {
  EXPECT_EQ(CollateralFor(300, 1.0), 0u);                 // checked every time: nothing to deter
  EXPECT_EQ(CollateralFor(300, 0.5), 300u);               // 0.5 C >= 0.5 p
  EXPECT_EQ(CollateralFor(300, 0.05), 5700u);             // 0.05 C >= 0.95 p: 19 p
  EXPECT_EQ(CollateralFor(1, 0.3), 3u);                   // ceil(0.7 / 0.3) = ceil(2.33)
  EXPECT_EQ(CollateralFor(300, 0.0), uint64_t{1} << 62);  // never checked: no stake is enough
  // At the stake, a cheat's expected gain, (1 - q) p - q C, is never positive.
  for (double q : {0.01, 0.05, 0.1, 0.25, 0.5, 0.9})
    for (uint64_t p : {1u, 7u, 300u, 1'000'000u}) {
      const double c = static_cast<double>(CollateralFor(p, q));
      EXPECT_LE((1 - q) * static_cast<double>(p) - q * c, 1e-6) << q << " " << p;
    }
}

TEST_F(JobEscrowTest, AStakeIsVotedOnlyByTheProviderForExactlyTheTermsAndNoReleaseComesWithoutIt) {
  const JobTerms t = Terms(/*price=*/300, /*verifier=*/true, /*collateral=*/200);
  const crypto::Hash id = OpenEverywhere(500, t);
  const JobWindow w = JobWindowOf(t, policy_.storage);
  // Someone else's stake, a stake of another amount, a stake on an escrow not open here.
  core::Status other = OrderError(0, Stake(id, 200, 0, /*signer=*/kVerifier));
  EXPECT_TRUE(other.code() == core::Status::Code::kInvalidArgument) << other.ToString();
  EXPECT_NE(other.message().find("provider"), std::string::npos) << other.ToString();
  core::Status less = OrderError(0, Stake(id, 199, 0));
  EXPECT_TRUE(less.code() == core::Status::Code::kInvalidArgument) << less.ToString();
  EXPECT_NE(less.message().find("ask a collateral of 200"), std::string::npos) << less.ToString();
  core::Status unknown = OrderError(0, Stake(crypto::Sha256Of(std::string("no escrow")), 200, 0));
  EXPECT_TRUE(unknown.IsNotFound()) << unknown.ToString();
  // Without the stake, no authority votes the release.
  clock_.SetMillis(w.release_from_ms);
  core::Status unstaked = VoteError(0, Release(id, Claim(kProvider, "r")));
  EXPECT_TRUE(unstaked.IsUnavailable()) << unstaked.ToString();  // try again: not final
  EXPECT_NE(unstaked.message().find("stake"), std::string::npos) << unstaked.ToString();
  // A stake is voted whatever the clock (a vote refused for a reason of time at some
  // authorities only would leave the provider's sequence number locked): once it is here, the
  // release is voted.
  ApplyEverywhere(Certify(Stake(id, 200, 0), {0, 1, 2}));
  ApplySettleEverywhere(CertifySettlement(Release(id, Claim(kProvider, "r")), {0, 1, 2}));
  // Authority 3, which applied the release without voting it, votes the same release again
  // (a client sending it anew): the stake counts as staked once paid out.
  EXPECT_TRUE(VoteError(3, Release(id, Claim(kProvider, "r"))).ok());
  EXPECT_EQ(authorities_[0]->Escrow(id)->collateral_to_provider, 200u);
  ExpectConserved();
  ExpectAudited(1);
}

TEST_F(JobEscrowTest, AReleaseReturnsTheStakeAndAFraudProofGivesItToThePayer) {
  const JobTerms t = Terms(300, true, 200);
  const crypto::Hash honest = OpenEverywhere(400, t, 0);
  JobTerms t2 = t;
  t2.job_id = crypto::Sha256Of(std::string("another signed job"));
  const crypto::Hash cheated = OpenEverywhere(400, t2, 1);
  const JobWindow w = JobWindowOf(t, policy_.storage);
  ApplyEverywhere(Certify(Stake(honest, 200, 0), {0, 1, 2}));
  // A second stake on the same escrow: refused (it is staked already).
  core::Status twice = OrderError(0, Stake(honest, 200, 1));
  EXPECT_TRUE(twice.IsRefused()) << twice.ToString();
  ApplyEverywhere(Certify(Stake(cheated, 200, 1), {1, 2, 3}));
  for (size_t a = 0; a < authorities_.size(); ++a) {
    EXPECT_EQ(Balance(a, Pub(KeyOf(kProvider))), 1000 - 2 * 201);
    EXPECT_EQ(authorities_[a]->Escrow(honest)->collateral_held, 200u);
  }
  ExpectConserved();
  ExpectAudited(0);  // stakes held count toward the supply in the audit too

  // The cheated job: a fraud proof, its stake to the payer.
  ResultClaim pc, vc;
  pc.job_id = vc.job_id = t2.job_id;
  pc.result_root = crypto::Sha256Of(std::string("random bytes"));
  vc.result_root = crypto::Sha256Of(std::string("the true result"));
  pc.ranks = vc.ranks = 2;
  SignClaim(&pc, KeyOf(kProvider), Net());
  SignClaim(&vc, KeyOf(kVerifier), Net());
  ApplySettleEverywhere(CertifySettlement(
      Refund(cheated, EncodeClaim(pc, Net()) + EncodeClaim(vc, Net())), {0, 1, 2}));
  // The honest job: released, its stake back.
  clock_.SetMillis(w.release_from_ms);
  ApplySettleEverywhere(CertifySettlement(Release(honest, Claim(kProvider, "r")), {0, 1, 3}));
  for (size_t a = 0; a < authorities_.size(); ++a) {
    // Provider: 1000 - 2 stakes - 2 fees + 200 back + 285 for the honest job.
    EXPECT_EQ(Balance(a, Pub(KeyOf(kProvider))), 1000 - 402 + 200 + 285);
    // Payer: 1000 - 2 fees - 300 (the honest job's price) + the cheater's stake.
    EXPECT_EQ(Balance(a, Pub(KeyOf(kPayer))), 1000 - 2 - 300 + 200);
    auto h = authorities_[a]->Escrow(honest);
    EXPECT_EQ(h->collateral_held, 0u);
    EXPECT_EQ(h->collateral_to_provider, 200u);
    auto c = authorities_[a]->Escrow(cheated);
    EXPECT_EQ(c->collateral_to_payer, 200u);
    EXPECT_EQ(c->collateral_to_provider, 0u);
  }
  ExpectConserved();
  ExpectAudited(1);
}

TEST_F(JobEscrowTest,
       AStakeAppliedAfterItsSettlementEndsInTheSameStateAndARefundWithoutProofReturnsIt) {
  const JobTerms t = Terms(300, true, 200);
  const crypto::Hash id = OpenEverywhere(500, t);
  const JobWindow w = JobWindowOf(t, policy_.storage);
  const Certificate stake = Certify(Stake(id, 200, 0), {0, 1, 2});
  // Authorities 0-2 apply the stake now; authority 3 only after the job is settled.
  for (int a : {0, 1, 2}) ASSERT_TRUE(authorities_[a]->HandleCertificate(stake).has_value());
  // No claim came: refunded after the grace (authority 3 has no stake, and votes the refund).
  clock_.SetMillis(w.refund_from_ms);
  ApplySettleEverywhere(CertifySettlement(Refund(id), {1, 2, 3}));
  EXPECT_TRUE(authorities_[3]->CheckSupply().ok());
  ASSERT_TRUE(authorities_[3]->HandleCertificate(stake).has_value());
  for (size_t a = 0; a < authorities_.size(); ++a) {
    EXPECT_EQ(Balance(a, Pub(KeyOf(kProvider))), 1000 - 1) << a;  // the stake back, the fee paid
    EXPECT_EQ(Balance(a, Pub(KeyOf(kPayer))), 1000 - 1) << a;
    auto e = authorities_[a]->Escrow(id);
    EXPECT_EQ(e->collateral_held, 0u);
    EXPECT_EQ(e->collateral_to_provider, 200u);
  }
  // The same state everywhere: the checkpoints agree.
  auto first = authorities_[0]->GetEpochState();
  for (size_t a = 1; a < authorities_.size(); ++a)
    EXPECT_EQ(authorities_[a]->GetEpochState()->checkpoint.state, first->checkpoint.state) << a;
  ExpectConserved();
  ExpectAudited(0);
}

}  // namespace
}  // namespace dfrp::ledger
