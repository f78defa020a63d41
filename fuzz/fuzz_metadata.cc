// Fuzzes DecodeMetadata, the parser of the metadata section of every record.
//
// Properties: decoding never crashes or reads out of bounds; the encoding is deterministic
// and canonical, so metadata that decodes re-encodes (EncodeMetadata) to exactly the input
// bytes, and decoding that again gives equal metadata. ValidateMetadata must not crash on
// whatever decodes.
#include <cstdint>
#include <cstring>
#include <string>

#include "dfrp/storage/metadata.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dfrp;
  const std::string_view input = fuzz::AsView(data, size);
  auto m = storage::DecodeMetadata(input);
  if (!m) return 0;
  const std::string again = storage::EncodeMetadata(*m);
  if (again != input) {
    std::fprintf(stderr, "metadata round trip: %zu input bytes re-encode to %zu bytes\n", size,
                 again.size());
    fuzz::Fail("EncodeMetadata(DecodeMetadata(x)) != x");
  }
  auto m2 = storage::DecodeMetadata(again);
  DFRP_FUZZ_CHECK(m2.has_value());
  // Compare vectors bitwise: NaN != NaN under operator==.
  DFRP_FUZZ_CHECK(m2->vector.size() == m->vector.size());
  DFRP_FUZZ_CHECK(m->vector.empty() || std::memcmp(m2->vector.data(), m->vector.data(),
                                                   m->vector.size() * sizeof(float)) == 0);
  DFRP_FUZZ_CHECK(m2->size == m->size && m2->leaf_size == m->leaf_size &&
                  m2->created_unix_ms == m->created_unix_ms &&
                  m2->content_type == m->content_type && m2->owner == m->owner &&
                  m2->tags == m->tags);
  (void)storage::ValidateMetadata(*m, static_cast<uint32_t>(m->vector.size()), true);
  return 0;
}
