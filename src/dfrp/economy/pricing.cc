#include "dfrp/economy/pricing.h"

#include <algorithm>
#include <cmath>

namespace dfrp::economy {

namespace {

Price Clamp(Price p, Price floor, Price ceiling) { return std::clamp(p, floor, ceiling); }

// floor * ratio, rounded up, clamped to [floor, ceiling]; ratio below 1 counts as 1.
Price Scaled(Price floor, Price ceiling, double ratio) {
  if (!std::isfinite(ratio) || ratio <= 1) return floor;
  const double v = std::ceil(static_cast<double>(floor) * ratio);
  if (v >= static_cast<double>(ceiling)) return ceiling;
  return Clamp(static_cast<Price>(v), floor, ceiling);
}

}  // namespace

PriceVector PriceVectorFromCapacity(const PricingPolicy& p, const CapacityFigures& c) {
  PriceVector v = p.floor;
  auto set = [&](Resource r, double ratio) {
    const size_t i = static_cast<size_t>(r);
    v[i] = Scaled(p.floor[i], p.ceiling[i], ratio);
  };
  set(Resource::kCpuSec, c.cpu_hashes_per_sec_one_core / p.reference_cpu_hashes_per_sec);
  set(Resource::kGpuSec, c.gpu_tflops ? *c.gpu_tflops / p.reference_gpu_tflops : 0);
  // Storage kept is priced by the drive's speed only weakly: reads decide how fast it serves.
  set(Resource::kStorageGibMonth, 1);
  set(Resource::kWriteGib, c.write_mb_per_sec / p.reference_write_mb_per_sec);
  set(Resource::kReadGib, c.read_mb_per_sec / p.reference_read_mb_per_sec);
  set(Resource::kProof, c.read_iops / p.reference_read_iops);
  return v;
}

Price StepPrice(Price p, uint32_t utilization_bps, const PricingPolicy& policy, Price floor,
                Price ceiling) {
  const uint64_t u = std::min<uint32_t>(utilization_bps, 10000);
  const uint64_t t = policy.target_utilization_bps;
  const uint64_t d = policy.max_change_denominator;
  // p * (t*D + u - t) / (t*D): numerator and denominator stay far below 2^64.
  const uint64_t den = t * d;
  const uint64_t num = den + u - t;  // u - t may be negative; den >= t keeps num >= 0
  uint64_t next = p;
  if (num > den) {
    if (!MulDivCeil(p, num, den, &next)) next = ceiling;
  } else if (num < den) {
    MulDivFloor(p, num, den, &next);
  }
  return Clamp(next, floor, ceiling);
}

PriceVector StepPrices(const PriceVector& prices, const Utilization& u,
                       const PricingPolicy& policy) {
  PriceVector out;
  for (size_t i = 0; i < kResourceCount; ++i)
    out[i] = StepPrice(prices[i], u[i], policy, policy.floor[i], policy.ceiling[i]);
  return out;
}

std::optional<Price> WeightedMedian(std::vector<NeighbourPrice> prices) {
  std::erase_if(prices,
                [](const NeighbourPrice& n) { return !std::isfinite(n.weight) || n.weight <= 0; });
  if (prices.empty()) return std::nullopt;
  std::sort(prices.begin(), prices.end(),
            [](const NeighbourPrice& a, const NeighbourPrice& b) { return a.price < b.price; });
  double total = 0;
  for (const auto& n : prices) total += n.weight;
  double acc = 0;
  for (const auto& n : prices) {
    acc += n.weight;
    if (acc >= total / 2) return n.price;
  }
  return prices.back().price;
}

Price BlendPrice(Price p, const std::vector<NeighbourPrice>& neighbours,
                 const PricingPolicy& policy, Price floor, Price ceiling) {
  const std::optional<Price> m = WeightedMedian(neighbours);
  if (!m || policy.neighbour_weight_bps == 0) return p;
  const uint64_t w = policy.neighbour_weight_bps;
  // (1 - w) p + w m, in 128 bits.
  const unsigned __int128 mixed = (static_cast<unsigned __int128>(p) * (10000 - w) +
                                   static_cast<unsigned __int128>(*m) * w + 5000) /
                                  10000;
  Price target = mixed > UINT64_MAX ? UINT64_MAX : static_cast<Price>(mixed);
  // No further than one demand step from p.
  Price up = p, down = p;
  const uint64_t d = policy.max_change_denominator;
  if (!MulDivCeil(p, d + 1, d, &up)) up = UINT64_MAX;
  MulDivFloor(p, d - 1, d, &down);
  target = std::clamp(target, down, up);
  return Clamp(target, floor, ceiling);
}

uint32_t UtilizationBps(double used, double capacity) {
  if (!(capacity > 0) || !std::isfinite(capacity) || !(used > 0)) return 0;
  const double bps = used / capacity * 10000;
  if (!std::isfinite(bps) || bps >= 10000) return 10000;
  return static_cast<uint32_t>(bps);
}

}  // namespace dfrp::economy
