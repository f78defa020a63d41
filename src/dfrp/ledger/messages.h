// The ledger's signed messages and their one canonical binary encoding (docs/PROTOCOL.md,
// "Ledger messages", lists every byte): orders signed by a wallet, authorities' votes, and
// certificates (an order plus the aggregate signature of a quorum of the committee).
//
// Every signed byte string begins with the same prefix:
//   u8 len ‖ tag (ASCII) ‖ u16 version (1) ‖ network_id (32 bytes) ‖ u64 epoch
// so a signature made for one purpose, network or committee epoch verifies for no other (blst
// uses one DST for all signatures; the tag is what separates them). Integers are big-endian.
//
// Decoders take outside bytes: each bound is checked before it is used, every field is
// validated (keys on the curve, no trailing bytes, sizes within kMax*), and a failure is
// InvalidArgument naming the field. fuzz/fuzz_ledger_messages.cc drives them.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dfrp/core/status.h"
#include "dfrp/core/uuid.h"
#include "dfrp/crypto/bls.h"
#include "dfrp/crypto/group_verifier.h"
#include "dfrp/crypto/sha256.h"

namespace dfrp::ledger {

inline constexpr uint16_t kMessageVersion = 1;
inline constexpr std::string_view kOrderTag = "DFRP-ORDER-V1";
inline constexpr std::string_view kVoteTag = "DFRP-VOTE-V1";
inline constexpr std::string_view kAcceptTag = "DFRP-ACCEPT-V1";
inline constexpr std::string_view kReadAcceptTag = "DFRP-READ-ACCEPT-V1";
inline constexpr std::string_view kJobAcceptTag = "DFRP-JOB-ACCEPT-V1";
inline constexpr uint32_t kMaxEscrowPeriods = 100'000;
inline constexpr uint32_t kMaxEscrowChallenges = 1024;  // storage::kMaxAuditChallenges
inline constexpr size_t kMaxMemoBytes = 256;
inline constexpr size_t kMaxCommittee = 256;
// Wire sizes are bounded before anything is parsed.
inline constexpr size_t kMaxOrderWireBytes = 1024;
inline constexpr size_t kMaxCertificateWireBytes = 2048;

// Keys and signatures as their compressed bytes; a decoder has checked that they are valid
// points, and verification decodes them again (crypto/bls.h keeps no unvalidated point).
using KeyBytes = std::array<uint8_t, crypto::bls::kPublicKeySize>;
using SigBytes = std::array<uint8_t, crypto::bls::kSignatureSize>;

// The committee's account, which collects order fees: not a wallet (no key has these bytes).
inline constexpr KeyBytes kCommitteeAccount{};

// For messages and JSON: the wallet address of a key, "committee" for kCommitteeAccount, the
// hex of bytes that are no valid key.
std::string AddressOfKey(const KeyBytes& k);

// The key or signature those bytes encode (validated again: crypto/bls.h's FromBytes).
core::Result<crypto::bls::PublicKey> KeyFrom(const KeyBytes& k);
core::Result<crypto::bls::Signature> SigFrom(const SigBytes& s);

enum class OrderKind : uint8_t {
  kTransfer = 1,
  kEscrowOpen = 2,
  kReadEscrowOpen = 3,
  kJobEscrowOpen = 4,
  kJobCollateral = 5,
};
std::string_view OrderKindName(OrderKind k);

struct Transfer {
  KeyBytes to{};
  uint64_t amount = 0;  // base units, > 0
  std::string memo;     // at most kMaxMemoBytes
};

// What a storage escrow pays for: one shard kept, audited once per period (docs/PROTOCOL.md,
// "Escrow"). Period k runs from start + k * period_seconds; its answer window opens inside
// it, staggered by the escrow id (ledger/escrow.h, WindowOf).
struct StorageTerms {
  core::Uuid shard_id;
  crypto::Hash root{};          // the shard's Merkle root (its write receipt)
  uint64_t size = 0;            // payload bytes, > 0
  uint32_t leaf_size = 0;       // > 0
  uint32_t periods = 0;         // 1 .. kMaxEscrowPeriods
  uint32_t period_seconds = 0;  // must be the policy's storage.period_seconds when opened
  uint64_t start_unix = 0;      // seconds: when period 0 begins
  uint32_t challenges = 0;      // leaves asked per audit, at least the policy's
};
// The 80 bytes of the terms (shard id ‖ root ‖ u64 size ‖ u32 leaf size ‖ u32 periods ‖
// u32 period seconds ‖ u64 start ‖ u32 challenges).
std::string EncodeTerms(const StorageTerms& t);
core::Result<StorageTerms> DecodeTerms(std::string_view bytes);

// What a read escrow pays for: the verified bytes its provider serves the payer until
// `end_unix`, at `price_per_mib` base units per MiB (2^20 bytes), claimed with the payer's
// signed usage receipts (ledger/escrow.h, UsageReceipt; docs/PROTOCOL.md, "Read payments").
struct ReadTerms {
  uint64_t price_per_mib = 0;  // > 0
  uint64_t end_unix = 0;       // seconds: receipts are redeemed until end + grace, then closed
};
// The 16 bytes: u64 price per MiB ‖ u64 end.
std::string EncodeReadTerms(const ReadTerms& t);
core::Result<ReadTerms> DecodeReadTerms(std::string_view bytes);

// What a compute escrow pays for: one job (compute/job.h) run by the provider, paid
// optimistically (docs/PROTOCOL.md, "Compute settlement"). The payer escrows `amount` (up to
// the job's max_fee); a release pays `price` (the provider's quote: its price for the job's
// ranks x CPU-seconds, fixed when it accepted, never its self-reported usage) and returns
// amount - price to the payer. Until `settle_unix` a fraud proof (the provider's signed claim
// and the verifier's, for this job, with different results) refunds everything; from then
// until settle + grace the provider's claim releases it; after that, with no release, it is
// refunded. `verifier`: the wallet whose re-run may dispute the result; all zero bytes when
// this job is not checked (the client's check schedule, economic.toml compute.check_*).
// `collateral`: what the provider puts at stake for this job (a job_collateral order of its
// own, ledger/escrow.h "Collateral"); no release is voted before it is held, a fraud proof
// gives it to the payer, and otherwise it goes back to the provider. 0: none.
struct JobTerms {
  crypto::Hash job_id{};     // compute::JobId of the signed job
  KeyBytes verifier{};       // all zero: no verifier
  uint64_t price = 0;        // base units, 1 .. the escrow's amount
  uint64_t settle_unix = 0;  // seconds: the dispute window ends, the release window begins
  uint64_t collateral = 0;   // base units the provider stakes; 0 with no verifier
  bool has_verifier() const { return verifier != KeyBytes{}; }
};
// The 104 bytes: job id ‖ verifier (48) ‖ u64 price ‖ u64 settle ‖ u64 collateral.
std::string EncodeJobTerms(const JobTerms& t);
core::Result<JobTerms> DecodeJobTerms(std::string_view bytes);

// escrow_open: the sender (the payer) locks `amount` for `provider` under `terms`; it takes
// effect only with the provider's signature over AcceptanceSigningBytes.
struct EscrowOpen {
  KeyBytes provider{};
  uint64_t amount = 0;  // base units, > 0: the whole escrow, paid out period by period
  StorageTerms terms;   // kind escrow_open
  ReadTerms read;       // kind read_escrow_open
  JobTerms job;         // kind job_escrow_open
  SigBytes acceptance{};
};

// job_collateral: the sender (an escrow's provider) stakes `amount` on the compute escrow
// `escrow_id` (ledger/escrow.h, "Collateral"). Ordered by the provider's own sequence number,
// as any payment from its account, so no two stakes can spend one balance.
struct JobCollateral {
  crypto::Hash escrow_id{};
  uint64_t amount = 0;  // base units, > 0: exactly the escrow's terms' collateral
};

// (kind, sender, seq, body), as the sender's wallet signs it, in a committee epoch.
struct Order {
  OrderKind kind = OrderKind::kTransfer;
  KeyBytes sender{};
  uint64_t seq = 0;
  uint64_t epoch = 0;        // the committee epoch it is for
  uint64_t fee = 0;          // the order fee the sender agrees to pay the committee (base units)
  Transfer transfer;         // kind == kTransfer
  EscrowOpen escrow;         // kind == kEscrowOpen, kReadEscrowOpen or kJobEscrowOpen
  JobCollateral collateral;  // kind == kJobCollateral
  bool opens_escrow() const {
    return kind == OrderKind::kEscrowOpen || kind == OrderKind::kReadEscrowOpen ||
           kind == OrderKind::kJobEscrowOpen;
  }
  // What the order takes from the sender's balance besides the fee.
  uint64_t amount() const {
    return opens_escrow()                      ? escrow.amount
           : kind == OrderKind::kJobCollateral ? collateral.amount
                                               : transfer.amount;
  }
};

// What a provider signs to accept an escrow: SignedPrefix(kAcceptTag, network_id, epoch) ‖
// payer (48) ‖ u64 seq ‖ provider (48) ‖ u64 amount ‖ terms (80).
std::string AcceptanceSigningBytes(const KeyBytes& payer, uint64_t seq, uint64_t epoch,
                                   const KeyBytes& provider, uint64_t amount,
                                   const StorageTerms& terms, const crypto::Hash& network_id);
// A read escrow's acceptance: SignedPrefix(kReadAcceptTag, network_id, epoch) ‖ payer (48) ‖
// u64 seq ‖ provider (48) ‖ u64 amount ‖ read terms (16).
std::string ReadAcceptanceSigningBytes(const KeyBytes& payer, uint64_t seq, uint64_t epoch,
                                       const KeyBytes& provider, uint64_t amount,
                                       const ReadTerms& terms, const crypto::Hash& network_id);
// A compute escrow's acceptance: SignedPrefix(kJobAcceptTag, network_id, epoch) ‖ payer (48) ‖
// u64 seq ‖ provider (48) ‖ u64 amount ‖ job terms (104).
std::string JobAcceptanceSigningBytes(const KeyBytes& payer, uint64_t seq, uint64_t epoch,
                                      const KeyBytes& provider, uint64_t amount,
                                      const JobTerms& terms, const crypto::Hash& network_id);
// InvalidArgument when the provider's acceptance in `o` (an escrow opening of any kind)
// does not verify (the
// order is refused as malformed: nobody's stored data is in question).
core::Status VerifyAcceptance(const Order& o, const crypto::Hash& network_id);

// The prefix every signed message starts with.
std::string SignedPrefix(std::string_view tag, const crypto::Hash& network_id, uint64_t epoch);

// What the sender signs: SignedPrefix(kOrderTag, network_id, epoch) ‖ the order's fields.
std::string OrderSigningBytes(const Order& o, const crypto::Hash& network_id);

struct SignedOrder {
  Order order;
  SigBytes signature{};
  crypto::Hash hash{};  // SHA-256 of OrderSigningBytes: the order's identity
};
SignedOrder SignOrder(const Order& o, const crypto::bls::SecretKey& key,
                      const crypto::Hash& network_id);
// Wire: OrderSigningBytes ‖ signature (96 bytes).
std::string EncodeSignedOrder(const SignedOrder& s, const crypto::Hash& network_id);
// Decodes (not verifies): InvalidArgument naming the field; a network id other than
// `network_id` is refused here, with both ids, so that a message for another network gets
// that reason and not "bad signature".
core::Result<SignedOrder> DecodeSignedOrder(std::string_view wire, const crypto::Hash& network_id);
// The sender's signature over the order, and `s.hash` recomputed from the order (a hash that
// does not match is InvalidArgument); Corruption when the signature does not verify.
//
// Every Verify... function here takes an optional GroupVerifier: given one, its BLS checks
// join the batches of concurrent callers (crypto/group_verifier.h); the answers are the same.
core::Status VerifyOrderSignature(const SignedOrder& s, const crypto::Hash& network_id,
                                  crypto::bls::GroupVerifier* verifier = nullptr);

// What an authority signs to vote for an order: SignedPrefix(kVoteTag, network_id, epoch) ‖
// the order hash. Every authority signs the same bytes, so votes aggregate.
std::string VoteSigningBytes(const crypto::Hash& order_hash, uint64_t epoch,
                             const crypto::Hash& network_id);

struct Vote {
  crypto::Hash order_hash{};
  uint64_t epoch = 0;
  uint32_t authority = 0;  // index in the committee
  SigBytes signature{};
};
// An authority's vote, signed with its key.
Vote SignVote(const crypto::Hash& order_hash, uint64_t epoch, uint32_t authority,
              const crypto::bls::SecretKey& key, const crypto::Hash& network_id);
// Wire: order_hash (32) ‖ u64 epoch ‖ u32 authority ‖ signature (96).
std::string EncodeVote(const Vote& v);
core::Result<Vote> DecodeVote(std::string_view wire);

// The committee of an epoch: the authorities' proven keys in committee order.
class Committee {
 public:
  // Keys with their proofs of possession (verified here; Corruption names the authority).
  static core::Result<Committee> Make(
      uint64_t epoch,
      const std::vector<std::pair<std::string, std::string>>& public_key_and_pop_hex);
  uint64_t epoch() const { return epoch_; }
  // The same members in another epoch (the committee does not change at an epoch change yet).
  Committee AtEpoch(uint64_t epoch) const {
    Committee c = *this;
    c.epoch_ = epoch;
    return c;
  }
  size_t size() const { return keys_.size(); }
  // f = floor((n - 1) / 3) faults tolerated; a quorum is n - f (2f + 1 when n = 3f + 1).
  size_t faults() const { return (keys_.size() - 1) / 3; }
  size_t quorum() const { return keys_.size() - faults(); }
  const crypto::bls::ProvenPublicKey& key(size_t i) const { return keys_[i]; }
  std::optional<size_t> IndexOf(const KeyBytes& k) const;

