#include "dfrp/compute/check_rate.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <random>

namespace dfrp::compute {
namespace {

economy::ComputePolicy Schedule(uint32_t floor_bps, uint32_t trusted_after, uint32_t half_life) {
  economy::ComputePolicy p;
  p.spot_check_bps = floor_bps;
  p.trusted_after = trusted_after;
  p.check_half_life = half_life;
  return p;
}

TEST(CheckRate, EveryJobUntilTrustedThenHalvingToTheFloor) {
  const auto p = Schedule(500, 10, 10);
  EXPECT_EQ(CheckRate(p, {}), 1.0);
  EXPECT_EQ(CheckRate(p, {.valid = 9}), 1.0);
  EXPECT_EQ(CheckRate(p, {.valid = 10}), 1.0);
  EXPECT_DOUBLE_EQ(CheckRate(p, {.valid = 20}), 0.5);
  EXPECT_DOUBLE_EQ(CheckRate(p, {.valid = 30}), 0.25);
  EXPECT_DOUBLE_EQ(CheckRate(p, {.valid = 1000}), 0.05) << "never under the floor";
  EXPECT_DOUBLE_EQ(CheckRate(p, {.valid = 1000000, .unchecked = 1u << 30}), 0.05)
      << "unchecked jobs earn nothing";
  EXPECT_EQ(CheckRate(p, {.valid = 1000, .mismatches = 1}), 1.0)
      << "a provider caught once is checked on every job";
  EXPECT_DOUBLE_EQ(CheckRate(Schedule(1, 0, 1), {.valid = 200}), 1e-4) << "never zero";
}

TEST(CheckRate, DrawIsExactAtTheEnds) {
  EXPECT_TRUE(DrawCheck(1.0, 0xffffffffu));
  EXPECT_FALSE(DrawCheck(0.0, 0));
  EXPECT_TRUE(DrawCheck(0.5, 0x7fffffffu));
  EXPECT_FALSE(DrawCheck(0.5, 0x80000000u));
  EXPECT_TRUE(DrawCheck(0.05, 0));
}

TEST(CheckRate, TheoryMatchesClosedFormsWhereThereAreSome) {
  // Every job checked: caught within n unless every job was honest.
  const auto always = Schedule(10000, 0, 1);
  for (double f : {0.01, 0.1, 0.5, 1.0})
    for (uint64_t n : {1u, 10u, 100u})
      EXPECT_NEAR(CatchProbability(always, f, n), 1 - std::pow(1 - f, n), 1e-12) << f << " " << n;
  EXPECT_NEAR(CheckedShare(always, 50), 1.0, 1e-12);
  // A flat rate r (the floor from the start): each job caught with probability f·r.
  const auto flat = Schedule(1000, 0, 1);
  const auto flat_now = [&](uint64_t valid) { return CheckRate(flat, {.valid = valid}); };
  ASSERT_DOUBLE_EQ(flat_now(0), 1.0);  // 2^0: the floor is reached after log2(10) halvings
  // Past the halvings it is flat: the share tends to the floor.
  EXPECT_NEAR(CheckedShare(flat, 100000), 0.1, 0.001);
  EXPECT_EQ(CatchProbability(flat, 0.0, 1000), 0.0) << "an honest provider is never caught";
}

TEST(CheckRate, SimulationAgreesWithTheTheory) {
  // The real rate and draw, over many simulated providers, against the chain.
  const auto p = Schedule(500, 10, 10);
  std::mt19937_64 rng(20261203);
  for (double f : {0.02, 0.2}) {
    const uint64_t jobs = 200, trials = 20000;
    uint64_t caught = 0;
    for (uint64_t t = 0; t < trials; ++t) {
      ProviderChecks c;
      for (uint64_t j = 0; j < jobs && c.mismatches == 0; ++j) {
        const bool cheats = std::uniform_real_distribution<double>(0, 1)(rng) < f;
        if (!DrawCheck(CheckRate(p, c), static_cast<uint32_t>(rng()))) {
          ++c.unchecked;
          continue;
        }
        if (cheats)
          ++c.mismatches;
        else
          ++c.valid;
      }
      caught += c.mismatches > 0;
    }
    const double theory = CatchProbability(p, f, jobs);
    const double measured = static_cast<double>(caught) / trials;
    const double sigma = std::sqrt(theory * (1 - theory) / trials);
    EXPECT_NEAR(measured, theory, 5 * sigma + 1e-9) << "cheating on " << f << " of the jobs";
  }
}

TEST(CheckRate, RecordsSurviveAndABadFileIsNamed) {
  char tmpl[] = "/tmp/dfrp-checks-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/providers.json";
  core::FileSystem* fs = core::DefaultFileSystem();
  auto none = LoadProviderChecks(fs, path, "dfrp1a");
  ASSERT_TRUE(none.has_value());
  EXPECT_EQ(*none, ProviderChecks{});
  ASSERT_TRUE(SaveProviderChecks(fs, path, "dfrp1a", {.valid = 3, .unchecked = 2}).ok());
  ASSERT_TRUE(SaveProviderChecks(fs, path, "dfrp1b", {.mismatches = 1}).ok());
  EXPECT_EQ(*LoadProviderChecks(fs, path, "dfrp1a"), (ProviderChecks{.valid = 3, .unchecked = 2}));
  EXPECT_EQ(*LoadProviderChecks(fs, path, "dfrp1b"), (ProviderChecks{.mismatches = 1}));
  ASSERT_TRUE(core::WriteFileAtomic(fs, path, "{\"dfrp1a\": {\"valid\": -1}}").ok());
  auto bad = LoadProviderChecks(fs, path, "dfrp1a");
  ASSERT_FALSE(bad.has_value());
  EXPECT_TRUE(bad.error().IsCorruption());
  EXPECT_NE(bad.error().message().find("move the file away"), std::string::npos);
  ASSERT_TRUE(core::WriteFileAtomic(fs, path, "{\"dfrp1a\": 5}").ok());
  EXPECT_FALSE(LoadProviderChecks(fs, path, "dfrp1a").has_value()) << "a record that is no object";
  ASSERT_TRUE(core::WriteFileAtomic(fs, path, "not json").ok());
  EXPECT_FALSE(LoadProviderChecks(fs, path, "dfrp1a").has_value());
}

}  // namespace
}  // namespace dfrp::compute
