#include "dfrp/ledger/audit.h"

#include <fmt/format.h>

#include <set>

#include "dfrp/wallet/address.h"

namespace dfrp::ledger {

namespace {

std::string Short(const crypto::Hash& h) { return core::ToHex(h).substr(0, 16); }

struct OpenEscrow {
  KeyBytes payer{}, provider{};
  uint64_t amount = 0, remaining = 0;
  StorageTerms terms;
  std::set<uint32_t> settled;
  bool is_read = false;  // a read escrow: `read` and the fields below, not `terms`
  ReadTerms read;
  uint64_t redeemed = 0;
  bool closed = false;
  std::set<crypto::Hash> read_applied;
  bool is_job = false;  // a compute escrow: `job`, settled once as period 0
  JobTerms job;
};

// Replays one authority's log; violations are appended with the authority's name.
class Replay {
 public:
  Replay(const economy::EconomicPolicy& p, const Committee& c, std::optional<KeyBytes> owner,
         AuditReport* report)
      : p_(p), c_(c), owner_(owner), report_(report) {
    for (const auto& a : p.genesis.allocations)
      if (auto key = wallet::PublicKeyFromAddress(a.address))
        balance_[key->bytes()] += static_cast<int64_t>(a.amount);
  }

  void Violation(const AuthorityLog& log, const std::string& what) {
    report_->violations.push_back(log.name + ": " + what);
  }

