// dfrp-app-matmul N SEED: C = A·B for two N×N matrices of small integers generated from SEED,
// on a ring of MPI ranks. Rank r owns rows [rN/P, (r+1)N/P) of A and of B; the B blocks travel
// round the ring (MPI_Sendrecv to the left neighbour) until every rank has multiplied its rows
// of A by all of B. Entries lie in [-16, 16] and products are summed in int64, so C is exact
// and the same for any rank count. Rank r writes its rows of C, row-major, as little-endian
// int64.
#include <vector>

#include "dfrp/compute/apps/app_common.h"

namespace apps = dfrp::compute::apps;

namespace {

constexpr const char* kUsage = "dfrp-app-matmul N SEED   (N in 1..8192)";

int64_t Entry(uint64_t seed, uint64_t matrix, uint64_t i, uint64_t j, uint64_t n) {
  return static_cast<int64_t>(apps::Mix(seed, matrix, i * n + j) % 33) - 16;
}

}  // namespace

int main(int argc, char** argv) {
  int rank = 0;
  int size = 1;
  apps::Start(&argc, &argv, 3, 3, kUsage, &rank, &size);
  const uint64_t n = apps::ParseArg(argv[1], "N", 1, 8192, kUsage, rank);
  const uint64_t seed = apps::ParseArg(argv[2], "SEED", 0, UINT64_MAX, kUsage, rank);

  uint64_t row0 = 0;
  uint64_t row1 = 0;
  apps::Slice(n, rank, size, &row0, &row1);
  const uint64_t mine = row1 - row0;
  std::vector<int64_t> a(mine * n);
  for (uint64_t i = 0; i < mine; ++i)
    for (uint64_t j = 0; j < n; ++j) a[i * n + j] = Entry(seed, 1, row0 + i, j, n);

  // The largest block any rank owns: every buffer on the ring has room for it.
  const uint64_t max_rows = (n + static_cast<uint64_t>(size) - 1) / static_cast<uint64_t>(size);
  std::vector<int64_t> block(max_rows * n);
  std::vector<int64_t> incoming(max_rows * n);
  for (uint64_t k = 0; k < mine; ++k)
    for (uint64_t j = 0; j < n; ++j) block[k * n + j] = Entry(seed, 2, row0 + k, j, n);

  std::vector<int64_t> c(mine * n, 0);
  const int left = (rank + size - 1) % size;
  const int right = (rank + 1) % size;
  int owner = rank;  // whose rows of B `block` holds
  for (int step = 0; step < size; ++step) {
    uint64_t b0 = 0;
    uint64_t b1 = 0;
    apps::Slice(n, owner, size, &b0, &b1);
    for (uint64_t i = 0; i < mine; ++i) {
      int64_t* crow = &c[i * n];
      for (uint64_t k = b0; k < b1; ++k) {
        const int64_t aik = a[i * n + k];
        const int64_t* brow = &block[(k - b0) * n];
        for (uint64_t j = 0; j < n; ++j) crow[j] += aik * brow[j];
      }
    }
    if (step + 1 == size) break;
    // Pass the block on to the left and take the right neighbour's.
    const int next_owner = (owner + 1) % size;
    uint64_t n0 = 0;
    uint64_t n1 = 0;
    apps::Slice(n, next_owner, size, &n0, &n1);
    const int send_count = static_cast<int>((b1 - b0) * n);
    const int recv_count = static_cast<int>((n1 - n0) * n);
    MPI_Sendrecv(block.data(), send_count, MPI_INT64_T, left, step, incoming.data(), recv_count,
                 MPI_INT64_T, right, step, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    block.swap(incoming);
    owner = next_owner;
  }

  std::string out;
  out.reserve(c.size() * 8);
  for (int64_t v : c) apps::PutLe(&out, static_cast<uint64_t>(v), 8);
  apps::WriteOutput(rank, out);
  MPI_Finalize();
  return 0;
}
