#include "dfrp/mesh/envelope.h"

#include <fmt/format.h>

#include <random>

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

Status CheckKind(std::string_view kind) {
  if (kind.empty() || kind.size() > kMaxKindBytes)
    return Status::InvalidArgument(
        fmt::format("envelope: a kind of {} bytes; it has 1 to {}", kind.size(), kMaxKindBytes));
  for (char c : kind)
    if (c < 0x21 || c > 0x7e)
      return Status::InvalidArgument("envelope: a kind of other than printable ASCII");
  return Status::OK();
}

// The part of an envelope after the delegation and before the signature.
void PutContent(std::string* out, const Envelope& e) {
  PutBe(out, e.kind.size(), 1);
  out->append(e.kind);
  PutArray(out, e.id);
  PutBe(out, e.expiry_unix_ms, 8);
  PutBe(out, e.body.size(), 4);
  out->append(e.body);
}

Status ReadDelegation(Reader& r, Delegation* d) {
  DFRP_RETURN_IF_ERROR(r.Array(&d->wallet, "wallet key"));
  DFRP_RETURN_IF_ERROR(ledger::wire::CheckKey(d->wallet, r, "wallet key"));
  DFRP_RETURN_IF_ERROR(r.Array(&d->node, "node key"));
  DFRP_RETURN_IF_ERROR(ledger::wire::CheckKey(d->node, r, "node key"));
  DFRP_RETURN_IF_ERROR(r.Be(&d->expiry_unix_ms, 8, "delegation expiry"));
  DFRP_RETURN_IF_ERROR(r.Array(&d->signature, "delegation signature"));
  return ledger::wire::CheckSig(d->signature, r, "delegation signature");
}

}  // namespace

std::string DelegationSigningBytes(const Delegation& d, const crypto::Hash& network_id) {
  std::string out = ledger::SignedPrefix(kDelegationTag, network_id, 0);
  PutArray(&out, d.wallet);
  PutArray(&out, d.node);
  PutBe(&out, d.expiry_unix_ms, 8);
  return out;
}

Delegation SignDelegation(const bls::SecretKey& wallet, const bls::PublicKey& node,
                          uint64_t expiry_unix_ms, const crypto::Hash& network_id) {
  Delegation d;
  d.wallet = wallet.GetPublicKey().bytes();
  d.node = node.bytes();
  d.expiry_unix_ms = expiry_unix_ms;
  d.signature = wallet.Sign(core::AsBytes(DelegationSigningBytes(d, network_id))).bytes();
  return d;
}

std::string EncodeDelegation(const Delegation& d) {
  std::string out;
  PutArray(&out, d.wallet);
  PutArray(&out, d.node);
  PutBe(&out, d.expiry_unix_ms, 8);
  PutArray(&out, d.signature);
  return out;
}

Result<Delegation> DecodeDelegation(std::string_view wire) {
  Reader r(wire, "delegation");
  Delegation d;
  DFRP_RETURN_IF_ERROR(ReadDelegation(r, &d));
  DFRP_RETURN_IF_ERROR(r.End());
  return d;
}

Status VerifyDelegation(const Delegation& d, const crypto::Hash& network_id, int64_t now_ms) {
  if (d.node == d.wallet)
    return Status::InvalidArgument(
        "delegation: the node key is the wallet's own key (a node key must be another, hot key)");
  if (WireMs(d.expiry_unix_ms) <= now_ms)
    return Status::InvalidArgument(fmt::format(
        "delegation of node key {}…: expired at {} ms (Unix), the clock reads {}: the operator "
        "signs a new one (dfrp-wallet delegate)",
        core::ToHex(d.node).substr(0, 16), d.expiry_unix_ms, now_ms));
  if (d.expiry_unix_ms - static_cast<uint64_t>(now_ms) > static_cast<uint64_t>(kMaxDelegationMs))
    return Status::InvalidArgument(
        fmt::format("delegation of node key {}…: it lasts {} days, more than the {} allowed",
                    core::ToHex(d.node).substr(0, 16),
                    (d.expiry_unix_ms - static_cast<uint64_t>(now_ms)) / 86'400'000,
                    kMaxDelegationMs / 86'400'000));
  DFRP_ASSIGN_OR_RETURN(auto wallet, ledger::KeyFrom(d.wallet));
  DFRP_ASSIGN_OR_RETURN(auto sig, ledger::SigFrom(d.signature));
  if (!bls::Verify(wallet, core::AsBytes(DelegationSigningBytes(d, network_id)), sig).ok())
    return Status::Corruption(fmt::format(
        "delegation of node key {}…: the wallet's signature does not verify (another wallet, "
        "network or expiry, or altered)",
        core::ToHex(d.node).substr(0, 16)));
  return Status::OK();
}