  void Run(const AuthorityLog& log, std::map<std::pair<KeyBytes, uint64_t>, crypto::Hash>* orders,
           std::map<std::pair<crypto::Hash, uint32_t>, SettleKind>* periods,
           std::set<crypto::Hash>* seen_certs, std::set<crypto::Hash>* seen_settles,
           std::map<crypto::Hash, crypto::Hash>* closes) {
    for (size_t i = 0; i < log.certificates.size(); ++i) {
      const std::string where = fmt::format("certificate {} of its log", i + 1);
      auto cert = DecodeCertificate(log.certificates[i], p_.network_id);
      if (!cert) return Violation(log, where + ": " + cert.error().message());
      core::Status v = log.signatures_verified
                           ? core::Status::OK()
                           : VerifyCertificate(*cert, c_.AtEpoch(cert->epoch), p_.network_id);
      if (!v.ok()) return Violation(log, where + ": " + v.message());
      const Order& o = cert->order.order;
      const auto key = std::make_pair(o.sender, o.seq);
      if (auto it = orders->find(key); it != orders->end() && it->second != cert->order.hash)
        return Violation(log, fmt::format("{}: {} has two certified orders at sequence number {} "
                                          "({} and {})",
                                          where, AddressOfKey(o.sender), o.seq, Short(it->second),
                                          Short(cert->order.hash)));
      (*orders)[key] = cert->order.hash;
      seen_certs->insert(cert->order.hash);
      uint64_t& next = next_seq_[o.sender];
      if (o.seq != next)
        return Violation(log, fmt::format("{}: {} at sequence number {} where {} was next (a gap "
                                          "or a repeat)",
                                          where, AddressOfKey(o.sender), o.seq, next));
      ++next;
      constexpr uint64_t kMax = uint64_t{1} << 62;  // sums of two stay in int64
      if (o.amount() > kMax || o.fee > kMax)
        return Violation(log, fmt::format("{}: an amount or fee past 2^62 was certified", where));
      balance_[o.sender] -= static_cast<int64_t>(o.amount() + o.fee);
      balance_[KeyBytes{}] += static_cast<int64_t>(o.fee);
      if (o.kind == OrderKind::kTransfer) {
        balance_[o.transfer.to] += static_cast<int64_t>(o.transfer.amount);
      } else if (o.kind == OrderKind::kJobCollateral) {
        // Held until the escrow is settled (the settlements below come after every order).
        collateral_[o.collateral.escrow_id] += o.collateral.amount;
        stakers_[o.collateral.escrow_id] = o.sender;
      } else {
        core::Status accepted = VerifyAcceptance(o, p_.network_id);
        if (!accepted.ok())
          return Violation(log, fmt::format("{}: an escrow the provider never accepted: {}", where,
                                            accepted.message()));
        OpenEscrow e;
        e.payer = o.sender;
        e.provider = o.escrow.provider;
        e.amount = e.remaining = o.escrow.amount;
        e.terms = o.escrow.terms;
        e.is_read = o.kind == OrderKind::kReadEscrowOpen;
        e.read = o.escrow.read;
        e.is_job = o.kind == OrderKind::kJobEscrowOpen;
        e.job = o.escrow.job;
        escrows_[EscrowId(o.sender, o.seq)] = e;
      }
    }
    // Every stake is its escrow's provider's, for exactly its terms' collateral.
    for (const auto& [id, staker] : stakers_) {
      auto it = escrows_.find(id);
      if (it == escrows_.end()) continue;  // its escrow not applied here yet (a laggard)
      if (!it->second.is_job || it->second.provider != staker ||
          it->second.job.collateral != collateral_[id])
        return Violation(log, fmt::format("a stake on escrow {} that its terms do not ask (not "
                                          "a compute escrow of the staker's, or another amount)",
                                          Short(id)));
    }
    for (size_t i = 0; i < log.settlements.size(); ++i) {
      const std::string where = fmt::format("settlement {} of its log", i + 1);
      auto sc = DecodeSettleCertificate(log.settlements[i], p_.network_id);
      if (!sc) return Violation(log, where + ": " + sc.error().message());
      core::Status v = log.signatures_verified
                           ? core::Status::OK()
                           : VerifySettleCertificate(*sc, c_.AtEpoch(sc->epoch), p_.network_id);
      if (!v.ok()) return Violation(log, where + ": " + v.message());
      const Settlement& s = sc->settlement;
      auto it = escrows_.find(s.escrow_id);
      if (it == escrows_.end())
        return Violation(log, fmt::format("{}: settles escrow {}, which its log never opened",
                                          where, Short(s.escrow_id)));
      OpenEscrow& e = it->second;
      const bool read_kind = s.kind == SettleKind::kRedeem || s.kind == SettleKind::kClose;
      const bool job_kind = s.kind == SettleKind::kJobRelease || s.kind == SettleKind::kJobRefund;
      if (read_kind != e.is_read || job_kind != e.is_job)
        return Violation(
            log, fmt::format("{}: a {} certified for {} escrow {}", where, SettleKindName(s.kind),
                             e.is_read ? "read" : (e.is_job ? "compute" : "storage"),
                             Short(s.escrow_id)));
      if (job_kind) {
        if (core::Status bad = ReplayJob(s, &e, periods, seen_settles); !bad.ok())
          return Violation(log, fmt::format("{}: {}", where, bad.message()));
        continue;
      }
      if (read_kind) {
        if (core::Status bad = ReplayRead(s, sc->epoch, &e, closes); !bad.ok())
          return Violation(log, fmt::format("{}: {}", where, bad.message()));
        if (seen_settles->insert(s.hash).second && !s.proof.empty()) ++report_->receipts_verified;
        continue;
      }
      if (s.period >= e.terms.periods || !e.settled.insert(s.period).second)
        return Violation(log, fmt::format("{}: period {} of escrow {} settled twice or past its {} "
                                          "periods",
                                          where, s.period, Short(s.escrow_id), e.terms.periods));
      const auto pk = std::make_pair(s.escrow_id, s.period);
      if (auto pit = periods->find(pk); pit != periods->end() && pit->second != s.kind)
        return Violation(log, fmt::format("{}: period {} of escrow {} certified both as a release "
                                          "and as a refund",
                                          where, s.period, Short(s.escrow_id)));
      (*periods)[pk] = s.kind;
      if (seen_settles->insert(s.hash).second && s.kind == SettleKind::kRelease) {
        const PeriodWindow w = WindowOf(s.escrow_id, e.terms, s.period, p_.storage);
        core::Status proof = CheckRelease(s, e.terms, w, c_.AtEpoch(s.epoch), p_.network_id);
        if (!proof.ok())
          return Violation(log, fmt::format("{}: a certified release without a valid proof: {}",
                                            where, proof.message()));
        ++report_->releases_verified;
      }
      const uint64_t paid = PeriodAmount(e.amount, e.terms.periods, s.period);
      e.remaining -= paid;
      if (s.kind == SettleKind::kRefund) {
        balance_[e.payer] += static_cast<int64_t>(paid);
      } else {
        const uint64_t margin = owner_ ? MarginOf(paid, p_.margin_bps) : 0;
        if (margin > 0) balance_[*owner_] += static_cast<int64_t>(margin);
        balance_[e.provider] += static_cast<int64_t>(paid - margin);
      }
    }
    // What the authority reports must sum to the supply (its own figures, checked in 128 bits),
    // and be what its log gives.
    __int128 reported = 0;
    for (const auto& [k, v] : log.accounts) reported += v.first;
    for (const auto& [id, r] : log.escrow_remaining) reported += r;
    for (const auto& [id, held] : log.collateral_held) reported += held;
    if (reported != static_cast<__int128>(p_.genesis.supply))
      return Violation(log, fmt::format("the balances and escrows it reports sum to {} base "
                                        "units, the supply is {}",
                                        static_cast<long double>(reported), p_.genesis.supply));
    for (const auto& [k, b] : balance_) {
      const uint64_t next = next_seq_.contains(k) ? next_seq_.at(k) : 0;
      if (b == 0 && next == 0 && !log.accounts.contains(k)) continue;
      auto rep = log.accounts.find(k);
      const std::pair<int64_t, uint64_t> got =
          rep == log.accounts.end() ? std::make_pair(int64_t{0}, uint64_t{0}) : rep->second;
      if (got.first != b || got.second != next)
        return Violation(log, fmt::format("it reports {} at {} base units, next seq {}; its own "
                                          "log gives {}, next seq {}",
                                          AddressOfKey(k), got.first, got.second, b, next));
    }
    for (const auto& [k, v] : log.accounts)
      if (!balance_.contains(k) && (v.first != 0 || v.second != 0))
        return Violation(log, fmt::format("it reports {} at {} base units, which its log never "
                                          "touched",
                                          AddressOfKey(k), v.first));
    for (const auto& [id, held] : collateral_) {
      auto rep = log.collateral_held.find(id);
      const uint64_t got = rep == log.collateral_held.end() ? 0 : rep->second;
      if (got != held)
        return Violation(log, fmt::format("it reports {} base units of collateral held for escrow "
                                          "{}; its log gives {}",
                                          got, Short(id), held));
    }
    for (const auto& [id, held] : log.collateral_held)
      if (!collateral_.contains(id) && held > 0)
        return Violation(log, fmt::format("it reports collateral for escrow {}, which its log "
                                          "never staked",
                                          Short(id)));
    for (const auto& [id, e] : escrows_) {
      auto rep = log.escrow_remaining.find(id);
      if (rep == log.escrow_remaining.end() && e.remaining > 0)
        return Violation(log, fmt::format("it does not report escrow {}, which its log opened "
                                          "({} base units left)",
                                          Short(id), e.remaining));
      if (rep != log.escrow_remaining.end() && rep->second != e.remaining)
        return Violation(log, fmt::format("it reports {} base units left in escrow {}; its log "
                                          "gives {}",
                                          rep->second, Short(id), e.remaining));
    }
  }

