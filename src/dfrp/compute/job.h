// A compute job (docs/PROTOCOL.md, "Compute": compute_context) and the result set a provider
// commits to for it.
//
// A job names an app of the provider's catalog, its arguments, its inputs (shards, by id,
// Merkle root and size, so whoever fetches them can verify them), how many MPI ranks it runs
// on, its limits, the most its client pays (max_fee), a vector for routing, a nonce and an
// expiry; the client's wallet key signs all of it. Its id is the SHA-256 of the signed bytes,
// so two different jobs never share an id and nobody but the client can make one.
//
// A result set: each rank's output is a shard (its Merkle root and size, leaf size 4096); the
// result root is a Merkle tree over the leaves (u32 rank ‖ shard root ‖ u64 size), so anyone
// can check one rank's output against the root with an inclusion proof. The provider signs
// (job id, result root, ranks, measured usage) as its claim.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dfrp/core/status.h"
#include "dfrp/core/uuid.h"
#include "dfrp/crypto/bls.h"
#include "dfrp/crypto/merkle.h"
#include "dfrp/ledger/job_claim.h"
#include "dfrp/ledger/messages.h"

namespace dfrp::compute {

inline constexpr std::string_view kJobTag = "DFRP-JOB-V1";
inline constexpr size_t kMaxJobBytes = 64 * 1024;
inline constexpr size_t kMaxAppName = 64;
inline constexpr size_t kMaxArgs = 64;
inline constexpr size_t kMaxArgBytes = 1024;
inline constexpr size_t kMaxInputs = 256;
inline constexpr uint32_t kMaxJobDim = 1024;
inline constexpr uint32_t kMaxRanks = ledger::kMaxJobRanks;
inline constexpr uint64_t kMaxWallSeconds = 7 * 24 * 3600;
// Rank outputs are hashed as shards are: leaves of 4096 bytes (DESIGN.md).
inline constexpr uint32_t kResultLeafSize = 4096;

struct JobInput {
  core::Uuid shard_id;
  crypto::Hash root{};
  uint64_t size = 0;
  uint32_t leaf_size = 0;
  bool operator==(const JobInput&) const = default;
};

struct JobLimits {
  uint64_t cpu_seconds = 0;   // per rank (RLIMIT_CPU), > 0
  uint64_t gpu_seconds = 0;   // 0: the job uses no GPU
  uint64_t memory_bytes = 0;  // per rank, > 0
  uint64_t wall_seconds = 0;  // the whole job, 1 .. kMaxWallSeconds
  bool operator==(const JobLimits&) const = default;
};

struct JobContext {
  ledger::KeyBytes client{};  // the wallet that pays and signs
  uint64_t nonce = 0;
  uint64_t expiry_unix = 0;  // seconds: no provider starts it later
  std::string app;           // a catalog name: [a-z0-9._-], 1 .. kMaxAppName bytes
  std::vector<std::string> args;
  std::vector<JobInput> inputs;
  uint32_t ranks = 0;  // 1 .. kMaxRanks
  JobLimits limits;
  uint64_t max_fee = 0;       // base units, > 0: the most the client pays for the whole job
  std::vector<float> vector;  // routing vector, finite components
  ledger::SigBytes signature{};
};

// SignedPrefix(kJobTag, network_id, 0) ‖ client (48) ‖ u64 nonce ‖ u64 expiry ‖ u8 app length ‖
// app ‖ u8 argc ‖ argc × (u16 length ‖ arg) ‖ u16 n ‖ n × (shard id 16 ‖ root 32 ‖ u64 size ‖
// u32 leaf size) ‖ u32 ranks ‖ u64 cpu s ‖ u64 gpu s ‖ u64 memory ‖ u64 wall s ‖ u64 max fee ‖
// u16 dim ‖ dim × f32 (IEEE-754 bits). All integers big-endian.
std::string JobSigningBytes(const JobContext& j, const crypto::Hash& network_id);
// SHA-256 of the signing bytes.
crypto::Hash JobId(const JobContext& j, const crypto::Hash& network_id);
// InvalidArgument naming the field when the job would not decode; otherwise fills in the
// signature. The key must be the client's.
core::Status SignJob(JobContext* j, const crypto::bls::SecretKey& client_key,
                     const crypto::Hash& network_id);
// Signing bytes ‖ signature (96).
std::string EncodeJob(const JobContext& j, const crypto::Hash& network_id);
// Bounds and layout (InvalidArgument naming the field), and the network (InvalidArgument when
// the job is for another network). Does not check the signature.
core::Result<JobContext> DecodeJob(std::string_view wire, const crypto::Hash& network_id);
// The client's signature: Corruption when it does not verify.
core::Status VerifyJob(const JobContext& j, const crypto::Hash& network_id);

// --- Result sets.

struct RankOutput {
  uint32_t rank = 0;
  crypto::Hash root{};  // MerkleRoot(output, kResultLeafSize)
  uint64_t size = 0;
  bool operator==(const RankOutput&) const = default;
};
// LeafHash(u32 rank ‖ root ‖ u64 size): a leaf of the result tree.
crypto::Hash ResultLeaf(const RankOutput& o);
// The root over the leaves of ranks 0 .. n-1 in order; InvalidArgument when outputs[i].rank
// is not i or there are none.
core::Result<crypto::Hash> ResultRoot(const std::vector<RankOutput>& outputs);
crypto::InclusionProof ResultProof(const std::vector<RankOutput>& outputs, uint32_t rank);
bool VerifyRankOutput(const RankOutput& o, uint32_t ranks, const crypto::InclusionProof& proof,
                      const crypto::Hash& result_root);

// The claim a provider signs for a job's result set lives in the ledger (ledger/job_claim.h),
// which checks claims when a compute escrow is settled; these names are the same types.
using ledger::ClaimSigningBytes;
using ledger::DecodeClaim;
using ledger::EncodeClaim;
using ledger::JobUsage;
using ledger::kClaimWireBytes;
using ledger::kResultTag;
using ledger::ResultClaim;
using ledger::SignClaim;
using ledger::VerifyClaim;

}  // namespace dfrp::compute