 private:
  uint64_t epoch_ = 0;
  std::vector<crypto::bls::ProvenPublicKey> keys_;
};

// A vote's signature; Corruption when it does not verify, InvalidArgument for an authority
// index outside the committee or another epoch.
core::Status VerifyVote(const Vote& v, const Committee& c, const crypto::Hash& network_id,
                        crypto::bls::GroupVerifier* verifier = nullptr);

struct Certificate {
  SignedOrder order;
  uint64_t epoch = 0;         // the committee epoch whose quorum signed
  std::vector<bool> signers;  // one per committee member
  SigBytes aggregate{};
};
// Aggregates distinct, already verified votes for `order` into a certificate; InvalidArgument
// when they are fewer than the quorum, repeat an authority or are for another order.
core::Result<Certificate> MakeCertificate(const SignedOrder& order, const std::vector<Vote>& votes,
                                          const Committee& c);
// Wire: u32 order length ‖ signed order wire ‖ u64 epoch ‖ u16 n ‖ bitmap (ceil(n/8) bytes,
// bit i of byte i/8 from the least significant; unused bits zero) ‖ aggregate (96).
std::string EncodeCertificate(const Certificate& c, const crypto::Hash& network_id);
core::Result<Certificate> DecodeCertificate(std::string_view wire, const crypto::Hash& network_id);
// The order's signature and the quorum's aggregate (fast-aggregate-verify over the signers'
// proven keys). InvalidArgument: another epoch or committee size, too few signers;
// Corruption: a signature that does not verify. `order_signature_checked`: the caller has
// verified exactly this signed order (same hash, same signature bytes) before, and only the
// aggregate is checked.
core::Status VerifyCertificate(const Certificate& cert, const Committee& c,
                               const crypto::Hash& network_id,
                               crypto::bls::GroupVerifier* verifier = nullptr,
                               bool order_signature_checked = false);

}  // namespace dfrp::ledger
