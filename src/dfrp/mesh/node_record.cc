#include "dfrp/mesh/node_record.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <tuple>

#include "dfrp/ledger/wire.h"

namespace dfrp::mesh {

namespace bls = crypto::bls;
using core::Err;
using core::Result;
using core::Status;
using ledger::wire::PutArray;
using ledger::wire::PutBe;
using ledger::wire::Reader;

namespace {

// The checks a record must pass to be encoded or decoded at all.
Status CheckFields(const NodeRecord& r) {
  if (r.url.size() > kMaxUrlBytes)
    return Status::InvalidArgument(
        fmt::format("node record: a URL of {} bytes, more than {}", r.url.size(), kMaxUrlBytes));
  if (!r.url.starts_with("http://"))
    return Status::InvalidArgument("node record: its URL does not begin with http://");
  if (r.vector.size() > kMaxRecordDim)
    return Status::InvalidArgument(fmt::format(
        "node record: a vector of {} dimensions, more than {}", r.vector.size(), kMaxRecordDim));
  for (float f : r.vector)
    if (!std::isfinite(f))
      return Status::InvalidArgument("node record: a vector component is not finite");
  if (r.prices.size() > kMaxRecordPrices)
    return Status::InvalidArgument(
        fmt::format("node record: {} prices, more than {}", r.prices.size(), kMaxRecordPrices));
  const RecordCapacity& c = r.capacity;
  for (double d :
       {c.sha256_per_sec, c.gpu_tflops, c.read_mb_per_sec, c.write_mb_per_sec, c.read_iops})
    if (!std::isfinite(d) || d < 0)
      return Status::InvalidArgument("node record: a capacity figure is not a finite number >= 0");
  if (c.storage_free_bytes > c.storage_quota_bytes)
    return Status::InvalidArgument("node record: more storage free than its quota");
  if (r.opinion.size() > kMaxOpinion)
    return Status::InvalidArgument(fmt::format("node record: an opinion of {} peers, more than {}",
                                               r.opinion.size(), kMaxOpinion));
  for (size_t i = 0; i < r.opinion.size(); ++i) {
    if (r.opinion[i].weight == 0)
      return Status::InvalidArgument("node record: an opinion entry of weight 0");
    if (r.opinion[i].peer == r.sender.wallet)
      return Status::InvalidArgument("node record: an opinion of the node itself");
    for (size_t j = 0; j < i; ++j)
      if (r.opinion[j].peer == r.opinion[i].peer)
        return Status::InvalidArgument("node record: a peer twice in its opinion");
  }
  if (r.roles > (kRoleStorage | kRoleAuthority | kRoleCompute | kRoleLeaving))
    return Status::InvalidArgument(fmt::format("node record: unknown role bits {:#x}", r.roles));
  return Status::OK();
}

void PutBody(std::string* out, const NodeRecord& r) {
  PutBe(out, r.seq, 8);
  PutBe(out, r.expiry_unix_ms, 8);
  PutBe(out, r.url.size(), 1);
  out->append(r.url);
  PutBe(out, r.roles, 1);
  PutBe(out, r.policy_version, 4);
  PutBe(out, r.vector.size(), 2);
  for (float f : r.vector) PutBe(out, std::bit_cast<uint32_t>(f), 4);
  PutBe(out, r.prices.size(), 1);
  for (uint64_t p : r.prices) PutBe(out, p, 8);
  const RecordCapacity& c = r.capacity;
  for (double d :
       {c.sha256_per_sec, c.gpu_tflops, c.read_mb_per_sec, c.write_mb_per_sec, c.read_iops})
    PutBe(out, std::bit_cast<uint64_t>(d), 8);
  PutBe(out, c.storage_free_bytes, 8);
  PutBe(out, c.storage_quota_bytes, 8);
  PutBe(out, r.opinion.size(), 1);
  for (const OpinionEntry& o : r.opinion) {
    PutArray(out, o.peer);
    PutBe(out, o.weight, 2);
  }
}

Status ReadBody(Reader& rd, NodeRecord* r) {
  uint64_t v = 0;
  DFRP_RETURN_IF_ERROR(rd.Be(&r->seq, 8, "seq"));
  DFRP_RETURN_IF_ERROR(rd.Be(&r->expiry_unix_ms, 8, "expiry"));
  DFRP_RETURN_IF_ERROR(rd.Be(&v, 1, "url length"));
  std::string_view url;
  DFRP_RETURN_IF_ERROR(rd.Bytes(v, &url, "url"));
  r->url = std::string(url);
  DFRP_RETURN_IF_ERROR(rd.Be(&v, 1, "roles"));
  r->roles = static_cast<uint8_t>(v);
  DFRP_RETURN_IF_ERROR(rd.Be(&v, 4, "policy version"));
  r->policy_version = static_cast<uint32_t>(v);
  uint64_t dim = 0;
  DFRP_RETURN_IF_ERROR(rd.Be(&dim, 2, "dimensions"));
  if (dim > kMaxRecordDim)
    return rd.Bad("dimensions", fmt::format("{} is over {}", dim, kMaxRecordDim));
  r->vector.resize(dim);
  for (auto& f : r->vector) {
    DFRP_RETURN_IF_ERROR(rd.Be(&v, 4, "vector"));
    f = std::bit_cast<float>(static_cast<uint32_t>(v));
  }
  uint64_t n = 0;
  DFRP_RETURN_IF_ERROR(rd.Be(&n, 1, "prices"));
  if (n > kMaxRecordPrices)
    return rd.Bad("prices", fmt::format("{} is over {}", n, kMaxRecordPrices));
  r->prices.resize(n);
  for (auto& p : r->prices) DFRP_RETURN_IF_ERROR(rd.Be(&p, 8, "price"));
  RecordCapacity& c = r->capacity;
  for (double* d :
       {&c.sha256_per_sec, &c.gpu_tflops, &c.read_mb_per_sec, &c.write_mb_per_sec, &c.read_iops}) {
    DFRP_RETURN_IF_ERROR(rd.Be(&v, 8, "capacity"));
    *d = std::bit_cast<double>(v);
  }
  DFRP_RETURN_IF_ERROR(rd.Be(&c.storage_free_bytes, 8, "storage free bytes"));
  DFRP_RETURN_IF_ERROR(rd.Be(&c.storage_quota_bytes, 8, "storage quota bytes"));
  if (c.storage_free_bytes > c.storage_quota_bytes)
    return rd.Bad("storage free bytes", "more than the quota");
  DFRP_RETURN_IF_ERROR(rd.Be(&n, 1, "opinion"));
  if (n > kMaxOpinion) return rd.Bad("opinion", fmt::format("{} peers is over {}", n, kMaxOpinion));
  r->opinion.resize(n);
  for (OpinionEntry& o : r->opinion) {
    DFRP_RETURN_IF_ERROR(rd.Array(&o.peer, "opinion peer"));
    DFRP_RETURN_IF_ERROR(rd.Be(&v, 2, "opinion weight"));
    o.weight = static_cast<uint16_t>(v);
  }
  return Status::OK();
}

}  // namespace

std::string RecordSigningBytes(const NodeRecord& r, const crypto::Hash& network_id) {
  std::string out = ledger::SignedPrefix(kNodeRecordTag, network_id, 0);
  PutArray(&out, r.sender.wallet);
  PutBody(&out, r);
  return out;
}

Status SignRecord(NodeRecord* r, const bls::SecretKey& node_key, const crypto::Hash& network_id) {
  DFRP_RETURN_IF_ERROR(CheckFields(*r));
  if (node_key.GetPublicKey().bytes() != r->sender.node)
    return Status::InvalidArgument("node record: the signing key is not the delegation's node key");
  r->signature = node_key.Sign(core::AsBytes(RecordSigningBytes(*r, network_id))).bytes();
  if (EncodeRecord(*r).size() > kMaxRecordBytes)
    return Status::InvalidArgument(fmt::format("node record: over {} bytes", kMaxRecordBytes));
  return Status::OK();
}

std::string EncodeRecord(const NodeRecord& r) {
  std::string out = EncodeDelegation(r.sender);
  PutBody(&out, r);
  PutArray(&out, r.signature);
  return out;
}

Result<NodeRecord> DecodeRecord(std::string_view wire) {
  if (wire.size() > kMaxRecordBytes)
    return Err(Status::InvalidArgument(
        fmt::format("node record: {} bytes, more than {}", wire.size(), kMaxRecordBytes)));
  if (wire.size() < kDelegationBytes)
    return Err(Status::InvalidArgument(
        fmt::format("node record: truncated at delegation (byte 0 of {})", wire.size())));
  NodeRecord r;
  DFRP_ASSIGN_OR_RETURN(r.sender, DecodeDelegation(wire.substr(0, kDelegationBytes)));
  Reader rd(wire.substr(kDelegationBytes), "node record");
  DFRP_RETURN_IF_ERROR(ReadBody(rd, &r));
  DFRP_RETURN_IF_ERROR(rd.Array(&r.signature, "signature"));
  DFRP_RETURN_IF_ERROR(ledger::wire::CheckSig(r.signature, rd, "signature"));
  DFRP_RETURN_IF_ERROR(rd.End());
  DFRP_RETURN_IF_ERROR(CheckFields(r));
  return r;
}

Status VerifyRecord(const NodeRecord& r, const crypto::Hash& network_id, int64_t now_ms) {
  DFRP_RETURN_IF_ERROR(VerifyDelegation(r.sender, network_id, now_ms));
  return VerifyRecordSignature(r, network_id);
}

Status VerifyRecordSignature(const NodeRecord& r, const crypto::Hash& network_id) {
  DFRP_ASSIGN_OR_RETURN(auto key, ledger::KeyFrom(r.sender.node));
  DFRP_ASSIGN_OR_RETURN(auto sig, ledger::SigFrom(r.signature));
  if (!bls::Verify(key, core::AsBytes(RecordSigningBytes(r, network_id)), sig).ok())
    return Status::Corruption(fmt::format(
        "node record {} seq {}: the node key's signature does not verify (altered, or for "
        "another wallet or network)",
        r.url, r.seq));
  return Status::OK();
}

const char* PeerStateName(PeerState s) {
  switch (s) {
    case PeerState::kUnverified:
      return "unverified";
    case PeerState::kAlive:
      return "alive";
    case PeerState::kSuspect:
      return "suspect";
    case PeerState::kDead:
      return "dead";
  }
  return "?";
}

PeerTable::PeerTable(const crypto::Hash& network_id, const ledger::KeyBytes& self,
                     PeerTableOptions opt)
    : network_id_(network_id), self_(self), opt_(opt) {}

Result<OfferOutcome> PeerTable::Offer(std::string_view wire, int64_t now_ms) {
  DFRP_ASSIGN_OR_RETURN(NodeRecord r, DecodeRecord(wire));
  if (r.sender.wallet == self_) return OfferOutcome::kOwn;
  const int64_t expiry = WireMs(r.expiry_unix_ms);
  if (expiry <= now_ms)
    return Err(Status::InvalidArgument(
        fmt::format("node record {} seq {}: expired at {} ms (Unix), the clock reads {}", r.url,
                    r.seq, expiry, now_ms)));
  if (expiry > now_ms + opt_.record_ttl_ms + opt_.skew_ms)
    return Err(Status::InvalidArgument(
        fmt::format("node record {} seq {}: it expires {} ms ahead, more than the {} ms a record "
                    "is kept (gossip.record_ttl_seconds; or its clock is off)",
                    r.url, r.seq, expiry - now_ms, opt_.record_ttl_ms + opt_.skew_ms)));
  // A seq is about its signer's clock in Unix ms: one far ahead would shadow every record
  // of that wallet to come (a stolen node key's parting shot).
  if (r.seq > static_cast<uint64_t>(now_ms + opt_.skew_ms))
    return Err(Status::InvalidArgument(fmt::format(
        "node record {} seq {}: ahead of this node's clock ({} ms, skew allowed {} ms); a seq is "
        "the signer's Unix ms",
        r.url, r.seq, now_ms, opt_.skew_ms)));
  {
    core::MutexLock lock(&mu_);
    auto it = peers_.find(r.sender.wallet);
    if (it != peers_.end() && it->second.record.seq >= r.seq) return OfferOutcome::kStale;
  }
  // Outside the lock: slow. A delegation verified before (the same wallet's next record) is
  // not checked again until it expires.
  const crypto::Hash dh = crypto::Sha256Of(EncodeDelegation(r.sender));
  const std::string dkey(ledger::wire::View(dh));
  bool delegation_known = false;
  {
    core::MutexLock lock(&mu_);
    auto d = delegations_.find(dkey);
    delegation_known = d != delegations_.end() && d->second > now_ms;
  }
  if (!delegation_known) DFRP_RETURN_IF_ERROR(VerifyDelegation(r.sender, network_id_, now_ms));
  DFRP_RETURN_IF_ERROR(VerifyRecordSignature(r, network_id_));
  core::MutexLock lock(&mu_);
  if (!delegation_known) {
    if (delegations_.size() >= 4096) delegations_.clear();
    delegations_[dkey] = WireMs(r.sender.expiry_unix_ms);
  }
  auto it = peers_.find(r.sender.wallet);
  if (it != peers_.end() && it->second.record.seq >= r.seq) return OfferOutcome::kStale;
  const bool known = it != peers_.end();
  Peer& p = peers_[r.sender.wallet];
  // A new URL or node key must answer under the record's key before it counts as alive.
  if (known && (p.record.url != r.url || p.record.sender.node != r.sender.node)) {
    p.state = PeerState::kUnverified;
    p.last_answer_ms = 0;
  }
  p.record = std::move(r);
  p.wire = std::string(wire);
  changed_[p.record.sender.wallet] = ++changes_;
  if (peers_.size() > opt_.capacity) {
    // Room is made from what this node never heard answer (or saw die) first, soonest to
    // expire first: records from gossip alone cannot push out the peers that answered.
    auto rank = [&](const Peer& p) {
      const bool kept =
          std::find(opt_.keep.begin(), opt_.keep.end(), p.record.sender.wallet) != opt_.keep.end();
      return std::make_tuple(kept, p.state == PeerState::kAlive || p.state == PeerState::kSuspect,
                             p.record.expiry_unix_ms);
    };
    auto worst = std::min_element(peers_.begin(), peers_.end(), [&](const auto& a, const auto& b) {
      return rank(a.second) < rank(b.second);
    });
    const bool evicted_new = worst->first == p.record.sender.wallet;
    changed_.erase(worst->first);
    peers_.erase(worst);
    if (evicted_new) return OfferOutcome::kStale;
  }
  return known ? OfferOutcome::kNewer : OfferOutcome::kNew;
}

void PeerTable::Answered(const ledger::KeyBytes& wallet, int64_t now_ms, double rtt_ms) {
  core::MutexLock lock(&mu_);
  auto it = peers_.find(wallet);
  if (it == peers_.end()) return;
  if (rtt_ms >= 0 && std::isfinite(rtt_ms)) {
    double& r = it->second.rtt_ms;
    r = r < 0 ? rtt_ms : r + (rtt_ms - r) / 8;
  }
  it->second.state = PeerState::kAlive;
  it->second.last_answer_ms = now_ms;
  it->second.failures = 0;
  ++it->second.answers_total;
}

void PeerTable::Failed(const ledger::KeyBytes& wallet, int64_t now_ms) {
  core::MutexLock lock(&mu_);
  auto it = peers_.find(wallet);
  if (it == peers_.end()) return;
  Peer& p = it->second;
  ++p.failures;
  ++p.failures_total;
  if (p.state == PeerState::kAlive) p.state = PeerState::kSuspect;
  if (p.state == PeerState::kSuspect && now_ms - p.last_answer_ms > opt_.suspect_timeout_ms)
    p.state = PeerState::kDead;
}

void PeerTable::AnsweredIndirectly(const ledger::KeyBytes& wallet, int64_t now_ms) {
  core::MutexLock lock(&mu_);
  auto it = peers_.find(wallet);
  if (it == peers_.end()) return;
  Peer& p = it->second;
  if (p.state != PeerState::kSuspect && p.state != PeerState::kDead) return;
  p.state = PeerState::kAlive;
  p.last_answer_ms = std::max(p.last_answer_ms, now_ms);
  p.failures = 0;
}

void PeerTable::Attempted(const ledger::KeyBytes& wallet, int64_t now_ms) {
  core::MutexLock lock(&mu_);
  if (auto it = peers_.find(wallet); it != peers_.end()) it->second.last_attempt_ms = now_ms;
}

size_t PeerTable::Tick(int64_t now_ms) {
  core::MutexLock lock(&mu_);
  size_t dropped = 0;
  for (auto it = peers_.begin(); it != peers_.end();) {
    Peer& p = it->second;
    if (WireMs(p.record.expiry_unix_ms) <= now_ms) {
      changed_.erase(it->first);
      it = peers_.erase(it);
      ++dropped;
      continue;
    }
    if (p.state == PeerState::kSuspect && now_ms - p.last_answer_ms > opt_.suspect_timeout_ms)
      p.state = PeerState::kDead;
    ++it;
  }
  return dropped;
}

std::vector<Peer> PeerTable::Snapshot() const {
  core::MutexLock lock(&mu_);
  std::vector<Peer> out;
  for (const auto& [k, p] : peers_) out.push_back(p);
  return out;
}

std::optional<Peer> PeerTable::Get(const ledger::KeyBytes& wallet) const {
  core::MutexLock lock(&mu_);
  auto it = peers_.find(wallet);
  if (it == peers_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> PeerTable::Wires(size_t max_bytes) const {
  core::MutexLock lock(&mu_);
  std::vector<std::pair<uint64_t, const Peer*>> order;
  // Only the records of peers this node heard answer under their key themselves: a forged
  // or unreachable record goes no further than the nodes it was sent to.
  for (const auto& [k, p] : peers_)
    if (p.state == PeerState::kAlive) order.emplace_back(changed_.at(k), &p);
  std::sort(order.begin(), order.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> out;
  size_t used = 0;
  for (const auto& [n, p] : order) {
    if (used + p->wire.size() + 4 > max_bytes) break;
    used += p->wire.size() + 4;
    out.push_back(p->wire);
  }
  return out;
}

size_t PeerTable::size() const {
  core::MutexLock lock(&mu_);
  return peers_.size();
}

std::string EncodeRecordList(const std::vector<std::string>& wires) {
  std::string out;
  PutBe(&out, std::min<size_t>(wires.size(), 0xffff), 2);
  for (size_t i = 0; i < wires.size() && i < 0xffff; ++i) {
    PutBe(&out, wires[i].size(), 4);
    out.append(wires[i]);
  }
  return out;
}

Result<std::vector<std::string_view>> DecodeRecordList(std::string_view body) {
  Reader rd(body, "record list");
  uint64_t n = 0;
  DFRP_RETURN_IF_ERROR(rd.Be(&n, 2, "count"));
  std::vector<std::string_view> out;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t len = 0;
    DFRP_RETURN_IF_ERROR(rd.Be(&len, 4, "record length"));
    if (len > kMaxRecordBytes)
      return Err(rd.Bad("record length", fmt::format("{} is over {}", len, kMaxRecordBytes)));
    std::string_view rec;
    DFRP_RETURN_IF_ERROR(rd.Bytes(len, &rec, "record"));
    out.push_back(rec);
  }
  DFRP_RETURN_IF_ERROR(rd.End());
  return out;
}

}  // namespace dfrp::mesh
