#include "dfrp/ledger/messages.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "dfrp/ledger/wire.h"
#include "dfrp/wallet/address.h"

namespace dfrp::ledger {

using core::Err;
using core::Result;
using core::Status;
namespace bls = crypto::bls;

using wire::PutArray;
using wire::PutBe;
using wire::Reader;

namespace {

Status ReadStorageTerms(Reader& r, StorageTerms* t) {
  std::array<uint8_t, 16> id{};
  DFRP_RETURN_IF_ERROR(r.Array(&id, "terms.shard_id"));
  t->shard_id.bytes = id;
  DFRP_RETURN_IF_ERROR(r.Array(&t->root, "terms.root"));
  uint64_t v = 0;
  DFRP_RETURN_IF_ERROR(r.Be(&t->size, 8, "terms.size"));
  if (t->size == 0) return r.Bad("terms.size", "must be more than 0");
  DFRP_RETURN_IF_ERROR(r.Be(&v, 4, "terms.leaf_size"));
  t->leaf_size = static_cast<uint32_t>(v);
  if (t->leaf_size == 0) return r.Bad("terms.leaf_size", "must be more than 0");
  DFRP_RETURN_IF_ERROR(r.Be(&v, 4, "terms.periods"));
  t->periods = static_cast<uint32_t>(v);
  if (t->periods == 0 || t->periods > kMaxEscrowPeriods)
    return r.Bad("terms.periods", fmt::format("{} is not 1 to {}", v, kMaxEscrowPeriods));
  DFRP_RETURN_IF_ERROR(r.Be(&v, 4, "terms.period_seconds"));
  t->period_seconds = static_cast<uint32_t>(v);
  if (t->period_seconds == 0) return r.Bad("terms.period_seconds", "must be more than 0");
  DFRP_RETURN_IF_ERROR(r.Be(&t->start_unix, 8, "terms.start"));
  // The last period must end inside the range every clock reading (milliseconds) has.
  constexpr uint64_t kMaxSeconds = (uint64_t{1} << 62) / 1000;
  if (t->start_unix > kMaxSeconds ||
      kMaxSeconds - t->start_unix < uint64_t{t->periods} * t->period_seconds)
    return r.Bad("terms.start", "the escrow would end past the year 146 million");
  DFRP_RETURN_IF_ERROR(r.Be(&v, 4, "terms.challenges"));
  t->challenges = static_cast<uint32_t>(v);
  if (t->challenges == 0 || t->challenges > kMaxEscrowChallenges)
    return r.Bad("terms.challenges", fmt::format("{} is not 1 to {}", v, kMaxEscrowChallenges));
  return Status::OK();
}

Status ReadReadTerms(Reader& r, ReadTerms* t) {
  DFRP_RETURN_IF_ERROR(r.Be(&t->price_per_mib, 8, "read_terms.price_per_mib"));
  if (t->price_per_mib == 0) return r.Bad("read_terms.price_per_mib", "must be more than 0");
  DFRP_RETURN_IF_ERROR(r.Be(&t->end_unix, 8, "read_terms.end"));
  // Its close (end + grace, in milliseconds) must stay inside every clock reading's range.
  constexpr uint64_t kMaxSeconds = (uint64_t{1} << 62) / 1000;
  if (t->end_unix == 0 || t->end_unix > kMaxSeconds)
    return r.Bad("read_terms.end", fmt::format("{} is not a Unix time in seconds", t->end_unix));
  return Status::OK();
}

Status ReadJobTerms(Reader& r, JobTerms* t) {
  DFRP_RETURN_IF_ERROR(r.Array(&t->job_id, "job_terms.job_id"));
  DFRP_RETURN_IF_ERROR(r.Array(&t->verifier, "job_terms.verifier"));
  if (t->has_verifier()) DFRP_RETURN_IF_ERROR(wire::CheckKey(t->verifier, r, "job_terms.verifier"));
  DFRP_RETURN_IF_ERROR(r.Be(&t->price, 8, "job_terms.price"));
  if (t->price == 0) return r.Bad("job_terms.price", "must be more than 0");
  DFRP_RETURN_IF_ERROR(r.Be(&t->settle_unix, 8, "job_terms.settle"));
  constexpr uint64_t kMaxSeconds = (uint64_t{1} << 62) / 1000;
  if (t->settle_unix == 0 || t->settle_unix > kMaxSeconds)
    return r.Bad("job_terms.settle",
                 fmt::format("{} is not a Unix time in seconds", t->settle_unix));
  DFRP_RETURN_IF_ERROR(r.Be(&t->collateral, 8, "job_terms.collateral"));
  if (t->collateral > 0 && !t->has_verifier())
    return r.Bad("job_terms.collateral",
                 "a job with no verifier cannot be disputed, so it takes no collateral");
  if (t->collateral > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    return r.Bad("job_terms.collateral", "past 2^63 - 1");
  return Status::OK();
}

// Reads an order's fields (after its prefix).
Status ReadOrderFields(Reader& r, Order* o) {
  uint64_t kind = 0;
  DFRP_RETURN_IF_ERROR(r.Be(&kind, 1, "kind"));
  if (kind != static_cast<uint64_t>(OrderKind::kTransfer) &&
      kind != static_cast<uint64_t>(OrderKind::kEscrowOpen) &&
      kind != static_cast<uint64_t>(OrderKind::kReadEscrowOpen) &&
      kind != static_cast<uint64_t>(OrderKind::kJobEscrowOpen) &&
      kind != static_cast<uint64_t>(OrderKind::kJobCollateral))
    return r.Bad("kind", fmt::format("{} is not an order kind (1: transfer, 2: escrow_open, 3: "
                                     "read_escrow_open, 4: job_escrow_open, 5: job_collateral)",
                                     kind));
  o->kind = static_cast<OrderKind>(kind);
  DFRP_RETURN_IF_ERROR(r.Array(&o->sender, "sender"));
  DFRP_RETURN_IF_ERROR(wire::CheckKey(o->sender, r, "sender"));
  DFRP_RETURN_IF_ERROR(r.Be(&o->seq, 8, "seq"));
  DFRP_RETURN_IF_ERROR(r.Be(&o->fee, 8, "fee"));
  if (o->opens_escrow()) {
    EscrowOpen& e = o->escrow;
    DFRP_RETURN_IF_ERROR(r.Array(&e.provider, "escrow.provider"));
    DFRP_RETURN_IF_ERROR(wire::CheckKey(e.provider, r, "escrow.provider"));
    DFRP_RETURN_IF_ERROR(r.Be(&e.amount, 8, "escrow.amount"));
    if (e.amount == 0) return r.Bad("escrow.amount", "must be more than 0");
    if (o->kind == OrderKind::kEscrowOpen)
      DFRP_RETURN_IF_ERROR(ReadStorageTerms(r, &e.terms));
    else if (o->kind == OrderKind::kReadEscrowOpen)
      DFRP_RETURN_IF_ERROR(ReadReadTerms(r, &e.read));
    else
      DFRP_RETURN_IF_ERROR(ReadJobTerms(r, &e.job));
    if (o->kind == OrderKind::kJobEscrowOpen && e.job.price > e.amount)
      return r.Bad("job_terms.price",
                   fmt::format("{} is more than the escrow's amount {}", e.job.price, e.amount));
    DFRP_RETURN_IF_ERROR(r.Array(&e.acceptance, "escrow.acceptance"));
    DFRP_RETURN_IF_ERROR(wire::CheckSig(e.acceptance, r, "escrow.acceptance"));
    return Status::OK();
  }
  if (o->kind == OrderKind::kJobCollateral) {
    DFRP_RETURN_IF_ERROR(r.Array(&o->collateral.escrow_id, "collateral.escrow_id"));
    DFRP_RETURN_IF_ERROR(r.Be(&o->collateral.amount, 8, "collateral.amount"));
    if (o->collateral.amount == 0) return r.Bad("collateral.amount", "must be more than 0");
    return Status::OK();
  }
  DFRP_RETURN_IF_ERROR(r.Array(&o->transfer.to, "transfer.to"));
  DFRP_RETURN_IF_ERROR(wire::CheckKey(o->transfer.to, r, "transfer.to"));
  DFRP_RETURN_IF_ERROR(r.Be(&o->transfer.amount, 8, "transfer.amount"));
  if (o->transfer.amount == 0) return r.Bad("transfer.amount", "must be more than 0");
  uint64_t memo_len = 0;
  DFRP_RETURN_IF_ERROR(r.Be(&memo_len, 2, "transfer.memo length"));
  if (memo_len > kMaxMemoBytes)
    return r.Bad("transfer.memo", fmt::format("{} bytes, more than {}", memo_len, kMaxMemoBytes));
  std::string_view memo;
  DFRP_RETURN_IF_ERROR(r.Bytes(memo_len, &memo, "transfer.memo"));
  o->transfer.memo.assign(memo);
  return Status::OK();
}

}  // namespace

std::string AddressOfKey(const KeyBytes& k) {
  if (k == kCommitteeAccount) return "committee";
  auto key = KeyFrom(k);
  return key ? wallet::AddressOf(*key) : core::ToHex(k);
}

Result<bls::PublicKey> KeyFrom(const KeyBytes& k) {
  return bls::PublicKey::FromBytes(std::as_bytes(std::span(k)));
}

Result<bls::Signature> SigFrom(const SigBytes& s) {
  return bls::Signature::FromBytes(std::as_bytes(std::span(s)));
}

std::string_view OrderKindName(OrderKind k) {
  switch (k) {
    case OrderKind::kTransfer:
      return "transfer";
    case OrderKind::kEscrowOpen:
      return "escrow_open";
    case OrderKind::kReadEscrowOpen:
      return "read_escrow_open";
    case OrderKind::kJobEscrowOpen:
      return "job_escrow_open";
    case OrderKind::kJobCollateral:
      return "job_collateral";
  }
  return "unknown";
}

std::string SignedPrefix(std::string_view tag, const crypto::Hash& network_id, uint64_t epoch) {
  std::string out;
  PutBe(&out, tag.size(), 1);
  out.append(tag);
  PutBe(&out, kMessageVersion, 2);
  PutArray(&out, network_id);
  PutBe(&out, epoch, 8);
  return out;
}

std::string OrderSigningBytes(const Order& o, const crypto::Hash& network_id) {
  std::string out = SignedPrefix(kOrderTag, network_id, o.epoch);
  PutBe(&out, static_cast<uint8_t>(o.kind), 1);
  PutArray(&out, o.sender);
  PutBe(&out, o.seq, 8);
  PutBe(&out, o.fee, 8);
  if (o.opens_escrow()) {
    PutArray(&out, o.escrow.provider);
    PutBe(&out, o.escrow.amount, 8);
    out += o.kind == OrderKind::kEscrowOpen       ? EncodeTerms(o.escrow.terms)
           : o.kind == OrderKind::kReadEscrowOpen ? EncodeReadTerms(o.escrow.read)
                                                  : EncodeJobTerms(o.escrow.job);
    PutArray(&out, o.escrow.acceptance);
    return out;
  }
  if (o.kind == OrderKind::kJobCollateral) {
    PutArray(&out, o.collateral.escrow_id);
    PutBe(&out, o.collateral.amount, 8);
    return out;
  }
  PutArray(&out, o.transfer.to);
  PutBe(&out, o.transfer.amount, 8);
  PutBe(&out, o.transfer.memo.size(), 2);
  out.append(o.transfer.memo);
  return out;
}

SignedOrder SignOrder(const Order& o, const bls::SecretKey& key, const crypto::Hash& network_id) {
  SignedOrder s;
  s.order = o;
  const std::string bytes = OrderSigningBytes(o, network_id);
  s.signature = key.Sign(core::AsBytes(bytes)).bytes();
  s.hash = crypto::Sha256Of(bytes);
  return s;
}

std::string EncodeSignedOrder(const SignedOrder& s, const crypto::Hash& network_id) {
  std::string out = OrderSigningBytes(s.order, network_id);
  PutArray(&out, s.signature);
  return out;
}

Result<SignedOrder> DecodeSignedOrder(std::string_view wire, const crypto::Hash& network_id) {
  if (wire.size() > kMaxOrderWireBytes)
    return Err(Status::InvalidArgument(
        fmt::format("order: {} bytes, more than {}", wire.size(), kMaxOrderWireBytes)));
  Reader r(wire, "order");
  SignedOrder s;
  DFRP_ASSIGN_OR_RETURN(s.order.epoch, wire::ReadPrefix(r, kOrderTag, network_id));
  DFRP_RETURN_IF_ERROR(ReadOrderFields(r, &s.order));
  const size_t signed_len = r.pos();
  DFRP_RETURN_IF_ERROR(r.Array(&s.signature, "signature"));
  DFRP_RETURN_IF_ERROR(r.End());
  DFRP_RETURN_IF_ERROR(wire::CheckSig(s.signature, r, "signature"));
  s.hash = crypto::Sha256Of(wire.substr(0, signed_len));
  return s;
}

Status VerifyOrderSignature(const SignedOrder& s, const crypto::Hash& network_id,
                            bls::GroupVerifier* verifier) {
  DFRP_ASSIGN_OR_RETURN(auto key, KeyFrom(s.order.sender));
  DFRP_ASSIGN_OR_RETURN(auto sig, SigFrom(s.signature));
  const std::string bytes = OrderSigningBytes(s.order, network_id);
  if (crypto::Sha256Of(bytes) != s.hash)
    return Status::InvalidArgument(
        fmt::format("order {}: the hash is not the order's", core::ToHex(s.hash)));
  if (!wire::VerifyOne(key, bytes, sig, verifier))
    return Status::Corruption(fmt::format(
        "order {}: the sender's signature does not verify (signed by another key, for another "
        "network or epoch, or altered)",
        core::ToHex(s.hash)));
  return Status::OK();
}

std::string VoteSigningBytes(const crypto::Hash& order_hash, uint64_t epoch,
                             const crypto::Hash& network_id) {
  std::string out = SignedPrefix(kVoteTag, network_id, epoch);
  PutArray(&out, order_hash);
  return out;
}

Vote SignVote(const crypto::Hash& order_hash, uint64_t epoch, uint32_t authority,
              const bls::SecretKey& key, const crypto::Hash& network_id) {
  Vote v;
  v.order_hash = order_hash;
  v.epoch = epoch;
  v.authority = authority;
  v.signature = key.Sign(core::AsBytes(VoteSigningBytes(order_hash, epoch, network_id))).bytes();
  return v;
}

std::string EncodeVote(const Vote& v) {
  std::string out;
  PutArray(&out, v.order_hash);
  PutBe(&out, v.epoch, 8);
  PutBe(&out, v.authority, 4);
  PutArray(&out, v.signature);
  return out;
}

Result<Vote> DecodeVote(std::string_view wire) {
  Reader r(wire, "vote");
  Vote v;
  uint64_t authority = 0;
  DFRP_RETURN_IF_ERROR(r.Array(&v.order_hash, "order hash"));
  DFRP_RETURN_IF_ERROR(r.Be(&v.epoch, 8, "epoch"));
  DFRP_RETURN_IF_ERROR(r.Be(&authority, 4, "authority"));
  v.authority = static_cast<uint32_t>(authority);
  DFRP_RETURN_IF_ERROR(r.Array(&v.signature, "signature"));
  DFRP_RETURN_IF_ERROR(r.End());
  DFRP_RETURN_IF_ERROR(wire::CheckSig(v.signature, r, "signature"));
  return v;
}

Result<Committee> Committee::Make(
    uint64_t epoch,
    const std::vector<std::pair<std::string, std::string>>& public_key_and_pop_hex) {
  if (public_key_and_pop_hex.empty() || public_key_and_pop_hex.size() > kMaxCommittee)
    return Err(Status::InvalidArgument(
        fmt::format("a committee has 1 to {} authorities, not {}: list them in economic.toml's "
                    "genesis.committee",
                    kMaxCommittee, public_key_and_pop_hex.size())));
  Committee c;
  c.epoch_ = epoch;
  for (size_t i = 0; i < public_key_and_pop_hex.size(); ++i) {
    const auto& [key_hex, pop_hex] = public_key_and_pop_hex[i];
    auto key = bls::PublicKey::FromHex(key_hex);
    if (!key)
      return Err(Status::InvalidArgument(
          fmt::format("committee member {}: public key: {}", i, key.error().message())));
    auto pop = bls::Signature::FromHex(pop_hex);
    if (!pop)
      return Err(Status::InvalidArgument(
          fmt::format("committee member {}: proof of possession: {}", i, pop.error().message())));
    auto proven = bls::VerifyPossession(*key, *pop);
    if (!proven)
      return Err(Status::Corruption(fmt::format(
          "committee member {}: the proof of possession does not verify for key {}", i, key_hex)));
    for (const auto& k : c.keys_)
      if (k.key() == proven->key())
        return Err(Status::InvalidArgument(
            fmt::format("committee member {}: the key {} is listed twice", i, key_hex)));
    c.keys_.push_back(std::move(*proven));
  }
  return c;
}

std::optional<size_t> Committee::IndexOf(const KeyBytes& k) const {
  for (size_t i = 0; i < keys_.size(); ++i)
    if (keys_[i].key().bytes() == k) return i;
  return std::nullopt;
}

Status VerifyVote(const Vote& v, const Committee& c, const crypto::Hash& network_id,
                  bls::GroupVerifier* verifier) {
  if (v.authority >= c.size())
    return Status::InvalidArgument(
        fmt::format("vote: authority {} is not in the committee of {}", v.authority, c.size()));
  if (v.epoch != c.epoch())
    return Status::InvalidArgument(
        fmt::format("vote: for epoch {}, the committee's is {}", v.epoch, c.epoch()));
  DFRP_ASSIGN_OR_RETURN(auto sig, SigFrom(v.signature));
  const std::string bytes = VoteSigningBytes(v.order_hash, v.epoch, network_id);
  if (!wire::VerifyOne(c.key(v.authority).key(), bytes, sig, verifier))
    return Status::Corruption(
        fmt::format("vote of authority {} for order {}: the signature does not verify", v.authority,
                    core::ToHex(v.order_hash)));
  return Status::OK();
}

Result<Certificate> MakeCertificate(const SignedOrder& order, const std::vector<Vote>& votes,
                                    const Committee& c) {
  DFRP_ASSIGN_OR_RETURN(wire::Quorum q, wire::AggregateVotes(order.hash, votes, c, c.quorum()));
  Certificate cert;
  cert.order = order;
  cert.epoch = q.epoch;
  cert.signers = std::move(q.signers);
  cert.aggregate = q.aggregate;
  return cert;
}

std::string EncodeCertificate(const Certificate& c, const crypto::Hash& network_id) {
  const std::string order = EncodeSignedOrder(c.order, network_id);
  std::string out;
  PutBe(&out, order.size(), 4);
  out += order;
  wire::PutQuorum(&out, {c.epoch, c.signers, c.aggregate});
  return out;
}

Result<Certificate> DecodeCertificate(std::string_view wire, const crypto::Hash& network_id) {
  DFRP_ASSIGN_OR_RETURN(
      auto parts,
      wire::ReadCertified(wire, kMaxCertificateWireBytes, "certificate", "order",
                          [&](std::string_view b) { return DecodeSignedOrder(b, network_id); }));
  Certificate c;
  c.order = std::move(parts.first);
  wire::TakeQuorum(&c, std::move(parts.second));
  return c;
}

Status VerifyCertificate(const Certificate& cert, const Committee& c,
                         const crypto::Hash& network_id, bls::GroupVerifier* verifier,
                         bool order_signature_checked) {
  if (cert.order.order.epoch != cert.epoch)
    return Status::InvalidArgument(
        fmt::format("certificate: the order is for epoch {}, its signers' epoch is {}",
                    cert.order.order.epoch, cert.epoch));
  const wire::Quorum q{cert.epoch, cert.signers, cert.aggregate};
  // The cheap checks of the quorum first, then the order's signature, then the aggregate.
  if (cert.epoch != c.epoch() || cert.signers.size() != c.size())
    return wire::VerifyQuorum(q, cert.order.hash, c, network_id, "certificate", false);
  if (!order_signature_checked)
    DFRP_RETURN_IF_ERROR(VerifyOrderSignature(cert.order, network_id, verifier));
  return wire::VerifyQuorum(q, cert.order.hash, c, network_id,
                            fmt::format("certificate for order {}", core::ToHex(cert.order.hash)),
                            false, verifier);
}

std::string EncodeTerms(const StorageTerms& t) {
  std::string out;
  out.append(t.shard_id.AsBytes());
  PutArray(&out, t.root);
  PutBe(&out, t.size, 8);
  PutBe(&out, t.leaf_size, 4);
  PutBe(&out, t.periods, 4);
  PutBe(&out, t.period_seconds, 4);
  PutBe(&out, t.start_unix, 8);
  PutBe(&out, t.challenges, 4);
  return out;
}

Result<StorageTerms> DecodeTerms(std::string_view bytes) {
  Reader r(bytes, "terms");
  StorageTerms t;
  DFRP_RETURN_IF_ERROR(ReadStorageTerms(r, &t));
  DFRP_RETURN_IF_ERROR(r.End());
  return t;
}

std::string AcceptanceSigningBytes(const KeyBytes& payer, uint64_t seq, uint64_t epoch,
                                   const KeyBytes& provider, uint64_t amount,
                                   const StorageTerms& terms, const crypto::Hash& network_id) {
  std::string out = SignedPrefix(kAcceptTag, network_id, epoch);
  PutArray(&out, payer);
  PutBe(&out, seq, 8);
  PutArray(&out, provider);
  PutBe(&out, amount, 8);
  out += EncodeTerms(terms);
  return out;
}

std::string EncodeReadTerms(const ReadTerms& t) {
  std::string out;
  PutBe(&out, t.price_per_mib, 8);
  PutBe(&out, t.end_unix, 8);
  return out;
}

Result<ReadTerms> DecodeReadTerms(std::string_view bytes) {
  Reader r(bytes, "read terms");
  ReadTerms t;
  DFRP_RETURN_IF_ERROR(ReadReadTerms(r, &t));
  DFRP_RETURN_IF_ERROR(r.End());
  return t;
}

std::string ReadAcceptanceSigningBytes(const KeyBytes& payer, uint64_t seq, uint64_t epoch,
                                       const KeyBytes& provider, uint64_t amount,
                                       const ReadTerms& terms, const crypto::Hash& network_id) {
  std::string out = SignedPrefix(kReadAcceptTag, network_id, epoch);
  PutArray(&out, payer);
  PutBe(&out, seq, 8);
  PutArray(&out, provider);
  PutBe(&out, amount, 8);
  out += EncodeReadTerms(terms);
  return out;
}

std::string EncodeJobTerms(const JobTerms& t) {
  std::string out;
  PutArray(&out, t.job_id);
  PutArray(&out, t.verifier);
  PutBe(&out, t.price, 8);
  PutBe(&out, t.settle_unix, 8);
  PutBe(&out, t.collateral, 8);
  return out;
}

Result<JobTerms> DecodeJobTerms(std::string_view bytes) {
  Reader r(bytes, "job terms");
  JobTerms t;
  DFRP_RETURN_IF_ERROR(ReadJobTerms(r, &t));
  DFRP_RETURN_IF_ERROR(r.End());
  return t;
}

std::string JobAcceptanceSigningBytes(const KeyBytes& payer, uint64_t seq, uint64_t epoch,
                                      const KeyBytes& provider, uint64_t amount,
                                      const JobTerms& terms, const crypto::Hash& network_id) {
  std::string out = SignedPrefix(kJobAcceptTag, network_id, epoch);
  PutArray(&out, payer);
  PutBe(&out, seq, 8);
  PutArray(&out, provider);
  PutBe(&out, amount, 8);
  out += EncodeJobTerms(terms);
  return out;
}

Status VerifyAcceptance(const Order& o, const crypto::Hash& network_id) {
  DFRP_ASSIGN_OR_RETURN(auto key, KeyFrom(o.escrow.provider));
  DFRP_ASSIGN_OR_RETURN(auto sig, SigFrom(o.escrow.acceptance));
  const EscrowOpen& e = o.escrow;
  const std::string bytes = o.kind == OrderKind::kEscrowOpen
                                ? AcceptanceSigningBytes(o.sender, o.seq, o.epoch, e.provider,
                                                         e.amount, e.terms, network_id)
                            : o.kind == OrderKind::kReadEscrowOpen
                                ? ReadAcceptanceSigningBytes(o.sender, o.seq, o.epoch, e.provider,
                                                             e.amount, e.read, network_id)
                                : JobAcceptanceSigningBytes(o.sender, o.seq, o.epoch, e.provider,
                                                            e.amount, e.job, network_id);
  if (!bls::Verify(key, core::AsBytes(bytes), sig).ok())
    return Status::InvalidArgument(fmt::format(
        "{}: the provider's acceptance does not verify (signed for other terms, another payer, "
        "amount or sequence number, or by another key)",
        OrderKindName(o.kind)));
  return Status::OK();
}

// --- wire.h

namespace wire {

Status Reader::Be(uint64_t* v, int bytes, std::string_view field) {
  if (data_.size() - pos_ < static_cast<size_t>(bytes)) return Short(field);
  uint64_t r = 0;
  for (int i = 0; i < bytes; ++i) r = (r << 8) | static_cast<uint8_t>(data_[pos_ + i]);
  pos_ += static_cast<size_t>(bytes);
  *v = r;
  return Status::OK();
}

Status Reader::Bytes(size_t n, std::string_view* out, std::string_view field) {
  if (data_.size() - pos_ < n) return Short(field);
  *out = data_.substr(pos_, n);
  pos_ += n;
  return Status::OK();
}

Status Reader::End() const {
  if (pos_ != data_.size())
    return Status::InvalidArgument(
        fmt::format("{}: {} bytes after the last field", what_, data_.size() - pos_));
  return Status::OK();
}

Status Reader::Bad(std::string_view field, std::string_view why) const {
  return Status::InvalidArgument(fmt::format("{}: {}: {}", what_, field, why));
}

Status Reader::Short(std::string_view field) const {
  return Status::InvalidArgument(
      fmt::format("{}: truncated at {} (byte {} of {})", what_, field, pos_, data_.size()));
}

Result<uint64_t> ReadPrefix(Reader& r, std::string_view tag, const crypto::Hash& network_id) {
  uint64_t len = 0;
  DFRP_RETURN_IF_ERROR(r.Be(&len, 1, "tag length"));
  std::string_view got;
  DFRP_RETURN_IF_ERROR(r.Bytes(len, &got, "tag"));
  if (got != tag)
    return Err(r.Bad(
        "tag", fmt::format("is not '{}' (a message of another kind, {} bytes)", tag, got.size())));
  uint64_t version = 0;
  DFRP_RETURN_IF_ERROR(r.Be(&version, 2, "version"));
  if (version != kMessageVersion)
    return Err(r.Bad("version",
                     fmt::format("is {}; this dfrp reads version {}", version, kMessageVersion)));
  crypto::Hash net{};
  DFRP_RETURN_IF_ERROR(r.Array(&net, "network id"));
  if (net != network_id)
    return Err(r.Bad("network id", fmt::format("is {}, this node's network is {} (another "
                                               "genesis: the message is for another network)",
                                               core::ToHex(net), core::ToHex(network_id))));
  uint64_t epoch = 0;
  DFRP_RETURN_IF_ERROR(r.Be(&epoch, 8, "epoch"));
  return epoch;
}

Status CheckKey(const KeyBytes& k, const Reader& r, std::string_view field) {
  auto key = KeyFrom(k);
  if (!key) return r.Bad(field, key.error().message());
  return Status::OK();
}

Status CheckSig(const SigBytes& s, const Reader& r, std::string_view field) {
  auto sig = SigFrom(s);
  if (!sig) return r.Bad(field, sig.error().message());
  return Status::OK();
}

Result<Quorum> AggregateVotes(const crypto::Hash& item_hash, const std::vector<Vote>& votes,
                              const Committee& c, size_t need) {
  Quorum q;
  q.epoch = c.epoch();
  q.signers.assign(c.size(), false);
  std::vector<bls::Signature> sigs;
  for (const Vote& v : votes) {
    if (v.order_hash != item_hash)
      return Err(Status::InvalidArgument(fmt::format("a vote of authority {} is for {}, not {}",
                                                     v.authority, core::ToHex(v.order_hash),
                                                     core::ToHex(item_hash))));
    if (v.authority >= c.size() || v.epoch != c.epoch())
      return Err(Status::InvalidArgument(fmt::format(
          "a vote of authority {} (epoch {}) is not of this committee", v.authority, v.epoch)));
    if (q.signers[v.authority])
      return Err(Status::InvalidArgument(
          fmt::format("authority {} voted twice in the list", v.authority)));
    q.signers[v.authority] = true;
    DFRP_ASSIGN_OR_RETURN(auto sig, SigFrom(v.signature));
    sigs.push_back(std::move(sig));
  }
  if (sigs.size() < need)
    return Err(Status::InvalidArgument(
        fmt::format("{} votes, fewer than the quorum of {} (of {})", sigs.size(), need, c.size())));
  DFRP_ASSIGN_OR_RETURN(auto agg, bls::AggregateSignatures(sigs));
  q.aggregate = agg.bytes();
  return q;
}

std::string Bitmap(const std::vector<bool>& signers) {
  std::string bitmap((signers.size() + 7) / 8, '\0');
  for (size_t i = 0; i < signers.size(); ++i)
    if (signers[i]) bitmap[i / 8] = static_cast<char>(bitmap[i / 8] | (1 << (i % 8)));
  return bitmap;
}

void PutQuorum(std::string* out, const Quorum& q) {
  PutBe(out, q.epoch, 8);
  PutBe(out, q.signers.size(), 2);
  *out += Bitmap(q.signers);
  PutArray(out, q.aggregate);
}

Status ReadQuorum(Reader& r, Quorum* q) {
  DFRP_RETURN_IF_ERROR(r.Be(&q->epoch, 8, "epoch"));
  uint64_t n = 0;
  DFRP_RETURN_IF_ERROR(r.Be(&n, 2, "committee size"));
  if (n == 0 || n > kMaxCommittee)
    return r.Bad("committee size", fmt::format("{} is not 1 to {}", n, kMaxCommittee));
  std::string_view bitmap;
  DFRP_RETURN_IF_ERROR(r.Bytes((n + 7) / 8, &bitmap, "signers"));
  q->signers.assign(n, false);
  for (size_t i = 0; i < bitmap.size() * 8; ++i) {
    const bool set = (static_cast<uint8_t>(bitmap[i / 8]) >> (i % 8)) & 1;
    if (i >= n && set) return r.Bad("signers", "a bit past the committee size is set");
    if (i < n) q->signers[i] = set;
  }
  DFRP_RETURN_IF_ERROR(r.Array(&q->aggregate, "aggregate"));
  return CheckSig(q->aggregate, r, "aggregate");
}

bool VerifyOne(const bls::PublicKey& key, std::string_view message, const bls::Signature& sig,
               bls::GroupVerifier* verifier) {
  if (verifier) return verifier->Verify(key, core::AsBytes(message), sig);
  return bls::Verify(key, core::AsBytes(message), sig).ok();
}

Status VerifyQuorum(const Quorum& q, const crypto::Hash& item_hash, const Committee& c,
                    const crypto::Hash& network_id, std::string_view what, bool exact,
                    bls::GroupVerifier* verifier) {
  if (q.epoch != c.epoch())
    return Status::InvalidArgument(fmt::format(
        "{}: signed by the committee of epoch {}, this one is epoch {}", what, q.epoch, c.epoch()));
  if (q.signers.size() != c.size())
    return Status::InvalidArgument(fmt::format(
        "{}: a bitmap for {} authorities, the committee has {}", what, q.signers.size(), c.size()));
  std::vector<bls::ProvenPublicKey> keys;
  for (size_t i = 0; i < c.size(); ++i)
    if (q.signers[i]) keys.push_back(c.key(i));
  if (keys.size() < c.quorum())
    return Status::InvalidArgument(
        fmt::format("{}: {} signers, fewer than the quorum of {} (of {})", what, keys.size(),
                    c.quorum(), c.size()));
  if (exact && keys.size() != c.quorum())
    return Status::InvalidArgument(fmt::format(
        "{}: {} signers; exactly a quorum of {} must sign (so no signer can add a choice)", what,
        keys.size(), c.quorum()));
  DFRP_ASSIGN_OR_RETURN(auto agg, SigFrom(q.aggregate));
  const std::string bytes = VoteSigningBytes(item_hash, q.epoch, network_id);
  // With a verifier: the signers' keys summed (each proven, so no rogue key can cancel
  // another) make one (key, message, signature) triple for its batch; fast-aggregate-verify
  // is that same check.
  bool ok = false;
  if (verifier) {
    std::vector<bls::PublicKey> plain;
    for (const auto& k : keys) plain.push_back(k.key());
    auto sum = bls::AggregatePublicKeysUnchecked(plain);
    ok = sum && verifier->Verify(*sum, core::AsBytes(bytes), agg);
  } else {
    ok = bls::FastAggregateVerify(keys, core::AsBytes(bytes), agg).ok();
  }
  if (!ok)
    return Status::Corruption(fmt::format(
        "{}: the aggregate signature of its {} signers does not verify", what, keys.size()));
  return Status::OK();
}

}  // namespace wire

}  // namespace dfrp::ledger
