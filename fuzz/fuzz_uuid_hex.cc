// Fuzzes the text forms of ids and hashes: Uuid::Parse and FromHex.
//
// Properties: Parse(s) succeeds only for the canonical 8-4-4-4-12 form, and then ToString()
// is s in lowercase and the bytes round-trip through FromBytes; FromHex(s) succeeds only for
// an even number of hex digits, and then ToHex gives s in lowercase; a parsed uuid's digits
// (dashes removed) decode through FromHex to the same 16 bytes.
#include <cctype>
#include <cstdint>
#include <string>

#include "dfrp/core/bytes.h"
#include "dfrp/core/uuid.h"
#include "fuzz_util.h"

namespace {
std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dfrp;
  const std::string_view input = fuzz::AsView(data, size);

  if (auto u = core::Uuid::Parse(input)) {
    DFRP_FUZZ_CHECK(input.size() == 36);
    DFRP_FUZZ_CHECK(u->ToString() == Lower(input));
    DFRP_FUZZ_CHECK(core::Uuid::FromBytes(u->AsBytes()) == *u);
    DFRP_FUZZ_CHECK(core::Uuid::Parse(u->ToString()) == u);
    std::string digits;
    for (char c : input)
      if (c != '-') digits.push_back(c);
    auto raw = core::FromHex(digits);
    DFRP_FUZZ_CHECK(raw.has_value() && *raw == u->AsBytes());
  }

  if (auto raw = core::FromHex(input)) {
    DFRP_FUZZ_CHECK(input.size() % 2 == 0 && raw->size() == input.size() / 2);
    DFRP_FUZZ_CHECK(core::ToHex(*raw) == Lower(input));
    if (raw->size() == 16) {
      // 32 hex digits: the same id in canonical form parses back to these bytes.
      core::Uuid u = core::Uuid::FromBytes(*raw);
      auto back = core::Uuid::Parse(u.ToString());
      DFRP_FUZZ_CHECK(back.has_value() && back->AsBytes() == *raw);
    }
  }
  return 0;
}
