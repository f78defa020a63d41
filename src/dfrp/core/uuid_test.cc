#include "dfrp/core/uuid.h"

#include <gtest/gtest.h>

#include <set>

namespace dfrp::core {
namespace {

TEST(UuidTest, V7LayoutFollowsRfc9562) {
  ManualClock clock(0x017f22e279b0);  // the RFC 9562 appendix A.6 timestamp
  UuidGenerator gen(&clock);
  Uuid u = gen.NewV7();
  EXPECT_EQ(u.version(), 7);
  EXPECT_EQ(u.variant_bits(), 0b10);
  EXPECT_EQ(u.unix_millis(), 0x017f22e279b0u);
  EXPECT_TRUE(u.ToString().starts_with("017f22e2-79b0-7"));
}

TEST(UuidTest, StrictlyIncreasingWithinOneMillisecond) {
  ManualClock clock;
  UuidGenerator gen(&clock);
  Uuid prev = gen.NewV7();
  for (int i = 0; i < 10000; ++i) {
    Uuid next = gen.NewV7();
    ASSERT_LT(prev, next);
    prev = next;
  }
}

TEST(UuidTest, StaysMonotonicWhenTheClockGoesBack) {
  ManualClock clock(2'000'000'000'000);
  UuidGenerator gen(&clock);
  Uuid a = gen.NewV7();
  clock.SetMillis(1'000'000'000'000);
  Uuid b = gen.NewV7();
  EXPECT_LT(a, b);
}

TEST(UuidTest, ParseAndPrintRoundTrip) {
  auto u = Uuid::Parse("017F22E2-79B0-7CC3-98C4-DC0C0C07398F");
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->ToString(), "017f22e2-79b0-7cc3-98c4-dc0c0c07398f");
  EXPECT_FALSE(Uuid::Parse("017f22e2-79b0-7cc3-98c4-dc0c0c07398").has_value());
  EXPECT_FALSE(Uuid::Parse("017f22e2x79b0-7cc3-98c4-dc0c0c07398f").has_value());
  EXPECT_FALSE(Uuid::Parse("g17f22e2-79b0-7cc3-98c4-dc0c0c07398f").has_value());
}

TEST(UuidTest, DefaultGeneratorGivesDistinctIds) {
  std::set<Uuid> seen;
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(seen.insert(DefaultUuidGenerator()->NewV7()).second);
}

}  // namespace
}  // namespace dfrp::core