  const std::map<KeyBytes, int64_t>& balances() const { return balance_; }

  // A read escrow's redemption or close, as an authority applies it (ledger/escrow.h).
  // A compute escrow's one settlement: a release only on the provider's signed claim, a refund
  // with a proof only on a valid fraud proof; the whole amount leaves the escrow.
  core::Status ReplayJob(const Settlement& s, OpenEscrow* e,
                         std::map<std::pair<crypto::Hash, uint32_t>, SettleKind>* periods,
                         std::set<crypto::Hash>* seen_settles) {
    if (s.period != 0 || !e->settled.insert(0).second)
      return core::Status::Corruption(
          fmt::format("compute escrow {} settled twice", Short(s.escrow_id)));
    const auto pk = std::make_pair(s.escrow_id, uint32_t{0});
    if (auto pit = periods->find(pk); pit != periods->end() && pit->second != s.kind)
      return core::Status::Corruption(fmt::format(
          "compute escrow {} certified both as a release and as a refund", Short(s.escrow_id)));
    (*periods)[pk] = s.kind;
    if (seen_settles->insert(s.hash).second) {
      if (s.kind == SettleKind::kJobRelease) {
        // Every voter held the stake; an authority that applied the release first may lack it
        // still (a laggard: noted).
        const auto stake = collateral_.find(s.escrow_id);
        if (e->job.collateral > 0 &&
            (stake == collateral_.end() || stake->second < e->job.collateral))
          report_->notes.push_back(fmt::format(
              "escrow {} was released here before its provider's stake was applied here",
              Short(s.escrow_id)));
        core::Status ok = CheckJobClaim(s.proof, e->job, e->provider, p_.network_id);
        if (!ok.ok())
          return core::Status::Corruption(
              fmt::format("a certified job release without a valid claim: {}", ok.message()));
        ++report_->releases_verified;
      } else if (!s.proof.empty()) {
        core::Status ok = CheckFraudProof(s.proof, e->job, e->provider, p_.network_id);
        if (!ok.ok())
          return core::Status::Corruption(
              fmt::format("a certified job refund with an invalid fraud proof: {}", ok.message()));
      }
    }
    e->remaining = 0;
    // The provider's stake: to the payer on a fraud proof, back to the provider otherwise.
    if (auto held = collateral_.find(s.escrow_id); held != collateral_.end() && held->second > 0) {
      const bool fraud = s.kind == SettleKind::kJobRefund && !s.proof.empty();
      balance_[fraud ? e->payer : stakers_[s.escrow_id]] += static_cast<int64_t>(held->second);
      held->second = 0;
    }
    if (s.kind == SettleKind::kJobRefund) {
      balance_[e->payer] += static_cast<int64_t>(e->amount);
      return core::Status::OK();
    }
    const JobPayout pay = JobReleasePayout(e->amount, e->job, owner_ ? p_.margin_bps : 0);
    if (pay.margin > 0) balance_[*owner_] += static_cast<int64_t>(pay.margin);
    balance_[e->provider] += static_cast<int64_t>(pay.to_provider);
    balance_[e->payer] += static_cast<int64_t>(pay.to_payer);
    return core::Status::OK();
  }

