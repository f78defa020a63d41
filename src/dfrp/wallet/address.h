// Bech32m (BIP-350) and dfrp wallet addresses.
//
// A dfrp address is the bech32m encoding, with human-readable part "dfrp", of the 48-byte
// compressed BLS public key itself (not a hash): "dfrp1" + 77 data characters + 6 checksum
// characters, 88 characters in all, lowercase. Carrying the whole key lets anyone verify a
// signature from the address alone. The checksum detects any single mistyped character (and
// up to four substitutions). See docs/FORMAT-wallet.md.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dfrp/core/status.h"
#include "dfrp/crypto/bls.h"

namespace dfrp::wallet {

inline constexpr std::string_view kAddressHrp = "dfrp";

struct Bech32Data {
  std::string hrp;            // lowercase
  std::vector<uint8_t> data;  // 5-bit groups, checksum removed
};

// Encodes 5-bit groups (each < 32) under `hrp` (lowercase, 1..83 printable ASCII characters)
// with the bech32m checksum.
std::string Bech32mEncode(std::string_view hrp, const std::vector<uint8_t>& data);
// Decodes and checks a bech32m string of at most 90 characters (BIP-350 rules: one case
// only, a separator '1', a non-empty HRP of characters 33..126, a 6-character checksum).
// InvalidArgument saying what is wrong.
core::Result<Bech32Data> Bech32mDecode(std::string_view text);

// Regroups bits, appending to `out`: 8 -> 5 with zero padding (pad = true), or 5 -> 8
// rejecting incomplete or non-zero padding (pad = false). False on bad input.
bool ConvertBits(const std::vector<uint8_t>& in, int from, int to, bool pad,
                 std::vector<uint8_t>* out);

// The address of a public key.
std::string AddressOf(const crypto::bls::PublicKey& key);
// The validated public key an address carries; InvalidArgument for a bad checksum, another
// prefix, a wrong length or a point that is not a valid key.
core::Result<crypto::bls::PublicKey> PublicKeyFromAddress(std::string_view address);

}  // namespace dfrp::wallet
