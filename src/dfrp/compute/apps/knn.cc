// dfrp-app-knn N DIM K QUERIES SEED [FILE]: the K nearest of N points to each of QUERIES query
// points, by squared Euclidean distance, ties broken by the lower point index. Points are DIM
// bytes each: read from FILE (N·DIM bytes, for example a shard of vectors) or generated from
// SEED; queries are generated from SEED. Rank r searches its slice of the points, the local
// top K of every rank is gathered to rank 0 (MPI_Gather) and merged there by (distance, index),
// so the answer is the same for any rank count. Rank 0 writes the answer, one line per
// neighbour, "q <query> <rank-in-answer> <index> <distance>"; every other rank writes its local
// candidates, "local q <query> <index> <distance>".
#include <algorithm>
#include <utility>
#include <vector>

#include "dfrp/compute/apps/app_common.h"

namespace apps = dfrp::compute::apps;

namespace {

constexpr const char* kUsage =
    "dfrp-app-knn N DIM K QUERIES SEED [FILE]   (N ≤ 10^8, DIM ≤ 4096, K ≤ 1024, QUERIES ≤ "
    "4096, N·DIM ≤ 2^32; FILE holds N·DIM bytes)";
constexpr uint64_t kNone = UINT64_MAX;

using Hit = std::pair<uint64_t, uint64_t>;  // (distance, index)

uint64_t Distance(const uint8_t* p, const std::vector<uint8_t>& q, uint64_t dim) {
  uint64_t d = 0;
  for (uint64_t i = 0; i < dim; ++i) {
    const int64_t diff = static_cast<int64_t>(p[i]) - static_cast<int64_t>(q[i]);
    d += static_cast<uint64_t>(diff * diff);
  }
  return d;
}

}  // namespace

int main(int argc, char** argv) {
  int rank = 0;
  int size = 1;
  apps::Start(&argc, &argv, 6, 7, kUsage, &rank, &size);
  const uint64_t n = apps::ParseArg(argv[1], "N", 1, 100000000, kUsage, rank);
  const uint64_t dim = apps::ParseArg(argv[2], "DIM", 1, 4096, kUsage, rank);
  const uint64_t k = apps::ParseArg(argv[3], "K", 1, 1024, kUsage, rank);
  const uint64_t queries = apps::ParseArg(argv[4], "QUERIES", 1, 4096, kUsage, rank);
  const uint64_t seed = apps::ParseArg(argv[5], "SEED", 0, UINT64_MAX, kUsage, rank);
  if (n * dim > (1ULL << 32)) {
    if (rank == 0) std::fprintf(stderr, "N·DIM is over 2^32\nusage: %s\n", kUsage);
    MPI_Finalize();
    return 2;
  }

  uint64_t first = 0;
  uint64_t last = 0;
  apps::Slice(n, rank, size, &first, &last);
  std::vector<uint8_t> points((last - first) * dim);
  if (argc == 7) {
    std::FILE* f = std::fopen(argv[6], "rb");
    if (f == nullptr) {
      std::fprintf(stderr, "rank %d: cannot open %s: %s\n", rank, argv[6], std::strerror(errno));
      MPI_Abort(MPI_COMM_WORLD, 2);
    }
    if (std::fseek(f, 0, SEEK_END) != 0 || static_cast<uint64_t>(std::ftell(f)) != n * dim) {
      std::fprintf(stderr, "rank %d: %s does not hold N·DIM = %llu bytes\n", rank, argv[6],
                   static_cast<unsigned long long>(n * dim));
      MPI_Abort(MPI_COMM_WORLD, 2);
    }
    if (std::fseek(f, static_cast<long>(first * dim), SEEK_SET) != 0 ||
        std::fread(points.data(), 1, points.size(), f) != points.size()) {
      std::fprintf(stderr, "rank %d: cannot read %s\n", rank, argv[6]);
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    std::fclose(f);
  } else {
    for (uint64_t i = 0; i < last - first; ++i)
      for (uint64_t d = 0; d < dim; ++d)
        points[i * dim + d] = static_cast<uint8_t>(apps::Mix(seed, 4, (first + i) * dim + d));
  }

  // Local top K of every query, padded with kNone, flattened as (distance, index) pairs.
  std::vector<uint64_t> local(queries * k * 2, kNone);
  std::vector<uint8_t> q(dim);
  std::vector<Hit> hits;
  hits.reserve(last - first);
  for (uint64_t qi = 0; qi < queries; ++qi) {
    for (uint64_t d = 0; d < dim; ++d)
      q[d] = static_cast<uint8_t>(apps::Mix(seed, 5, qi * dim + d));
    hits.clear();
    for (uint64_t i = 0; i < last - first; ++i)
      hits.emplace_back(Distance(&points[i * dim], q, dim), first + i);
    const uint64_t keep = std::min<uint64_t>(k, hits.size());
    std::partial_sort(hits.begin(), hits.begin() + static_cast<long>(keep), hits.end());
    for (uint64_t j = 0; j < keep; ++j) {
      local[(qi * k + j) * 2] = hits[j].first;
      local[(qi * k + j) * 2 + 1] = hits[j].second;
    }
  }

  std::vector<uint64_t> all;
  if (rank == 0) all.resize(local.size() * static_cast<uint64_t>(size));
  MPI_Gather(local.data(), static_cast<int>(local.size()), MPI_UINT64_T, all.data(),
             static_cast<int>(local.size()), MPI_UINT64_T, 0, MPI_COMM_WORLD);

  std::string out;
  if (rank == 0) {
    std::vector<Hit> merged;
    for (uint64_t qi = 0; qi < queries; ++qi) {
      merged.clear();
      for (int r = 0; r < size; ++r)
        for (uint64_t j = 0; j < k; ++j) {
          const uint64_t* h = &all[((static_cast<uint64_t>(r) * queries + qi) * k + j) * 2];
          if (h[1] != kNone) merged.emplace_back(h[0], h[1]);
        }
      const uint64_t keep = std::min<uint64_t>(k, merged.size());
      std::partial_sort(merged.begin(), merged.begin() + static_cast<long>(keep), merged.end());
      for (uint64_t j = 0; j < keep; ++j)
        out += "q " + std::to_string(qi) + " " + std::to_string(j) + " " +
               std::to_string(merged[j].second) + " " + std::to_string(merged[j].first) + "\n";
    }
  } else {
    for (uint64_t qi = 0; qi < queries; ++qi)
      for (uint64_t j = 0; j < k; ++j) {
        const uint64_t* h = &local[(qi * k + j) * 2];
        if (h[1] == kNone) break;
        out += "local q " + std::to_string(qi) + " " + std::to_string(h[1]) + " " +
               std::to_string(h[0]) + "\n";
      }
  }
  apps::WriteOutput(rank, out);
  MPI_Finalize();
  return 0;
}
