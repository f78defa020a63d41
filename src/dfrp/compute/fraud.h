// Certified fraud: what lowers a provider's trust across the mesh (issue 16, item 5;
// docs/COMPUTE.md "A caught provider, across the mesh").
//
// When a verifier's re-run of a paid job gives another result root than the provider's signed
// claim, the client disputes the job's escrow with the fraud proof (the provider's claim ‖ the
// verifier's claim) and the committee certifies the refund (ledger/escrow.h, "Compute
// escrows"). That certificate is the fraud record: anyone who knows the committee can check
// it alone, with no authority to ask. Its quorum signature says that the authorities checked
// the escrow named that provider and that verifier for that job; the two claims inside are
// each signed by their maker. A node cannot frame a provider (it would need a quorum's
// signature) and a caught provider cannot deny it.
//
// Thread-safety: the functions are pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "dfrp/core/status.h"
#include "dfrp/crypto/sha256.h"
#include "dfrp/ledger/escrow.h"
#include "dfrp/ledger/messages.h"

namespace dfrp::compute {

// A certificate of a refund on a fraud proof is about 800 bytes; anything over this is refused
// unread.
inline constexpr size_t kMaxFraudCertificateBytes = 4096;

struct FraudRecord {
  crypto::Hash id{};  // SHA-256 of the certificate's wire: one record per certificate
  crypto::Hash escrow_id{}, job_id{};
  ledger::KeyBytes provider{}, verifier{};
  crypto::Hash claimed_root{}, recomputed_root{};
  uint32_t claimed_ranks = 0, recomputed_ranks = 0;
  uint64_t epoch = 0;       // the committee epoch that certified the refund
  std::string certificate;  // the settle certificate's wire
};

// Checks `wire`, a settle certificate (ledger::EncodeSettleCertificate), as a fraud record:
// a job_refund of period 0 whose proof is two claims for one job, by two keys, that disagree
// (result root or rank count), each claim's signature valid, and the certificate signed by a
// quorum of `committee` (its members; the certificate's epoch is taken). InvalidArgument names
// what is malformed or not a fraud refund; Corruption for a signature that does not verify.
core::Result<FraudRecord> CheckFraudCertificate(std::string_view wire,
                                                const ledger::Committee& committee,
                                                const crypto::Hash& network_id);

// {"id", "provider" (address), "verifier" (address), "job_id", "escrow_id", "claimed_root",
//  "recomputed_root", "claimed_ranks", "recomputed_ranks", "epoch", "certificate" (hex)}.
nlohmann::json FraudRecordJson(const FraudRecord& r);

}  // namespace dfrp::compute
