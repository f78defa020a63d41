// measure_tool [--quick] FOLDER: prints the capacity measurement of this machine, with FOLDER
// as its one volume, as JSON (CapacityToJson) on stdout and one progress line per step on
// stderr, with two more figures (evp_sha256_per_sec_*: see MeasureHashRate).
// bench/measure_vs_tools.sh compares its figures with fio and `openssl speed`.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "dfrp/core/clock.h"
#include "dfrp/economy/measure.h"

namespace {

// As `openssl speed -multi N`: N processes (not threads: EVP contexts of one process share
// the fetched digest's reference count, which costs threads what processes do not pay), each
// timing EVP_Digest per input on one core; the sum of their rates.
double EvpRateInProcesses(unsigned n, double seconds) {
  std::vector<std::pair<pid_t, int>> kids;
  for (unsigned i = 0; i < n; ++i) {
    int fds[2];
    if (pipe(fds) != 0) return 0;
    const pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      const double rate =
          dfrp::economy::MeasureHashRate(1, seconds, dfrp::economy::HashMethod::kEvpPerInput);
      const ssize_t w = write(fds[1], &rate, sizeof rate);
      _exit(w == sizeof rate ? 0 : 1);
    }
    close(fds[1]);
    if (pid < 0) return 0;
    kids.emplace_back(pid, fds[0]);
  }
  double total = 0;
  for (auto [pid, fd] : kids) {
    double rate = 0;
    if (read(fd, &rate, sizeof rate) == sizeof rate) total += rate;
    close(fd);
    waitpid(pid, nullptr, 0);
  }
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::string folder;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--quick") {
      quick = true;
    } else if (folder.empty() && !arg.starts_with("-")) {
      folder = arg;
    } else {
      folder.clear();
      break;
    }
  }
  if (folder.empty()) {
    std::cerr << "usage: measure_tool [--quick] FOLDER\n";
    return 2;
  }
  dfrp::economy::MeasureOptions opt;
  opt.quick = quick;
  opt.clock = dfrp::core::SystemClock();
  opt.progress = [](const std::string& line) { std::cerr << "measure: " << line << "\n"; };
  auto c = dfrp::economy::MeasureCapacity({{0, folder}}, opt);
  if (!c.has_value()) {
    std::cerr << "measure_tool: " << c.error().ToString() << "\n";
    return dfrp::core::ExitCodeFor(c.error());
  }
  // Beside the node's figures, the same harness timing the loop `openssl speed sha256` times
  // (one EVP_Digest per input), for the like-for-like comparison in measure_vs_tools.sh.
  nlohmann::json j = dfrp::economy::CapacityToJson(*c);
  const double seconds = quick ? 1.0 : 3.0;
  using dfrp::economy::HashMethod;
  std::cerr << "measure: sha256 by EVP_Digest per input, one core and " << c->cores << " cores\n";
  j["evp_sha256_per_sec_one_core"] =
      dfrp::economy::MeasureHashRate(1, seconds, HashMethod::kEvpPerInput);
  j["evp_sha256_per_sec_all_cores"] = EvpRateInProcesses(c->cores, seconds);
  std::cout << j.dump(2) << "\n";
  return c->volumes[0].error.empty() ? 0 : 1;
}
