// A power cut of an authority's ledger.db at every sync point (core/sqlite_power_cut_test_util.h:
// the n-th xSync fails and the files go back to their content at their last sync). The run
// votes for and applies transfers, opens an escrow, releases one period and refunds another.
// After the cut the authority must reopen and have lost nothing it answered before the cut:
// every certificate it reported applied is applied, every vote it gave is backed by its lock
// (the same order gets the same vote, a different one for that (sender, seq) is refused), every
// settlement vote by its settle lock, and the supply is conserved. A read escrow: a redemption
// applied stays applied, a redemption vote's total stays the floor of any close, a close vote
// stays the only one. Then the epoch change: a
// seal answered stays sealed, a vote for the next epoch stays the only one, an applied epoch
// certificate stays applied.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "dfrp/core/sqlite_power_cut_test_util.h"
#include "dfrp/crypto/merkle.h"
#include "dfrp/ledger/epoch.h"
#include "dfrp/ledger/escrow.h"
#include "dfrp/ledger/ledger_test_util.h"
#include "dfrp/storage/proof.h"

namespace dfrp::ledger {
namespace {

using namespace testing;  // NOLINT: the fixture
namespace cut = core::testing;

constexpr char kStorage[] =
    "\n[storage]\nperiod_seconds = 10\nchallenges_per_period = 1\nanswer_window_seconds = "
    "4\ngrace_seconds = 2\nmax_skew_ms = 500\nbeacon_slot_seconds = 1\n";

// What the authority answered before the cut.
struct Answered {
  std::vector<SignedOrder> voted;        // a vote came back
  std::vector<Certificate> applied;      // HandleCertificate returned a value
  std::vector<Settlement> settle_voted;  // a settlement vote came back
  std::vector<SettleCertificate> settled;
  uint64_t read_voted = 0;                   // the highest redemption total voted for
  std::optional<Settlement> close_voted;     // a read escrow's close voted for
  bool sealed = false;                       // Seal returned OK
  std::optional<EpochProposal> epoch_voted;  // HandleEpochProposal returned a vote
  bool epoch_applied = false;                // HandleEpochCertificate returned a value
};

class LedgerPowerCutTest : public LedgerTest {
 protected:
  // One leaf of 512 bytes: an audit answer is that leaf, whatever the seed.
  std::string leaf_ = std::string(512, 'x');
  StorageTerms Terms() {
    StorageTerms t;
    t.shard_id.bytes.fill(3);
    t.root = crypto::MerkleRoot(leaf_, 512, 1);
    t.size = 512;
    t.leaf_size = 512;
    t.periods = 2;
    t.period_seconds = 10;
    t.start_unix = 1'800'000'000;
    t.challenges = 1;
    return t;
  }
  std::string Audit(const std::string& seed) {
    storage::ProofSet p;
    p.shard_id.bytes.fill(3);
    p.root = crypto::MerkleRoot(leaf_, 512, 1);
    p.tree_size = 1;
    p.leaf_size = 512;
    p.seed = seed;
    p.proofs.push_back({0, leaf_, {}});
    return storage::EncodeProofBinary(p);
  }

  // The read escrow: ends 30 s after its opening's clock; receipts of user 0 for user 1.
  ReadTerms ReadTermsNow() {
    read_end_ = static_cast<uint64_t>(clock_.NowUnixMillis() / 1000) + 30;
    return {uint64_t{1} << 20, read_end_};
  }
  int64_t ReadClosableMs() const {
    return static_cast<int64_t>(read_end_ + policy_.storage.grace_seconds) * 1000;
  }
  std::string Receipt(uint64_t bytes) {
    return EncodeReceipt(SignReceipt(read_id_, Pub(KeyOf(1)), bytes, read_end_, KeyOf(0), Net()),
                         Net());
  }
  uint64_t read_end_ = 0;
  crypto::Hash read_id_{};

