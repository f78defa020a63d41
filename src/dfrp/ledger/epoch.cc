#include "dfrp/ledger/epoch.h"

#include <fmt/format.h>

#include "dfrp/ledger/wire.h"

namespace dfrp::ledger {

using core::Err;
using core::Result;
using core::Status;
using wire::PutArray;
using wire::PutBe;
using wire::Reader;

crypto::Hash SealItemHash(uint64_t epoch, const crypto::Hash& network_id) {
  return crypto::Sha256Of(SignedPrefix(kSealTag, network_id, epoch));
}

crypto::Hash CommitteeDigest(const Committee& c) {
  std::string bytes;
  for (size_t i = 0; i < c.size(); ++i) PutArray(&bytes, c.key(i).key().bytes());
  return crypto::Sha256Of(bytes);
}

std::string EpochProposalBytes(const EpochProposal& p, const crypto::Hash& network_id) {
  std::string out = SignedPrefix(kEpochTag, network_id, p.epoch);
  PutBe(&out, p.next_epoch, 8);
  PutArray(&out, p.committee);
  PutBe(&out, p.policy_version, 4);
  PutBe(&out, p.checkpoint.certificates, 8);
  PutBe(&out, p.checkpoint.settlements, 8);
  PutArray(&out, p.checkpoint.state);
  return out;
}

EpochProposal MakeEpochProposal(uint64_t epoch, const Committee& next, uint32_t policy_version,
                                const Checkpoint& cp, const crypto::Hash& network_id) {
  EpochProposal p;
  p.epoch = epoch;
  p.next_epoch = epoch + 1;
  p.committee = CommitteeDigest(next);
  p.policy_version = policy_version;
  p.checkpoint = cp;
  p.hash = crypto::Sha256Of(EpochProposalBytes(p, network_id));
  return p;
}

Result<EpochProposal> DecodeEpochProposal(std::string_view w, const crypto::Hash& network_id) {
  if (w.size() > kEpochProposalWireBytes)
    return Err(Status::InvalidArgument(
        fmt::format("epoch proposal: {} bytes, more than {}", w.size(), kEpochProposalWireBytes)));
  Reader r(w, "epoch proposal");
  EpochProposal p;
  DFRP_ASSIGN_OR_RETURN(p.epoch, wire::ReadPrefix(r, kEpochTag, network_id));
  uint64_t v = 0;
  DFRP_RETURN_IF_ERROR(r.Be(&p.next_epoch, 8, "next epoch"));
  if (p.epoch == UINT64_MAX || p.next_epoch != p.epoch + 1)
    return Err(
        r.Bad("next epoch", fmt::format("{} does not follow epoch {}", p.next_epoch, p.epoch)));
  DFRP_RETURN_IF_ERROR(r.Array(&p.committee, "committee digest"));
  DFRP_RETURN_IF_ERROR(r.Be(&v, 4, "policy version"));
  p.policy_version = static_cast<uint32_t>(v);
  DFRP_RETURN_IF_ERROR(r.Be(&p.checkpoint.certificates, 8, "certificates"));
  DFRP_RETURN_IF_ERROR(r.Be(&p.checkpoint.settlements, 8, "settlements"));
  DFRP_RETURN_IF_ERROR(r.Array(&p.checkpoint.state, "state digest"));
  DFRP_RETURN_IF_ERROR(r.End());
  p.hash = crypto::Sha256Of(w);
  return p;
}

Result<EpochCertificate> MakeEpochCertificate(const EpochProposal& p,
                                              const std::vector<Vote>& votes, const Committee& c) {
  if (c.epoch() != p.epoch)
    return Err(Status::InvalidArgument(fmt::format(
        "epoch certificate: the proposal closes epoch {}, the committee given is of epoch {}",
        p.epoch, c.epoch())));
  DFRP_ASSIGN_OR_RETURN(wire::Quorum q, wire::AggregateVotes(p.hash, votes, c, c.quorum()));
  EpochCertificate cert;
  cert.proposal = p;
  wire::TakeQuorum(&cert, std::move(q));
  return cert;
}

std::string EncodeEpochCertificate(const EpochCertificate& c, const crypto::Hash& network_id) {
  const std::string body = EpochProposalBytes(c.proposal, network_id);
  std::string out;
  PutBe(&out, body.size(), 4);
  out += body;
  wire::PutQuorum(&out, {c.epoch, c.signers, c.aggregate});
  return out;
}

Result<EpochCertificate> DecodeEpochCertificate(std::string_view w,
                                                const crypto::Hash& network_id) {
  DFRP_ASSIGN_OR_RETURN(
      auto parts,
      wire::ReadCertified(w, kEpochProposalWireBytes + 512, "epoch certificate", "proposal",
                          [&](std::string_view b) { return DecodeEpochProposal(b, network_id); }));
  EpochCertificate c;
  c.proposal = std::move(parts.first);
  wire::TakeQuorum(&c, std::move(parts.second));
  return c;
}

Status VerifyEpochCertificate(const EpochCertificate& c, const Committee& committee,
                              const crypto::Hash& network_id) {
  if (c.proposal.epoch != c.epoch)
    return Status::InvalidArgument(
        fmt::format("epoch certificate: the proposal closes epoch {}, its signers' is {}",
                    c.proposal.epoch, c.epoch));
  if (crypto::Sha256Of(EpochProposalBytes(c.proposal, network_id)) != c.proposal.hash)
    return Status::InvalidArgument("epoch certificate: the hash is not the proposal's");
  return wire::VerifyQuorum(
      {c.epoch, c.signers, c.aggregate}, c.proposal.hash, committee, network_id,
      fmt::format("epoch certificate (epoch {} to {})", c.proposal.epoch, c.proposal.next_epoch),
      false, nullptr);
}

}  // namespace dfrp::ledger
