#include "dfrp/compute/job.h"

#include <fmt/format.h>

#include <bit>
#include <cmath>

#include "dfrp/core/bytes.h"
#include "dfrp/crypto/sha256.h"
#include "dfrp/ledger/wire.h"

namespace dfrp::compute {

namespace bls = crypto::bls;
using core::Err;
using core::Result;
using core::Status;
using ledger::wire::PutArray;
using ledger::wire::PutBe;
using ledger::wire::Reader;

namespace {

bool AppNameOk(std::string_view a) {
  if (a.empty() || a.size() > kMaxAppName) return false;
  for (char c : a) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return a[0] != '.' && a[0] != '-';
}

// The checks a job must pass to be signed, encoded or decoded.
Status CheckFields(const JobContext& j) {
  if (!AppNameOk(j.app))
    return Status::InvalidArgument(
        fmt::format("job: app name '{}' is not 1..{} bytes of [a-z0-9._-] (not starting with . "
                    "or -)",
                    j.app.substr(0, 80), kMaxAppName));
  if (j.args.size() > kMaxArgs)
    return Status::InvalidArgument(
        fmt::format("job: {} arguments, more than {}", j.args.size(), kMaxArgs));
  for (const auto& a : j.args) {
    if (a.size() > kMaxArgBytes)
      return Status::InvalidArgument(
          fmt::format("job: an argument of {} bytes, more than {}", a.size(), kMaxArgBytes));
    if (a.find('\0') != std::string::npos)
      return Status::InvalidArgument("job: an argument holds a NUL byte");
  }
  if (j.inputs.size() > kMaxInputs)
    return Status::InvalidArgument(
        fmt::format("job: {} inputs, more than {}", j.inputs.size(), kMaxInputs));
  for (const auto& in : j.inputs)
    if (in.leaf_size == 0)
      return Status::InvalidArgument(
          fmt::format("job: input {} has leaf size 0", in.shard_id.ToString()));
  if (j.ranks == 0 || j.ranks > kMaxRanks)
    return Status::InvalidArgument(
        fmt::format("job: {} ranks; a job runs on 1..{}", j.ranks, kMaxRanks));
  if (j.limits.cpu_seconds == 0)
    return Status::InvalidArgument("job: the CPU-seconds limit is 0; give one of at least 1");
  if (j.limits.memory_bytes == 0)
    return Status::InvalidArgument("job: the memory limit is 0; give one");
  if (j.limits.wall_seconds == 0 || j.limits.wall_seconds > kMaxWallSeconds)
    return Status::InvalidArgument(fmt::format("job: a wall-time limit of {} s; it must be 1..{}",
                                               j.limits.wall_seconds, kMaxWallSeconds));
  if (j.max_fee == 0) return Status::InvalidArgument("job: max_fee is 0; a job pays something");
  if (j.vector.size() > kMaxJobDim)
    return Status::InvalidArgument(
        fmt::format("job: a vector of {} dimensions, more than {}", j.vector.size(), kMaxJobDim));
  for (float f : j.vector)
    if (!std::isfinite(f)) return Status::InvalidArgument("job: a vector component is not finite");
  return Status::OK();
}

void PutBody(std::string* out, const JobContext& j) {
  PutArray(out, j.client);
  PutBe(out, j.nonce, 8);
  PutBe(out, j.expiry_unix, 8);
  PutBe(out, j.app.size(), 1);
  out->append(j.app);
  PutBe(out, j.args.size(), 1);
  for (const auto& a : j.args) {
    PutBe(out, a.size(), 2);
    out->append(a);
  }
  PutBe(out, j.inputs.size(), 2);
  for (const auto& in : j.inputs) {
    out->append(in.shard_id.AsBytes());
    PutArray(out, in.root);
    PutBe(out, in.size, 8);
    PutBe(out, in.leaf_size, 4);
  }
  PutBe(out, j.ranks, 4);
  PutBe(out, j.limits.cpu_seconds, 8);
  PutBe(out, j.limits.gpu_seconds, 8);
  PutBe(out, j.limits.memory_bytes, 8);
  PutBe(out, j.limits.wall_seconds, 8);
  PutBe(out, j.max_fee, 8);
  PutBe(out, j.vector.size(), 2);
  for (float f : j.vector) PutBe(out, std::bit_cast<uint32_t>(f), 4);
}

Status ReadBody(Reader& rd, JobContext* j) {
  uint64_t v = 0;
  DFRP_RETURN_IF_ERROR(rd.Array(&j->client, "client"));
  DFRP_RETURN_IF_ERROR(ledger::wire::CheckKey(j->client, rd, "client"));
  DFRP_RETURN_IF_ERROR(rd.Be(&j->nonce, 8, "nonce"));
  DFRP_RETURN_IF_ERROR(rd.Be(&j->expiry_unix, 8, "expiry"));
  DFRP_RETURN_IF_ERROR(rd.Be(&v, 1, "app length"));
  std::string_view s;
  DFRP_RETURN_IF_ERROR(rd.Bytes(v, &s, "app"));
  j->app = std::string(s);
  uint64_t argc = 0;
  DFRP_RETURN_IF_ERROR(rd.Be(&argc, 1, "argument count"));
  if (argc > kMaxArgs)
    return rd.Bad("argument count", fmt::format("{} is over {}", argc, kMaxArgs));
  j->args.resize(argc);
  for (auto& a : j->args) {
    DFRP_RETURN_IF_ERROR(rd.Be(&v, 2, "argument length"));
    if (v > kMaxArgBytes)
      return rd.Bad("argument length", fmt::format("{} is over {}", v, kMaxArgBytes));
    DFRP_RETURN_IF_ERROR(rd.Bytes(v, &s, "argument"));
    a = std::string(s);
  }
  uint64_t n = 0;
  DFRP_RETURN_IF_ERROR(rd.Be(&n, 2, "input count"));
  if (n > kMaxInputs) return rd.Bad("input count", fmt::format("{} is over {}", n, kMaxInputs));
  j->inputs.resize(n);
  for (auto& in : j->inputs) {
    DFRP_RETURN_IF_ERROR(rd.Bytes(16, &s, "input shard id"));
    in.shard_id = core::Uuid::FromBytes(s);
    DFRP_RETURN_IF_ERROR(rd.Array(&in.root, "input root"));
    DFRP_RETURN_IF_ERROR(rd.Be(&in.size, 8, "input size"));
    DFRP_RETURN_IF_ERROR(rd.Be(&v, 4, "input leaf size"));
    in.leaf_size = static_cast<uint32_t>(v);
  }
  DFRP_RETURN_IF_ERROR(rd.Be(&v, 4, "ranks"));
  j->ranks = static_cast<uint32_t>(v);
  DFRP_RETURN_IF_ERROR(rd.Be(&j->limits.cpu_seconds, 8, "cpu seconds"));
  DFRP_RETURN_IF_ERROR(rd.Be(&j->limits.gpu_seconds, 8, "gpu seconds"));
  DFRP_RETURN_IF_ERROR(rd.Be(&j->limits.memory_bytes, 8, "memory"));
  DFRP_RETURN_IF_ERROR(rd.Be(&j->limits.wall_seconds, 8, "wall seconds"));
  DFRP_RETURN_IF_ERROR(rd.Be(&j->max_fee, 8, "max fee"));
  uint64_t dim = 0;
  DFRP_RETURN_IF_ERROR(rd.Be(&dim, 2, "dimensions"));
  if (dim > kMaxJobDim) return rd.Bad("dimensions", fmt::format("{} is over {}", dim, kMaxJobDim));
  j->vector.resize(dim);
  for (auto& f : j->vector) {
    DFRP_RETURN_IF_ERROR(rd.Be(&v, 4, "vector"));
    f = std::bit_cast<float>(static_cast<uint32_t>(v));
  }
  return Status::OK();
}

}  // namespace

std::string JobSigningBytes(const JobContext& j, const crypto::Hash& network_id) {
  std::string out = ledger::SignedPrefix(kJobTag, network_id, 0);
  PutBody(&out, j);
  return out;
}

crypto::Hash JobId(const JobContext& j, const crypto::Hash& network_id) {
  return crypto::Sha256Of(JobSigningBytes(j, network_id));
}

Status SignJob(JobContext* j, const bls::SecretKey& client_key, const crypto::Hash& network_id) {
  DFRP_RETURN_IF_ERROR(CheckFields(*j));
  if (client_key.GetPublicKey().bytes() != j->client)
    return Status::InvalidArgument("job: the signing key is not the client's wallet key");
  const std::string bytes = JobSigningBytes(*j, network_id);
  if (bytes.size() + bls::kSignatureSize > kMaxJobBytes)
    return Status::InvalidArgument(fmt::format("job: {} bytes, more than {}",
                                               bytes.size() + bls::kSignatureSize, kMaxJobBytes));
  j->signature = client_key.Sign(core::AsBytes(bytes)).bytes();
  return Status::OK();
}

std::string EncodeJob(const JobContext& j, const crypto::Hash& network_id) {
  std::string out = JobSigningBytes(j, network_id);
  PutArray(&out, j.signature);
  return out;
}

Result<JobContext> DecodeJob(std::string_view wire, const crypto::Hash& network_id) {
  if (wire.size() > kMaxJobBytes)
    return Err(Status::InvalidArgument(
        fmt::format("job: {} bytes, more than {}", wire.size(), kMaxJobBytes)));
  Reader rd(wire, "job");
  DFRP_ASSIGN_OR_RETURN(uint64_t epoch, ledger::wire::ReadPrefix(rd, kJobTag, network_id));
  if (epoch != 0) return Err(rd.Bad("epoch", "a job carries epoch 0"));
  JobContext j;
  DFRP_RETURN_IF_ERROR(ReadBody(rd, &j));
  DFRP_RETURN_IF_ERROR(rd.Array(&j.signature, "signature"));
  DFRP_RETURN_IF_ERROR(ledger::wire::CheckSig(j.signature, rd, "signature"));
  DFRP_RETURN_IF_ERROR(rd.End());
  DFRP_RETURN_IF_ERROR(CheckFields(j));
  return j;
}

Status VerifyJob(const JobContext& j, const crypto::Hash& network_id) {
  DFRP_ASSIGN_OR_RETURN(auto key, ledger::KeyFrom(j.client));
  DFRP_ASSIGN_OR_RETURN(auto sig, ledger::SigFrom(j.signature));
  if (!bls::Verify(key, core::AsBytes(JobSigningBytes(j, network_id)), sig).ok())
    return Status::Corruption(
        fmt::format("job {}: the client's signature does not verify (altered, or signed for "
                    "another network)",
                    core::ToHex(JobId(j, network_id))));
  return Status::OK();
}

// --- Result sets.

crypto::Hash ResultLeaf(const RankOutput& o) {
  std::string b;
  PutBe(&b, o.rank, 4);
  PutArray(&b, o.root);
  PutBe(&b, o.size, 8);
  return crypto::LeafHash(b);
}

Result<crypto::Hash> ResultRoot(const std::vector<RankOutput>& outputs) {
  if (outputs.empty()) return Err(Status::InvalidArgument("result set: no rank outputs"));
  std::vector<crypto::Hash> leaves;
  leaves.reserve(outputs.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (outputs[i].rank != i)
      return Err(Status::InvalidArgument(
          fmt::format("result set: output {} is for rank {}", i, outputs[i].rank)));
    leaves.push_back(ResultLeaf(outputs[i]));
  }
  return crypto::RootFromLeafHashes(leaves);
}

crypto::InclusionProof ResultProof(const std::vector<RankOutput>& outputs, uint32_t rank) {
  std::vector<crypto::Hash> leaves;
  leaves.reserve(outputs.size());
  for (const auto& o : outputs) leaves.push_back(ResultLeaf(o));
  return crypto::ProofFromLeafHashes(leaves, rank);
}

bool VerifyRankOutput(const RankOutput& o, uint32_t ranks, const crypto::InclusionProof& proof,
                      const crypto::Hash& result_root) {
  if (o.rank >= ranks || proof.leaf_index != o.rank || proof.tree_size != ranks) return false;
  return crypto::VerifyInclusion(ResultLeaf(o), o.rank, ranks, proof.path, result_root);
}

}  // namespace dfrp::compute
