// ProviderService: the provider's side of storage escrows (docs/PROTOCOL.md, "Escrow"). On a
// node with a WALLET and a committee in its economic.toml, a thread asks the committee, once
// per tick, for the open escrows this wallet provides; for each period whose answer window is
// open now and that is not settled, it fetches the slot's beacon from the authorities,
// answers the period's audit from this node's own store, and sends the release (gathering a
// quorum of votes, certifying, broadcasting: ledger::LedgerClient::Settle). Nothing is kept
// on disk: the committee's escrow records say what is left to do, so a restart loses
// nothing. A shard this node cannot prove (lost, corrupt) is reported, never answered with
// made-up bytes; that period is refunded to the payer after its grace.
//
// Its state (releases sent, failures, the last outcome per escrow) is the "escrows" section
// of /v1/status.
//
// Thread-safety: every member may be called from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "dfrp/core/thread_annotations.h"
#include "dfrp/ledger/client.h"
#include "dfrp/node/read_desk.h"
#include "dfrp/node/ticker.h"

namespace dfrp::node {

class Node;

class ProviderService {
 public:
  // `provider`: this node's wallet key, which the escrows it answers name as their provider.
  // `reads` (may be null): the receipts of read escrows, redeemed here (ledger/escrow.h).
  ProviderService(Node* node, core::Clock* clock, ledger::LedgerClient client,
                  const ledger::KeyBytes& provider, int64_t tick_ms, ReadDesk* reads = nullptr)
      : node_(node),
        reads_(reads),
        client_(std::move(client)),
        provider_(provider),
        address_(ledger::AddressOfKey(provider)),
        ticker_(clock, tick_ms) {}
  void Start() {
    ticker_.Start([this] { Tick(); });
  }
  // Asks the loop to end at its next check, without waiting (a call under way to the
  // committee ends within its timeout).
  void RequestStop() { ticker_.RequestStop(); }
  // RequestStop, then joins the thread.
  void Stop() { ticker_.Stop(); }
  nlohmann::json Json() const EXCLUDES(mu_);

 private:
  void Tick() EXCLUDES(mu_);
  // Answers period k of `e`; the outcome for the status.
  std::string Release(const ledger::EscrowView& e, uint32_t k, const ledger::PeriodWindow& w)
      EXCLUDES(mu_);
  // A read escrow: redeems its best receipt while it runs (at most every kRedeemEveryMs), and
  // closes it with that receipt from its end plus the grace. The outcome, or empty.
  std::string SettleReads(const ledger::EscrowView& e, int64_t now) EXCLUDES(mu_);
  // A compute escrow this node provides: in its release window, released with the claim of
  // the job this node ran (node/compute_service.h). The outcome, or empty.
  std::string ReleaseJob(const ledger::EscrowView& e, int64_t now) EXCLUDES(mu_);

  // The compute jobs this node ran whose escrow is no longer open: how the committee settled
  // each (asked one by one, at most kSettlementsPerRefresh per refresh), recorded in the job
  // (ComputeService::SetSettlement) for its JSON and the dashboard's earnings.
  void RecordJobSettlements() EXCLUDES(mu_);

  static constexpr int64_t kRedeemEveryMs = 5000;
  static constexpr size_t kSettlementsPerRefresh = 16;

  Node* const node_;
  ReadDesk* const reads_;
  ledger::LedgerClient client_;
  const ledger::KeyBytes provider_;
  const std::string address_;

  mutable core::Mutex mu_;
  // (escrow id, period) released here, or given up (the shard cannot be proved).
  std::set<std::pair<crypto::Hash, uint32_t>> done_ GUARDED_BY(mu_);
  // A certificate fewer than a quorum applied yet: sent again on the next tick.
  std::map<std::pair<crypto::Hash, uint32_t>, std::string> unsent_ GUARDED_BY(mu_);
  uint64_t releases_ GUARDED_BY(mu_) = 0;
  uint64_t failures_ GUARDED_BY(mu_) = 0;
  std::string last_error_ GUARDED_BY(mu_);
  int64_t last_tick_ms_ GUARDED_BY(mu_) = 0;
  size_t open_escrows_ GUARDED_BY(mu_) = 0;
  std::map<std::string, std::string> last_outcome_ GUARDED_BY(mu_);  // by escrow id (hex)
  // The escrows this node provides, as the committee reported them last: their periods
  // released (paid), refunded and still to come.
  nlohmann::json escrow_periods_ GUARDED_BY(mu_) = nlohmann::json::array();
  // The committee's list, asked again every third of an answer window (at most every 5 s):
  // new escrows are seen well inside their first window, without polling on every tick.
  std::vector<ledger::EscrowView> escrows_;  // the loop thread's only
  int64_t fetched_ms_ = -1;                  // the loop thread's only
  // Read escrows: when a redemption or close was last tried and for what total, and how many
  // tries in a row failed (each doubles the wait, to at most 5 min; the loop thread's only).
  struct ReadTry {
    int64_t at_ms = 0;
    uint64_t total = 0;
    int failures = 0;
  };
  std::map<crypto::Hash, ReadTry> redeemed_sent_;
  uint64_t redemptions_ GUARDED_BY(mu_) = 0, closes_ GUARDED_BY(mu_) = 0;
  Ticker ticker_;  // last: stopped (joined) before the members its thread uses go
};

}  // namespace dfrp::node
