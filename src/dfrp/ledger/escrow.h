// Escrow settlements and the challenge beacon (docs/PROTOCOL.md, "Escrow" and "Beacon").
//
// An escrow is opened by an order (OrderKind::kEscrowOpen, messages.h); its id is
// SHA-256(payer ‖ u64 seq). It is then paid out period by period, never through anyone's
// account sequence: each period is settled once, either
//   released  to the provider (less the owner's margin), by a certificate over a Settlement
//             that carries the provider's audit answer for the period's seed, voted only
//             inside the period's answer window and only after the voter checked the proof
//             (merkle_reward); or
//   refunded  to the payer, voted only once the window has closed and a grace has passed.
// An authority locks (escrow id, period) to one kind before its vote leaves, so a release
// and a refund of one period never both gather a quorum.
//
// The beacon: for each slot (beacon_slot_seconds of the policy) every authority signs the
// slot once it has begun; exactly a quorum of those signatures aggregated is the slot's
// beacon, and SHA-256("DFRP-BEACON-V1" ‖ network id ‖ slot ‖ bitmap ‖ aggregate) its seed.
// No one knows a seed before the slot begins (every quorum holds an honest signer).
// A period's audit seed is SHA-256(slot seed ‖ escrow id ‖ u32 period).
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dfrp/core/status.h"
#include "dfrp/economy/policy.h"
#include "dfrp/ledger/messages.h"

