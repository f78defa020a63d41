// dfrp-wallet's signature commands: verify, aggregate, verify-aggregate (see wallet_cli.h).
#include <fmt/format.h>

#include "dfrp/crypto/bls.h"
#include "dfrp/wallet/address.h"
#include "dfrp/wallet/wallet_cli_internal.h"

namespace dfrp::wallet::cli {
namespace {

using core::Err;
using core::Result;
using core::Status;
using crypto::bls::PublicKey;
using crypto::bls::Signature;

// A public key given as hex or as a dfrp address.
Result<PublicKey> KeyArg(std::string_view text) {
  if (text.starts_with("dfrp1") || text.starts_with("DFRP1")) return PublicKeyFromAddress(text);
  return PublicKey::FromHex(text);
}

// A signature to verify. Bad hex or a wrong length is a usage error; 96 bytes that are no
// valid point cannot verify, so they fail as integrity (exit 3), as a valid point that does
// not verify does.
Result<Signature> SignatureToVerify(std::string_view hex, std::string_view what) {
  auto raw = core::FromHex(hex);
  if (!raw || raw->size() != crypto::bls::kSignatureSize) {
    return Err(Status::InvalidArgument(
        fmt::format("{} is not {} bytes of hex ({} characters 0-9a-f): pass it whole, as it was "
                    "produced",
                    what, crypto::bls::kSignatureSize, 2 * crypto::bls::kSignatureSize)));
  }
  auto sig = Signature::FromBytes(core::AsBytes(*raw));
  if (!sig) {
    return Err(Status::Corruption(
        fmt::format("{} does not verify: its {} bytes are not a BLS12-381 signature point (it "
                    "was altered, or is not a signature); check it was copied unchanged",
                    what, crypto::bls::kSignatureSize)));
  }
  return sig;
}

Result<std::vector<Signature>> SignatureArgs(Ctx& c) {
  std::vector<Signature> sigs;
  for (const std::string& h : c.o.signatures) {
    auto s = Signature::FromHex(h);
    if (!s) return Err(s.error().WithContext(fmt::format("--signature #{}", sigs.size() + 1)));
    sigs.push_back(*s);
  }
  return sigs;
}

// Same message: every key needs a proof of possession (the rogue-key defence).
Status VerifySameMessage(Ctx& c, const std::vector<PublicKey>& keys, const std::string& msg,
                         const Signature& agg) {
  if (c.o.pops.size() != keys.size()) {
    return Status::InvalidArgument(fmt::format(
        "public key #{} has no proof of possession: a same-message aggregate needs one "
        "--proof-of-possession per --public-key (without them a rogue key could forge it)",
        c.o.pops.size() + 1));
  }
  std::vector<crypto::bls::ProvenPublicKey> proven;
  for (size_t i = 0; i < keys.size(); ++i) {
    DFRP_ASSIGN_OR_RETURN(
        Signature pop,
        SignatureToVerify(c.o.pops[i], fmt::format("the proof of possession of key #{}", i + 1)));
    auto p = crypto::bls::VerifyPossession(keys[i], pop);
    if (!p) return p.error().WithContext(fmt::format("public key #{}", i + 1));
    proven.push_back(*p);
  }
  return crypto::bls::FastAggregateVerify(proven, core::AsBytes(msg), agg);
}

}  // namespace

Status CmdVerify(Ctx& c) {
  if (c.o.public_keys.size() != 1 || c.o.signatures.size() != 1) {
    return Status::InvalidArgument("verify takes one --public-key and one --signature");
  }
  DFRP_ASSIGN_OR_RETURN(std::vector<std::string> msgs, Messages(c));
  if (msgs.size() != 1) return Status::InvalidArgument("verify takes one message");
  DFRP_ASSIGN_OR_RETURN(PublicKey pk, KeyArg(c.o.public_keys[0]));
  DFRP_ASSIGN_OR_RETURN(Signature sig, SignatureToVerify(c.o.signatures[0], "signature"));
  DFRP_RETURN_IF_ERROR(crypto::bls::Verify(pk, core::AsBytes(msgs[0]), sig));
  Emit(c, {{"valid", true}, {"public_key", pk.ToHex()}, {"address", AddressOf(pk)}}, "valid");
  return Status::OK();
}

Status CmdAggregate(Ctx& c) {
  DFRP_ASSIGN_OR_RETURN(std::vector<Signature> sigs, SignatureArgs(c));
  DFRP_ASSIGN_OR_RETURN(Signature agg, crypto::bls::AggregateSignatures(sigs));
  Emit(c, {{"signature", agg.ToHex()}, {"count", sigs.size()}}, "signature");
  return Status::OK();
}

Status CmdVerifyAggregate(Ctx& c) {
  if (c.o.signatures.size() != 1) {
    return Status::InvalidArgument("verify-aggregate takes one (aggregate) --signature");
  }
  DFRP_ASSIGN_OR_RETURN(std::vector<std::string> msgs, Messages(c));
  DFRP_ASSIGN_OR_RETURN(Signature agg, SignatureToVerify(c.o.signatures[0], "signature"));
  std::vector<PublicKey> keys;
  for (const std::string& k : c.o.public_keys) {
    auto pk = KeyArg(k);
    if (!pk) return pk.error().WithContext(fmt::format("--public-key #{}", keys.size() + 1));
    keys.push_back(*pk);
  }
  if (keys.empty()) return Status::InvalidArgument("no --public-key given");
  if (msgs.size() == 1) {
    DFRP_RETURN_IF_ERROR(VerifySameMessage(c, keys, msgs[0], agg));
  } else if (msgs.size() == keys.size()) {
    std::vector<core::ByteSpan> spans;
    for (const auto& m : msgs) spans.push_back(core::AsBytes(m));
    DFRP_RETURN_IF_ERROR(crypto::bls::AggregateVerify(keys, spans, agg));
  } else {
    return Status::InvalidArgument(
        fmt::format("{} keys and {} messages: give one message (same-message form) or one per key",
                    keys.size(), msgs.size()));
  }
  Emit(c, {{"valid", true}, {"keys", keys.size()}, {"messages", msgs.size()}}, "valid");
  return Status::OK();
}

}  // namespace dfrp::wallet::cli