std::string EnvelopeSigningBytes(const Envelope& e, const crypto::Hash& network_id) {
  std::string out = ledger::SignedPrefix(kEnvelopeTag, network_id, 0);
  PutArray(&out, e.sender.wallet);
  PutContent(&out, e);
  return out;
}

MessageId NewMessageId() {
  static thread_local std::random_device rd;  // the kernel's random bytes
  MessageId id;
  for (size_t i = 0; i < id.size(); i += 4) {
    const uint32_t v = rd();
    for (size_t k = 0; k < 4; ++k) id[i + k] = static_cast<uint8_t>(v >> (8 * k));
  }
  return id;
}

Result<Envelope> SignEnvelope(const Delegation& sender, const bls::SecretKey& node_key,
                              std::string kind, std::string body, uint64_t expiry_unix_ms,
                              const crypto::Hash& network_id, const MessageId& id) {
  DFRP_RETURN_IF_ERROR(CheckKind(kind));
  if (node_key.GetPublicKey().bytes() != sender.node)
    return Err(
        Status::InvalidArgument("envelope: the signing key is not the delegation's node key"));
  Envelope e;
  e.sender = sender;
  e.kind = std::move(kind);
  e.id = id;
  e.expiry_unix_ms = expiry_unix_ms;
  e.body = std::move(body);
  const size_t size = kDelegationBytes + 1 + e.kind.size() + 16 + 8 + 4 + e.body.size() + 96;
  if (size > kMaxEnvelopeBytes)
    return Err(Status::InvalidArgument(fmt::format(
        "envelope: {} bytes with its body of {}, more than {}: send large items by hash", size,
        e.body.size(), kMaxEnvelopeBytes)));
  e.signature = node_key.Sign(core::AsBytes(EnvelopeSigningBytes(e, network_id))).bytes();
  return e;
}

std::string EncodeEnvelope(const Envelope& e) {
  std::string out = EncodeDelegation(e.sender);
  PutContent(&out, e);
  PutArray(&out, e.signature);
  return out;
}

Result<Envelope> DecodeEnvelope(std::string_view wire) {
  if (wire.size() > kMaxEnvelopeBytes)
    return Err(Status::InvalidArgument(
        fmt::format("envelope: {} bytes, more than {}", wire.size(), kMaxEnvelopeBytes)));
  Reader r(wire, "envelope");
  Envelope e;
  DFRP_RETURN_IF_ERROR(ReadDelegation(r, &e.sender));
  uint64_t kind_len = 0, body_len = 0;
  DFRP_RETURN_IF_ERROR(r.Be(&kind_len, 1, "kind length"));
  std::string_view kind, body;
  DFRP_RETURN_IF_ERROR(r.Bytes(kind_len, &kind, "kind"));
  DFRP_RETURN_IF_ERROR(CheckKind(kind));
  e.kind = std::string(kind);
  DFRP_RETURN_IF_ERROR(r.Array(&e.id, "id"));
  DFRP_RETURN_IF_ERROR(r.Be(&e.expiry_unix_ms, 8, "expiry"));
  DFRP_RETURN_IF_ERROR(r.Be(&body_len, 4, "body length"));
  DFRP_RETURN_IF_ERROR(r.Bytes(body_len, &body, "body"));
  e.body = std::string(body);
  DFRP_RETURN_IF_ERROR(r.Array(&e.signature, "signature"));
  DFRP_RETURN_IF_ERROR(ledger::wire::CheckSig(e.signature, r, "signature"));
  DFRP_RETURN_IF_ERROR(r.End());
  return e;
}

const char* DropName(Drop d) {
  switch (d) {
    case Drop::kOversized:
      return "oversized";
    case Drop::kMalformed:
      return "malformed";
    case Drop::kForged:
      return "forged";
    case Drop::kExpired:
      return "expired";
    case Drop::kClock:
      return "clock";
    case Drop::kReplayed:
      return "replayed";
  }
  return "?";
}

EnvelopeGate::EnvelopeGate(const crypto::Hash& network_id, core::Clock* clock, GateOptions opt)
    : network_id_(network_id), clock_(clock), opt_(opt) {}

Result<Envelope> EnvelopeGate::Admit(std::string_view wire, Drop* why) {
  Drop reason = Drop::kMalformed;
  auto r = Check(wire, &reason);
  core::MutexLock lock(&mu_);
  if (r) {
    ++admitted_;
  } else {
    ++dropped_[static_cast<size_t>(reason)];
    if (why) *why = reason;
  }
  return r;
}

