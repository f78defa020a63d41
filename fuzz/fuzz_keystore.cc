// libFuzzer target: the keystore parser (and, for tiny KDF parameters, unlocking) must turn
// any bytes into a Status, never a crash; a parsed keystore must survive a
// serialize/parse round trip unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "dfrp/wallet/keystore.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dfrp::wallet;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto ks = ParseKeystore(text, "fuzz.json");
  if (!ks) return 0;
  (void)CheckWalletPublic(ks->pub, "fuzz.json");
  auto again = ParseKeystore(SerializeKeystore(*ks), "again.json");
  if (!again || SerializeKeystore(*again) != SerializeKeystore(*ks)) std::abort();
  if (ks->kdf.memlimit <= (64u << 10) && ks->kdf.opslimit <= 2) {
    (void)UnlockKeystore(*ks, "pw", "fuzz.json").status();
  }
  return 0;
}
