// libFuzzer target: BLS public key and signature decoding (compressed points, hex) and dfrp
// addresses. Any input must give a Status or a valid value; a decoded value must re-encode to
// exactly the input (the encodings are canonical).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "dfrp/crypto/bls.h"
#include "dfrp/wallet/address.h"

namespace {
using dfrp::core::AsBytes;
namespace bls = dfrp::crypto::bls;

template <typename T>
void CheckCanonical(std::string_view in) {
  auto v = T::FromBytes(AsBytes(in));
  if (v && std::memcmp(v->bytes().data(), in.data(), in.size()) != 0) std::abort();
  auto h = T::FromHex(in);
  (void)h.has_value();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      CheckCanonical<bls::PublicKey>(in);
      break;
    case 1:
      CheckCanonical<bls::Signature>(in);
      break;
    default: {
      auto pk = dfrp::wallet::PublicKeyFromAddress(in);
      if (pk && !dfrp::wallet::PublicKeyFromAddress(dfrp::wallet::AddressOf(*pk))) std::abort();
      auto d = dfrp::wallet::Bech32mDecode(in);
      (void)d.has_value();
    }
  }
  return 0;
}