  // The run: stops at the first error (the cut). Returns what was answered.
  Answered Run(Authority& a) {
    Answered out;
    auto order = [&](const SignedOrder& so) {
      auto v = a.HandleOrder(so);
      if (!v) return false;
      out.voted.push_back(so);
      auto c = MakeCertificate(so, {*v}, a.committee());
      if (!c || !a.HandleCertificate(*c)) return false;
      out.applied.push_back(*c);
      return true;
    };
    auto settle = [&](const Settlement& s) {
      auto v = a.HandleSettlement(s);
      if (!v) return false;
      out.settle_voted.push_back(s);
      auto c = MakeSettleCertificate(s, {*v}, a.committee());
      if (!c || !a.HandleSettleCertificate(*c)) return false;
      out.settled.push_back(*c);
      return true;
    };
    for (uint64_t i = 0; i < 4; ++i)
      if (!order(Transfer(static_cast<int>(i % 2), 2, 10 + i, i / 2))) return out;
    Order o;
    o.kind = OrderKind::kEscrowOpen;
    o.sender = Pub(KeyOf(0));
    o.seq = 2;
    o.fee = 1;
    o.escrow.provider = Pub(KeyOf(1));
    o.escrow.amount = 100;
    o.escrow.terms = Terms();
    o.escrow.acceptance = KeyOf(1)
                              .Sign(core::AsBytes(AcceptanceSigningBytes(
                                  o.sender, 2, 0, o.escrow.provider, 100, o.escrow.terms, Net())))
                              .bytes();
    if (!order(SignOrder(o, KeyOf(0), Net()))) return out;
    const crypto::Hash id = EscrowId(o.sender, 2);
    const PeriodWindow w0 = WindowOf(id, o.escrow.terms, 0, policy_.storage);
    clock_.SetMillis(w0.open_ms + 1);
    auto share = a.BeaconShare(w0.slot);
    if (!share) return out;
    auto beacon = MakeBeacon(w0.slot, {*share}, a.committee());
    if (!beacon) return out;
    const std::string seed = PeriodSeed(BeaconSeed(*beacon, Net()), id, 0);
    if (!settle(MakeSettlement(id, 0, SettleKind::kRelease, 0, Audit(seed), EncodeBeacon(*beacon),
                               Net())))
      return out;
    clock_.SetMillis(WindowOf(id, o.escrow.terms, 1, policy_.storage).refund_ms);
    if (!settle(MakeSettlement(id, 1, SettleKind::kRefund, 0, "", "", Net()))) return out;
    // A read escrow: a redemption certified, a higher one only voted for, then the close.
    Order r;
    r.kind = OrderKind::kReadEscrowOpen;
    r.sender = Pub(KeyOf(0));
    r.seq = 3;
    r.fee = 1;
    r.escrow.provider = Pub(KeyOf(1));
    r.escrow.amount = 200;
    r.escrow.read = ReadTermsNow();
    r.escrow.acceptance = KeyOf(1)
                              .Sign(core::AsBytes(ReadAcceptanceSigningBytes(
                                  r.sender, 3, 0, r.escrow.provider, 200, r.escrow.read, Net())))
                              .bytes();
    if (!order(SignOrder(r, KeyOf(0), Net()))) return out;
    read_id_ = EscrowId(r.sender, 3);
    if (!settle(MakeSettlement(read_id_, 0, SettleKind::kRedeem, 0, Receipt(100), "", Net())))
      return out;
    if (!a.HandleSettlement(
            MakeSettlement(read_id_, 0, SettleKind::kRedeem, 0, Receipt(150), "", Net())))
      return out;
    out.read_voted = 150;
    clock_.SetMillis(ReadClosableMs());
    const Settlement close =
        MakeSettlement(read_id_, 0, SettleKind::kClose, 0, Receipt(150), "", Net());
    auto close_vote = a.HandleSettlement(close);
    if (!close_vote) return out;
    out.close_voted = close;
    auto close_cert = MakeSettleCertificate(close, {*close_vote}, a.committee());
    if (!close_cert || !a.HandleSettleCertificate(*close_cert)) return out;
    out.settled.push_back(*close_cert);
    // The epoch change, as its only member.
    if (!a.Seal(SignVote(SealItemHash(0, Net()), 0, 0, *keys_[0], Net())).ok()) return out;
    out.sealed = true;
    auto st = a.GetEpochState();
    if (!st) return out;
    const EpochProposal p =
        MakeEpochProposal(0, a.committee(), policy_.version, st->checkpoint, Net());
    auto vote = a.HandleEpochProposal(p);
    if (!vote) return out;
    out.epoch_voted = p;
    auto cert = MakeEpochCertificate(p, {*vote}, a.committee());
    if (!cert || !a.HandleEpochCertificate(*cert)) return out;
    out.epoch_applied = true;
    return out;
  }
};

TEST_F(LedgerPowerCutTest, NothingAnsweredIsLostAtAnySyncPoint) {
  policy_ = MakePolicy(1, 3, 1000, kStorage);
  keys_.push_back(std::make_unique<bls::SecretKey>(KeyOf(100)));
  int n = 1;
  int cuts = 0;
  for (bool was_cut = true; was_cut; ++n) {
    ASSERT_LT(n, 200) << "the run never stopped syncing";
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    clock_.SetMillis(1'800'000'000'000);
    cut::g_cut = cut::CutState();
    cut::g_cut.countdown = n;
    ASSERT_TRUE(cut::InstallShim());
    Answered got;
    {
      auto a = Authority::Open({.path = dir_ + "/ledger-0.db",
                                .policy = &policy_,
                                .index = 0,
                                .key = keys_[0].get(),
                                .clock = &clock_});
      if (a) got = Run(**a);
    }
    cut::RemoveShim();
    was_cut = cut::g_cut.down;
    if (was_cut) {
      cut::ApplyCut();
      ++cuts;
    }
    const std::string at = fmt::format("cut at sync {}", n);
    auto after = Authority::Open({.path = dir_ + "/ledger-0.db",
                                  .policy = &policy_,
                                  .index = 0,
                                  .key = keys_[0].get(),
                                  .clock = &clock_});
    ASSERT_TRUE(after.has_value()) << at << ": " << after.error().ToString();
    Authority& a = **after;
    EXPECT_TRUE(a.CheckSupply().ok()) << at << ": " << a.CheckSupply().ToString();
    for (const Certificate& c : got.applied) {
      auto again = a.HandleCertificate(c);
      ASSERT_TRUE(again.has_value()) << at << ": " << again.error().ToString();
      EXPECT_EQ(*again, ApplyOutcome::kAlreadyApplied) << at << ": an applied certificate was lost";
    }
    // A vote given for an order not applied: its lock survived (a different order at that
    // (sender, seq) is refused as an equivocation; the same one gets its vote again).
    if (got.voted.size() > got.applied.size()) {
      const SignedOrder& pending = got.voted.back();
      Order other = pending.order;
      other.kind = OrderKind::kTransfer;
      other.transfer = {Pub(KeyOf(2)), 1, "other"};
      auto refused = a.HandleOrder(
          SignOrder(other, KeyOf(pending.order.sender == Pub(KeyOf(0)) ? 0 : 1), Net()));
      auto acct = a.Account(pending.order.sender);
      ASSERT_FALSE(refused.has_value())
          << at << ": a vote was given but its lock is gone (voted " << got.voted.size()
          << ", applied " << got.applied.size() << ", seq " << pending.order.seq << ", next_seq "
          << acct->next_seq << ", locked " << acct->locked.has_value() << ", syncs "
          << cut::g_cut.syncs << ")";
      EXPECT_EQ(refused.error().code(), core::Status::Code::kRefused) << at;
    }
    for (const SettleCertificate& c : got.settled) {
      auto again = a.HandleSettleCertificate(c);
      ASSERT_TRUE(again.has_value()) << at << ": " << again.error().ToString();
      EXPECT_EQ(*again, ApplyOutcome::kAlreadyApplied) << at << ": a settlement was lost";
    }
    if (got.settle_voted.size() > got.settled.size() &&
        got.settle_voted.back().kind == SettleKind::kRelease) {
      // The release's lock survived: a refund of that period is never voted.
      clock_.SetMillis(clock_.NowUnixMillis() + 3'600'000);
      auto refund = a.HandleSettlement(MakeSettlement(got.settle_voted.back().escrow_id, 0,
                                                      SettleKind::kRefund, 0, "", "", Net()));
      ASSERT_FALSE(refund.has_value()) << at << ": a release vote's lock is gone";
      EXPECT_NE(refund.error().message().find("never votes both"), std::string::npos) << at;
    }
    // The read escrow's vote records survived: no close below a voted redemption, one close.
    if (got.read_voted > 0 && !got.epoch_applied) {
      const int64_t was = clock_.NowUnixMillis();
      clock_.SetMillis(std::max(was, ReadClosableMs()));
      auto low = a.HandleSettlement(
          MakeSettlement(read_id_, 0, SettleKind::kClose, 0, Receipt(120), "", Net()));
      ASSERT_FALSE(low.has_value()) << at << ": a close below a voted redemption was voted";
      if (got.close_voted) {
        auto other = a.HandleSettlement(
            MakeSettlement(read_id_, 0, SettleKind::kClose, 0, Receipt(190), "", Net()));
        ASSERT_FALSE(other.has_value()) << at << ": a second close was voted";
      }
      clock_.SetMillis(was);
    }
    auto st = a.GetEpochState();
    ASSERT_TRUE(st.has_value()) << at << ": " << st.error().ToString();
    if (got.epoch_applied) EXPECT_EQ(st->epoch, 1u) << at << ": an applied epoch change was lost";
    if (st->epoch == 0) {
      if (got.sealed) {
        EXPECT_TRUE(st->sealed) << at << ": an answered seal was lost";
        auto busy = a.HandleOrder(Transfer(2, 0, 1, 0));
        ASSERT_FALSE(busy.has_value()) << at << ": a sealed authority voted";
        EXPECT_EQ(busy.error().code(), core::Status::Code::kBusy) << at;
      }
      if (got.epoch_voted) {
        ASSERT_TRUE(st->voted.has_value()) << at << ": a vote for the next epoch was lost";
        EXPECT_EQ(*st->voted, got.epoch_voted->hash) << at;
        EpochProposal other = *got.epoch_voted;
        other.checkpoint.certificates += 1;
        other.hash = crypto::Sha256Of(EpochProposalBytes(other, Net()));
        EXPECT_FALSE(a.HandleEpochProposal(other).has_value()) << at << ": voted twice";
      }
    }
  }
  EXPECT_GE(cuts, 15) << "the run must sync at every commit";
  std::printf("cut points: %d\n", cuts);
}

}  // namespace
}  // namespace dfrp::ledger
