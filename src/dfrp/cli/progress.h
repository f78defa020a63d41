// A progress bar on stderr for long work: percent, throughput and time left, redrawn at most
// ten times a second, and only when stderr is a terminal (never in pipes, logs or --quiet).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "dfrp/core/clock.h"

namespace dfrp::cli {

class ProgressBar {
 public:
  // `label` prefixes the bar ("writing"); enabled=false makes every call a no-op. The clock
  // times the rate and the redraws.
  ProgressBar(std::string label, bool enabled, core::Clock* clock);
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

// Bars for work in phases (a migration's copy, then its verification): one bar a phase, named
// label(phase) (no bar for ""), the previous one cleared when the phase changes.
class PhaseBars {
 public:
  PhaseBars(std::function<std::string(std::string_view)> label, bool enabled, core::Clock* clock);
  ~PhaseBars();
  void Update(std::string_view phase, uint64_t done, uint64_t total);
  // Clears the bar of the current phase.
  void Finish();

 private:
  std::function<std::string(std::string_view)> label_;
  bool enabled_;
  core::Clock* clock_;
  std::string phase_;
  bool started_ = false;
  std::unique_ptr<ProgressBar> bar_;
};

// True when file descriptor 2 is a terminal.
bool StderrIsTerminal();

}  // namespace dfrp::cli