  core::Status ReplayRead(const Settlement& s, uint64_t epoch, OpenEscrow* e,
                          std::map<crypto::Hash, crypto::Hash>* closes) {
    const std::string what =
        fmt::format("{} of read escrow {}", SettleKindName(s.kind), Short(s.escrow_id));
    if (!e->read_applied.insert(s.hash).second)
      return core::Status::Corruption(what + ": applied twice");
    uint64_t bytes = 0;
    if (!s.proof.empty()) {
      auto r = DecodeReceipt(s.proof, p_.network_id);
      if (!r) return core::Status::Corruption(what + ": " + r.error().message());
      core::Status v =
          VerifyReceipt(*r, s.escrow_id, e->payer, e->provider, e->read.end_unix, p_.network_id);
      if (!v.ok()) return core::Status::Corruption(what + ": " + v.message());
      bytes = r->bytes_total;
    }
    if (s.kind == SettleKind::kClose) {
      auto [it, fresh] = closes->emplace(s.escrow_id, s.hash);
      if (!fresh && it->second != s.hash)
        return core::Status::Corruption(what + ": two different closes were certified");
    }
    if (e->closed && (s.kind == SettleKind::kClose || bytes > e->redeemed))
      return core::Status::Corruption(
          fmt::format("{}: certified for {} bytes after the close at {} (epoch {})", what, bytes,
                      e->redeemed, epoch));
    const uint64_t after = std::max(e->redeemed, bytes);
    const ReadPayout pay =
        ReadPayoutOf(e->redeemed, after, e->read, e->amount, owner_ ? p_.margin_bps : 0);
    if (pay.paid > e->remaining)
      return core::Status::Corruption(what + ": pays more than the escrow holds");
    const uint64_t refunded = s.kind == SettleKind::kClose ? e->remaining - pay.paid : 0;
    if (pay.margin > 0) balance_[*owner_] += static_cast<int64_t>(pay.margin);
    balance_[e->provider] += static_cast<int64_t>(pay.paid - pay.margin);
    balance_[e->payer] += static_cast<int64_t>(refunded);
    e->remaining -= pay.paid + refunded;
    e->redeemed = after;
    e->closed = e->closed || s.kind == SettleKind::kClose;
    return core::Status::OK();
  }

