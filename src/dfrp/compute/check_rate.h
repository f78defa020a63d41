// How often a client checks a provider's jobs (issue 16, docs/COMPUTE.md "How often a job
// is checked"): BOINC's adaptive replication, with the schedule in economic.toml's [compute].
//
// A provider's first `trusted_after` checked jobs are all checked; after that the rate halves
// every `check_half_life` valid checks, down to the floor `spot_check_bps` (never zero, so a
// provider can never be sure a job goes unchecked). A provider caught once (a mismatch) is
// checked on every job from then on. Whether a job is checked is drawn by the client after the
// provider has signed its claim, from the client's own randomness: the provider cannot know
// which of its jobs will be checked.
//
// Also the theory the check-rate benchmark sets its measurements against: the probability
// that a provider cheating on a fraction of its jobs is caught within n jobs, and the share
// of jobs an honest provider has checked (the verification overhead).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "dfrp/core/file_system.h"
#include "dfrp/core/status.h"
#include "dfrp/economy/policy.h"

namespace dfrp::compute {

// What one client knows of one provider's checked jobs.
struct ProviderChecks {
  uint64_t valid = 0;       // checked, and the re-run's result root matched
  uint64_t mismatches = 0;  // checked, and it did not (a fraud proof)
  uint64_t unchecked = 0;   // the draw said not to check them
  bool operator==(const ProviderChecks&) const = default;
};

// The probability, in [spot_check_bps / 10000, 1], that the next job of a provider with this
// record is checked.
double CheckRate(const economy::ComputePolicy& p, const ProviderChecks& c);

// Whether a job is checked at `rate`, for a uniform 32-bit `random`: exactly when
// random < rate × 2^32 (rate 1 always, never at rate 0).
bool DrawCheck(double rate, uint32_t random);

// The probability that a provider that cheats on each job with probability `cheat` (and is
// otherwise honest, starting with no record) is caught within its first `jobs` jobs: a cheated
// job is caught exactly when it is checked (its re-run's root differs).
double CatchProbability(const economy::ComputePolicy& p, double cheat, uint64_t jobs);

// The expected share of an honest new provider's first `jobs` jobs that are checked.
double CheckedShare(const economy::ComputePolicy& p, uint64_t jobs);

// {"valid", "mismatches", "unchecked"}: one provider's record as providers.json keeps it.
nlohmann::json ProviderChecksJson(const ProviderChecks& c);

// A client's records of the providers it used: STATE_DIR/compute/providers.json,
// {"<address>": {"valid", "mismatches", "unchecked"}}; an absent file is no record. Written
// atomically (docs/FORMAT.md).
core::Result<ProviderChecks> LoadProviderChecks(core::FileSystem* fs, const std::string& path,
                                                const std::string& provider);
core::Status SaveProviderChecks(core::FileSystem* fs, const std::string& path,
                                const std::string& provider, const ProviderChecks& c);

}  // namespace dfrp::compute
