#include "dfrp/compute/check_rate.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace dfrp::compute {

using core::Err;
using core::Result;
using core::Status;
using nlohmann::json;

namespace {

double Floor(const economy::ComputePolicy& p) {
  return std::clamp(p.spot_check_bps / 10000.0, 1e-4, 1.0);
}

// The rate after `valid` valid checks and no mismatch.
double RateAfter(const economy::ComputePolicy& p, uint64_t valid) {
  if (valid < p.trusted_after) return 1.0;
  const double halvings =
      static_cast<double>(valid - p.trusted_after) / std::max<uint32_t>(p.check_half_life, 1);
  return std::max(Floor(p), std::exp2(-halvings));
}

// The number of valid checks from which the rate is the floor: every state past it behaves
// alike, so the chains below merge them.
uint64_t FloorFrom(const economy::ComputePolicy& p) {
  const double halvings = std::log2(1.0 / Floor(p));
  return p.trusted_after +
         static_cast<uint64_t>(std::ceil(halvings * std::max<uint32_t>(p.check_half_life, 1))) + 1;
}

// The chain over the number of valid checks: `jobs` steps from a new provider cheating on each
// job with probability `cheat`. Returns (probability caught, expected checked jobs).
std::pair<double, double> Walk(const economy::ComputePolicy& p, double cheat, uint64_t jobs) {
  const uint64_t top = std::min<uint64_t>(FloorFrom(p), jobs);
  std::vector<double> mass(top + 1, 0.0), next(top + 1);
  mass[0] = 1.0;
  double caught = 0, checked = 0;
  for (uint64_t j = 0; j < jobs; ++j) {
    std::fill(next.begin(), next.end(), 0.0);
    for (uint64_t k = 0; k <= top; ++k) {
      const double m = mass[k];
      if (m == 0) continue;
      const double r = RateAfter(p, k);
      caught += m * cheat * r;
      checked += m * r;
      next[k] += m * (1 - r);                             // not checked: as it was
      next[std::min(k + 1, top)] += m * (1 - cheat) * r;  // checked and valid
    }
    mass.swap(next);
  }
  return {caught, checked};
}

}  // namespace

double CheckRate(const economy::ComputePolicy& p, const ProviderChecks& c) {
  if (c.mismatches > 0) return 1.0;
  return RateAfter(p, c.valid);
}

bool DrawCheck(double rate, uint32_t random) {
  if (rate >= 1.0) return true;
  if (!(rate > 0.0)) return false;
  return static_cast<double>(random) < rate * 4294967296.0;
}

double CatchProbability(const economy::ComputePolicy& p, double cheat, uint64_t jobs) {
  return Walk(p, std::clamp(cheat, 0.0, 1.0), jobs).first;
}

double CheckedShare(const economy::ComputePolicy& p, uint64_t jobs) {
  if (jobs == 0) return 0;
  return Walk(p, 0.0, jobs).second / static_cast<double>(jobs);
}

json ProviderChecksJson(const ProviderChecks& c) {
  return {{"valid", c.valid}, {"mismatches", c.mismatches}, {"unchecked", c.unchecked}};
}

namespace {

Result<json> LoadAll(core::FileSystem* fs, const std::string& path) {
  if (!fs->Exists(path)) return json::object();
  DFRP_ASSIGN_OR_RETURN(std::string text, core::ReadWholeFile(fs, path));
  json j = json::parse(text, nullptr, false);
  if (!j.is_object())
    return Err(Status::Corruption(fmt::format(
        "{} is not a JSON object of provider records: move it away to start the records over "
        "(they only set how often each provider's jobs are checked)",
        path)));
  return j;
}

}  // namespace

Result<ProviderChecks> LoadProviderChecks(core::FileSystem* fs, const std::string& path,
                                          const std::string& provider) {
  DFRP_ASSIGN_OR_RETURN(json all, LoadAll(fs, path));
  ProviderChecks c;
  if (!all.contains(provider)) return c;
  const json& r = all[provider];
  auto field = [&](const char* name, uint64_t* out) {
    if (!r.contains(name)) return true;  // absent: 0
    if (!r[name].is_number_unsigned()) return false;
    *out = r[name].get<uint64_t>();
    return true;
  };
  if (!r.is_object() || !field("valid", &c.valid) || !field("mismatches", &c.mismatches) ||
      !field("unchecked", &c.unchecked))
    return Err(Status::Corruption(
        fmt::format("{}: the record of {} is not an object of counts: move the file away to "
                    "start the records over",
                    path, provider)));
  return c;
}

Status SaveProviderChecks(core::FileSystem* fs, const std::string& path,
                          const std::string& provider, const ProviderChecks& c) {
  DFRP_ASSIGN_OR_RETURN(json all, LoadAll(fs, path));
  all[provider] = ProviderChecksJson(c);
  return core::WriteFileAtomic(fs, path, all.dump(2) + "\n");
}

}  // namespace dfrp::compute
