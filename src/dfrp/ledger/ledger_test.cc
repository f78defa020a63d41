#include <fmt/format.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "dfrp/economy/policy.h"
#include "dfrp/ledger/authority.h"
#include "dfrp/ledger/epoch.h"
#include "dfrp/ledger/escrow.h"
#include "dfrp/ledger/job_claim.h"
#include "dfrp/ledger/ledger_test_util.h"
#include "dfrp/ledger/messages.h"
#include "dfrp/wallet/address.h"

namespace dfrp::ledger {
namespace {

namespace bls = crypto::bls;
using namespace testing;  // NOLINT: the fixture

TEST_F(LedgerTest, OrderWireRoundTripsAndEveryTruncationIsRefused) {
  policy_ = MakePolicy(1, 2);
  const SignedOrder so = Transfer(0, 1, 250, 7, "rent for shard 42");
  const std::string wire = EncodeSignedOrder(so, Net());
  auto back = DecodeSignedOrder(wire, Net());
  ASSERT_TRUE(back.has_value()) << back.error().ToString();
  EXPECT_EQ(back->hash, so.hash);
  EXPECT_EQ(back->order.seq, 7u);
  EXPECT_EQ(back->order.transfer.amount, 250u);
  EXPECT_EQ(back->order.transfer.memo, "rent for shard 42");
  EXPECT_TRUE(VerifyOrderSignature(*back, Net()).ok());
  for (size_t n = 0; n < wire.size(); ++n) {
    auto r = DecodeSignedOrder(wire.substr(0, n), Net());
    ASSERT_FALSE(r.has_value()) << "a prefix of " << n << " bytes decoded";
    EXPECT_EQ(r.error().code(), core::Status::Code::kInvalidArgument);
  }
  auto trailing = DecodeSignedOrder(wire + "x", Net());
  ASSERT_FALSE(trailing.has_value());
  EXPECT_NE(trailing.error().message().find("after the last field"), std::string::npos);

  crypto::Hash other = Net();
  other[0] ^= 1;
  auto foreign = DecodeSignedOrder(wire, other);
  ASSERT_FALSE(foreign.has_value());
  EXPECT_NE(foreign.error().message().find("another network"), std::string::npos);

  // Any flipped byte of the signed part: refused by the decoder or by the signature.
  for (size_t i = 0; i + bls::kSignatureSize < wire.size(); ++i) {
    std::string bad = wire;
    bad[i] ^= 0x01;
    auto r = DecodeSignedOrder(bad, Net());
    if (r) {
      EXPECT_FALSE(VerifyOrderSignature(*r, Net()).ok()) << "flipped byte " << i;
    }
  }
}

TEST_F(LedgerTest, DecoderRefusesBadFieldsByName) {
  policy_ = MakePolicy(1, 2);
  SignedOrder so = Transfer(0, 1, 5, 0);
  so.order.transfer.amount = 0;
  auto zero = DecodeSignedOrder(EncodeSignedOrder(so, Net()), Net());
  ASSERT_FALSE(zero.has_value());
  EXPECT_NE(zero.error().message().find("transfer.amount"), std::string::npos);

  so = Transfer(0, 1, 5, 0, std::string(kMaxMemoBytes + 1, 'm'));
  auto memo = DecodeSignedOrder(EncodeSignedOrder(so, Net()), Net());
  ASSERT_FALSE(memo.has_value());
  EXPECT_NE(memo.error().message().find("transfer.memo"), std::string::npos);

  so = Transfer(0, 1, 5, 0);
  so.order.transfer.to[0] ^= 0x40;  // not a point of the curve any more
  auto key = DecodeSignedOrder(EncodeSignedOrder(so, Net()), Net());
  ASSERT_FALSE(key.has_value());
  EXPECT_NE(key.error().message().find("transfer.to"), std::string::npos);

  // A vote's bytes are not an order (the tag differs).
  const std::string vote_bytes = VoteSigningBytes(so.hash, 0, Net()) + std::string(96, '\0');
  auto tag = DecodeSignedOrder(vote_bytes, Net());
  ASSERT_FALSE(tag.has_value());
  EXPECT_NE(tag.error().message().find("tag"), std::string::npos);

  auto big = DecodeSignedOrder(std::string(kMaxOrderWireBytes + 1, 'x'), Net());
  ASSERT_FALSE(big.has_value());
  EXPECT_NE(big.error().message().find("more than"), std::string::npos);
}

TEST_F(LedgerTest, CommitteeOfOneCertifiesAndAppliesExactlyOnce) {
  StartCommittee(1, 2);
  const KeyBytes a = Pub(KeyOf(0)), b = Pub(KeyOf(1));
  const SignedOrder so = Transfer(0, 1, 300, 0);
  const Certificate cert = Certify(so, {0});
  EXPECT_EQ(*authorities_[0]->HandleCertificate(cert), ApplyOutcome::kApplied);
  EXPECT_EQ(Balance(0, a), 1000 - 300 - 1);
  EXPECT_EQ(Balance(0, b), 1300);
  EXPECT_EQ(Balance(0, kCommitteeAccount), 1);
  EXPECT_EQ(authorities_[0]->Account(a)->next_seq, 1u);
  EXPECT_FALSE(authorities_[0]->Account(a)->locked.has_value());
  // Applying it again changes nothing.
  EXPECT_EQ(*authorities_[0]->HandleCertificate(cert), ApplyOutcome::kAlreadyApplied);
  EXPECT_EQ(Balance(0, b), 1300);
  EXPECT_EQ(*authorities_[0]->AppliedCount(), 1u);
  // The order replayed gets no second vote.
  auto replay = authorities_[0]->HandleOrder(so);
  ASSERT_FALSE(replay.has_value());
  EXPECT_NE(replay.error().message().find("certified already"), std::string::npos);
  // Through the wire and back, the certificate is the same one.
  auto decoded = DecodeCertificate(EncodeCertificate(cert, Net()), Net());
  ASSERT_TRUE(decoded.has_value()) << decoded.error().ToString();
  EXPECT_EQ(*authorities_[0]->HandleCertificate(*decoded), ApplyOutcome::kAlreadyApplied);
  ExpectConserved();
}

TEST_F(LedgerTest, FundsAreCheckedWithTheFeeAndRefusalsAreRefused) {
  StartCommittee(1, 2);
  auto over = authorities_[0]->HandleOrder(Transfer(0, 1, 1000, 0));  // 1000 + fee 1 > 1000
  ASSERT_FALSE(over.has_value());
  EXPECT_EQ(over.error().code(), core::Status::Code::kRefused);
  EXPECT_NE(over.error().message().find("order fee"), std::string::npos);
  // No lock was taken by the refused order: a smaller one at the same seq gets a vote.
  const Certificate exact = Certify(Transfer(0, 1, 999, 0), {0});
  ASSERT_TRUE(authorities_[0]->HandleCertificate(exact).has_value());
  EXPECT_EQ(Balance(0, Pub(KeyOf(0))), 0);
  auto empty = authorities_[0]->HandleOrder(Transfer(0, 1, 1, 1));
  ASSERT_FALSE(empty.has_value());
  EXPECT_EQ(empty.error().code(), core::Status::Code::kRefused);
  auto self = authorities_[0]->HandleOrder(Transfer(1, 1, 1, 0));
  ASSERT_FALSE(self.has_value());
  EXPECT_NE(self.error().message().find("pays itself"), std::string::npos);
  auto gap = authorities_[0]->HandleOrder(Transfer(1, 0, 1, 5));
  ASSERT_FALSE(gap.has_value());
  EXPECT_NE(gap.error().message().find("not its next (0)"), std::string::npos);
  ExpectConserved();
}

TEST_F(LedgerTest, TheFeeIsTheOneSignedAndAtLeastThePolicys) {
  StartCommittee(1, 2);
  auto low = authorities_[0]->HandleOrder(Transfer(0, 1, 10, 0, "", /*fee=*/0));
  ASSERT_FALSE(low.has_value());
  EXPECT_EQ(low.error().code(), core::Status::Code::kRefused);
  EXPECT_NE(low.error().message().find("order fee of 0"), std::string::npos);
  // A sender may offer more; the signed fee is what moves.
  const Certificate c = Certify(Transfer(0, 1, 10, 0, "", /*fee=*/7), {0});
  ASSERT_TRUE(authorities_[0]->HandleCertificate(c).has_value());
  EXPECT_EQ(Balance(0, Pub(KeyOf(0))), 1000 - 10 - 7);
  EXPECT_EQ(Balance(0, kCommitteeAccount), 7);
  ExpectConserved();
}

// Two different orders for one (sender, seq) at the same moment: one vote, one refusal, one
// equivocation proof, whichever comes first.
TEST_F(LedgerTest, ConcurrentDifferentOrdersAtOneSeqGetOneVote) {
  StartCommittee(1, 3);
  for (uint64_t seq = 0; seq < 8; ++seq) {
    const SignedOrder a = Transfer(0, 1, 1, seq), b = Transfer(0, 2, 1, seq);
    core::Result<Vote> ra = core::Err(core::Status::Internal("not run"));
    core::Result<Vote> rb = core::Err(core::Status::Internal("not run"));
    std::thread ta([&] { ra = authorities_[0]->HandleOrder(a); });
    std::thread tb([&] { rb = authorities_[0]->HandleOrder(b); });
    ta.join();
    tb.join();
    ASSERT_NE(ra.has_value(), rb.has_value()) << "seq " << seq;
    const core::Result<Vote>& lost = ra ? rb : ra;
    EXPECT_EQ(lost.error().code(), core::Status::Code::kRefused);
    // Certify the winner so the next round starts at the next seq.
    const SignedOrder& won = ra ? a : b;
    auto cert = MakeCertificate(won, {ra ? *ra : *rb}, authorities_[0]->committee());
    ASSERT_TRUE(cert.has_value());
    ASSERT_TRUE(authorities_[0]->HandleCertificate(*cert).has_value());
  }
  EXPECT_EQ(authorities_[0]->Equivocations()->size(), 8u);
  ExpectConserved();
}

TEST_F(LedgerTest, FourAuthoritiesNeedAQuorumOfThreeAndRefuseForgedCertificates) {
  StartCommittee(4, 3);
  EXPECT_EQ(authorities_[0]->committee().quorum(), 3u);
  const SignedOrder so = Transfer(0, 1, 100, 0);

  // Two votes are not a certificate, whether made by MakeCertificate or by hand.
  auto two = Votes(so, {0, 1});
  auto too_few = MakeCertificate(so, two, authorities_[0]->committee());
  ASSERT_FALSE(too_few.has_value());
  EXPECT_NE(too_few.error().message().find("fewer than the quorum"), std::string::npos);
  auto dup = MakeCertificate(so, {two[0], two[0], two[1]}, authorities_[0]->committee());
  ASSERT_FALSE(dup.has_value());
  EXPECT_NE(dup.error().message().find("twice"), std::string::npos);

  Certificate cert = Certify(so, {0, 1, 2});
  Certificate forged = cert;
  forged.signers = {true, true, false, false};
  auto r = authorities_[3]->HandleCertificate(forged);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("fewer than the quorum"), std::string::npos);
  forged.signers = {true, true, true, true};  // claims a signer that did not sign
  r = authorities_[3]->HandleCertificate(forged);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), core::Status::Code::kCorruption);
  forged = cert;
  forged.order = Transfer(0, 2, 100, 0);  // the votes were for another order
  r = authorities_[3]->HandleCertificate(forged);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), core::Status::Code::kCorruption);
  forged = cert;
  forged.epoch = 1;
  r = authorities_[3]->HandleCertificate(forged);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("epoch"), std::string::npos);

  // The real one applies at all four, including the authority that did not vote.
  for (auto& a : authorities_) EXPECT_EQ(*a->HandleCertificate(cert), ApplyOutcome::kApplied);
  for (int a = 0; a < 4; ++a) EXPECT_EQ(Balance(a, Pub(KeyOf(1))), 1100);
  ExpectConserved();
}

