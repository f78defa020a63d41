#include "dfrp/cli/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

#include "dfrp/core/config.h"

namespace dfrp::cli {

bool StderrIsTerminal() { return ::isatty(2) == 1; }

ProgressBar::ProgressBar(std::string label, bool enabled, core::Clock* clock)
    : label_(std::move(label)),
      enabled_(enabled),
      clock_(clock),
      start_ns_(clock->NowMonotonicNanos()) {}

ProgressBar::~ProgressBar() { Finish(); }

void ProgressBar::Update(uint64_t done, uint64_t total) {
  if (!enabled_ || total == 0) return;
  const int64_t now = clock_->NowMonotonicNanos();
  if (drawn_ && now - last_draw_ns_ < 100'000'000 && done < total) return;
  last_draw_ns_ = now;
  const double secs = static_cast<double>(now - start_ns_) / 1e9;
  const double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
  const double frac = static_cast<double>(done) / static_cast<double>(total);
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(frac * kWidth);
  std::string bar(static_cast<size_t>(filled), '=');
  if (filled < kWidth) bar += '>';
  bar.resize(kWidth, ' ');
  std::string eta =
      rate > 0 ? fmt::format("{:.0f}s left", static_cast<double>(total - done) / rate) : "";
  std::fprintf(stderr, "\r%s [%s] %3.0f%% %s/s %s\033[K", label_.c_str(), bar.c_str(), frac * 100,
               core::FormatBytes(static_cast<uint64_t>(rate)).c_str(), eta.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::Finish() {
  if (!drawn_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  drawn_ = false;
}

PhaseBars::PhaseBars(std::function<std::string(std::string_view)> label, bool enabled,
                     core::Clock* clock)
    : label_(std::move(label)), enabled_(enabled), clock_(clock) {}

PhaseBars::~PhaseBars() = default;

void PhaseBars::Update(std::string_view phase, uint64_t done, uint64_t total) {
  if (!started_ || phase != phase_) {
    bar_.reset();  // clears the line
    started_ = true;
    phase_ = phase;
    const std::string name = label_(phase);
    if (!name.empty()) bar_ = std::make_unique<ProgressBar>(name, enabled_, clock_);
  }
  if (bar_) bar_->Update(done, total);
}

void PhaseBars::Finish() {
  bar_.reset();
  started_ = false;
}

}  // namespace dfrp::cli
