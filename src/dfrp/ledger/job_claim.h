// The claim a compute provider signs for a job's result set (docs/PROTOCOL.md, "Compute"):
// (job id, provider, result root, ranks, measured usage). It lives in the ledger because a
// compute escrow is released on the provider's claim and refunded on a fraud proof made of two
// conflicting claims (ledger/escrow.h, "Compute escrows"); compute/job.h builds result sets.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "dfrp/core/status.h"
#include "dfrp/crypto/bls.h"
#include "dfrp/crypto/sha256.h"
#include "dfrp/ledger/messages.h"

namespace dfrp::ledger {

inline constexpr std::string_view kResultTag = "DFRP-RESULT-V1";
inline constexpr uint32_t kMaxJobRanks = 1024;

// What a run measured (from the rusage of mpirun and all it reaped, or the job's cgroup).
struct JobUsage {
  uint64_t cpu_ms = 0;         // user + system, every process of the job
  uint64_t wall_ms = 0;        // from start to the last rank's exit
  uint64_t max_rss_bytes = 0;  // the largest process
  bool operator==(const JobUsage&) const = default;
};

struct ResultClaim {
  crypto::Hash job_id{};
  KeyBytes provider{};
  crypto::Hash result_root{};
  uint32_t ranks = 0;
  JobUsage usage;
  SigBytes signature{};
};
// SignedPrefix(kResultTag, network_id, 0) ‖ job id (32) ‖ provider (48) ‖ result root (32) ‖
// u32 ranks ‖ u64 cpu ms ‖ u64 wall ms ‖ u64 max rss. On the wire: these ‖ signature (96).
inline constexpr size_t kClaimWireBytes =
    1 + kResultTag.size() + 2 + 32 + 8 + 32 + 48 + 32 + 4 + 24 + crypto::bls::kSignatureSize;
std::string ClaimSigningBytes(const ResultClaim& c, const crypto::Hash& network_id);
void SignClaim(ResultClaim* c, const crypto::bls::SecretKey& provider_key,
               const crypto::Hash& network_id);
std::string EncodeClaim(const ResultClaim& c, const crypto::Hash& network_id);
core::Result<ResultClaim> DecodeClaim(std::string_view wire, const crypto::Hash& network_id);
// Corruption when the provider's signature does not verify.
core::Status VerifyClaim(const ResultClaim& c, const crypto::Hash& network_id);

}  // namespace dfrp::ledger
