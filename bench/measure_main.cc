// measure_tool [--quick] FOLDER: prints the capacity measurement of this machine, with FOLDER
// as its one volume, as JSON (CapacityToJson) on stdout and one progress line per step on
// stderr. bench/measure_vs_tools.sh compares its figures with fio and `openssl speed`.
#include <cstdio>
#include <iostream>
#include <string>

#include "dfrp/core/clock.h"
#include "dfrp/economy/measure.h"

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
  std::cout << dfrp::economy::CapacityToJson(*c).dump(2) << "\n";
  return c->volumes[0].error.empty() ? 0 : 1;
}
