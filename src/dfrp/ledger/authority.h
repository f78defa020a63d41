// Authority: one member of the ledger's committee (FastPay's design; docs/PROTOCOL.md,
// "Ledger"). It keeps accounts, locks, applied certificates and equivocation proofs in SQLite
// (STATE_DIR/ledger.db, WAL, synchronous=FULL: every commit is synced before it returns).
//
//   HandleOrder        checks a signed order (signature, epoch, the sender's next sequence
//                      number, amount plus the order fee within the balance, no lock on a
//                      different order of that (sender, seq)), persists the lock, and only
//                      then returns its vote. The same order again gets the same vote.
//   HandleCertificate  verifies a certificate (the order's signature and the quorum's
//                      aggregate) and applies it exactly once: debit the sender amount + fee,
//                      credit the recipient, credit the fee to the committee's account,
//                      advance the sender's sequence, clear the lock. Applying is a pure
//                      function of (state, certificate): no clock is read.
//
// Locks are never released by time. A second, different order for a locked (sender, seq) is
// refused and the two orders are kept as an equivocation proof (Equivocations()).
//
// Balances are signed (as FastPay's): an authority that has not yet applied the certificate
// that funded an account may apply that account's next certificate first. The sum of all
// balances is the genesis supply after every applied certificate (CheckSupply).
//
// Thread-safety: every member may be called from any thread (one mutex over the database).
#pragma once

#include <sqlite3.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dfrp/core/clock.h"
#include "dfrp/core/status.h"
#include "dfrp/core/thread_annotations.h"
#include "dfrp/economy/policy.h"
#include "dfrp/ledger/escrow.h"
#include "dfrp/ledger/messages.h"

namespace dfrp::ledger {

inline constexpr std::string_view kLedgerFileName = "ledger.db";
inline constexpr int kLedgerSchemaVersion = 1;

struct AuthorityOptions {
  std::string path;                                 // STATE_DIR/ledger.db
  const economy::EconomicPolicy* policy = nullptr;  // genesis, committee, order fee; required
  uint32_t index = 0;                               // this authority's place in the committee
  const crypto::bls::SecretKey* key = nullptr;      // its key (must match the committee's)
  // What settlement votes and beacon signatures are timed by (applying never reads it);
  // required.
  core::Clock* clock = nullptr;
};

struct AccountInfo {
  KeyBytes key{};
  int64_t balance = 0;
  uint64_t next_seq = 0;
  std::optional<crypto::Hash> locked;  // the order this authority voted for at next_seq
};

enum class ApplyOutcome {
  kApplied,         // the certificate moved money now
  kAlreadyApplied,  // the same order was applied before: nothing changed
};

struct EscrowInfo {
  crypto::Hash id{};
  KeyBytes payer{}, provider{};
  uint64_t amount = 0;     // as opened
  uint64_t remaining = 0;  // not yet paid out or refunded: part of the supply
  StorageTerms terms;
  std::optional<KeyBytes> owner;  // who receives the margin (policy.owner when it was opened)
  uint32_t margin_bps = 0;
  std::vector<PeriodSettled> settled;  // by period
};

struct Equivocation {
  KeyBytes sender{};
  uint64_t seq = 0;
  std::string order_a, order_b;  // the two signed orders (wire), both verified
};

class Authority {
 public:
  // Opens (creating, and funding the genesis allocations, when new) the ledger database.
  // InvalidArgument: no committee, an index outside it, a key that is not the committee's
  // member at that index, a supply past 2^63 - 1; Corruption: a database of another network
  // or schema, or one that fails its integrity check.
  static core::Result<std::unique_ptr<Authority>> Open(const AuthorityOptions& opt);
  ~Authority();

  // See the file comment. Refused (exit 7): funds, a lock on a different order (the pair is
  // kept as an equivocation proof), a sequence number already certified; InvalidArgument:
  // another epoch, a sequence number past the sender's next, the sender paying itself or the
  // committee's account; Corruption: a signature that does not verify.
  core::Result<Vote> HandleOrder(const SignedOrder& order) EXCLUDES(mu_);
  // InvalidArgument / Corruption: a certificate that does not verify; NotFound: the sender's
  // certificates before this sequence number are missing here (pull them, then retry);
  // Corruption also for a different order certified at an already applied (sender, seq),
  // which a correct committee never signs.
  core::Result<ApplyOutcome> HandleCertificate(const Certificate& cert) EXCLUDES(mu_);

