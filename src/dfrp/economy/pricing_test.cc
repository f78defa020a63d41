#include "dfrp/economy/pricing.h"

#include <gtest/gtest.h>

#include <cmath>

namespace dfrp::economy {
namespace {

EconomicPolicy DefaultPolicy() {
  auto p = ParseEconomicPolicy(kDefaultEconomicToml, "embedded default");
  EXPECT_TRUE(p.has_value());
  return *p;
}

TEST(Pricing, DemandMovesAnEighthPerEpochAtMost) {
  const EconomicPolicy pol = DefaultPolicy();
  const PricingPolicy& pr = pol.pricing;
  const Price floor = 1000, ceiling = 1'000'000;
  EXPECT_EQ(StepPrice(8000, 10000, pr, floor, ceiling), 9000u);  // saturated: +12.5%
  EXPECT_EQ(StepPrice(8000, 0, pr, floor, ceiling), 7000u);      // idle: -12.5%
  EXPECT_EQ(StepPrice(8000, 5000, pr, floor, ceiling), 8000u);   // at target: holds
  EXPECT_EQ(StepPrice(8000, 7500, pr, floor, ceiling), 8500u);   // +6.25%
  EXPECT_EQ(StepPrice(8000, 20000, pr, floor, ceiling), 9000u);  // over 100% counts as 100%
  // Increases round up, decreases down: a small price still moves.
  EXPECT_EQ(StepPrice(1001, 10000, pr, 1, ceiling), 1127u);  // 1001 * 1.125 = 1126.125
  EXPECT_EQ(StepPrice(1001, 0, pr, 1, ceiling), 875u);       // 875.875
  EXPECT_EQ(StepPrice(1, 10000, pr, 1, ceiling), 2u);
}

TEST(Pricing, RisesToTheCeilingAndDecaysToTheFloor) {
  const EconomicPolicy pol = DefaultPolicy();
  const PricingPolicy& pr = pol.pricing;
  PriceVector p = pr.floor;
  Utilization busy;
  busy.fill(10000);
  int epochs = 0;
  while (p != pr.ceiling && epochs < 1000) {
    const PriceVector next = StepPrices(p, busy, pr);
    for (size_t i = 0; i < kResourceCount; ++i) EXPECT_GE(next[i], p[i]);
    p = next;
    ++epochs;
  }
  EXPECT_EQ(p, pr.ceiling) << "a saturated node reaches its ceiling";
  // 100x at 12.5% per epoch: ln(100)/ln(1.125) = 39.1 epochs.
  EXPECT_GE(epochs, 39);
  EXPECT_LE(epochs, 41);
  EXPECT_EQ(StepPrices(p, busy, pr), pr.ceiling) << "and stays there";
  Utilization idle{};
  epochs = 0;
  while (p != pr.floor && epochs < 1000) {
    const PriceVector next = StepPrices(p, idle, pr);
    for (size_t i = 0; i < kResourceCount; ++i) EXPECT_LE(next[i], p[i]);
    p = next;
    ++epochs;
  }
  EXPECT_EQ(p, pr.floor) << "an idle node decays to its floor";
  EXPECT_LE(epochs, 40);  // ln(100)/-ln(0.875) = 34.5
}

TEST(Pricing, StartsFromFloorsScaledByCapacity) {
  const EconomicPolicy pol = DefaultPolicy();
  const PricingPolicy& pr = pol.pricing;
  CapacityFigures slow;  // below every reference: floors
  slow.cpu_hashes_per_sec_one_core = 1e6;
  slow.read_mb_per_sec = 50;
  EXPECT_EQ(PriceVectorFromCapacity(pr, slow), pr.floor);
  CapacityFigures fast;
  fast.cpu_hashes_per_sec_one_core = 3 * pr.reference_cpu_hashes_per_sec;
  fast.gpu_tflops = 1e9;  // far past: the ceiling
  fast.read_mb_per_sec = 2 * pr.reference_read_mb_per_sec;
  const PriceVector v = PriceVectorFromCapacity(pr, fast);
  EXPECT_EQ(v[0], 3 * pr.floor[0]);
  EXPECT_EQ(v[1], pr.ceiling[1]);
  EXPECT_EQ(v[static_cast<size_t>(Resource::kReadGib)],
            2 * pr.floor[static_cast<size_t>(Resource::kReadGib)]);
  EXPECT_EQ(v[static_cast<size_t>(Resource::kWriteGib)],
            pr.floor[static_cast<size_t>(Resource::kWriteGib)]);
}

TEST(Pricing, NeighboursBlendThroughAWeightedMedianWithinOneStep) {
  const EconomicPolicy pol = DefaultPolicy();
  const PricingPolicy& pr = pol.pricing;  // w = 25%, D = 8
  EXPECT_EQ(WeightedMedian({{100, 1}, {300, 1}, {200, 1}}), 200u);
  EXPECT_EQ(WeightedMedian({{100, 1}, {300, 5}, {200, 1}}), 300u);
  // A Sybil crowd with no trust weighs nothing.
  EXPECT_EQ(WeightedMedian({{100, 1}, {1, 0}, {1, 0}, {1, 0}, {1, -1}, {1, NAN}}), 100u);
  EXPECT_EQ(WeightedMedian({}), std::nullopt);
  EXPECT_EQ(WeightedMedian({{5, 0}}), std::nullopt);
  // 0.75 * 10000 + 0.25 * 10800 = 10200: within the 12.5% step.
  EXPECT_EQ(BlendPrice(10000, {{10800, 1}}, pr, 1, 1'000'000), 10200u);
  // A far median moves the price one step at most.
  EXPECT_EQ(BlendPrice(10000, {{1'000'000, 1}}, pr, 1, 10'000'000), 11250u);
  EXPECT_EQ(BlendPrice(10000, {{1, 1}}, pr, 1, 1'000'000), 8750u);
  // Clamped to the floor and ceiling, and unchanged with nobody to blend.
  EXPECT_EQ(BlendPrice(10000, {{1'000'000, 1}}, pr, 1, 10500), 10500u);
  EXPECT_EQ(BlendPrice(10000, {}, pr, 1, 1'000'000), 10000u);
}

TEST(Pricing, Utilization) {
  EXPECT_EQ(UtilizationBps(50, 100), 5000u);
  EXPECT_EQ(UtilizationBps(500, 100), 10000u);
  EXPECT_EQ(UtilizationBps(5, 0), 0u);
  EXPECT_EQ(UtilizationBps(0, 100), 0u);
  EXPECT_EQ(UtilizationBps(NAN, 100), 0u);
  EXPECT_EQ(UtilizationBps(1, INFINITY), 0u);
}

}  // namespace
}  // namespace dfrp::economy
