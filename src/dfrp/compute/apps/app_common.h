// What the project's MPI reference apps share: argument parsing, a counter-based generator
// (the value at an index depends only on the seed and the index, never on the rank count),
// and writing a rank's output where the executor looks for it ($DFRP_OUT_DIR/rank-<r>.out).
//
// The apps are bitwise deterministic: integer arithmetic only, fixed reduction order, no
// clock, no addresses, no environment but DFRP_OUT_DIR.
#pragma once

#include <mpi.h>

#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace dfrp::compute::apps {

// splitmix64's finalizer over (seed, stream, index): a fixed function, so a value is the same
// whichever rank computes it.
inline uint64_t Mix(uint64_t seed, uint64_t stream, uint64_t index) {
  uint64_t z = seed ^ (stream * 0x9e3779b97f4a7c15ULL) ^ (index * 0xbf58476d1ce4e5b9ULL);
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// MPI_Init, this rank and the rank count; when argc is outside [min_argc, max_argc], rank 0
// prints the usage and every rank exits 2.
inline void Start(int* argc, char*** argv, int min_argc, int max_argc, const char* usage, int* rank,
                  int* size) {
  MPI_Init(argc, argv);
  MPI_Comm_rank(MPI_COMM_WORLD, rank);
  MPI_Comm_size(MPI_COMM_WORLD, size);
  if (*argc < min_argc || *argc > max_argc) {
    if (*rank == 0) std::fprintf(stderr, "usage: %s\n", usage);
    MPI_Finalize();
    std::exit(2);
  }
}

// Parses a decimal u64 in [lo, hi]; on failure rank 0 prints the usage and every rank exits 2.
inline uint64_t ParseArg(const char* text, const char* name, uint64_t lo, uint64_t hi,
                         const char* usage, int rank) {
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || v < lo || v > hi) {
    if (rank == 0)
      std::fprintf(stderr,
                   "%s: '%s' is not a whole number in %" PRIu64 "..%" PRIu64 "\nusage: %s\n", name,
                   text, lo, hi, usage);
    MPI_Finalize();
    std::exit(2);
  }
  return v;
}

inline void Fail(const char* what) {
  std::fprintf(stderr, "%s\n", what);
  MPI_Abort(MPI_COMM_WORLD, 1);
}

// This rank's slice [first, last) of n items split over `size` ranks as evenly as possible.
inline void Slice(uint64_t n, int rank, int size, uint64_t* first, uint64_t* last) {
  *first = n * static_cast<uint64_t>(rank) / static_cast<uint64_t>(size);
  *last = n * static_cast<uint64_t>(rank + 1) / static_cast<uint64_t>(size);
}

// Writes this rank's output to $DFRP_OUT_DIR/rank-<rank>.out (or ./rank-<rank>.out).
inline void WriteOutput(int rank, const std::string& bytes) {
  const char* dir = std::getenv("DFRP_OUT_DIR");
  std::string path = (dir != nullptr && dir[0] != '\0') ? std::string(dir) : std::string(".");
  path += "/rank-" + std::to_string(rank) + ".out";
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    std::fprintf(stderr, "rank %d: cannot create %s: %s\n", rank, path.c_str(),
                 std::strerror(errno));
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) {
    std::fprintf(stderr, "rank %d: cannot write %s: %s\n", rank, path.c_str(),
                 std::strerror(errno));
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  if (std::fclose(f) != 0) {
    std::fprintf(stderr, "rank %d: cannot close %s: %s\n", rank, path.c_str(),
                 std::strerror(errno));
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
}

inline void PutLe(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

}  // namespace dfrp::compute::apps
