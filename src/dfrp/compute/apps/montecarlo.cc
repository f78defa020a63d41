// dfrp-app-montecarlo SAMPLES SEED: a seeded Monte Carlo estimate of pi. Sample i is the point
// (x, y) with 32-bit coordinates drawn from Mix(SEED, 3, i); it hits when x² + y² < 2^64.
// Rank r draws samples [r·S/P, (r+1)·S/P); the hit counts are summed with MPI_Allreduce
// (integers: the same in any order), so the total is the same for any rank count. Rank r
// writes one text line: "rank <r> samples <first>..<last> hits <h> total-samples <S>
// total-hits <H> pi-e9 <floor(4e9·H/S)>".
#include <string>

#include "dfrp/compute/apps/app_common.h"

namespace apps = dfrp::compute::apps;

namespace {
constexpr const char* kUsage = "dfrp-app-montecarlo SAMPLES SEED   (SAMPLES in 1..10^12)";
}  // namespace

int main(int argc, char** argv) {
  int rank = 0;
  int size = 1;
  apps::Start(&argc, &argv, 3, 3, kUsage, &rank, &size);
  const uint64_t samples = apps::ParseArg(argv[1], "SAMPLES", 1, 1000000000000ULL, kUsage, rank);
  const uint64_t seed = apps::ParseArg(argv[2], "SEED", 0, UINT64_MAX, kUsage, rank);
  uint64_t first = 0;
  uint64_t last = 0;
  apps::Slice(samples, rank, size, &first, &last);
  uint64_t hits = 0;
  for (uint64_t i = first; i < last; ++i) {
    const uint64_t r = apps::Mix(seed, 3, i);
    const unsigned __int128 x = r >> 32;
    const unsigned __int128 y = r & 0xffffffffULL;
    if (x * x + y * y < (static_cast<unsigned __int128>(1) << 64)) ++hits;
  }
  uint64_t total = 0;
  MPI_Allreduce(&hits, &total, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
  const unsigned __int128 pi_e9 = static_cast<unsigned __int128>(total) * 4000000000ULL /
                                  static_cast<unsigned __int128>(samples);
  const std::string line = "rank " + std::to_string(rank) + " samples " + std::to_string(first) +
                           ".." + std::to_string(last) + " hits " + std::to_string(hits) +
                           " total-samples " + std::to_string(samples) + " total-hits " +
                           std::to_string(total) + " pi-e9 " +
                           std::to_string(static_cast<uint64_t>(pi_e9)) + "\n";
  apps::WriteOutput(rank, line);
  MPI_Finalize();
  return 0;
}
