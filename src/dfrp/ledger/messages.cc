#include "dfrp/ledger/messages.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace dfrp::ledger {

using core::Err;
using core::Result;
using core::Status;
namespace bls = crypto::bls;

namespace {

void PutBe(std::string* out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

template <size_t N>
void PutArray(std::string* out, const std::array<uint8_t, N>& a) {
  out->append(reinterpret_cast<const char*>(a.data()), N);
}

// Reads fields from outside bytes; every read checks the remaining length first and names
// the field it failed on.
class Reader {
 public:
  Reader(std::string_view data, std::string_view what) : data_(data), what_(what) {}

  Status Be(uint64_t* v, int bytes, std::string_view field) {
    if (data_.size() - pos_ < static_cast<size_t>(bytes)) return Short(field);
    uint64_t r = 0;
    for (int i = 0; i < bytes; ++i) r = (r << 8) | static_cast<uint8_t>(data_[pos_ + i]);
    pos_ += static_cast<size_t>(bytes);
    *v = r;
    return Status::OK();
  }
  template <size_t N>
  Status Array(std::array<uint8_t, N>* a, std::string_view field) {
    if (data_.size() - pos_ < N) return Short(field);
    std::memcpy(a->data(), data_.data() + pos_, N);
    pos_ += N;
    return Status::OK();
  }
  Status Bytes(size_t n, std::string_view* out, std::string_view field) {
    if (data_.size() - pos_ < n) return Short(field);
    *out = data_.substr(pos_, n);
    pos_ += n;
    return Status::OK();
  }
  Status End() const {
    if (pos_ != data_.size())
      return Status::InvalidArgument(
          fmt::format("{}: {} bytes after the last field", what_, data_.size() - pos_));
    return Status::OK();
  }
  size_t pos() const { return pos_; }
  Status Bad(std::string_view field, std::string_view why) const {
    return Status::InvalidArgument(fmt::format("{}: {}: {}", what_, field, why));
  }

 private:
  Status Short(std::string_view field) const {
    return Status::InvalidArgument(
        fmt::format("{}: truncated at {} (byte {} of {})", what_, field, pos_, data_.size()));
  }
  std::string_view data_;
  std::string_view what_;
  size_t pos_ = 0;
};

// Reads and checks a SignedPrefix with `tag`; returns the epoch.
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

// Reads an order's fields (after its prefix).
Status ReadOrderFields(Reader& r, Order* o) {
  uint64_t kind = 0;
  DFRP_RETURN_IF_ERROR(r.Be(&kind, 1, "kind"));
  if (kind != static_cast<uint64_t>(OrderKind::kTransfer))
    return r.Bad("kind", fmt::format("{} is not an order kind (1: transfer)", kind));
  o->kind = static_cast<OrderKind>(kind);
  DFRP_RETURN_IF_ERROR(r.Array(&o->sender, "sender"));
  DFRP_RETURN_IF_ERROR(CheckKey(o->sender, r, "sender"));
  DFRP_RETURN_IF_ERROR(r.Be(&o->seq, 8, "seq"));
  DFRP_RETURN_IF_ERROR(r.Be(&o->fee, 8, "fee"));
  DFRP_RETURN_IF_ERROR(r.Array(&o->transfer.to, "transfer.to"));
  DFRP_RETURN_IF_ERROR(CheckKey(o->transfer.to, r, "transfer.to"));
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
  DFRP_ASSIGN_OR_RETURN(s.order.epoch, ReadPrefix(r, kOrderTag, network_id));
  DFRP_RETURN_IF_ERROR(ReadOrderFields(r, &s.order));
  const size_t signed_len = r.pos();
  DFRP_RETURN_IF_ERROR(r.Array(&s.signature, "signature"));
  DFRP_RETURN_IF_ERROR(r.End());
  DFRP_RETURN_IF_ERROR(CheckSig(s.signature, r, "signature"));
  s.hash = crypto::Sha256Of(wire.substr(0, signed_len));
  return s;
}

Status VerifyOrderSignature(const SignedOrder& s, const crypto::Hash& network_id) {
  DFRP_ASSIGN_OR_RETURN(auto key, KeyFrom(s.order.sender));
  DFRP_ASSIGN_OR_RETURN(auto sig, SigFrom(s.signature));
  const std::string bytes = OrderSigningBytes(s.order, network_id);
  if (crypto::Sha256Of(bytes) != s.hash)
    return Status::InvalidArgument(
        fmt::format("order {}: the hash is not the order's", core::ToHex(s.hash)));
  Status v = bls::Verify(key, core::AsBytes(bytes), sig);
  if (!v.ok())
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
  DFRP_RETURN_IF_ERROR(CheckSig(v.signature, r, "signature"));
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

Status VerifyVote(const Vote& v, const Committee& c, const crypto::Hash& network_id) {
  if (v.authority >= c.size())
    return Status::InvalidArgument(
        fmt::format("vote: authority {} is not in the committee of {}", v.authority, c.size()));
  if (v.epoch != c.epoch())
    return Status::InvalidArgument(
        fmt::format("vote: for epoch {}, the committee's is {}", v.epoch, c.epoch()));
  DFRP_ASSIGN_OR_RETURN(auto sig, SigFrom(v.signature));
  const std::string bytes = VoteSigningBytes(v.order_hash, v.epoch, network_id);
  if (!bls::Verify(c.key(v.authority).key(), core::AsBytes(bytes), sig).ok())
    return Status::Corruption(
        fmt::format("vote of authority {} for order {}: the signature does not verify", v.authority,
                    core::ToHex(v.order_hash)));
  return Status::OK();
}

Result<Certificate> MakeCertificate(const SignedOrder& order, const std::vector<Vote>& votes,
                                    const Committee& c) {
  Certificate cert;
  cert.order = order;
  cert.epoch = c.epoch();
  cert.signers.assign(c.size(), false);
  std::vector<bls::Signature> sigs;
  for (const Vote& v : votes) {
    if (v.order_hash != order.hash)
      return Err(Status::InvalidArgument(
          fmt::format("a vote of authority {} is for order {}, not {}", v.authority,
                      core::ToHex(v.order_hash), core::ToHex(order.hash))));
    if (v.authority >= c.size() || v.epoch != c.epoch())
      return Err(Status::InvalidArgument(fmt::format(
          "a vote of authority {} (epoch {}) is not of this committee", v.authority, v.epoch)));
    if (cert.signers[v.authority])
      return Err(Status::InvalidArgument(
          fmt::format("authority {} voted twice in the list", v.authority)));
    cert.signers[v.authority] = true;
    DFRP_ASSIGN_OR_RETURN(auto sig, SigFrom(v.signature));
    sigs.push_back(std::move(sig));
  }
  if (sigs.size() < c.quorum())
    return Err(Status::InvalidArgument(fmt::format("{} votes, fewer than the quorum of {} (of {})",
                                                   sigs.size(), c.quorum(), c.size())));
  DFRP_ASSIGN_OR_RETURN(auto agg, bls::AggregateSignatures(sigs));
  cert.aggregate = agg.bytes();
  return cert;
}

std::string EncodeCertificate(const Certificate& c, const crypto::Hash& network_id) {
  const std::string order = EncodeSignedOrder(c.order, network_id);
  std::string out;
  PutBe(&out, order.size(), 4);
  out += order;
  PutBe(&out, c.epoch, 8);
  PutBe(&out, c.signers.size(), 2);
  std::string bitmap((c.signers.size() + 7) / 8, '\0');
  for (size_t i = 0; i < c.signers.size(); ++i)
    if (c.signers[i]) bitmap[i / 8] = static_cast<char>(bitmap[i / 8] | (1 << (i % 8)));
  out += bitmap;
  PutArray(&out, c.aggregate);
  return out;
}

Result<Certificate> DecodeCertificate(std::string_view wire, const crypto::Hash& network_id) {
  if (wire.size() > kMaxCertificateWireBytes)
    return Err(Status::InvalidArgument(
        fmt::format("certificate: {} bytes, more than {}", wire.size(), kMaxCertificateWireBytes)));
  Reader r(wire, "certificate");
  Certificate c;
  uint64_t order_len = 0;
  DFRP_RETURN_IF_ERROR(r.Be(&order_len, 4, "order length"));
  std::string_view order;
  DFRP_RETURN_IF_ERROR(r.Bytes(order_len, &order, "order"));
  DFRP_ASSIGN_OR_RETURN(c.order, DecodeSignedOrder(order, network_id));
  DFRP_RETURN_IF_ERROR(r.Be(&c.epoch, 8, "epoch"));
  uint64_t n = 0;
  DFRP_RETURN_IF_ERROR(r.Be(&n, 2, "committee size"));
  if (n == 0 || n > kMaxCommittee)
    return Err(r.Bad("committee size", fmt::format("{} is not 1 to {}", n, kMaxCommittee)));
  std::string_view bitmap;
  DFRP_RETURN_IF_ERROR(r.Bytes((n + 7) / 8, &bitmap, "signers"));
  c.signers.assign(n, false);
  for (size_t i = 0; i < bitmap.size() * 8; ++i) {
    const bool set = (static_cast<uint8_t>(bitmap[i / 8]) >> (i % 8)) & 1;
    if (i >= n && set) return Err(r.Bad("signers", "a bit past the committee size is set"));
    if (i < n) c.signers[i] = set;
  }
  DFRP_RETURN_IF_ERROR(r.Array(&c.aggregate, "aggregate"));
  DFRP_RETURN_IF_ERROR(r.End());
  DFRP_RETURN_IF_ERROR(CheckSig(c.aggregate, r, "aggregate"));
  return c;
}

Status VerifyCertificate(const Certificate& cert, const Committee& c,
                         const crypto::Hash& network_id) {
  if (cert.epoch != c.epoch())
    return Status::InvalidArgument(
        fmt::format("certificate: signed by the committee of epoch {}, this one is epoch {}",
                    cert.epoch, c.epoch()));
  if (cert.order.order.epoch != cert.epoch)
    return Status::InvalidArgument(
        fmt::format("certificate: the order is for epoch {}, its signers' epoch is {}",
                    cert.order.order.epoch, cert.epoch));
  if (cert.signers.size() != c.size())
    return Status::InvalidArgument(
        fmt::format("certificate: a bitmap for {} authorities, the committee has {}",
                    cert.signers.size(), c.size()));
  std::vector<bls::ProvenPublicKey> keys;
  for (size_t i = 0; i < c.size(); ++i)
    if (cert.signers[i]) keys.push_back(c.key(i));
  if (keys.size() < c.quorum())
    return Status::InvalidArgument(
        fmt::format("certificate: {} signers, fewer than the quorum of {} (of {})", keys.size(),
                    c.quorum(), c.size()));
  DFRP_RETURN_IF_ERROR(VerifyOrderSignature(cert.order, network_id));
  DFRP_ASSIGN_OR_RETURN(auto agg, SigFrom(cert.aggregate));
  const std::string bytes = VoteSigningBytes(cert.order.hash, cert.epoch, network_id);
  if (!bls::FastAggregateVerify(keys, core::AsBytes(bytes), agg).ok())
    return Status::Corruption(fmt::format(
        "certificate for order {}: the aggregate signature of its {} signers does not verify",
        core::ToHex(cert.order.hash), keys.size()));
  return Status::OK();
}

}  // namespace dfrp::ledger
