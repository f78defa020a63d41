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

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dfrp/core/clock.h"
#include "dfrp/core/status.h"
#include "dfrp/core/thread_annotations.h"
#include "dfrp/economy/policy.h"
#include "dfrp/ledger/epoch.h"
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
  // How long the signature check of an order or certificate waits for others to batch with
  // while the authority is busy (crypto/group_verifier.h); 0: never.
  std::chrono::microseconds verify_gather{0};
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
  // A read escrow (kind read_escrow_open): `terms` is unset, `read` holds its terms.
  bool is_read = false;
  ReadTerms read;
  uint64_t redeemed_bytes = 0;    // the highest receipt total applied
  bool closed = false;            // its close was applied: nothing more is paid
  uint64_t max_voted_bytes = 0;   // this authority's record: the highest total it voted to redeem
  uint32_t read_settlements = 0;  // redemptions and the close applied
  // A compute escrow (kind job_escrow_open): `terms` is unset, `job` holds its terms; it is
  // settled once, as period 0 (`settled`), by a job_release or a job_refund.
  bool is_job = false;
  JobTerms job;
  // Its provider's stake (ledger/escrow.h, "Collateral"): held until the job is settled, then
  // back to the provider (a release, or no claim) or to the payer (a fraud proof).
  uint64_t collateral_held = 0, collateral_to_provider = 0, collateral_to_payer = 0;
  // Staked at all: held, or paid out since.
  uint64_t collateral_staked() const {
    return collateral_held + collateral_to_provider + collateral_to_payer;
  }
};

// The settled periods whose period began in one bucket of time (docs/API.md,
// /v1/ledger/node): what releases paid the providers, the owner's margin of them, and what
// refunds returned to payers, in base units.
struct PayoutBucket {
  int64_t start_unix = 0;  // the bucket's first second
  uint64_t to_providers = 0, margin = 0, refunded = 0;
  uint32_t releases = 0, refunds = 0;
};

struct Equivocation {
  KeyBytes sender{};
  uint64_t seq = 0;
  std::string order_a, order_b;  // the two signed orders (wire), both verified
};

// Where an authority stands in the epoch change (ledger/epoch.h).
struct EpochState {
  uint64_t epoch = 0;
  bool sealed = false;                // it votes for no order or settlement of this epoch
  std::optional<crypto::Hash> voted;  // the proposal it voted for: it applies nothing more
  Checkpoint checkpoint;              // its state now
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
  // Every compute escrow's collateral still held (escrow id, base units), by id, at most
  // `limit`: part of the supply.
  core::Result<std::vector<std::pair<crypto::Hash, uint64_t>>> HeldCollateral(size_t limit)
      EXCLUDES(mu_);

  // --- Escrows (ledger/escrow.h).
  // A vote for settling one period of an escrow. NotFound: the escrow is not open here (its
  // escrow_open certificate was not applied here yet). Refused: outside the time the kind
  // allows (a release inside the period's answer window, less the guard; a refund from the
  // window's close plus the grace), the period settled or locked the other way, a release
  // whose beacon or audit answer does not verify. InvalidArgument: another epoch, a period
  // past the escrow's. The lock on (escrow, period) is synced before the vote is returned.
  //
  // A read escrow's redemption or close (ledger/escrow.h, "Read escrows"): Refused for a
  // receipt that adds nothing to the redeemed total, a redemption after this authority voted
  // to close, a close before the end plus the grace or below a total it voted to redeem, a
  // second, different close; Corruption for a receipt the payer did not sign.
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
  // The escrows with money left where `party` is the provider or the payer, by id, the first
  // `limit` of those past `after` (a page; the next starts after the last id of this one).
  core::Result<std::vector<EscrowInfo>> OpenEscrows(const KeyBytes& party, size_t limit = 1000,
                                                    const crypto::Hash& after = {}) EXCLUDES(mu_);
  // The settlement certificates of an escrow (wire), by period.
  core::Result<std::vector<std::string>> SettleCertificates(const crypto::Hash& id) EXCLUDES(mu_);
  // Ok when the balances, what is left in escrows and the collateral held sum to the genesis
  // supply; Corruption with the figures otherwise.
  core::Status CheckSupply() EXCLUDES(mu_);
  // Every settled period by when it began (a bucket per `bucket_seconds`), the newest `limit`
  // buckets, oldest first. Derived from the applied settlements alone, so every authority
  // that applied the same ones reports the same.
  core::Result<std::vector<PayoutBucket>> Payouts(uint32_t bucket_seconds, size_t limit = 120)
      EXCLUDES(mu_);
  // How many certificates this authority has applied.
  core::Result<uint64_t> AppliedCount() EXCLUDES(mu_);
  // Per (payer, provider): the storage periods released (each on an audit answer this
  // committee verified) and compute jobs released (a signed claim, no fraud proof within the
  // dispute window), and the periods and jobs refunded (no answer or claim in time, or a fraud
  // proof). The pairs of the payers `first` (the pre-trusted) come first, whatever their
  // number; then the others, the most settled first, up to `limit` pairs in all. What an
  // authority node's trust evidence counts (mesh/trust.h). Scans the settlements.
  struct ProofOutcome {
    KeyBytes payer{}, provider{};
    uint64_t released = 0, refunded = 0;
  };
  core::Result<std::vector<ProofOutcome>> ProofOutcomes(size_t limit,
                                                        const std::vector<KeyBytes>& first = {})
      EXCLUDES(mu_);

