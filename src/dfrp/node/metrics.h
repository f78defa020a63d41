// The daemon's counters and request-latency histograms, rendered in the Prometheus text
// format (0.0.4). Counters are atomics; histograms take a short lock per observation.
//
// Thread-safety: every member may be called from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace dfrp::node {

class Histogram {
 public:
  static constexpr std::array<double, 14> kBounds = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};
  void Observe(double seconds);
  // Appends `name`_bucket/_sum/_count lines with `labels` ("route=\"...\"").
  void Render(const std::string& name, const std::string& labels, std::string* out) const;

 private:
  mutable std::mutex mu_;
  std::array<uint64_t, kBounds.size() + 1> counts_{};  // the last is +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

// Bytes moved per fixed interval over the last minutes, for the dashboard's chart.
class ThroughputSeries {
 public:
  static constexpr int kIntervalSeconds = 5;
  static constexpr size_t kSamples = 120;  // 10 minutes
  void Add(int64_t now_unix_ms, uint64_t read_bytes, uint64_t write_bytes);
  struct Sample {
    int64_t t_unix_ms = 0;
    uint64_t read_bytes = 0;
    uint64_t write_bytes = 0;
  };
  // Oldest first, one per interval up to now (intervals with no traffic are zero).
  std::vector<Sample> Samples(int64_t now_unix_ms) const;

 private:
  mutable std::mutex mu_;
  std::map<int64_t, Sample> by_interval_;  // interval start -> bytes
};

struct Metrics {
  std::atomic<uint64_t> bytes_written{0}, bytes_read{0}, shards_written{0}, shards_read{0};
  std::atomic<uint64_t> verification_failures{0}, requests{0};
  std::atomic<uint64_t> migrations_succeeded{0}, migrations_failed{0}, migrations_cancelled{0};
  std::atomic<uint64_t> scrub_bytes{0}, scrub_shards{0}, scrub_corrupt{0};
  std::atomic<int64_t> connections_open{0};
  std::atomic<uint64_t> rejected_overloaded{0}, rejected_timeout{0}, rejected_header{0};
  ThroughputSeries throughput;

  void ObserveRequest(const std::string& route, int status, double seconds);
  void AddRead(int64_t now_unix_ms, uint64_t bytes);
  void AddWrite(int64_t now_unix_ms, uint64_t bytes);
  // Counters and histograms (the caller adds the gauges it computes at scrape time).
  std::string Render() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Histogram>> latency_;  // by route
  std::map<std::pair<std::string, int>, uint64_t> requests_by_code_;
};

// Escapes a Prometheus label value (backslash, quote, newline).
std::string PromLabel(const std::string& v);

}  // namespace dfrp::node