 private:
  const economy::EconomicPolicy& p_;
  const Committee& c_;
  const std::optional<KeyBytes> owner_;
  AuditReport* report_;
  std::map<KeyBytes, int64_t> balance_;
  std::map<crypto::Hash, uint64_t> collateral_;  // escrow id -> stake held
  std::map<crypto::Hash, KeyBytes> stakers_;     // escrow id -> who staked it
  std::map<KeyBytes, uint64_t> next_seq_;
  std::map<crypto::Hash, OpenEscrow> escrows_;
};

}  // namespace

AuditReport AuditLedger(const economy::EconomicPolicy& policy,
                        const std::vector<AuthorityLog>& logs) {
  AuditReport report;
  report.authorities = logs.size();
  std::vector<std::pair<std::string, std::string>> members;
  for (const auto& a : policy.genesis.committee) members.emplace_back(a.public_key_hex, a.pop_hex);
  auto committee = Committee::Make(0, members);
  if (!committee) {
    report.violations.push_back("the committee of economic.toml: " + committee.error().message());
    return report;
  }
  std::optional<KeyBytes> owner;
  if (!policy.owner.empty())
    if (auto key = wallet::PublicKeyFromAddress(policy.owner)) owner = key->bytes();
  std::map<std::pair<KeyBytes, uint64_t>, crypto::Hash> orders;
  std::map<std::pair<crypto::Hash, uint32_t>, SettleKind> periods;
  std::set<crypto::Hash> certs, settles;
  std::map<crypto::Hash, crypto::Hash> closes;
  std::vector<std::map<KeyBytes, int64_t>> finals;
  for (const auto& log : logs) {
    Replay replay(policy, *committee, owner, &report);
    replay.Run(log, &orders, &periods, &certs, &settles, &closes);
    finals.push_back(replay.balances());
  }
  // An authority that applied everything may not show an overdraft (a lagging one may, for
  // a while: a debit it applied before the credit that funded it).
  for (size_t i = 0; i < logs.size() && report.violations.empty(); ++i) {
    if (logs[i].certificates.size() < certs.size() || logs[i].settlements.size() < settles.size())
      continue;
    for (const auto& [k, b] : finals[i])
      if (b < 0) {
        report.violations.push_back(
            fmt::format("{}: {} ends at {} base units, below zero, after every certificate",
                        logs[i].name, AddressOfKey(k), b));
        break;
      }
  }
  report.certificates = certs.size();
  report.settlements = settles.size();
  for (const auto& log : logs)
    if (log.certificates.size() < certs.size() || log.settlements.size() < settles.size())
      report.notes.push_back(fmt::format(
          "{} has applied {} of {} certificates and {} of {} settlements (it lags; the next "
          "client that needs it brings it up to date)",
          log.name, log.certificates.size(), certs.size(), log.settlements.size(), settles.size()));
  return report;
}

}  // namespace dfrp::ledger
