#include "dfrp/ledger/job_claim.h"

#include <fmt/format.h>

#include "dfrp/core/bytes.h"
#include "dfrp/ledger/wire.h"

namespace dfrp::ledger {

namespace bls = crypto::bls;
using core::Err;
using core::Result;
using core::Status;
using wire::PutArray;
using wire::PutBe;
using wire::Reader;

// --- Claims.

std::string ClaimSigningBytes(const ResultClaim& c, const crypto::Hash& network_id) {
  std::string out = SignedPrefix(kResultTag, network_id, 0);
  PutArray(&out, c.job_id);
  PutArray(&out, c.provider);
  PutArray(&out, c.result_root);
  PutBe(&out, c.ranks, 4);
  PutBe(&out, c.usage.cpu_ms, 8);
  PutBe(&out, c.usage.wall_ms, 8);
  PutBe(&out, c.usage.max_rss_bytes, 8);
  return out;
}

void SignClaim(ResultClaim* c, const bls::SecretKey& provider_key, const crypto::Hash& network_id) {
  c->provider = provider_key.GetPublicKey().bytes();
  c->signature = provider_key.Sign(core::AsBytes(ClaimSigningBytes(*c, network_id))).bytes();
}

std::string EncodeClaim(const ResultClaim& c, const crypto::Hash& network_id) {
  std::string out = ClaimSigningBytes(c, network_id);
  PutArray(&out, c.signature);
  return out;
}

Result<ResultClaim> DecodeClaim(std::string_view wire, const crypto::Hash& network_id) {
  if (wire.size() != kClaimWireBytes)
    return Err(Status::InvalidArgument(
        fmt::format("result claim: {} bytes, a claim has {}", wire.size(), kClaimWireBytes)));
  Reader rd(wire, "result claim");
  DFRP_ASSIGN_OR_RETURN(uint64_t epoch, wire::ReadPrefix(rd, kResultTag, network_id));
  if (epoch != 0) return Err(rd.Bad("epoch", "a claim carries epoch 0"));
  ResultClaim c;
  uint64_t v = 0;
  DFRP_RETURN_IF_ERROR(rd.Array(&c.job_id, "job id"));
  DFRP_RETURN_IF_ERROR(rd.Array(&c.provider, "provider"));
  DFRP_RETURN_IF_ERROR(wire::CheckKey(c.provider, rd, "provider"));
  DFRP_RETURN_IF_ERROR(rd.Array(&c.result_root, "result root"));
  DFRP_RETURN_IF_ERROR(rd.Be(&v, 4, "ranks"));
  if (v == 0 || v > kMaxJobRanks)
    return Err(rd.Bad("ranks", fmt::format("{} is not 1..{}", v, kMaxJobRanks)));
  c.ranks = static_cast<uint32_t>(v);
  DFRP_RETURN_IF_ERROR(rd.Be(&c.usage.cpu_ms, 8, "cpu ms"));
  DFRP_RETURN_IF_ERROR(rd.Be(&c.usage.wall_ms, 8, "wall ms"));
  DFRP_RETURN_IF_ERROR(rd.Be(&c.usage.max_rss_bytes, 8, "max rss"));
  DFRP_RETURN_IF_ERROR(rd.Array(&c.signature, "signature"));
  DFRP_RETURN_IF_ERROR(wire::CheckSig(c.signature, rd, "signature"));
  DFRP_RETURN_IF_ERROR(rd.End());
  return c;
}

Status VerifyClaim(const ResultClaim& c, const crypto::Hash& network_id) {
  DFRP_ASSIGN_OR_RETURN(auto key, KeyFrom(c.provider));
  DFRP_ASSIGN_OR_RETURN(auto sig, SigFrom(c.signature));
  if (!bls::Verify(key, core::AsBytes(ClaimSigningBytes(c, network_id)), sig).ok())
    return Status::Corruption(
        fmt::format("result claim for job {}: the provider's signature does not verify",
                    core::ToHex(c.job_id)));
  return Status::OK();
}

}  // namespace dfrp::ledger