TEST_F(LedgerTest, EquivocationIsKeptAsProofAndFreezesTheSequenceNumber) {
  StartCommittee(4, 3);
  const SignedOrder a = Transfer(0, 1, 10, 0), b = Transfer(0, 2, 10, 0);
  Votes(a, {0, 1});
  Votes(b, {2, 3});
  // Each side has two votes; each authority refuses the other order.
  for (int i : {0, 1}) {
    auto v = authorities_[i]->HandleOrder(b);
    ASSERT_FALSE(v.has_value());
    EXPECT_EQ(v.error().code(), core::Status::Code::kRefused);
    EXPECT_NE(v.error().message().find("equivocation proof"), std::string::npos);
  }
  auto again = authorities_[2]->HandleOrder(a);
  ASSERT_FALSE(again.has_value());
  auto proofs = authorities_[0]->Equivocations();
  ASSERT_TRUE(proofs.has_value());
  ASSERT_EQ(proofs->size(), 1u);
  EXPECT_EQ((*proofs)[0].seq, 0u);
  // Both orders of the proof decode and verify: anyone can check it.
  for (const std::string* w : {&(*proofs)[0].order_a, &(*proofs)[0].order_b}) {
    auto o = DecodeSignedOrder(*w, Net());
    ASSERT_TRUE(o.has_value());
    EXPECT_TRUE(VerifyOrderSignature(*o, Net()).ok());
  }
  // The same order again gets the same vote (an honest client's retry).
  auto retry = authorities_[0]->HandleOrder(a);
  ASSERT_TRUE(retry.has_value());
  // Neither side can reach 3: the account stays where it was, and its locks stay across a
  // restart (nothing releases them by time).
  authorities_[0].reset();
  authorities_[0] = OpenAuthority(0);
  auto after = authorities_[0]->HandleOrder(b);
  ASSERT_FALSE(after.has_value());
  EXPECT_EQ(after.error().code(), core::Status::Code::kRefused);
  EXPECT_EQ(authorities_[0]->Account(Pub(KeyOf(0)))->locked, a.hash);
  EXPECT_EQ(Balance(0, Pub(KeyOf(0))), 1000);
  ExpectConserved();
}

