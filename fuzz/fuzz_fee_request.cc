// Fuzzes the request/context parser of the fee match (economy/fee_match.h) and the exact
// decimal parser under it (economy/money.h): the input is a request's JSON.
//
// Properties: no crash, no uncaught exception, errors are InvalidArgument; a request that
// parses has a vector of the node's dimension with finite components, and matching it
// against the floor prices gives a total that is the sum of its per-resource fees and, when
// accepted, at most its max_fee. A decimal that ParseFixed accepts prints (FormatFixed) to a
// text that parses back to the same integer.
#include <cmath>
#include <cstdint>
#include <string>

#include "dfrp/economy/fee_match.h"
#include "fuzz_util.h"

using namespace dfrp::economy;

namespace {
const EconomicPolicy& Policy() {
  static const EconomicPolicy p = *ParseEconomicPolicy(kDefaultEconomicToml, "default");
  return p;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (size <= 64) {
    for (unsigned scale : {0u, 6u, 9u, 15u}) {
      auto v = ParseFixed(text, scale, "fuzz");
      if (v) {
        auto back = ParseFixed(FormatFixed(*v, scale), scale, "fuzz");
        DFRP_FUZZ_CHECK(back.has_value() && *back == *v);
      }
    }
  }
  auto r = ParseFeeRequest(text, Policy(), 16);
  if (!r) {
    DFRP_FUZZ_CHECK(r.error().code() == dfrp::core::Status::Code::kInvalidArgument);
    return 0;
  }
  DFRP_FUZZ_CHECK(r->vector.empty() || r->vector.size() == 16);
  for (float f : r->vector) DFRP_FUZZ_CHECK(std::isfinite(f));
  const Quote q = MatchFee(*r, Policy().pricing.floor, Policy());
  if (q.reason.find("past 2^64") == std::string::npos &&
      q.reason.find("over cap") == std::string::npos) {
    Amount sum = 0;
    for (Amount f : q.fee) sum += f;
    DFRP_FUZZ_CHECK(sum == q.total);
  }
  if (q.accepted && r->max_fee) DFRP_FUZZ_CHECK(q.total <= *r->max_fee);
  return 0;
}
