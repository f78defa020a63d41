#include "dfrp/core/bytes.h"

#include <gtest/gtest.h>

namespace dfrp::core {
namespace {

TEST(BytesTest, FixedWidthRoundTrip) {
  std::string buf;
  PutU8(&buf, 0xab);
  PutU16(&buf, 0x1234);
  PutU32(&buf, 0xdeadbeef);
  PutU64(&buf, 0x0102030405060708ull);
  ASSERT_EQ(buf.size(), 15u);
  EXPECT_EQ(static_cast<uint8_t>(buf[1]), 0x34);  // little-endian
  Reader r(buf);
  uint8_t a;
  uint16_t b;
  uint32_t c;
  uint64_t d;
  ASSERT_TRUE(r.U8(&a) && r.U16(&b) && r.U32(&c) && r.U64(&d));
  EXPECT_EQ(a, 0xab);
  EXPECT_EQ(b, 0x1234);
  EXPECT_EQ(c, 0xdeadbeefu);
  EXPECT_EQ(d, 0x0102030405060708ull);
  EXPECT_FALSE(r.U8(&a));
}

TEST(BytesTest, ReaderRefusesToReadPastEnd) {
  Reader r(std::string_view("abc", 3));
  uint32_t v;
  EXPECT_FALSE(r.U32(&v));
  std::string_view s;
  EXPECT_FALSE(r.Bytes(4, &s));
  EXPECT_TRUE(r.Bytes(3, &s));
  EXPECT_EQ(s, "abc");
}

TEST(BytesTest, Hex) {
  EXPECT_EQ(ToHex(std::string_view("\x00\xff\x10", 3)), "00ff10");
  EXPECT_EQ(*FromHex("00FF10"), std::string("\x00\xff\x10", 3));
  EXPECT_FALSE(FromHex("abc").has_value());
  EXPECT_FALSE(FromHex("zz").has_value());
}

}  // namespace
}  // namespace dfrp::core