namespace dfrp::ledger {

inline constexpr std::string_view kSettleTag = "DFRP-SETTLE-V1";
inline constexpr std::string_view kBeaconTag = "DFRP-BEACON-V1";
// A settlement carries an audit answer (K leaves with their paths). 1 MiB holds K = 200
// leaves of 4 KiB; an escrow whose answer could be larger is refused when it opens
// (MaxAuditAnswerBytes), so that every release it needs can be sent.
inline constexpr size_t kMaxSettlementWireBytes = 1u << 20;
// The HTTP body of a settlement or its certificate: hex, in a small JSON object.
inline constexpr size_t kMaxSettlementBodyBytes = 2 * (kMaxSettlementWireBytes + 512) + 1024;
inline constexpr size_t kMaxBeaconWireBytes = 8 + 8 + 2 + kMaxCommittee / 8 + 96;

// SHA-256(payer ‖ u64 seq): the id of the escrow the payer opened with order `seq`.
crypto::Hash EscrowId(const KeyBytes& payer, uint64_t seq);

// Period k of an escrow of `amount` over `periods` pays floor(A(k+1)/P) - floor(Ak/P): the
// periods sum to A exactly.
uint64_t PeriodAmount(uint64_t amount, uint32_t periods, uint32_t k);
// The owner's margin of a payout: floor(amount * bps / 10^4); the provider gets the rest.
uint64_t MarginOf(uint64_t amount, uint32_t margin_bps);

// The most bytes an audit answer for `t` can take (binary proof encoding: each challenged
// leaf, whole, with a full path), and whether a release carrying it fits
// kMaxSettlementWireBytes with its beacon.
uint64_t MaxAuditAnswerBytes(const StorageTerms& t);
bool AuditAnswerFits(const StorageTerms& t);

// When period k may be settled, in Unix milliseconds.
struct PeriodWindow {
  int64_t open_ms = 0;        // the answer window opens (the period's start + stagger)
  int64_t close_ms = 0;       // it closes (open + answer_window_seconds)
  int64_t vote_until_ms = 0;  // releases are voted before this: close less max_skew (the guard)
  int64_t refund_ms = 0;      // refunds are voted from this: close + grace_seconds
  uint64_t slot = 0;          // the beacon slot whose seed the audit answers: the one open_ms is in
};
// start_k = start + k * period; the window opens at start_k + (u64 of the id's first 8 bytes
// mod (period - answer_window + 1)) seconds, so escrows do not all answer at once.
PeriodWindow WindowOf(const crypto::Hash& escrow_id, const StorageTerms& t, uint32_t k,
                      const economy::StoragePolicy& p);

enum class SettleKind : uint8_t {
  kRelease = 1,     // storage: one period's payout, with its audit answer
  kRefund = 2,      // storage: one period back to the payer
  kRedeem = 3,      // read: a usage receipt's bytes not yet redeemed, paid to the provider
  kClose = 4,       // read: the last redemption and the rest back to the payer
  kJobRelease = 5,  // compute: the quoted price to the provider, on its claim, after disputes
  kJobRefund = 6,   // compute: everything back to the payer (a fraud proof, or no release)
};
std::string_view SettleKindName(SettleKind k);

// How a period of an escrow was settled (what an authority applied).
struct PeriodSettled {
  uint32_t period = 0;
  SettleKind kind = SettleKind::kRelease;
  uint64_t paid = 0;    // base units moved out of the escrow for this period
  uint64_t margin = 0;  // of `paid`, to the owner (a release); the rest to the provider
};

// One period of one escrow, settled one way. Not signed by anyone: what is certified is the
// committee's vote; the payout's recipients come from the escrow itself.
struct Settlement {
  crypto::Hash escrow_id{};
  uint32_t period = 0;
  SettleKind kind = SettleKind::kRelease;
  uint64_t epoch = 0;
  std::string proof;    // release: the audit answer (storage proof, binary encoding)
  std::string beacon;   // release: the slot's beacon (EncodeBeacon)
  crypto::Hash hash{};  // SHA-256 of SettlementBytes: what the committee votes for
};
// SignedPrefix(kSettleTag, network_id, epoch) ‖ escrow id (32) ‖ u32 period ‖ u8 kind ‖
// u32 proof length ‖ proof ‖ u16 beacon length ‖ beacon. A refund carries neither.
std::string SettlementBytes(const Settlement& s, const crypto::Hash& network_id);
// Fills in `hash`.
Settlement MakeSettlement(crypto::Hash escrow_id, uint32_t period, SettleKind kind, uint64_t epoch,
                          std::string proof, std::string beacon, const crypto::Hash& network_id);
core::Result<Settlement> DecodeSettlement(std::string_view wire, const crypto::Hash& network_id);

struct SettleCertificate {
  Settlement settlement;
  uint64_t epoch = 0;
  std::vector<bool> signers;
  SigBytes aggregate{};
};
core::Result<SettleCertificate> MakeSettleCertificate(const Settlement& s,
                                                      const std::vector<Vote>& votes,
                                                      const Committee& c);
// u32 settlement length ‖ settlement ‖ u64 epoch ‖ u16 n ‖ bitmap ‖ aggregate (96).
std::string EncodeSettleCertificate(const SettleCertificate& c, const crypto::Hash& network_id);
core::Result<SettleCertificate> DecodeSettleCertificate(std::string_view wire,
                                                        const crypto::Hash& network_id);
// A quorum's aggregate over the settlement's hash (the proof inside was checked by each
// signer before it voted; ledger::CheckRelease checks it again for an auditor).
core::Status VerifySettleCertificate(const SettleCertificate& c, const Committee& committee,
                                     const crypto::Hash& network_id,
                                     crypto::bls::GroupVerifier* verifier = nullptr);

// --- Read escrows (docs/PROTOCOL.md, "Read payments").
//
// A read escrow (OrderKind::kReadEscrowOpen) pays its provider for the bytes it serves the
// payer, at the terms' price per MiB, as the payer's signed usage receipts claim them. Each
// receipt carries the total bytes the payer received from that escrow so far; authorities keep
// the highest total redeemed per escrow and pay only what a receipt adds to it, so an old,
// replayed or lower receipt earns nothing and a forged one does not verify.
//   redeem  (SettleKind::kRedeem, period 0, proof = a receipt) is voted until the terms' end
//           plus the grace, less the allowed skew; each voter records the highest total it
//           voted for. Redemptions need no lock: applying one moves the escrow's redeemed
//           total to max(redeemed, receipt), so any order of application ends in one state.
//   close   (SettleKind::kClose, period 0, proof = a receipt or nothing) is voted from the end
//           plus the grace, once per authority and escrow (locked), and only when its total is
//           at least every total that authority voted to redeem; after it, that authority
//           votes no redemption of the escrow. A quorum of redeem votes and a quorum of close
//           votes share an honest authority, so no certified redemption exceeds the certified
//           close: the close pays the provider the rest of its due and refunds the remainder.
inline constexpr std::string_view kReceiptTag = "DFRP-RECEIPT-V1";
// What a paying client asks a provider for at a time, and so signs for before it has the
// bytes (node/read_desk.h): what it risks on a provider that does not deliver.
inline constexpr uint64_t kReadChunkBytes = 1u << 20;
inline constexpr size_t kReceiptWireBytes = 1 + 15 + 2 + 32 + 8 + 32 + 48 + 8 + 8 + 96;
inline constexpr uint64_t kMaxReceiptBytes = uint64_t{1} << 62;

// Signed by the payer as it receives verified bytes from the provider.
struct UsageReceipt {
  crypto::Hash escrow_id{};
  KeyBytes provider{};
  uint64_t bytes_total = 0;  // every byte received under this escrow so far (1 to 2^62)
  uint64_t expiry_unix = 0;  // at most the escrow's end
  SigBytes signature{};
};
// SignedPrefix(kReceiptTag, network_id, 0) ‖ escrow id (32) ‖ provider (48) ‖ u64 bytes total ‖
// u64 expiry. The epoch field is 0: a receipt outlives epoch changes (the escrow id binds it).
std::string ReceiptSigningBytes(const UsageReceipt& r, const crypto::Hash& network_id);
UsageReceipt SignReceipt(const crypto::Hash& escrow_id, const KeyBytes& provider,
                         uint64_t bytes_total, uint64_t expiry_unix,
                         const crypto::bls::SecretKey& payer_key, const crypto::Hash& network_id);
// The signing bytes ‖ the payer's signature (96): kReceiptWireBytes.
std::string EncodeReceipt(const UsageReceipt& r, const crypto::Hash& network_id);
core::Result<UsageReceipt> DecodeReceipt(std::string_view wire, const crypto::Hash& network_id);
// The receipt is for `escrow_id` and `provider`, expires by `end_unix`, and the payer signed it:
// InvalidArgument naming the field that differs, Corruption for a signature that does not
// verify.
core::Status VerifyReceipt(const UsageReceipt& r, const crypto::Hash& escrow_id,
                           const KeyBytes& payer, const KeyBytes& provider, uint64_t end_unix,
                           const crypto::Hash& network_id);
// What `bytes` of reads are worth under `t`, capped at the escrow's `amount`:
// min(amount, floor(bytes * price_per_mib / 2^20)).
uint64_t ReadDue(uint64_t bytes, const ReadTerms& t, uint64_t amount);
// The payout when an escrow's redeemed total moves from `before` to `after` bytes: `paid` out
// of the escrow, `margin` of it to the owner. Both are differences of cumulative figures
// (ReadDue, MarginOf of ReadDue), so the sum over any sequence of redemptions is the same as
// one redemption of the final total.
struct ReadPayout {
  uint64_t paid = 0, margin = 0;
};
ReadPayout ReadPayoutOf(uint64_t before, uint64_t after, const ReadTerms& t, uint64_t amount,
                        uint32_t margin_bps);

// --- Compute escrows (docs/PROTOCOL.md, "Compute settlement").
//
// A compute escrow (OrderKind::kJobEscrowOpen) is settled once, as period 0, optimistically:
// authorities never re-run a job. Its terms (messages.h, JobTerms) fix the price, the job and
// the verifier whose re-run may dispute the result.
//   job_refund with a fraud proof (proof = the provider's claim ‖ the verifier's claim, both
//              signed, both for the job, with different result roots or rank counts) is voted
//              until settle less the guard;
//   job_release (proof = the provider's signed claim for the job) is voted from settle until
//              settle + grace less the guard;
//   job_refund with no proof is voted from settle + grace (the provider never claimed in time).
// Each authority locks the escrow to one kind before its vote leaves (as a storage period), so
// a refund and a release never both gather a quorum. A release pays the terms' price (the
// owner's margin of it to the owner, the rest to the provider) and returns amount - price to
// the payer; a refund returns the whole amount.
//
// Collateral. Terms with a verifier may ask the provider to stake `collateral` (the client sets
// it from its check rate q for that provider: CollateralFor). The provider stakes it with a
// job_collateral order of its own account (its sequence number orders it against every other
// payment from that account, so stakes can never overspend a balance), voted only when the
// escrow is open at the voter, for exactly the terms' amount, once (no clock: see
// Authority::CollateralAllowedLocked).
// No authority votes a release before it holds the stake (Unavailable: try again). When the job is
// settled the stake goes to the payer on a refund with a fraud proof, and back to the provider
// otherwise (a release, or a refund because no claim came); a stake applied after the settlement
// follows it at once, so every order of application ends in one state.
struct JobWindow {
  int64_t dispute_until_ms = 0;  // fraud proofs are voted before this (settle less the guard)
  int64_t release_from_ms = 0;   // settle
  int64_t release_until_ms = 0;  // settle + grace less the guard
  int64_t refund_from_ms = 0;    // settle + grace: a refund without proof
};
JobWindow JobWindowOf(const JobTerms& t, const economy::StoragePolicy& p);
// What a release pays: the price out of the escrow (`margin` of it to the owner) and the
// rest of the amount back to the payer.
struct JobPayout {
  uint64_t to_provider = 0, margin = 0, to_payer = 0;
};
JobPayout JobReleasePayout(uint64_t amount, const JobTerms& t, uint32_t margin_bps);
// The stake that makes cheating a loss when a job is checked with probability q (in (0, 1]):
// a cheat keeps the price p unchecked and loses the stake checked, so it gains nothing in
// expectation once q × C ≥ (1 − q) × p: C = ceil(p × (1 − q) / q), capped at 2^62. 0 at q = 1.
uint64_t CollateralFor(uint64_t price, double check_rate);
// The most a provider's node stakes on a job, in multiples of its price (node/compute_service.h
// refuses more; submit-job asks no more): 20 covers the 5% check-rate floor (19 times the
// price). Below a 5% rate the stake no longer covers the whole gain.
inline constexpr uint64_t kMaxCollateralPerPrice = 20;
// kMaxCollateralPerPrice × price, saturating at 2^64 − 1.
inline uint64_t MaxCollateral(uint64_t price) {
  return price > UINT64_MAX / kMaxCollateralPerPrice ? UINT64_MAX : price * kMaxCollateralPerPrice;
}
// A release's proof: the provider's claim, signed by `provider`, for the terms' job.
// InvalidArgument naming the field, Corruption for a signature that does not verify.
core::Status CheckJobClaim(std::string_view proof, const JobTerms& t, const KeyBytes& provider,
                           const crypto::Hash& network_id);
// A fraud proof: the provider's claim ‖ the verifier's claim, each signed by its key, both for
// the terms' job, disagreeing on the result root or the rank count. Refused for a job with no
// verifier or claims that agree.
core::Status CheckFraudProof(std::string_view proof, const JobTerms& t, const KeyBytes& provider,
                             const crypto::Hash& network_id);

// --- The beacon.
// SignedPrefix(kBeaconTag, network_id, epoch) ‖ u64 slot; its SHA-256 is what each authority
// votes for (a Vote, as for an order) once the slot has begun.
std::string BeaconSigningBytes(uint64_t slot, uint64_t epoch, const crypto::Hash& network_id);
crypto::Hash BeaconItemHash(uint64_t slot, uint64_t epoch, const crypto::Hash& network_id);

struct Beacon {
  uint64_t slot = 0;
  uint64_t epoch = 0;
  std::vector<bool> signers;  // exactly a quorum
  SigBytes aggregate{};
};
// From verified votes for the slot: the first quorum of them, by authority index.
core::Result<Beacon> MakeBeacon(uint64_t slot, std::vector<Vote> votes, const Committee& c);
// u64 slot ‖ u64 epoch ‖ u16 n ‖ bitmap ‖ aggregate (96).
std::string EncodeBeacon(const Beacon& b);
core::Result<Beacon> DecodeBeacon(std::string_view wire);
// Exactly a quorum signed, and their aggregate verifies.
core::Status VerifyBeacon(const Beacon& b, const Committee& c, const crypto::Hash& network_id);
// SHA-256("DFRP-BEACON-V1" ‖ network_id ‖ u64 slot ‖ bitmap ‖ aggregate).
crypto::Hash BeaconSeed(const Beacon& b, const crypto::Hash& network_id);
// SHA-256(slot seed ‖ escrow id ‖ u32 period): the seed of that period's audit (raw bytes).
std::string PeriodSeed(const crypto::Hash& slot_seed, const crypto::Hash& escrow_id,
                       uint32_t period);

// The release's proof checked as an authority checks it before voting: the beacon is of the
// period's slot and verifies, and the audit answers that seed for the escrow's shard (its id,
// root, size, leaf size and challenge count). InvalidArgument / Corruption naming what failed.
core::Status CheckRelease(const Settlement& s, const StorageTerms& t, const PeriodWindow& w,
                          const Committee& c, const crypto::Hash& network_id);

}  // namespace dfrp::ledger
