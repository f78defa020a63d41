// The offline auditor of the ledger (dfrp-ledger audit; docs/PROTOCOL.md, "Audit"). From each
// authority's log (every certificate and settlement certificate it applied, in its order of
// application) and its reported accounts and escrows, it checks, without trusting anyone:
//
//   - every certificate verifies (the order's signature and a quorum's aggregate); every
//     release carries an audit answer that proves the escrow's shard for the period's seed
//     under a valid beacon of its slot (merkle_reward, checked again);
//   - each sender's sequence numbers are applied gap-free from 0, each once; each escrow
//     period is settled at most once; nothing is settled for an escrow not opened;
//   - replaying the log from the genesis gives, at the end, exactly the balances, sequence
//     numbers, escrow remainders and held collateral the authority reports, and those sum to
//     the supply;
//   - across authorities, no (sender, seq) has two different certified orders and no escrow
//     period was certified both ways.
//
// An authority that lags (its log is a prefix of what others applied) is noted, not a
// violation. The first violation found is what dfrp-ledger audit reports (exit 3).
//
// Thread-safety: a pure function over values.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "dfrp/core/status.h"
#include "dfrp/economy/policy.h"
#include "dfrp/ledger/escrow.h"
#include "dfrp/ledger/messages.h"

namespace dfrp::ledger {

struct AuthorityLog {
  std::string name;                       // for messages: "authority 2 (http://...)"
  std::vector<std::string> certificates;  // wire, in the order applied
  std::vector<std::string> settlements;   // wire, in the order applied
  // What the authority reports: key -> (balance, next_seq); escrow id -> remaining.
  std::map<KeyBytes, std::pair<int64_t, uint64_t>> accounts;
  std::map<crypto::Hash, uint64_t> escrow_remaining;
  std::map<crypto::Hash, uint64_t> collateral_held;  // escrow id -> a provider's stake held
  // Every certificate's signatures were verified as the log was read (LedgerClient::FetchLog
  // does): the audit does not check them a second time.
  bool signatures_verified = false;
};

struct AuditReport {
  size_t authorities = 0;
  uint64_t certificates = 0;  // distinct, across all logs
  uint64_t settlements = 0;   // distinct
  uint64_t releases_verified = 0;
  uint64_t receipts_verified = 0;       // usage receipts of read escrows' redemptions and closes
  std::vector<std::string> violations;  // the first is the one to report
  std::vector<std::string> notes;       // laggards
  bool ok() const { return violations.empty(); }
};

AuditReport AuditLedger(const economy::EconomicPolicy& policy,
                        const std::vector<AuthorityLog>& logs);

}  // namespace dfrp::ledger
