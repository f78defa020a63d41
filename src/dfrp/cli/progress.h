// A progress bar on stderr for long work: percent, throughput and time left, redrawn at most
// ten times a second, and only when stderr is a terminal (never in pipes, logs or --quiet).
#pragma once

#include <cstdint>
#include <string>

#include "dfrp/core/clock.h"

namespace dfrp::cli {

class ProgressBar {
 public:
  // `label` prefixes the bar ("writing"); enabled=false makes every call a no-op.
  ProgressBar(std::string label, bool enabled, core::Clock* clock = core::SystemClock());
  ~ProgressBar();  // clears the line
  void Update(uint64_t done, uint64_t total);
  void Finish();

 private:
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  core::Clock* clock_;
  int64_t start_ns_;
  int64_t last_draw_ns_ = 0;
};

// True when file descriptor 2 is a terminal.
bool StderrIsTerminal();

}  // namespace dfrp::cli
