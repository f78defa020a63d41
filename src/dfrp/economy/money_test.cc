#include "dfrp/economy/money.h"

#include <gtest/gtest.h>

namespace dfrp::economy {
namespace {

uint64_t Ok(std::string_view text, unsigned scale) {
  auto v = ParseFixed(text, scale, "x");
  EXPECT_TRUE(v.has_value()) << text << ": " << (v ? "" : v.error().message());
  return v ? *v : 0;
}

std::string Bad(std::string_view text, unsigned scale) {
  auto v = ParseFixed(text, scale, "max_fee");
  EXPECT_FALSE(v.has_value()) << text << " parsed as " << (v ? *v : 0);
  return v ? "" : v.error().message();
}

TEST(Money, ParsesDecimalsExactly) {
  EXPECT_EQ(Ok("0.0042", 9), 4'200'000u);
  EXPECT_EQ(Ok("1", 9), 1'000'000'000u);
  EXPECT_EQ(Ok("1.", 9), 1'000'000'000u);
  EXPECT_EQ(Ok(".5", 9), 500'000'000u);
  EXPECT_EQ(Ok("000.000000001", 9), 1u);
  EXPECT_EQ(Ok("0", 9), 0u);
  EXPECT_EQ(Ok("0.000", 0), 0u);
  EXPECT_EQ(Ok("1.2", 6), 1'200'000u);
  // 0.1 has no exact double; the text is taken digit by digit.
  EXPECT_EQ(Ok("0.1", 18), 100'000'000'000'000'000u);
  EXPECT_EQ(Ok("18446744073709551615", 0), UINT64_MAX);
  EXPECT_EQ(Ok("18.446744073709551615", 18), UINT64_MAX);
  // Trailing zeros past the scale are fine: they add no precision.
  EXPECT_EQ(Ok("1.50000000000000000000", 2), 150u);
}

TEST(Money, ParsesExponents) {
  EXPECT_EQ(Ok("4.2e-3", 9), 4'200'000u);
  EXPECT_EQ(Ok("42E-4", 9), 4'200'000u);
  EXPECT_EQ(Ok("1e+2", 0), 100u);
  EXPECT_EQ(Ok("1e2", 2), 10000u);
  EXPECT_EQ(Ok("0e400", 9), 0u);
  EXPECT_EQ(Ok("0e-400", 9), 0u);
  EXPECT_EQ(Ok("100e-11", 9), 1u);
}

TEST(Money, RefusesWhatIsNotAnExactAmount) {
  EXPECT_NE(Bad("0.0000000001", 9).find("more decimals than the 9 allowed"), std::string::npos);
  EXPECT_NE(Bad("-1", 9).find("negative"), std::string::npos);
  EXPECT_NE(Bad("-0", 9).find("negative"), std::string::npos);
  EXPECT_NE(Bad("1e400", 9).find("too large"), std::string::npos);
  EXPECT_NE(Bad("18446744073709551616", 0).find("too large"), std::string::npos);
  EXPECT_NE(Bad("18446744073.709551616", 9).find("too large"), std::string::npos);
  EXPECT_NE(Bad("NaN", 9).find("not a finite number"), std::string::npos);
  EXPECT_NE(Bad("inf", 9).find("not a finite number"), std::string::npos);
  EXPECT_NE(Bad("Infinity", 9).find("not a finite number"), std::string::npos);
  EXPECT_NE(Bad("", 9).find("empty"), std::string::npos);
  EXPECT_NE(Bad("+1", 9).find("sign"), std::string::npos);
  EXPECT_NE(Bad("1e", 9).find("exponent without digits"), std::string::npos);
  for (const char* s : {".", "1.2.3", "1,5", "0x10", " 1", "1 ", "1e-", "e5", "1_000", "١"})
    EXPECT_NE(Bad(s, 9).find("max_fee"), std::string::npos) << s;
  EXPECT_NE(Bad(std::string(300, '1'), 0).find("too long"), std::string::npos);
  EXPECT_NE(Bad("1e-400", 9).find("more decimals"), std::string::npos);
}

TEST(Money, FormatsWithoutTrailingZeros) {
  EXPECT_EQ(FormatFixed(4'200'000, 9), "0.0042");
  EXPECT_EQ(FormatFixed(1'000'000'000, 9), "1");
  EXPECT_EQ(FormatFixed(1, 9), "0.000000001");
  EXPECT_EQ(FormatFixed(0, 9), "0");
  EXPECT_EQ(FormatFixed(12, 0), "12");
  EXPECT_EQ(FormatFixed(UINT64_MAX, 18), "18.446744073709551615");
  for (uint64_t v :
       std::initializer_list<uint64_t>{0, 1, 7, 10, 123456789, 1'000'000'000, UINT64_MAX})
    for (unsigned scale : {0u, 1u, 9u, 15u, 19u})
      EXPECT_EQ(Ok(FormatFixed(v, scale), scale), v) << v << " at " << scale;
}

TEST(Money, FeesRoundUpAndNeverOverflowSilently) {
  Amount fee = 0;
  // 0.00001 DFRP per CPU-second (9 decimals + 6: 10^10 price units) for 1.2 s.
  ASSERT_TRUE(FeeFor(10'000'000'000ull, 1'200'000, &fee));
  EXPECT_EQ(fee, 12'000u);
  // A price of a millionth of a base unit for one unit: a fee of one base unit (rounded up).
  ASSERT_TRUE(FeeFor(1, 1'000'000, &fee));
  EXPECT_EQ(fee, 1u);
  ASSERT_TRUE(FeeFor(0, 1'000'000, &fee));
  EXPECT_EQ(fee, 0u);
  EXPECT_FALSE(FeeFor(UINT64_MAX, UINT64_MAX, &fee));
  uint64_t q = 0;
  EXPECT_TRUE(MulDivFloor(7, 3, 2, &q));
  EXPECT_EQ(q, 10u);
  EXPECT_TRUE(MulDivCeil(7, 3, 2, &q));
  EXPECT_EQ(q, 11u);
  EXPECT_FALSE(MulDivCeil(1, 1, 0, &q));
  Amount sum = 0;
  EXPECT_FALSE(AddAmount(UINT64_MAX, 1, &sum));
  EXPECT_TRUE(AddAmount(UINT64_MAX - 1, 1, &sum));
}

}  // namespace
}  // namespace dfrp::economy
