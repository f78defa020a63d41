#include "dfrp/node/provider_service.h"

#include <fmt/format.h>

#include <algorithm>

#include "dfrp/node/node.h"
#include "dfrp/storage/proof.h"

namespace dfrp::node {

using core::Status;
using nlohmann::json;

namespace {

std::string HexId(const crypto::Hash& id) { return core::ToHex(id); }

}  // namespace

void ProviderService::Tick() {
  // Certificates a quorum has not applied yet go out again first.
  std::map<std::pair<crypto::Hash, uint32_t>, std::string> unsent;
  {
    core::MutexLock lock(&mu_);
    unsent = unsent_;
  }
  for (const auto& [key, wire] : unsent) {
    auto sent = client_.BroadcastSettlement(wire);
    core::MutexLock lock(&mu_);
    if (sent) unsent_.erase(key);
  }
  int64_t now = node_->NowMs();
  const int64_t refresh_ms =
      std::min<int64_t>(5000, int64_t{node_->policy().storage.answer_window_seconds} * 1000 / 3);
  if (fetched_ms_ < 0 || now - fetched_ms_ >= refresh_ms) {
    // The epoch releases are signed for (it changes only at an epoch change).
    (void)client_.RefreshEpoch();
    auto fresh = client_.OpenEscrows(address_);
    if (!fresh) {
      core::MutexLock lock(&mu_);
      last_error_ = fresh.error().message();
      last_tick_ms_ = now;
      return;
    }
    escrows_ = std::move(*fresh);
    fetched_ms_ = now;
    const auto& p = node_->policy();
    json periods = json::array();
    for (const ledger::EscrowView& e : escrows_) {
      if (e.provider != provider_) continue;
      if (e.is_job) {
        const ledger::JobPayout pay = ledger::JobReleasePayout(e.amount, e.job, e.margin_bps);
        periods.push_back({{"id", HexId(e.id)},
                           {"kind", "job"},
                           {"job_id", HexId(e.job.job_id)},
                           {"price", p.FormatAmount(e.job.price)},
                           {"settle_unix", e.job.settle_unix},
                           {"to_provider_on_release", p.FormatAmount(pay.to_provider)},
                           {"settled", !e.settled.empty()},
                           {"remaining", p.FormatAmount(e.remaining)},
                           {"remaining_base_units", e.remaining}});
        continue;
      }
      if (e.is_read) {
        const uint64_t paid = ledger::ReadDue(e.redeemed_bytes, e.read, e.amount);
        const uint64_t margin = ledger::MarginOf(paid, e.margin_bps);
        const auto best = reads_ ? reads_->Best(e.id) : std::nullopt;
        periods.push_back({{"id", HexId(e.id)},
                           {"kind", "read"},
                           {"end_unix", e.read.end_unix},
                           {"price_per_mib", p.FormatAmount(e.read.price_per_mib)},
                           {"receipted_bytes", best ? best->bytes_total : 0},
                           {"redeemed_bytes", e.redeemed_bytes},
                           {"paid_to_provider", p.FormatAmount(paid - margin)},
                           {"paid_to_provider_base_units", paid - margin},
                           {"margin", p.FormatAmount(margin)},
                           {"remaining", p.FormatAmount(e.remaining)},
                           {"remaining_base_units", e.remaining}});
        continue;
      }
      uint32_t released = 0, refunded = 0;
      uint64_t to_me = 0, margin = 0;
      for (const auto& [k, s] : e.settled) {
        if (s.kind == ledger::SettleKind::kRelease) {
          ++released;
          to_me += s.paid - s.margin;
          margin += s.margin;
        } else {
          ++refunded;
        }
      }
      periods.push_back({{"id", HexId(e.id)},
                         {"kind", "storage"},
                         {"shard_id", e.terms.shard_id.ToString()},
                         {"periods", e.terms.periods},
                         {"released", released},
                         {"refunded", refunded},
                         {"to_come", e.terms.periods - released - refunded},
                         {"paid_to_provider", p.FormatAmount(to_me)},
                         {"paid_to_provider_base_units", to_me},
                         {"margin", p.FormatAmount(margin)},
                         {"remaining", p.FormatAmount(e.remaining)},
                         {"remaining_base_units", e.remaining}});
    }
    {
      core::MutexLock lock(&mu_);
      escrow_periods_ = std::move(periods);
    }
    RecordJobSettlements();
    now = node_->NowMs();
  }
  const std::vector<ledger::EscrowView>* escrows = &escrows_;
  {
    // Escrows no longer open are forgotten.
    std::set<crypto::Hash> open;
    for (const auto& e : *escrows) open.insert(e.id);
    core::MutexLock lock(&mu_);
    std::erase_if(done_, [&](const auto& d) { return !open.contains(d.first); });
    std::erase_if(redeemed_sent_, [&](const auto& d) { return !open.contains(d.first); });
  }
  for (const ledger::EscrowView& e : *escrows) {
    if (e.provider != provider_) continue;  // an escrow this wallet pays for
    if (e.is_job) {
      if (std::string outcome = ReleaseJob(e, now); !outcome.empty()) {
        core::MutexLock lock(&mu_);
        last_outcome_[HexId(e.id)] = outcome;
      }
      continue;
    }
    if (e.is_read) {
      if (std::string outcome = SettleReads(e, now); !outcome.empty()) {
        core::MutexLock lock(&mu_);
        last_outcome_[HexId(e.id)] = outcome;
      }
      continue;
    }
    const ledger::StorageTerms& t = e.terms;
    const int64_t start_ms = static_cast<int64_t>(t.start_unix) * 1000;
    if (now < start_ms) continue;
    const uint64_t k64 = static_cast<uint64_t>((now - start_ms) / 1000) / t.period_seconds;
    if (k64 >= t.periods) continue;
    const auto k = static_cast<uint32_t>(k64);
    if (e.settled.contains(k)) continue;
    {
      core::MutexLock lock(&mu_);
      if (done_.contains({e.id, k})) continue;
    }
    const ledger::PeriodWindow w = ledger::WindowOf(e.id, t, k, node_->policy().storage);
    if (now < w.open_ms || now >= w.vote_until_ms) continue;
    const std::string outcome = Release(e, k, w);
    core::MutexLock lock(&mu_);
    last_outcome_[HexId(e.id)] = outcome;
  }
  core::MutexLock lock(&mu_);
  open_escrows_ = escrows->size();
  last_tick_ms_ = now;
}

std::string ProviderService::Release(const ledger::EscrowView& e, uint32_t k,
                                     const ledger::PeriodWindow& w) {
  const std::string what = fmt::format("period {} of escrow {}", k, HexId(e.id).substr(0, 16));
  auto fail = [&](const Status& s, bool give_up) {
    core::MutexLock lock(&mu_);
    ++failures_;
    last_error_ = fmt::format("{}: {}", what, s.message());
    if (give_up) done_.insert({e.id, k});
    return last_error_;
  };
  auto beacon = client_.GetBeacon(w.slot);
  if (!beacon) return fail(beacon.error(), false);  // retried on the next tick
  const crypto::Hash& net = node_->policy().network_id;
  const std::string seed = ledger::PeriodSeed(ledger::BeaconSeed(*beacon, net), e.id, k);
  auto proof = node_->Audit(e.terms.shard_id, seed, e.terms.challenges);
  if (!proof) {
    // Lost or damaged here: nothing is answered that the store cannot prove, and the period
    // is left to its refund. Anything else (busy, I/O) is tried again on the next tick.
    const auto code = proof.error().code();
    return fail(proof.error(),
                code == Status::Code::kCorruption || code == Status::Code::kNotFound);
  }
  const ledger::Settlement s = ledger::MakeSettlement(
      e.id, k, ledger::SettleKind::kRelease, beacon->epoch, storage::EncodeProofBinary(*proof),
      ledger::EncodeBeacon(*beacon), net);
  auto r = client_.Settle(s);
  if (!r) return fail(r.error(), false);
  core::MutexLock lock(&mu_);
  done_.insert({e.id, k});
  ++releases_;
  if (r->applied < client_.quorum()) {
    unsent_[{e.id, k}] = r->certificate_wire;
    return fmt::format("{}: released; {} authorities applied it so far", what, r->applied);
  }
  return fmt::format("{}: released ({} votes, applied by {})", what, r->votes, r->applied);
}

void ProviderService::RecordJobSettlements() {
  ComputeService* compute = node_->compute();
  if (!compute) return;
  std::set<crypto::Hash> open;
  for (const ledger::EscrowView& e : escrows_) open.insert(e.id);
  size_t asked = 0;
  for (const crypto::Hash& id : compute->UnsettledEscrows()) {
    if (open.contains(id)) continue;
    if (++asked > kSettlementsPerRefresh) break;  // the rest on the next refresh
    auto v = client_.Escrow(id);
    if (!v || !v->is_job) continue;  // asked again on the next refresh
    auto s = v->settled.find(0);
    if (s == v->settled.end()) continue;  // paid out at some authority, not yet at f + 1
    const bool released = s->second.kind == ledger::SettleKind::kJobRelease;
    const ledger::JobPayout pay = ledger::JobReleasePayout(v->amount, v->job, v->margin_bps);
    if (core::Status st = compute->SetSettlement(id, released, released ? pay.to_provider : 0);
        !st.ok()) {
      core::MutexLock lock(&mu_);
      last_error_ = st.message();
    }
  }
}

std::string ProviderService::ReleaseJob(const ledger::EscrowView& e, int64_t now) {
  if (!e.settled.empty()) return "";
  const ledger::JobWindow w = ledger::JobWindowOf(e.job, node_->policy().storage);
  if (now < w.release_from_ms || now >= w.release_until_ms) return "";
  {
    core::MutexLock lock(&mu_);
    if (done_.contains({e.id, 0})) return "";
  }
  const std::string what = fmt::format("compute escrow {} (job {})", HexId(e.id).substr(0, 16),
                                       HexId(e.job.job_id).substr(0, 16));
  // Only a job this node ran to the end has a claim. One still queued or running is looked at
  // again on the next tick (a map lookup) while the window lasts; after it, the refund.
  const std::optional<std::string> claim =
      node_->compute() ? node_->compute()->ClaimOf(e.job.job_id) : std::nullopt;
  if (!claim)
    return fmt::format(
        "{}: no claim here yet (the job has not run to the end): released if it "
        "does inside the window, refunded after it otherwise",
        what);
  const ledger::Settlement s =
      ledger::MakeSettlement(e.id, 0, ledger::SettleKind::kJobRelease, client_.epoch(), *claim, "",
                             node_->policy().network_id);
  auto r = client_.Settle(s);
  core::MutexLock lock(&mu_);
  if (!r) {
    ++failures_;
    last_error_ = fmt::format("{}: {}", what, r.error().message());
    // A refusal (a fraud proof was certified, the window closed) is final; anything else is
    // tried again on the next tick.
    if (r.error().IsRefused()) done_.insert({e.id, 0});
    return last_error_;
  }
  done_.insert({e.id, 0});
  ++releases_;
  if (r->applied < client_.quorum()) unsent_[{e.id, 0}] = r->certificate_wire;
  return fmt::format("{}: released ({} votes, applied by {})", what, r->votes, r->applied);
}

std::string ProviderService::SettleReads(const ledger::EscrowView& e, int64_t now) {
  if (e.closed || !reads_) return "";
  const auto& sp = node_->policy().storage;
  const int64_t close_ms =
      (static_cast<int64_t>(e.read.end_unix) + static_cast<int64_t>(sp.grace_seconds)) * 1000;
  const int64_t redeem_until = close_ms - static_cast<int64_t>(sp.max_skew_ms);
  const auto best = reads_->Best(e.id);
  const std::string what = fmt::format("read escrow {}", HexId(e.id).substr(0, 16));
  ReadTry& last = redeemed_sent_[e.id];
  // One attempt per escrow every few seconds; after failures, less and less often.
  const int64_t wait = std::min<int64_t>(300'000, kRedeemEveryMs << std::min(last.failures, 6));
  if (now - last.at_ms < wait) return "";
  ledger::SettleKind kind;
  if (now >= close_ms) {
    kind = ledger::SettleKind::kClose;
  } else if (now < redeem_until - 1000 && best && best->bytes_total > e.redeemed_bytes &&
             best->bytes_total > last.total) {
    kind = ledger::SettleKind::kRedeem;
  } else {
    return "";
  }
  // A close carries the best receipt (or none: nothing was read); every authority's vote
  // needs it to cover what that authority voted to redeem, which this node's receipts bound.
  const ledger::Settlement s =
      ledger::MakeSettlement(e.id, 0, kind, client_.epoch(), best ? best->wire : std::string(), "",
                             node_->policy().network_id);
  auto r = client_.Settle(s);
  last.at_ms = now;
  last.failures = r ? 0 : last.failures + 1;
  core::MutexLock lock(&mu_);
  if (!r) {
    ++failures_;
    last_error_ =
        fmt::format("{}: {}: {}", what, ledger::SettleKindName(kind), r.error().message());
    return last_error_;
  }
  if (kind == ledger::SettleKind::kRedeem) {
    ++redemptions_;
    last.total = best->bytes_total;
    return fmt::format("{}: redeemed a receipt for {} bytes ({} votes, applied by {})", what,
                       best->bytes_total, r->votes, r->applied);
  }
  ++closes_;
  return fmt::format("{}: closed at {} bytes ({} votes, applied by {})", what,
                     best ? best->bytes_total : 0, r->votes, r->applied);
}

json ProviderService::Json() const {
  core::MutexLock lock(&mu_);
  json outcomes = json::object();
  for (const auto& [id, o] : last_outcome_) outcomes[id] = o;
  return json{{"provider", address_},
              {"open_escrows", open_escrows_},
              {"releases_sent", releases_},
              {"failures", failures_},
              {"last_error", last_error_.empty() ? json() : json(last_error_)},
              {"last_check_ms", last_tick_ms_},
              {"last_outcome", outcomes},
              {"redemptions_sent", redemptions_},
              {"closes_sent", closes_},
              {"reads", reads_ ? reads_->Json() : json()},
              {"escrows", escrow_periods_}};
}

}  // namespace dfrp::node