TEST_F(LedgerTest, ALaggingAuthorityPullsMissingCertificatesAndMayGoNegativeMeanwhile) {
  StartCommittee(4, 3);
  const KeyBytes u0 = Pub(KeyOf(0)), u1 = Pub(KeyOf(1));
  // u0 pays u1 900; authority 3 does not hear of it.
  const Certificate c1 = Certify(Transfer(0, 1, 900, 0), {0, 1, 2});
  for (int a : {0, 1, 2}) ASSERT_TRUE(authorities_[a]->HandleCertificate(c1).has_value());
  // u1 spends 1500 (it has 1900 at the three); authority 3 applies that first.
  const Certificate c2 = Certify(Transfer(1, 2, 1500, 0), {0, 1, 2});
  for (auto& a : authorities_) ASSERT_TRUE(a->HandleCertificate(c2).has_value());
  EXPECT_EQ(Balance(3, u1), 1000 - 1501);  // negative until the credit arrives
  ExpectConserved();
  // u0's next certificate is a gap at authority 3: it names what to pull.
  const Certificate c3 = Certify(Transfer(0, 2, 50, 1), {0, 1, 2});
  auto gap = authorities_[3]->HandleCertificate(c3);
  ASSERT_FALSE(gap.has_value());
  EXPECT_EQ(gap.error().code(), core::Status::Code::kNotFound);
  auto missing = authorities_[0]->Certificates(u0, 0);
  ASSERT_TRUE(missing.has_value());
  ASSERT_EQ(missing->size(), 1u);  // c3 is not applied at 0 yet
  for (const std::string& w : *missing) {
    auto c = DecodeCertificate(w, Net());
    ASSERT_TRUE(c.has_value());
    ASSERT_TRUE(authorities_[3]->HandleCertificate(*c).has_value());
  }
  for (auto& a : authorities_) ASSERT_TRUE(a->HandleCertificate(c3).has_value());
  for (const KeyBytes& k : {u0, u1, Pub(KeyOf(2)), kCommitteeAccount})
    for (int a = 1; a < 4; ++a) EXPECT_EQ(Balance(a, k), Balance(0, k));
  EXPECT_EQ(Balance(3, u1), 1000 + 900 - 1501);
  ExpectConserved();
}