  core::Result<AccountInfo> Account(const KeyBytes& key) EXCLUDES(mu_);
  // The certificates applied for `sender` from `from_seq` on (wire), in order, at most
  // `limit`: what a lagging authority pulls.
  core::Result<std::vector<std::string>> Certificates(const KeyBytes& sender, uint64_t from_seq,
                                                      size_t limit = 1000) EXCLUDES(mu_);
  core::Result<std::vector<Equivocation>> Equivocations() EXCLUDES(mu_);

  // --- The log, for auditors (dfrp-ledger audit).
  // Applied certificates (wire) in the order this authority applied them, from the
  // `from`-th (1-based) on, at most `limit`.
  core::Result<std::vector<std::string>> Log(uint64_t from, size_t limit) EXCLUDES(mu_);
  // Applied settlement certificates likewise.
  core::Result<std::vector<std::string>> SettleLog(uint64_t from, size_t limit) EXCLUDES(mu_);
  // Every account (the committee's too), by key, at most `limit`.
  core::Result<std::vector<AccountInfo>> Accounts(size_t limit) EXCLUDES(mu_);

  // --- Escrows (ledger/escrow.h).
  // A vote for settling one period of an escrow. NotFound: the escrow is not open here (its
  // escrow_open certificate was not applied here yet). Refused: outside the time the kind
  // allows (a release inside the period's answer window, less the guard; a refund from the
  // window's close plus the grace), the period settled or locked the other way, a release
  // whose beacon or audit answer does not verify. InvalidArgument: another epoch, a period
  // past the escrow's. The lock on (escrow, period) is synced before the vote is returned.
  core::Result<Vote> HandleSettlement(const Settlement& s) EXCLUDES(mu_);
  // Applies a settlement certificate exactly once: pays the period's amount out of the
  // escrow (a release: the margin to the owner, the rest to the provider; a refund: all to
  // the payer). No clock is read. NotFound: the escrow is not open here; Corruption: the
  // period was certified the other way (more than f faulty authorities).
  core::Result<ApplyOutcome> HandleSettleCertificate(const SettleCertificate& c) EXCLUDES(mu_);
  // This authority's signature on a beacon slot (a Vote on BeaconItemHash); Refused before
  // the slot has begun on this authority's clock.
  core::Result<Vote> BeaconShare(uint64_t slot);
  core::Result<EscrowInfo> Escrow(const crypto::Hash& id) EXCLUDES(mu_);
  // The escrows with money left where `party` is the provider or the payer, by id.
  core::Result<std::vector<EscrowInfo>> OpenEscrows(const KeyBytes& party, size_t limit = 1000)
      EXCLUDES(mu_);
  // The settlement certificates of an escrow (wire), by period.
  core::Result<std::vector<std::string>> SettleCertificates(const crypto::Hash& id) EXCLUDES(mu_);
  // Ok when the balances and what is left in escrows sum to the genesis supply; Corruption
  // with the figures otherwise.
  core::Status CheckSupply() EXCLUDES(mu_);
  // How many certificates this authority has applied.
  core::Result<uint64_t> AppliedCount() EXCLUDES(mu_);

  const Committee& committee() const { return committee_; }
  uint32_t index() const { return opt_.index; }
  const crypto::Hash& network_id() const { return opt_.policy->network_id; }

 private:
  Authority(const AuthorityOptions& opt, Committee c) : opt_(opt), committee_(std::move(c)) {}
  core::Status Init() EXCLUDES(mu_);
  core::Result<AccountInfo> AccountLocked(const KeyBytes& key) REQUIRES(mu_);
  core::Status SqlError(std::string_view what) REQUIRES(mu_);
  core::Status Exec(const char* sql) REQUIRES(mu_);
  core::Result<std::optional<EscrowInfo>> EscrowLocked(const crypto::Hash& id) REQUIRES(mu_);
  // The first column of `sql`'s rows, with ?1 = a and ?2 = b.
  core::Result<std::vector<std::string>> BlobsLocked(const char* sql, int64_t a, int64_t b,
                                                     std::string_view what) REQUIRES(mu_);
  // Adds `add` to `to`'s balance (creating the account), overflow-checked.
  core::Status CreditLocked(const KeyBytes& to, int64_t add, const crypto::Hash& why) REQUIRES(mu_);

  const AuthorityOptions opt_;
  const Committee committee_;
  // Signatures of orders and certificates arriving together (several HTTP workers) are
  // checked in one batch (crypto/group_verifier.h).
  crypto::bls::GroupVerifier verifier_;
  std::optional<KeyBytes> owner_;  // policy.owner's key (receives the margin)
  core::Mutex mu_;
  sqlite3* db_ GUARDED_BY(mu_) = nullptr;
};

// STATE_DIR/ledger.db.
std::string LedgerPath(const std::string& state_dir);

}  // namespace dfrp::ledger
