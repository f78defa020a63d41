// The adaptive check rate against cheaters (issue 16, docs/BENCHMARKS.md "Compute: checks"):
// many simulated providers, each job's check drawn with the real schedule (economic.toml's
// [compute], compute/check_rate.h) and the real draw, set against the theory (the chain in
// check_rate.cc). A checked job of a cheater is caught: its re-run's result root differs
// whatever fraction of its ranks it corrupted (the root covers every rank's output).
//
//   dfrp-check-rate-sim [TRIALS] [SEED]     (default 20000 providers per row, seed 1)
//
// Prints, per cheating fraction and number of jobs, the measured probability of catching the
// cheater, the theory's, and their difference in standard errors; then the share of an honest
// provider's jobs that are checked (the verification overhead: a checked job is run twice).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "dfrp/compute/check_rate.h"
#include "dfrp/economy/policy.h"

using dfrp::compute::CatchProbability;
using dfrp::compute::CheckedShare;
using dfrp::compute::CheckRate;
using dfrp::compute::DrawCheck;
using dfrp::compute::ProviderChecks;

int main(int argc, char** argv) {
  const uint64_t trials = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 20000;
  const uint64_t seed = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1;
  auto policy =
      dfrp::economy::ParseEconomicPolicy(dfrp::economy::kDefaultEconomicToml, "embedded default");
  if (!policy || trials == 0) {
    std::fprintf(stderr, "usage: dfrp-check-rate-sim [TRIALS>0] [SEED]\n");
    return 2;
  }
  const auto& p = policy->compute;
  std::printf("schedule: every job until %u valid checks, then halving every %u, floor %.2f%%\n",
              p.trusted_after, p.check_half_life, p.spot_check_bps / 100.0);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::printf("\n%-8s %6s %10s %10s %8s\n", "cheats", "jobs", "measured", "theory", "z");
  for (double f : {0.01, 0.05, 0.2, 1.0}) {
    for (uint64_t jobs : {10u, 50u, 200u, 1000u}) {
      uint64_t caught = 0;
      for (uint64_t t = 0; t < trials; ++t) {
        ProviderChecks c;
        for (uint64_t j = 0; j < jobs && c.mismatches == 0; ++j) {
          const bool cheats = u(rng) < f;
          if (!DrawCheck(CheckRate(p, c), static_cast<uint32_t>(rng()))) continue;
          ++(cheats ? c.mismatches : c.valid);
        }
        caught += c.mismatches > 0;
      }
      const double theory = CatchProbability(p, f, jobs);
      const double measured = static_cast<double>(caught) / static_cast<double>(trials);
      const double se = std::sqrt(std::max(theory * (1 - theory), 1e-12) / trials);
      std::printf("%-8.2f %6llu %10.4f %10.4f %8.2f\n", f, static_cast<unsigned long long>(jobs),
                  measured, theory, (measured - theory) / se);
    }
  }
  std::printf("\n%-6s %14s %14s\n", "jobs", "checked (sim)", "checked (th.)");
  for (uint64_t jobs : {10u, 100u, 1000u, 10000u}) {
    const uint64_t runs = std::max<uint64_t>(1, trials / jobs * 10);
    uint64_t checked = 0;
    for (uint64_t t = 0; t < runs; ++t) {
      ProviderChecks c;
      for (uint64_t j = 0; j < jobs; ++j)
        if (DrawCheck(CheckRate(p, c), static_cast<uint32_t>(rng()))) {
          ++c.valid;
          ++checked;
        }
    }
    std::printf("%-6llu %13.2f%% %13.2f%%\n", static_cast<unsigned long long>(jobs),
                100.0 * checked / (runs * jobs), 100.0 * CheckedShare(p, jobs));
  }
  return 0;
}