TEST_F(LedgerTest, OpenRefusesAWrongKeyAnotherNetworkAndAnEmptyCommittee) {
  StartCommittee(2, 1);
  // Authority 1's key at index 0.
  auto wrong = Authority::Open({.path = dir_ + "/x.db",
                                .policy = &policy_,
                                .index = 0,
                                .key = keys_[1].get(),
                                .clock = &clock_});
  ASSERT_FALSE(wrong.has_value());
  EXPECT_NE(wrong.error().message().find("not committee member 0"), std::string::npos);
  // The same files under another genesis.
  authorities_.clear();
  economy::EconomicPolicy other = MakePolicy(2, 2);
  auto foreign = Authority::Open({.path = dir_ + "/ledger-0.db",
                                  .policy = &other,
                                  .index = 0,
                                  .key = keys_[0].get(),
                                  .clock = &clock_});
  ASSERT_FALSE(foreign.has_value());
  EXPECT_EQ(foreign.error().code(), core::Status::Code::kCorruption);
  EXPECT_NE(foreign.error().message().find("belongs to network"), std::string::npos);
  economy::EconomicPolicy none = MakePolicy(0, 1);
  auto empty = Authority::Open({.path = dir_ + "/y.db",
                                .policy = &none,
                                .index = 0,
                                .key = keys_[0].get(),
                                .clock = &clock_});
  ASSERT_FALSE(empty.has_value());
  EXPECT_NE(empty.error().message().find("committee is empty"), std::string::npos);
}

}  // namespace
}  // namespace dfrp::ledger

