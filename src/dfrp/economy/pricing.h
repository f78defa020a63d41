// The pricing oracle's arithmetic: where prices start, how demand moves them each epoch, and
// how neighbours' prices are blended in. All integer (Price: 10^-6 base units per unit).
//
// - Start: each floor scaled by how much more than the policy's reference this node measured
//   (never below the floor, never above the ceiling): PriceVectorFromCapacity.
// - Demand, after each epoch, per resource (EIP-1559 style): p <- p * (1 + (u - t) / t / D),
//   with utilisation u and target t in basis points and D the max-change denominator. With
//   t = 50% and D = 8, a saturated epoch raises a price by 12.5%, an idle one (u = 0) lowers it
//   by 12.5%: prices rise with saturation toward the ceiling and decay with inactivity toward
//   the floor. Increases round up, decreases round down, so a 1/8 step always moves a price
//   of at least 8 units; the result is clamped to [floor, ceiling].
// - Neighbours: p <- (1 - w) p + w m, where m is the weighted median of the neighbours'
//   prices (the mesh feeds prices actually paid, weighted by trust), the move clamped to the
//   same per-epoch step and the result to [floor, ceiling].
//
// Thread-safety: pure functions.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "dfrp/economy/policy.h"

namespace dfrp::economy {

// Utilisation per resource in basis points (0..10000, more is capped).
using Utilization = std::array<uint32_t, kResourceCount>;

// What was measured, as far as prices care (economy/measure.h fills it).
struct CapacityFigures {
  double cpu_hashes_per_sec_one_core = 0;
  std::optional<double> gpu_tflops;
  double read_mb_per_sec = 0;  // the store's active volume, or 0 when unmeasured
  double write_mb_per_sec = 0;
  double read_iops = 0;
};

// Floors scaled by measured capacity against the policy's reference, clamped to the ceilings.
// A resource this node lacks (no GPU) stays at its floor.
PriceVector PriceVectorFromCapacity(const PricingPolicy& p, const CapacityFigures& c);

// One epoch's demand step for one price.
Price StepPrice(Price p, uint32_t utilization_bps, const PricingPolicy& policy, Price floor,
                Price ceiling);
PriceVector StepPrices(const PriceVector& prices, const Utilization& u,
                       const PricingPolicy& policy);

struct NeighbourPrice {
  Price price = 0;
  double weight = 1;  // trust; non-positive or non-finite weights are ignored
};
// The weighted median (the lower one on a tie); nullopt when no price has a positive weight.
std::optional<Price> WeightedMedian(std::vector<NeighbourPrice> prices);
// Blends `p` toward the median of `neighbours` (nothing to blend: `p` unchanged).
Price BlendPrice(Price p, const std::vector<NeighbourPrice>& neighbours,
                 const PricingPolicy& policy, Price floor, Price ceiling);

// Utilisation of a flow against a capacity over an epoch: used / capacity in basis points,
// capped at 10000; 0 when the capacity is 0.
uint32_t UtilizationBps(double used, double capacity);

}  // namespace dfrp::economy