Result<Envelope> EnvelopeGate::Check(std::string_view wire, Drop* why) {
  if (wire.size() > opt_.max_bytes) {
    *why = Drop::kOversized;
    return Err(Status::InvalidArgument(
        fmt::format("envelope: {} bytes, more than {}", wire.size(), opt_.max_bytes)));
  }
  auto decoded = DecodeEnvelope(wire);
  if (!decoded) {
    *why = Drop::kMalformed;
    return decoded;
  }
  Envelope& e = *decoded;
  const int64_t now = clock_->NowUnixMillis();
  const int64_t expiry = WireMs(e.expiry_unix_ms);
  if (expiry <= now - opt_.skew_ms) {
    *why = Drop::kExpired;
    return Err(Status::InvalidArgument(
        fmt::format("envelope {} ({}): expired at {} ms (Unix), the clock reads {}",
                    core::ToHex(e.id), e.kind, expiry, now)));
  }
  if (expiry > now + opt_.max_ttl_ms + opt_.skew_ms) {
    *why = Drop::kClock;
    return Err(Status::InvalidArgument(fmt::format(
        "envelope {} ({}): it expires {} ms ahead, more than the {} ms allowed (the sender's "
        "clock is off, or it asks to be kept too long)",
        core::ToHex(e.id), e.kind, expiry - now, opt_.max_ttl_ms + opt_.skew_ms)));
  }
  std::string key(ledger::wire::View(e.sender.node));
  key.append(ledger::wire::View(e.id));
  const std::string delegation_hash = [&] {
    const crypto::Hash h = crypto::Sha256Of(EncodeDelegation(e.sender));
    return std::string(ledger::wire::View(h));
  }();
  bool delegation_known = false;
  {
    core::MutexLock lock(&mu_);
    if (seen_.contains(key)) {
      *why = Drop::kReplayed;
      return Err(Status::InvalidArgument(
          fmt::format("envelope {} ({}) of node key {}…: seen before (a replay)", core::ToHex(e.id),
                      e.kind, core::ToHex(e.sender.node).substr(0, 16))));
    }
    auto d = delegations_.find(delegation_hash);
    delegation_known = d != delegations_.end() && d->second > now;
  }
  if (!delegation_known) {
    if (Status s = VerifyDelegation(e.sender, network_id_, now); !s.ok()) {
      *why = s.IsCorruption() ? Drop::kForged : Drop::kExpired;
      if (s.code() == Status::Code::kInvalidArgument && e.sender.node == e.sender.wallet)
        *why = Drop::kMalformed;
      return Err(s.WithContext(fmt::format("envelope {} ({})", core::ToHex(e.id), e.kind)));
    }
  }
  DFRP_ASSIGN_OR_RETURN(auto node_key, ledger::KeyFrom(e.sender.node));
  DFRP_ASSIGN_OR_RETURN(auto sig, ledger::SigFrom(e.signature));
  if (!bls::Verify(node_key, core::AsBytes(EnvelopeSigningBytes(e, network_id_)), sig).ok()) {
    *why = Drop::kForged;
    return Err(Status::Corruption(fmt::format(
        "envelope {} ({}): the node key's signature does not verify (altered, or signed for "
        "another wallet or network)",
        core::ToHex(e.id), e.kind)));
  }
  core::MutexLock lock(&mu_);
  if (!delegation_known) {
    if (delegations_.size() >= 4096) delegations_.clear();
    delegations_[delegation_hash] = WireMs(e.sender.expiry_unix_ms);
  }
  const int64_t forget_at = expiry + opt_.skew_ms;
  if (!seen_.emplace(key, forget_at).second) {  // another thread admitted it meanwhile
    *why = Drop::kReplayed;
    return Err(Status::InvalidArgument(
        fmt::format("envelope {} ({}): seen before (a replay)", core::ToHex(e.id), e.kind)));
  }
  order_.emplace_back(forget_at, std::move(key));
  ForgetLocked(now);
  return std::move(*decoded);
}

void EnvelopeGate::ForgetLocked(int64_t now_ms) {
  // The front is the oldest admitted; an entry past its time that waits behind a younger one
  // is harmless (its envelope is refused as expired anyway) and goes when it reaches the front.
  while (!order_.empty() && (order_.front().first <= now_ms || seen_.size() > opt_.seen_capacity)) {
    seen_.erase(order_.front().second);
    order_.pop_front();
  }
}

uint64_t EnvelopeGate::admitted() const {
  core::MutexLock lock(&mu_);
  return admitted_;
}

uint64_t EnvelopeGate::dropped(Drop d) const {
  core::MutexLock lock(&mu_);
  return dropped_[static_cast<size_t>(d)];
}

size_t EnvelopeGate::remembered() const {
  core::MutexLock lock(&mu_);
  return seen_.size();
}

}  // namespace dfrp::mesh
