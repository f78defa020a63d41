// dfrp-app-hog MODE ARG: a misbehaving job for the executor's tests, run under mpirun like any
// app (it does not call MPI; its rank comes from OMPI_COMM_WORLD_RANK). Modes:
//   spin SECONDS   burn CPU for SECONDS of wall time (the CPU limit should stop it first)
//   sleep SECONDS  sleep (the wall-time limit should stop it)
//   alloc MIB      allocate and touch MIB MiB (the memory limit should stop it)
//   fork N         start N processes that each sleep 60 s (the process limit should stop it)
//   orphan SECONDS leave a child in its own process group, its output closed as a daemon's,
//                  that sleeps SECONDS; then write the output and exit 0 (the executor must
//                  still kill the child)
//   skip RANK      rank RANK exits 0 without writing its output (an incomplete result set)
//   link RANK      rank RANK makes its output a symlink to /etc/passwd (never to be read)
// Each rank that gets to the end writes "hog <mode> <arg> rank <r>\n" as its output.
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: dfrp-app-hog spin|sleep|alloc|fork|orphan|skip|link ARG\n");
    return 2;
  }
  const std::string mode = argv[1];
  const long arg = std::strtol(argv[2], nullptr, 10);
  const char* rank_env = std::getenv("OMPI_COMM_WORLD_RANK");
  const std::string rank = rank_env != nullptr ? rank_env : "0";
  if (mode == "spin") {
    const time_t end = std::time(nullptr) + arg;
    volatile uint64_t x = 0;
    while (std::time(nullptr) < end) x = x + 1;
  } else if (mode == "sleep") {
    sleep(static_cast<unsigned>(arg));
  } else if (mode == "alloc") {
    std::vector<char*> blocks;
    for (long i = 0; i < arg; ++i) {
      char* b = static_cast<char*>(std::malloc(1 << 20));
      if (b == nullptr) {
        std::fprintf(stderr, "hog: malloc failed after %ld MiB\n", i);
        return 1;
      }
      std::memset(b, 1, 1 << 20);
      blocks.push_back(b);
    }
  } else if (mode == "fork") {
    for (long i = 0; i < arg; ++i) {
      const pid_t p = fork();
      if (p < 0) {
        std::fprintf(stderr, "hog: fork %ld failed: %s\n", i, std::strerror(errno));
        return 1;
      }
      if (p == 0) {
        sleep(60);
        _exit(0);
      }
    }
  } else if (mode == "orphan") {
    const pid_t p = fork();
    if (p == 0) {
      setpgid(0, 0);
      // As a daemon does: mpirun waits for a rank's stdout and stderr to close.
      for (int fd = 0; fd < 3; ++fd) close(fd);
      sleep(static_cast<unsigned>(arg));
      _exit(0);
    }
  } else if (mode == "skip") {
    if (rank == std::to_string(arg)) return 0;
  } else if (mode == "link") {
    if (rank == std::to_string(arg)) {
      const char* dir = std::getenv("DFRP_OUT_DIR");
      const std::string path = std::string(dir != nullptr ? dir : ".") + "/rank-" + rank + ".out";
      return symlink("/etc/passwd", path.c_str()) == 0 ? 0 : 1;
    }
  } else {
    std::fprintf(stderr, "hog: unknown mode %s\n", mode.c_str());
    return 2;
  }
  const char* dir = std::getenv("DFRP_OUT_DIR");
  const std::string path = std::string(dir != nullptr ? dir : ".") + "/rank-" + rank + ".out";
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 1;
  std::fprintf(f, "hog %s %ld rank %s\n", mode.c_str(), arg, rank.c_str());
  return std::fclose(f) == 0 ? 0 : 1;
}
