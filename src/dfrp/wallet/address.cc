#include "dfrp/wallet/address.h"

#include <fmt/format.h>

#include <array>

namespace dfrp::wallet {
namespace {

constexpr std::string_view kCharset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
constexpr uint32_t kBech32mConst = 0x2bc830a3;
constexpr size_t kMaxLength = 90;

uint32_t PolyMod(const std::vector<uint8_t>& values) {
  constexpr std::array<uint32_t, 5> kGen = {0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd,
                                            0x2a1462b3};
  uint32_t chk = 1;
  for (uint8_t v : values) {
    uint32_t top = chk >> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (int i = 0; i < 5; ++i) {
      if ((top >> i) & 1) chk ^= kGen[i];
    }
  }
  return chk;
}

std::vector<uint8_t> HrpExpand(std::string_view hrp) {
  std::vector<uint8_t> out;
  for (char c : hrp) out.push_back(static_cast<uint8_t>(c) >> 5);
  out.push_back(0);
  for (char c : hrp) out.push_back(static_cast<uint8_t>(c) & 31);
  return out;
}

std::vector<uint8_t> Checksum(std::string_view hrp, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> values = HrpExpand(hrp);
  values.insert(values.end(), data.begin(), data.end());
  values.insert(values.end(), 6, 0);
  uint32_t mod = PolyMod(values) ^ kBech32mConst;
  std::vector<uint8_t> out(6);
  for (int i = 0; i < 6; ++i) out[i] = (mod >> (5 * (5 - i))) & 31;
  return out;
}

core::Status Bad(std::string_view text, std::string_view why) {
  return core::Status::InvalidArgument(
      fmt::format("'{}' is not a valid bech32m string ({}): check it for typos", text, why));
}

// Checks characters and case; returns the lowercase form.
core::Result<std::string> Lowered(std::string_view text) {
  bool lower = false, upper = false;
  std::string out;
  for (char c : text) {
    if (c < 33 || c > 126) return core::Err(Bad(text, "character out of range"));
    lower |= (c >= 'a' && c <= 'z');
    upper |= (c >= 'A' && c <= 'Z');
    out.push_back((c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c);
  }
  if (lower && upper) return core::Err(Bad(text, "mixed case"));
  return out;
}

}  // namespace

bool ConvertBits(const std::vector<uint8_t>& in, int from, int to, bool pad,
                 std::vector<uint8_t>* out) {
  uint32_t acc = 0;
  int bits = 0;
  const uint32_t maxv = (1u << to) - 1;
  for (uint8_t v : in) {
    if ((v >> from) != 0) return false;
    acc = (acc << from) | v;
    bits += from;
    while (bits >= to) {
      bits -= to;
      out->push_back(static_cast<uint8_t>((acc >> bits) & maxv));
    }
  }
  if (pad) {
    if (bits > 0) out->push_back(static_cast<uint8_t>((acc << (to - bits)) & maxv));
  } else if (bits >= from || ((acc << (to - bits)) & maxv) != 0) {
    return false;
  }
  return true;
}

std::string Bech32mEncode(std::string_view hrp, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> chk = Checksum(hrp, data);
  std::string out(hrp);
  out.push_back('1');
  for (uint8_t v : data) out.push_back(kCharset[v]);
  for (uint8_t v : chk) out.push_back(kCharset[v]);
  return out;
}

core::Result<Bech32Data> Bech32mDecode(std::string_view text) {
  if (text.size() > kMaxLength) return core::Err(Bad(text.substr(0, 20), "longer than 90"));
  DFRP_ASSIGN_OR_RETURN(std::string s, Lowered(text));
  size_t sep = s.rfind('1');
  if (sep == std::string::npos) return core::Err(Bad(text, "no separator '1'"));
  if (sep == 0) return core::Err(Bad(text, "empty prefix"));
  if (s.size() - sep - 1 < 6) return core::Err(Bad(text, "checksum too short"));
  Bech32Data out{s.substr(0, sep), {}};
  for (size_t i = sep + 1; i < s.size(); ++i) {
    size_t v = kCharset.find(s[i]);
    if (v == std::string_view::npos) return core::Err(Bad(text, "invalid data character"));
    out.data.push_back(static_cast<uint8_t>(v));
  }
  std::vector<uint8_t> values = HrpExpand(out.hrp);
  values.insert(values.end(), out.data.begin(), out.data.end());
  if (PolyMod(values) != kBech32mConst) return core::Err(Bad(text, "checksum mismatch"));
  out.data.resize(out.data.size() - 6);
  return out;
}

std::string AddressOf(const crypto::bls::PublicKey& key) {
  std::vector<uint8_t> five;
  ConvertBits({key.bytes().begin(), key.bytes().end()}, 8, 5, true, &five);
  return Bech32mEncode(kAddressHrp, five);
}

core::Result<crypto::bls::PublicKey> PublicKeyFromAddress(std::string_view address) {
  DFRP_ASSIGN_OR_RETURN(Bech32Data d, Bech32mDecode(address));
  if (d.hrp != kAddressHrp) {
    return core::Err(core::Status::InvalidArgument(
        fmt::format("address '{}' has prefix '{}', expected '{}': it is not a dfrp address",
                    address, d.hrp, kAddressHrp)));
  }
  std::vector<uint8_t> bytes;
  if (!ConvertBits(d.data, 5, 8, false, &bytes) || bytes.size() != crypto::bls::kPublicKeySize) {
    return core::Err(core::Status::InvalidArgument(
        fmt::format("address '{}' does not carry a 48-byte public key: check it", address)));
  }
  return crypto::bls::PublicKey::FromBytes(
      core::AsBytes(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size())));
}

}  // namespace dfrp::wallet