  // --- The epoch change (ledger/epoch.h; docs/PROTOCOL.md, "Epoch change").
  // The committee epoch orders, votes and certificates are for now.
  uint64_t epoch() const { return epoch_.load(std::memory_order_acquire); }
  // A committee member's seal of the current epoch (a Vote on SealItemHash): from now on this
  // authority votes for no order or settlement of the epoch (Busy: wait for the next).
  // Idempotent; persisted. InvalidArgument: a seal of another epoch or item; Corruption: a
  // signature that does not verify.
  core::Status Seal(const Vote& seal) EXCLUDES(mu_);
  core::Result<EpochState> GetEpochState() EXCLUDES(mu_);
  // This authority's vote for the next epoch: only when sealed, for its own committee and
  // policy version, and a checkpoint that is exactly its state; and for one proposal per
  // epoch (the vote is persisted before it leaves; from then on it applies no certificate of
  // the closing epoch). Refused otherwise, naming the difference.
  core::Result<Vote> HandleEpochProposal(const EpochProposal& p) EXCLUDES(mu_);
  // Moves to the next epoch when its checkpoint is this authority's state: every lock of the
  // closing epoch is cleared, in one synced transaction. NotFound: an earlier epoch
  // certificate is missing, or this authority has not applied all the checkpoint holds yet
  // (the ledger sync pulls the rest); Corruption: it applied what the checkpoint does not hold
  // (an alarm: its ledger must be restored from a peer).
  core::Result<ApplyOutcome> HandleEpochCertificate(const EpochCertificate& c) EXCLUDES(mu_);
  // The epoch certificates applied here (wire) for epochs after `after_epoch`, in order.
  core::Result<std::vector<std::string>> EpochCertificates(uint64_t after_epoch, size_t limit = 100)
      EXCLUDES(mu_);

  const Committee& committee() const { return committee_; }
  // Its signature checks: batches and the signatures in them (for metrics).
  const crypto::bls::GroupVerifier& verifier() const { return verifier_; }
  uint32_t index() const { return opt_.index; }
  const crypto::Hash& network_id() const { return opt_.policy->network_id; }

 private:
  Authority(const AuthorityOptions& opt, Committee c)
      : opt_(opt), committee_(std::move(c)), verifier_({.gather = opt.verify_gather}) {}
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
  // The state digest and counts (docs/PROTOCOL.md, "Epoch change").
  core::Result<Checkpoint> CheckpointLocked() REQUIRES(mu_);
  // Before a vote's record is written: Internal when a transaction was left open, Busy when
  // the closing epoch takes no more votes (sealed) or applies nothing more (voted for the
  // next), InvalidArgument when the item is for another epoch than the committee's now;
  // `what` names the item.
  core::Status CheckVotingLocked(std::string_view what, uint64_t item_epoch) REQUIRES(mu_);
  // Refused when a certificate of `cert_epoch` (not applied here yet) can no longer be
  // applied: a closed epoch (void: its sender signs again), or the closing one once this
  // authority voted for the next.
  core::Status ApplyingEpochLocked(uint64_t cert_epoch, std::string_view what) REQUIRES(mu_);
  core::Status SetMetaLocked(std::string_view key, const std::string& value) REQUIRES(mu_);
  core::Result<Vote> HandleReadSettlement(const Settlement& s) EXCLUDES(mu_);
  // Inside HandleSettleCertificate's transaction (begun; committed or rolled back here).
  core::Result<ApplyOutcome> ApplyReadSettlement(const SettleCertificate& c,
                                                 const std::string& wire, const EscrowInfo& e)
      REQUIRES(mu_);
  // Refused when this authority locked (escrow, period) to another kind than `s`'s.
  core::Status SettleLockAllowsLocked(const Settlement& s, std::string_view what) REQUIRES(mu_);
  // Locks (escrow, period) to `s`'s kind, synced, before a vote for it leaves.
  core::Status PersistSettleLockLocked(const Settlement& s) REQUIRES(mu_);
  // A compute escrow's release or refund (ledger/escrow.h, "Compute escrows").
  core::Result<Vote> HandleJobSettlement(const Settlement& s) EXCLUDES(mu_);
  // A job_collateral order's escrow checks: open here, a compute escrow of the sender's, asking
  // exactly this stake, none staked yet. No clock (see the definition).
  core::Status CollateralAllowedLocked(const SignedOrder& so) REQUIRES(mu_);
  // When the escrow is settled here and a stake is held: the stake to the payer (a refund on a
  // fraud proof) or back to the provider. Inside the caller's transaction. `fraud`: the
  // settlement being applied was a refund on a fraud proof (given by the settlement path);
  // unset, the stored settlement, if any, says.
  core::Status PayOutCollateralLocked(const crypto::Hash& escrow_id, const crypto::Hash& why,
                                      std::optional<bool> fraud = std::nullopt) REQUIRES(mu_);
  // The next number in the one sequence settlements and read settlements are applied in.
  core::Result<int64_t> NextSettleAppliedLocked() REQUIRES(mu_);

  const AuthorityOptions opt_;
  const Committee committee_;
  // Signatures of orders and certificates arriving together (several HTTP workers) are
  // checked in one batch (crypto/group_verifier.h).
  crypto::bls::GroupVerifier verifier_;
  std::optional<KeyBytes> owner_;  // policy.owner's key (receives the margin)
  // Written under mu_ (with the database), read without it to check a message's epoch before
  // its signatures; the check is repeated under mu_ before anything is written.
  std::atomic<uint64_t> epoch_{0};
  core::Mutex mu_;
  sqlite3* db_ GUARDED_BY(mu_) = nullptr;
  bool sealed_ GUARDED_BY(mu_) = false;
  std::optional<crypto::Hash> voted_ GUARDED_BY(mu_);
};

// STATE_DIR/ledger.db.
std::string LedgerPath(const std::string& state_dir);

}  // namespace dfrp::ledger
