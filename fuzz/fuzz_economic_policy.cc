// Fuzzes the economic.toml parser (economy/policy.h): the input is a policy file's text.
//
// Properties: no crash, no uncaught exception; a policy that validates has every floor above 0
// and at most its ceiling, a margin of at most 100%, a target utilisation strictly between 0
// and 100%, a supply equal to the sum of its allocations, and prints (RenderEconomicToml) to a
// text that parses back to the same genesis (network id), prices and margin.
#include <cstdint>
#include <string>

#include "dfrp/economy/policy.h"
#include "fuzz_util.h"

using dfrp::economy::EconomicPolicy;
using dfrp::economy::ParseEconomicPolicy;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 16384) return 0;
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto p = ParseEconomicPolicy(text, "fuzz.toml");
  if (!p) {
    DFRP_FUZZ_CHECK(p.error().code() == dfrp::core::Status::Code::kInvalidArgument);
    return 0;
  }
  for (size_t i = 0; i < dfrp::economy::kResourceCount; ++i) {
    DFRP_FUZZ_CHECK(p->pricing.floor[i] > 0);
    DFRP_FUZZ_CHECK(p->pricing.floor[i] <= p->pricing.ceiling[i]);
  }
  DFRP_FUZZ_CHECK(p->margin_bps <= 10000);
  DFRP_FUZZ_CHECK(p->pricing.target_utilization_bps > 0 &&
                  p->pricing.target_utilization_bps < 10000);
  uint64_t sum = 0;
  for (const auto& a : p->genesis.allocations) sum += a.amount;
  DFRP_FUZZ_CHECK(sum == p->genesis.supply);
  auto again = ParseEconomicPolicy(dfrp::economy::RenderEconomicToml(*p), "rendered");
  DFRP_FUZZ_CHECK(again.has_value());
  DFRP_FUZZ_CHECK(again->network_id == p->network_id);
  DFRP_FUZZ_CHECK(again->pricing.floor == p->pricing.floor);
  DFRP_FUZZ_CHECK(again->pricing.ceiling == p->pricing.ceiling);
  DFRP_FUZZ_CHECK(again->margin_bps == p->margin_bps);
  return 0;
}
