#include "dfrp/core/crc32c.h"

#include <gtest/gtest.h>

#include <string>

namespace dfrp::core {
namespace {

// Check values from RFC 3720 appendix B.4.
TEST(Crc32cTest, Rfc3720Vectors) {
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8a9136aau);
  EXPECT_EQ(Crc32c(std::string(32, '\xff')), 0x62a8ab43u);
  std::string inc;
  for (int i = 0; i < 32; ++i) inc.push_back(static_cast<char>(i));
  EXPECT_EQ(Crc32c(inc), 0x46dd794eu);
  EXPECT_EQ(Crc32c("123456789"), 0xe3069283u);
}

TEST(Crc32cTest, ExtendEqualsWhole) {
  std::string data = "the quick brown fox jumps over the lazy dog, twice over";
  for (size_t cut = 0; cut <= data.size(); ++cut) {
    uint32_t a = Crc32cExtend(0, data.data(), cut);
    EXPECT_EQ(Crc32cExtend(a, data.data() + cut, data.size() - cut), Crc32c(data));
  }
}

}  // namespace
}  // namespace dfrp::core