namespace dfrp::ledger {
namespace {
// Writes the fuzz seeds (fuzz/corpus/ledger_messages) when DFRP_WRITE_LEDGER_SEEDS names a
// folder; otherwise does nothing.
TEST(LedgerSeeds, Write) {
  const char* dir = getenv("DFRP_WRITE_LEDGER_SEEDS");
  if (!dir) GTEST_SKIP();
  const crypto::Hash net{};
  Order o;
  o.sender = Pub(KeyOf(0));
  o.seq = 3;
  o.transfer.to = Pub(KeyOf(1));
  o.transfer.amount = 12345;
  o.transfer.memo = "seed";
  const SignedOrder so = SignOrder(o, KeyOf(0), net);
  std::vector<std::pair<std::string, std::string>> keys;
  for (int a = 0; a < 4; ++a)
    keys.emplace_back(KeyOf(100 + a).GetPublicKey().ToHex(),
                      KeyOf(100 + a).ProvePossession().ToHex());
  const Committee c = *Committee::Make(0, keys);
  std::vector<Vote> votes;
  for (int a = 0; a < 3; ++a)
    votes.push_back(SignVote(so.hash, 0, static_cast<uint32_t>(a), KeyOf(100 + a), net));
  const Certificate cert = *MakeCertificate(so, votes, c);
  auto put = [&](const std::string& name, char kind, const std::string& wire) {
    std::ofstream(std::string(dir) + "/" + name, std::ios::binary) << kind << wire;
  };
  put("order", 0, EncodeSignedOrder(so, net));
  put("vote", 1, EncodeVote(votes[0]));
  put("certificate", 2, EncodeCertificate(cert, net));
  // An escrow_open, a release (its proof and beacon bytes are opaque to this decoder), a
  // refund's certificate and a beacon.
  Order e;
  e.kind = OrderKind::kEscrowOpen;
  e.sender = Pub(KeyOf(0));
  e.seq = 4;
  e.escrow.provider = Pub(KeyOf(1));
  e.escrow.amount = 600;
  e.escrow.terms = {.size = 5000,
                    .leaf_size = 512,
                    .periods = 3,
                    .period_seconds = 3600,
                    .start_unix = 1'800'000'000,
                    .challenges = 4};
  e.escrow.terms.shard_id.bytes.fill(7);
  e.escrow.acceptance =
      KeyOf(1)
          .Sign(core::AsBytes(AcceptanceSigningBytes(e.sender, e.seq, 0, e.escrow.provider,
                                                     e.escrow.amount, e.escrow.terms, net)))
          .bytes();
  put("escrow_open", 0, EncodeSignedOrder(SignOrder(e, KeyOf(0), net), net));
  const crypto::Hash id = EscrowId(e.sender, e.seq);
  std::vector<Vote> beacon_votes;
  for (int a = 0; a < 3; ++a)
    beacon_votes.push_back(
        SignVote(BeaconItemHash(77, 0, net), 0, static_cast<uint32_t>(a), KeyOf(100 + a), net));
  const std::string beacon = EncodeBeacon(*MakeBeacon(77, beacon_votes, c));
  put("settlement", 3,
      SettlementBytes(MakeSettlement(id, 1, SettleKind::kRelease, 0, "DFRPPROF...", beacon, net),
                      net));
  const Settlement refund = MakeSettlement(id, 2, SettleKind::kRefund, 0, "", "", net);
  std::vector<Vote> refund_votes;
  for (int a = 0; a < 3; ++a)
    refund_votes.push_back(SignVote(refund.hash, 0, static_cast<uint32_t>(a), KeyOf(100 + a), net));
  put("settle_certificate", 4,
      EncodeSettleCertificate(*MakeSettleCertificate(refund, refund_votes, c), net));
  put("beacon", 5, beacon);
  // An epoch proposal and its certificate.
  Checkpoint cp;
  cp.certificates = 9;
  cp.settlements = 2;
  cp.state.fill(0x42);
  const EpochProposal ep = MakeEpochProposal(0, c, 1, cp, net);
  std::vector<Vote> epoch_votes;
  for (int a = 0; a < 3; ++a)
    epoch_votes.push_back(SignVote(ep.hash, 0, static_cast<uint32_t>(a), KeyOf(100 + a), net));
  put("epoch_proposal", 6, EpochProposalBytes(ep, net));
  put("epoch_certificate", 7,
      EncodeEpochCertificate(*MakeEpochCertificate(ep, epoch_votes, c), net));
  // A read escrow, a usage receipt and a redemption carrying it.
  Order rd;
  rd.kind = OrderKind::kReadEscrowOpen;
  rd.sender = Pub(KeyOf(0));
  rd.seq = 5;
  rd.escrow.provider = Pub(KeyOf(1));
  rd.escrow.amount = 900;
  rd.escrow.read = {.price_per_mib = 30, .end_unix = 1'800'000'000};
  rd.escrow.acceptance =
      KeyOf(1)
          .Sign(core::AsBytes(ReadAcceptanceSigningBytes(rd.sender, rd.seq, 0, rd.escrow.provider,
                                                         rd.escrow.amount, rd.escrow.read, net)))
          .bytes();
  put("read_escrow_open", 0, EncodeSignedOrder(SignOrder(rd, KeyOf(0), net), net));
  const crypto::Hash rid = EscrowId(rd.sender, rd.seq);
  const std::string receipt = EncodeReceipt(
      SignReceipt(rid, rd.escrow.provider, 123456, 1'800'000'000, KeyOf(0), net), net);
  put("receipt", 8, receipt);
  put("redemption", 3,
      SettlementBytes(MakeSettlement(rid, 0, SettleKind::kRedeem, 0, receipt, "", net), net));
  // A compute escrow and a fraud proof refunding it (two claims).
  Order jb;
  jb.kind = OrderKind::kJobEscrowOpen;
  jb.sender = Pub(KeyOf(0));
  jb.seq = 6;
  jb.escrow.provider = Pub(KeyOf(1));
  jb.escrow.amount = 700;
  jb.escrow.job = {.job_id = crypto::Sha256Of(std::string("job")),
                   .verifier = Pub(KeyOf(2)),
                   .price = 650,
                   .settle_unix = 1'800'000'000,
                   .collateral = 1300};
  jb.escrow.acceptance =
      KeyOf(1)
          .Sign(core::AsBytes(JobAcceptanceSigningBytes(jb.sender, jb.seq, 0, jb.escrow.provider,
                                                        jb.escrow.amount, jb.escrow.job, net)))
          .bytes();
  put("job_escrow_open", 0, EncodeSignedOrder(SignOrder(jb, KeyOf(0), net), net));
  // The provider's stake on it.
  Order st;
  st.kind = OrderKind::kJobCollateral;
  st.sender = Pub(KeyOf(1));
  st.seq = 2;
  st.collateral = {.escrow_id = EscrowId(jb.sender, jb.seq), .amount = 1300};
  put("job_collateral", 0, EncodeSignedOrder(SignOrder(st, KeyOf(1), net), net));
  std::string fraud;
  for (int signer : {1, 2}) {
    ResultClaim claim;
    claim.job_id = jb.escrow.job.job_id;
    claim.result_root.fill(static_cast<uint8_t>(signer));
    claim.ranks = 2;
    SignClaim(&claim, KeyOf(signer), net);
    fraud += EncodeClaim(claim, net);
  }
  put("job_refund", 3,
      SettlementBytes(
          MakeSettlement(EscrowId(jb.sender, jb.seq), 0, SettleKind::kJobRefund, 0, fraud, "", net),
          net));
}
}  // namespace
}  // namespace dfrp::ledger
