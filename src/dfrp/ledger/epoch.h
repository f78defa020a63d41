// The epoch change (docs/PROTOCOL.md, "Epoch change"): the one agreement among the
// authorities, off the payment path. Any member seals the closing epoch (a signed seal: every
// authority stops voting for orders and settlements in it); the authorities pull each other's
// logs until they hold the same certificates; a leader proposes the next epoch with a
// checkpoint of that state; each authority votes for the proposal only when the checkpoint is
// its own state and it is sealed, and from its vote on applies nothing more of the closing
// epoch; a quorum of votes is the epoch certificate. Applying it moves the authority to the
// next epoch and clears every lock of the closing one: an account frozen by an equivocation
// signs again at its next sequence number (orders carry their epoch, so neither locked order
// can be certified any more), and a period whose votes split is refunded by the usual refund,
// which every authority now votes for once the grace has passed.
//
// A certificate of the closing epoch that is not in the checkpoint is void after the change
// (its sender signs again): a certificate a client saw applied by a quorum is always in it,
// since a quorum applied it and a quorum of the same state voted for the checkpoint.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "dfrp/core/status.h"
#include "dfrp/ledger/messages.h"

namespace dfrp::ledger {

inline constexpr std::string_view kSealTag = "DFRP-SEAL-V1";
inline constexpr std::string_view kEpochTag = "DFRP-EPOCH-V1";
inline constexpr std::string_view kCheckpointTag = "DFRP-CHECKPOINT-V1";
inline constexpr size_t kEpochProposalWireBytes = 1 + 13 + 2 + 32 + 8 + 8 + 32 + 4 + 8 + 8 + 32;

// What a seal signs (as a vote): SHA-256(SignedPrefix(kSealTag, network_id, epoch)). A seal is
// a Vote (wire as EncodeVote) by any committee member for this hash.
crypto::Hash SealItemHash(uint64_t epoch, const crypto::Hash& network_id);

// An authority's state at the end of an epoch.
struct Checkpoint {
  uint64_t certificates = 0;  // certificates applied
  uint64_t settlements = 0;   // settlement certificates applied
  crypto::Hash state{};       // the state digest (docs/PROTOCOL.md, "Epoch change")
  bool operator==(const Checkpoint&) const = default;
};

// The committee's digest: SHA-256 of its members' keys in order.
crypto::Hash CommitteeDigest(const Committee& c);

struct EpochProposal {
  uint64_t epoch = 0;        // the epoch that closes (in the signed prefix)
  uint64_t next_epoch = 0;   // epoch + 1
  crypto::Hash committee{};  // the next epoch's committee (CommitteeDigest)
  uint32_t policy_version = 0;
  Checkpoint checkpoint;
  crypto::Hash hash{};  // SHA-256 of EpochProposalBytes: what authorities vote for
};
// SignedPrefix(kEpochTag, network_id, epoch) ‖ u64 next epoch ‖ committee digest (32) ‖
// u32 policy version ‖ u64 certificates ‖ u64 settlements ‖ state digest (32).
std::string EpochProposalBytes(const EpochProposal& p, const crypto::Hash& network_id);
EpochProposal MakeEpochProposal(uint64_t epoch, const Committee& next, uint32_t policy_version,
                                const Checkpoint& cp, const crypto::Hash& network_id);
// InvalidArgument naming the field: truncated, trailing bytes, another tag or network, a next
// epoch that is not epoch + 1.
core::Result<EpochProposal> DecodeEpochProposal(std::string_view wire,
                                                const crypto::Hash& network_id);

struct EpochCertificate {
  EpochProposal proposal;
  uint64_t epoch = 0;  // the closing epoch, whose quorum signed
  std::vector<bool> signers;
  SigBytes aggregate{};
};
core::Result<EpochCertificate> MakeEpochCertificate(const EpochProposal& p,
                                                    const std::vector<Vote>& votes,
                                                    const Committee& c);
// u32 proposal length ‖ proposal ‖ u64 epoch ‖ u16 n ‖ bitmap ‖ aggregate (96).
std::string EncodeEpochCertificate(const EpochCertificate& c, const crypto::Hash& network_id);
core::Result<EpochCertificate> DecodeEpochCertificate(std::string_view wire,
                                                      const crypto::Hash& network_id);
// A quorum of the closing epoch's committee (`c`, at that epoch) signed the proposal.
core::Status VerifyEpochCertificate(const EpochCertificate& cert, const Committee& c,
                                    const crypto::Hash& network_id);

}  // namespace dfrp::ledger
