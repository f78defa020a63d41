#include "dfrp/ledger/escrow.h"

#include <fmt/format.h>

#include <algorithm>

#include "dfrp/ledger/job_claim.h"
#include "dfrp/ledger/wire.h"
#include "dfrp/storage/proof.h"

namespace dfrp::ledger {

using core::Err;
using core::Result;
using core::Status;
using wire::PutArray;
using wire::PutBe;
using wire::Reader;

crypto::Hash EscrowId(const KeyBytes& payer, uint64_t seq) {
  std::string b(wire::View(payer));
  PutBe(&b, seq, 8);
  return crypto::Sha256Of(b);
}

uint64_t PeriodAmount(uint64_t amount, uint32_t periods, uint32_t k) {
  if (periods == 0 || k >= periods) return 0;
  const unsigned __int128 a = amount;
  const auto upto = [&](uint64_t j) { return static_cast<uint64_t>(a * j / periods); };
  return upto(uint64_t{k} + 1) - upto(k);
}

uint64_t MarginOf(uint64_t amount, uint32_t margin_bps) {
  return static_cast<uint64_t>(static_cast<unsigned __int128>(amount) * margin_bps / 10000);
}

std::string ReceiptSigningBytes(const UsageReceipt& r, const crypto::Hash& network_id) {
  std::string out = SignedPrefix(kReceiptTag, network_id, 0);
  PutArray(&out, r.escrow_id);
  PutArray(&out, r.provider);
  PutBe(&out, r.bytes_total, 8);
  PutBe(&out, r.expiry_unix, 8);
  return out;
}

UsageReceipt SignReceipt(const crypto::Hash& escrow_id, const KeyBytes& provider,
                         uint64_t bytes_total, uint64_t expiry_unix,
                         const crypto::bls::SecretKey& payer_key, const crypto::Hash& network_id) {
  UsageReceipt r;
  r.escrow_id = escrow_id;
  r.provider = provider;
  r.bytes_total = bytes_total;
  r.expiry_unix = expiry_unix;
  r.signature = payer_key.Sign(core::AsBytes(ReceiptSigningBytes(r, network_id))).bytes();
  return r;
}

std::string EncodeReceipt(const UsageReceipt& r, const crypto::Hash& network_id) {
  std::string out = ReceiptSigningBytes(r, network_id);
  PutArray(&out, r.signature);
  return out;
}

Result<UsageReceipt> DecodeReceipt(std::string_view w, const crypto::Hash& network_id) {
  if (w.size() != kReceiptWireBytes)
    return Err(Status::InvalidArgument(
        fmt::format("usage receipt: {} bytes, a receipt has {}", w.size(), kReceiptWireBytes)));
  Reader r(w, "usage receipt");
  UsageReceipt u;
  DFRP_ASSIGN_OR_RETURN(const uint64_t epoch, wire::ReadPrefix(r, kReceiptTag, network_id));
  if (epoch != 0) return Err(r.Bad("epoch", "a receipt's is 0"));
  DFRP_RETURN_IF_ERROR(r.Array(&u.escrow_id, "escrow id"));
  DFRP_RETURN_IF_ERROR(r.Array(&u.provider, "provider"));
  DFRP_RETURN_IF_ERROR(wire::CheckKey(u.provider, r, "provider"));
  DFRP_RETURN_IF_ERROR(r.Be(&u.bytes_total, 8, "bytes total"));
  // At most 2^62: totals are kept in signed 64-bit SQLite integers and compared there.
  if (u.bytes_total == 0 || u.bytes_total > kMaxReceiptBytes)
    return Err(r.Bad("bytes total", fmt::format("{} is not 1 to 2^62", u.bytes_total)));
  DFRP_RETURN_IF_ERROR(r.Be(&u.expiry_unix, 8, "expiry"));
  DFRP_RETURN_IF_ERROR(r.Array(&u.signature, "signature"));
  DFRP_RETURN_IF_ERROR(wire::CheckSig(u.signature, r, "signature"));
  DFRP_RETURN_IF_ERROR(r.End());
  return u;
}

Status VerifyReceipt(const UsageReceipt& r, const crypto::Hash& escrow_id, const KeyBytes& payer,
                     const KeyBytes& provider, uint64_t end_unix, const crypto::Hash& network_id) {
  if (r.escrow_id != escrow_id)
    return Status::InvalidArgument(fmt::format("usage receipt: for escrow {}, not {}",
                                               core::ToHex(r.escrow_id).substr(0, 16),
                                               core::ToHex(escrow_id).substr(0, 16)));
  if (r.provider != provider)
    return Status::InvalidArgument(
        fmt::format("usage receipt: names provider {}, the escrow's is {}",
                    AddressOfKey(r.provider), AddressOfKey(provider)));
  if (r.expiry_unix > end_unix)
    return Status::InvalidArgument(fmt::format(
        "usage receipt: expires at {}, after the escrow's end {}", r.expiry_unix, end_unix));
  DFRP_ASSIGN_OR_RETURN(auto key, KeyFrom(payer));
  DFRP_ASSIGN_OR_RETURN(auto sig, SigFrom(r.signature));
  if (!crypto::bls::Verify(key, core::AsBytes(ReceiptSigningBytes(r, network_id)), sig).ok())
    return Status::Corruption(fmt::format(
        "usage receipt for {} bytes of escrow {}: the payer's signature does not verify (forged, "
        "altered, or signed by another key)",
        r.bytes_total, core::ToHex(escrow_id).substr(0, 16)));
  return Status::OK();
}

uint64_t ReadDue(uint64_t bytes, const ReadTerms& t, uint64_t amount) {
  const unsigned __int128 due = static_cast<unsigned __int128>(bytes) * t.price_per_mib >> 20;
  return due > amount ? amount : static_cast<uint64_t>(due);
}

ReadPayout ReadPayoutOf(uint64_t before, uint64_t after, const ReadTerms& t, uint64_t amount,
                        uint32_t margin_bps) {
  if (after <= before) return {};
  const uint64_t due_before = ReadDue(before, t, amount), due_after = ReadDue(after, t, amount);
  return {due_after - due_before,
          MarginOf(due_after, margin_bps) - MarginOf(due_before, margin_bps)};
}

uint64_t MaxAuditAnswerBytes(const StorageTerms& t) {
  const uint64_t leaves = t.size / t.leaf_size + (t.size % t.leaf_size ? 1 : 0);
  uint64_t depth = 0;
  while ((uint64_t{1} << depth) < leaves) ++depth;
  // Header (magic, version, kind, leaf size, id, root, tree size, seed) and, per challenge,
  // index, length, the leaf, the path length and the path.
  constexpr uint64_t kHeader = 8 + 1 + 1 + 2 + 4 + 16 + 32 + 8 + 2 + 32 + 2;
  return kHeader + uint64_t{t.challenges} * (8 + 4 + t.leaf_size + 1 + 32 * depth);
}

bool AuditAnswerFits(const StorageTerms& t) {
  const uint64_t overhead = 128 + kMaxBeaconWireBytes;  // the settlement's fields and beacon
  return MaxAuditAnswerBytes(t) + overhead <= kMaxSettlementWireBytes;
}

PeriodWindow WindowOf(const crypto::Hash& id, const StorageTerms& t, uint32_t k,
                      const economy::StoragePolicy& p) {
  uint64_t h = 0;
  for (int i = 0; i < 8; ++i) h = (h << 8) | id[i];
  const uint64_t spread =
      t.period_seconds > p.answer_window_seconds ? t.period_seconds - p.answer_window_seconds : 0;
  const uint64_t stagger = h % (spread + 1);
  PeriodWindow w;
  // DecodeTerms keeps start + periods * period under 2^62 / 1000 seconds: no overflow here.
  const int64_t open_s =
      static_cast<int64_t>(t.start_unix + uint64_t{k} * t.period_seconds + stagger);
  w.open_ms = open_s * 1000;
  w.close_ms = w.open_ms + int64_t{p.answer_window_seconds} * 1000;
  w.vote_until_ms = w.close_ms - int64_t{p.max_skew_ms};
  w.refund_ms = w.close_ms + int64_t{p.grace_seconds} * 1000;
  w.slot = static_cast<uint64_t>(open_s) / std::max<uint32_t>(1, p.beacon_slot_seconds);
  return w;
}

std::string_view SettleKindName(SettleKind k) {
  switch (k) {
    case SettleKind::kRelease:
      return "release";
    case SettleKind::kRefund:
      return "refund";
    case SettleKind::kRedeem:
      return "redemption";
    case SettleKind::kClose:
      return "close";
    case SettleKind::kJobRelease:
      return "job_release";
    case SettleKind::kJobRefund:
      return "job_refund";
  }
  return "unknown";
}

std::string SettlementBytes(const Settlement& s, const crypto::Hash& network_id) {
  std::string out = SignedPrefix(kSettleTag, network_id, s.epoch);
  PutArray(&out, s.escrow_id);
  PutBe(&out, s.period, 4);
  PutBe(&out, static_cast<uint8_t>(s.kind), 1);
  PutBe(&out, s.proof.size(), 4);
  out += s.proof;
  PutBe(&out, s.beacon.size(), 2);
  out += s.beacon;
  return out;
}

Settlement MakeSettlement(crypto::Hash escrow_id, uint32_t period, SettleKind kind, uint64_t epoch,
                          std::string proof, std::string beacon, const crypto::Hash& network_id) {
  Settlement s;
  s.escrow_id = escrow_id;
  s.period = period;
  s.kind = kind;
  s.epoch = epoch;
  s.proof = std::move(proof);
  s.beacon = std::move(beacon);
  s.hash = crypto::Sha256Of(SettlementBytes(s, network_id));
  return s;
}

Result<Settlement> DecodeSettlement(std::string_view w, const crypto::Hash& network_id) {
  if (w.size() > kMaxSettlementWireBytes)
    return Err(Status::InvalidArgument(
        fmt::format("settlement: {} bytes, more than {}", w.size(), kMaxSettlementWireBytes)));
  Reader r(w, "settlement");
  Settlement s;
  DFRP_ASSIGN_OR_RETURN(s.epoch, wire::ReadPrefix(r, kSettleTag, network_id));
  DFRP_RETURN_IF_ERROR(r.Array(&s.escrow_id, "escrow id"));
  uint64_t v = 0;
  DFRP_RETURN_IF_ERROR(r.Be(&v, 4, "period"));
  s.period = static_cast<uint32_t>(v);
  if (s.period >= kMaxEscrowPeriods)
    return Err(r.Bad("period", fmt::format("{} is past the last possible period", v)));
  DFRP_RETURN_IF_ERROR(r.Be(&v, 1, "kind"));
  if (v < static_cast<uint64_t>(SettleKind::kRelease) ||
      v > static_cast<uint64_t>(SettleKind::kJobRefund))
    return Err(r.Bad("kind", fmt::format("{} is not 1 (release), 2 (refund), 3 (redemption), 4 "
                                         "(close), 5 (job_release) or 6 (job_refund)",
                                         v)));
  s.kind = static_cast<SettleKind>(v);
  std::string_view part;
  DFRP_RETURN_IF_ERROR(r.Be(&v, 4, "proof length"));
  DFRP_RETURN_IF_ERROR(r.Bytes(v, &part, "proof"));
  s.proof.assign(part);
  DFRP_RETURN_IF_ERROR(r.Be(&v, 2, "beacon length"));
  DFRP_RETURN_IF_ERROR(r.Bytes(v, &part, "beacon"));
  s.beacon.assign(part);
  DFRP_RETURN_IF_ERROR(r.End());
  if (s.kind == SettleKind::kRelease && (s.proof.empty() || s.beacon.empty()))
    return Err(r.Bad("proof", "a release carries the period's audit answer and its beacon"));
  if (s.kind == SettleKind::kRefund && (!s.proof.empty() || !s.beacon.empty()))
    return Err(r.Bad("proof", "a refund carries no proof and no beacon"));
  if (s.kind == SettleKind::kRedeem || s.kind == SettleKind::kClose) {
    if (s.period != 0) return Err(r.Bad("period", "a read escrow's settlements are period 0"));
    if (!s.beacon.empty()) return Err(r.Bad("beacon", "a read escrow's settlement has none"));
    if (s.kind == SettleKind::kRedeem && s.proof.empty())
      return Err(r.Bad("proof", "a redemption carries a usage receipt"));
    if (!s.proof.empty() && s.proof.size() != kReceiptWireBytes)
      return Err(r.Bad("proof", fmt::format("{} bytes: a usage receipt has {}", s.proof.size(),
                                            kReceiptWireBytes)));
  }
  if (s.kind == SettleKind::kJobRelease || s.kind == SettleKind::kJobRefund) {
    if (s.period != 0) return Err(r.Bad("period", "a compute escrow's settlement is period 0"));
    if (!s.beacon.empty()) return Err(r.Bad("beacon", "a compute escrow's settlement has none"));
    if (s.kind == SettleKind::kJobRelease && s.proof.size() != kClaimWireBytes)
      return Err(r.Bad("proof", fmt::format("{} bytes: a job release carries the provider's "
                                            "claim ({} bytes)",
                                            s.proof.size(), kClaimWireBytes)));
    if (s.kind == SettleKind::kJobRefund && !s.proof.empty() &&
        s.proof.size() != 2 * kClaimWireBytes)
      return Err(r.Bad("proof", fmt::format("{} bytes: a job refund carries nothing or a fraud "
                                            "proof of two claims ({} bytes)",
                                            s.proof.size(), 2 * kClaimWireBytes)));
  }
  s.hash = crypto::Sha256Of(w);
  return s;
}

Result<SettleCertificate> MakeSettleCertificate(const Settlement& s, const std::vector<Vote>& votes,
                                                const Committee& c) {
  DFRP_ASSIGN_OR_RETURN(wire::Quorum q, wire::AggregateVotes(s.hash, votes, c, c.quorum()));
  return SettleCertificate{s, q.epoch, std::move(q.signers), q.aggregate};
}

std::string EncodeSettleCertificate(const SettleCertificate& c, const crypto::Hash& network_id) {
  const std::string body = SettlementBytes(c.settlement, network_id);
  std::string out;
  PutBe(&out, body.size(), 4);
  out += body;
  wire::PutQuorum(&out, {c.epoch, c.signers, c.aggregate});
  return out;
}

Result<SettleCertificate> DecodeSettleCertificate(std::string_view w,
                                                  const crypto::Hash& network_id) {
  DFRP_ASSIGN_OR_RETURN(
      auto parts,
      wire::ReadCertified(w, kMaxSettlementWireBytes + 512, "settlement certificate", "settlement",
                          [&](std::string_view b) { return DecodeSettlement(b, network_id); }));
  SettleCertificate c;
  c.settlement = std::move(parts.first);
  wire::TakeQuorum(&c, std::move(parts.second));
  return c;
}

Status VerifySettleCertificate(const SettleCertificate& c, const Committee& committee,
                               const crypto::Hash& network_id,
                               crypto::bls::GroupVerifier* verifier) {
  if (c.settlement.epoch != c.epoch)
    return Status::InvalidArgument(
        fmt::format("settlement certificate: the settlement is for epoch {}, its signers' is {}",
                    c.settlement.epoch, c.epoch));
  if (crypto::Sha256Of(SettlementBytes(c.settlement, network_id)) != c.settlement.hash)
    return Status::InvalidArgument("settlement certificate: the hash is not the settlement's");
  return wire::VerifyQuorum({c.epoch, c.signers, c.aggregate}, c.settlement.hash, committee,
                            network_id,
                            fmt::format("settlement certificate ({} of period {} of escrow {})",
                                        SettleKindName(c.settlement.kind), c.settlement.period,
                                        core::ToHex(c.settlement.escrow_id).substr(0, 16)),
                            false, verifier);
}

std::string BeaconSigningBytes(uint64_t slot, uint64_t epoch, const crypto::Hash& network_id) {
  std::string out = SignedPrefix(kBeaconTag, network_id, epoch);
  PutBe(&out, slot, 8);
  return out;
}

crypto::Hash BeaconItemHash(uint64_t slot, uint64_t epoch, const crypto::Hash& network_id) {
  return crypto::Sha256Of(BeaconSigningBytes(slot, epoch, network_id));
}

Result<Beacon> MakeBeacon(uint64_t slot, std::vector<Vote> votes, const Committee& c) {
  std::sort(votes.begin(), votes.end(),
            [](const Vote& a, const Vote& b) { return a.authority < b.authority; });
  votes.erase(std::unique(votes.begin(), votes.end(),
                          [](const Vote& a, const Vote& b) { return a.authority == b.authority; }),
              votes.end());
  if (votes.size() > c.quorum()) votes.resize(c.quorum());
  if (votes.empty())
    return Err(Status::InvalidArgument(fmt::format("beacon of slot {}: no votes", slot)));
  DFRP_ASSIGN_OR_RETURN(wire::Quorum q,
                        wire::AggregateVotes(votes.front().order_hash, votes, c, c.quorum()));
  return Beacon{slot, q.epoch, std::move(q.signers), q.aggregate};
}

std::string EncodeBeacon(const Beacon& b) {
  std::string out;
  PutBe(&out, b.slot, 8);
  wire::PutQuorum(&out, {b.epoch, b.signers, b.aggregate});
  return out;
}

Result<Beacon> DecodeBeacon(std::string_view w) {
  if (w.size() > kMaxBeaconWireBytes)
    return Err(Status::InvalidArgument(
        fmt::format("beacon: {} bytes, more than {}", w.size(), kMaxBeaconWireBytes)));
  Reader r(w, "beacon");
  Beacon b;
  DFRP_RETURN_IF_ERROR(r.Be(&b.slot, 8, "slot"));
  wire::Quorum q;
  DFRP_RETURN_IF_ERROR(wire::ReadQuorum(r, &q));
  DFRP_RETURN_IF_ERROR(r.End());
  wire::TakeQuorum(&b, std::move(q));
  return b;
}

Status VerifyBeacon(const Beacon& b, const Committee& c, const crypto::Hash& network_id) {
  return wire::VerifyQuorum({b.epoch, b.signers, b.aggregate},
                            BeaconItemHash(b.slot, b.epoch, network_id), c, network_id,
                            fmt::format("beacon of slot {}", b.slot), true);
}

crypto::Hash BeaconSeed(const Beacon& b, const crypto::Hash& network_id) {
  std::string in(kBeaconTag);
  PutArray(&in, network_id);
  PutBe(&in, b.slot, 8);
  in += wire::Bitmap(b.signers);
  PutArray(&in, b.aggregate);
  return crypto::Sha256Of(in);
}

std::string PeriodSeed(const crypto::Hash& slot_seed, const crypto::Hash& escrow_id,
                       uint32_t period) {
  std::string in(wire::View(slot_seed));
  PutArray(&in, escrow_id);
  PutBe(&in, period, 4);
  const crypto::Hash h = crypto::Sha256Of(in);
  return std::string(wire::View(h));
}

Status CheckRelease(const Settlement& s, const StorageTerms& t, const PeriodWindow& w,
                    const Committee& c, const crypto::Hash& network_id) {
  const std::string what = fmt::format("release of period {} of escrow {}", s.period,
                                       core::ToHex(s.escrow_id).substr(0, 16));
  auto beacon = DecodeBeacon(s.beacon);
  if (!beacon) return Status::InvalidArgument(what + ": " + beacon.error().message());
  if (beacon->slot != w.slot)
    return Status::InvalidArgument(fmt::format(
        "{}: its beacon is of slot {}, the period's answer window opens in slot {} (an answer to "
        "another period's seed)",
        what, beacon->slot, w.slot));
  Status bs = VerifyBeacon(*beacon, c, network_id);
  if (!bs.ok()) return Status::Corruption(what + ": " + bs.message());
  auto proof = storage::DecodeProof(s.proof);
  if (!proof) return Status::InvalidArgument(what + ": proof: " + proof.error().message());
  storage::ProofExpectation e;
  e.root = t.root;
  e.shard_id = t.shard_id;
  e.size = t.size;
  e.leaf_size = t.leaf_size;
  e.seed = PeriodSeed(BeaconSeed(*beacon, network_id), s.escrow_id, s.period);
  e.challenges = t.challenges;
  Status ps = storage::VerifyProofAgainst(*proof, e);
  if (!ps.ok())
    return Status::Corruption(
        fmt::format("{}: the audit answer does not prove the shard: {}", what, ps.message()));
  return Status::OK();
}

// --- Compute escrows.

JobWindow JobWindowOf(const JobTerms& t, const economy::StoragePolicy& p) {
  const int64_t settle = static_cast<int64_t>(t.settle_unix) * 1000;  // settle < 2^62 / 1000
  const int64_t skew = static_cast<int64_t>(p.max_skew_ms);
  const int64_t grace = static_cast<int64_t>(p.grace_seconds) * 1000;
  return {settle - skew, settle, settle + grace - skew, settle + grace};
}

uint64_t CollateralFor(uint64_t price, double check_rate) {
  constexpr uint64_t kCap = uint64_t{1} << 62;
  if (!(check_rate > 0.0)) return kCap;
  if (check_rate >= 1.0) return 0;
  // In 1e-6 steps of q (the schedule's rates are basis points), exactly in integers.
  const uint64_t q_ppm = std::max<uint64_t>(1, static_cast<uint64_t>(check_rate * 1e6 + 0.5));
  if (q_ppm >= 1'000'000) return 0;
  const unsigned __int128 num = static_cast<unsigned __int128>(price) * (1'000'000 - q_ppm);
  const unsigned __int128 c = (num + q_ppm - 1) / q_ppm;
  return c > kCap ? kCap : static_cast<uint64_t>(c);
}

JobPayout JobReleasePayout(uint64_t amount, const JobTerms& t, uint32_t margin_bps) {
  const uint64_t price = std::min(t.price, amount);
  JobPayout p;
  p.margin = MarginOf(price, margin_bps);
  p.to_provider = price - p.margin;
  p.to_payer = amount - price;
  return p;
}

namespace {

// A claim for the terms' job signed by `signer`.
Status CheckOneClaim(std::string_view wire, const JobTerms& t, const KeyBytes& signer,
                     std::string_view who, const crypto::Hash& network_id, ResultClaim* out) {
  auto c = DecodeClaim(wire, network_id);
  if (!c)
    return Status::InvalidArgument(fmt::format("the {}'s claim: {}", who, c.error().message()));
  if (c->job_id != t.job_id)
    return Status::InvalidArgument(fmt::format("the {}'s claim is for job {}, the escrow's is {}",
                                               who, core::ToHex(c->job_id), core::ToHex(t.job_id)));
  if (c->provider != signer)
    return Status::InvalidArgument(fmt::format("the {}'s claim is signed by {}, not by {}", who,
                                               AddressOfKey(c->provider), AddressOfKey(signer)));
  DFRP_RETURN_IF_ERROR(VerifyClaim(*c, network_id));
  *out = *c;
  return Status::OK();
}

}  // namespace

Status CheckJobClaim(std::string_view proof, const JobTerms& t, const KeyBytes& provider,
                     const crypto::Hash& network_id) {
  ResultClaim c;
  return CheckOneClaim(proof, t, provider, "provider", network_id, &c);
}

Status CheckFraudProof(std::string_view proof, const JobTerms& t, const KeyBytes& provider,
                       const crypto::Hash& network_id) {
  if (!t.has_verifier())
    return Status::Refused(
        "fraud proof: the escrow names no verifier, so no re-run can dispute its result");
  if (proof.size() != 2 * kClaimWireBytes)
    return Status::InvalidArgument(fmt::format("fraud proof: {} bytes, two claims take {}",
                                               proof.size(), 2 * kClaimWireBytes));
  ResultClaim a, b;
  DFRP_RETURN_IF_ERROR(
      CheckOneClaim(proof.substr(0, kClaimWireBytes), t, provider, "provider", network_id, &a));
  DFRP_RETURN_IF_ERROR(
      CheckOneClaim(proof.substr(kClaimWireBytes), t, t.verifier, "verifier", network_id, &b));
  if (a.result_root == b.result_root && a.ranks == b.ranks)
    return Status::Refused(fmt::format(
        "fraud proof: the provider's and the verifier's claims agree (result root {}): nothing "
        "to dispute",
        core::ToHex(a.result_root)));
  return Status::OK();
}

}  // namespace dfrp::ledger
