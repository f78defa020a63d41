#include "dfrp/compute/fraud.h"

#include <fmt/format.h>

#include "dfrp/core/bytes.h"
#include "dfrp/ledger/job_claim.h"

namespace dfrp::compute {

using core::Err;
using core::Result;
using core::Status;
using nlohmann::json;

Result<FraudRecord> CheckFraudCertificate(std::string_view wire, const ledger::Committee& committee,
                                          const crypto::Hash& network_id) {
  if (wire.size() > kMaxFraudCertificateBytes)
    return Err(Status::InvalidArgument(
        fmt::format("fraud record: {} bytes; a fraud refund's certificate takes at most {}",
                    wire.size(), kMaxFraudCertificateBytes)));
  auto cert = ledger::DecodeSettleCertificate(wire, network_id);
  if (!cert) return Err(Status::InvalidArgument("fraud record: " + cert.error().message()));
  const ledger::Settlement& s = cert->settlement;
  if (s.kind != ledger::SettleKind::kJobRefund || s.period != 0)
    return Err(Status::InvalidArgument(
        fmt::format("fraud record: the certificate settles period {} as {}, not a compute "
                    "escrow's refund on a fraud proof",
                    s.period, ledger::SettleKindName(s.kind))));
  if (s.proof.size() != 2 * ledger::kClaimWireBytes)
    return Err(Status::InvalidArgument(fmt::format(
        "fraud record: the refund's proof is {} bytes, not two claims ({}): a refund for a "
        "missing claim proves no fraud",
        s.proof.size(), 2 * ledger::kClaimWireBytes)));
  auto claimed =
      ledger::DecodeClaim(std::string_view(s.proof).substr(0, ledger::kClaimWireBytes), network_id);
  if (!claimed)
    return Err(Status::InvalidArgument("fraud record: the provider's claim: " +
                                       claimed.error().message()));
  auto rerun =
      ledger::DecodeClaim(std::string_view(s.proof).substr(ledger::kClaimWireBytes), network_id);
  if (!rerun)
    return Err(
        Status::InvalidArgument("fraud record: the verifier's claim: " + rerun.error().message()));
  if (claimed->job_id != rerun->job_id)
    return Err(Status::InvalidArgument("fraud record: the two claims are for different jobs"));
  if (claimed->provider == rerun->provider)
    return Err(Status::InvalidArgument("fraud record: both claims are by one key"));
  if (claimed->result_root == rerun->result_root && claimed->ranks == rerun->ranks)
    return Err(Status::InvalidArgument("fraud record: the two claims agree"));
  DFRP_RETURN_IF_ERROR(
      ledger::VerifyClaim(*claimed, network_id).WithContext("fraud record: the provider's claim"));
  DFRP_RETURN_IF_ERROR(
      ledger::VerifyClaim(*rerun, network_id).WithContext("fraud record: the verifier's claim"));
  DFRP_RETURN_IF_ERROR(
      ledger::VerifySettleCertificate(*cert, committee.AtEpoch(cert->epoch), network_id)
          .WithContext("fraud record: the committee's certificate"));
  FraudRecord r;
  r.id = crypto::Sha256Of(wire);
  r.escrow_id = s.escrow_id;
  r.job_id = claimed->job_id;
  r.provider = claimed->provider;
  r.verifier = rerun->provider;
  r.claimed_root = claimed->result_root;
  r.recomputed_root = rerun->result_root;
  r.claimed_ranks = claimed->ranks;
  r.recomputed_ranks = rerun->ranks;
  r.epoch = cert->epoch;
  r.certificate = std::string(wire);
  return r;
}

json FraudRecordJson(const FraudRecord& r) {
  return json{{"id", core::ToHex(r.id)},
              {"provider", ledger::AddressOfKey(r.provider)},
              {"verifier", ledger::AddressOfKey(r.verifier)},
              {"job_id", core::ToHex(r.job_id)},
              {"escrow_id", core::ToHex(r.escrow_id)},
              {"claimed_root", core::ToHex(r.claimed_root)},
              {"recomputed_root", core::ToHex(r.recomputed_root)},
              {"claimed_ranks", r.claimed_ranks},
              {"recomputed_ranks", r.recomputed_ranks},
              {"epoch", r.epoch},
              {"certificate", core::ToHex(r.certificate)}};
}

}  // namespace dfrp::compute
