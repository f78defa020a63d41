#include "dfrp/node/metrics.h"

#include <fmt/format.h>

#include <memory>

namespace dfrp::node {

void Histogram::Observe(double seconds) {
  size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) ++i;
  std::lock_guard lock(mu_);
  ++counts_[i];
  sum_ += seconds;
  ++count_;
}

void Histogram::Render(const std::string& name, const std::string& labels, std::string* out) const {
  std::lock_guard lock(mu_);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kBounds.size(); ++i) {
    cumulative += counts_[i];
    *out += fmt::format("{}_bucket{{{},le=\"{}\"}} {}\n", name, labels, kBounds[i], cumulative);
  }
  cumulative += counts_[kBounds.size()];
  *out += fmt::format("{}_bucket{{{},le=\"+Inf\"}} {}\n", name, labels, cumulative);
  *out += fmt::format("{}_sum{{{}}} {}\n", name, labels, sum_);
  *out += fmt::format("{}_count{{{}}} {}\n", name, labels, count_);
}

void ThroughputSeries::Add(int64_t now_unix_ms, uint64_t read_bytes, uint64_t write_bytes) {
  const int64_t step = kIntervalSeconds * 1000;
  const int64_t start = now_unix_ms - now_unix_ms % step;
  std::lock_guard lock(mu_);
  Sample& s = by_interval_[start];
  s.t_unix_ms = start;
  s.read_bytes += read_bytes;
  s.write_bytes += write_bytes;
  while (by_interval_.size() > kSamples + 1) by_interval_.erase(by_interval_.begin());
}

std::vector<ThroughputSeries::Sample> ThroughputSeries::Samples(int64_t now_unix_ms) const {
  const int64_t step = kIntervalSeconds * 1000;
  const int64_t last = now_unix_ms - now_unix_ms % step;
  std::vector<Sample> out;
  out.reserve(kSamples);
  std::lock_guard lock(mu_);
  for (int64_t t = last - static_cast<int64_t>(kSamples - 1) * step; t <= last; t += step) {
    auto it = by_interval_.find(t);
    out.push_back(it != by_interval_.end() ? it->second : Sample{t, 0, 0});
  }
  return out;
}

void Metrics::ObserveRequest(const std::string& route, int status, double seconds) {
  requests.fetch_add(1, std::memory_order_relaxed);
  Histogram* h = nullptr;
  {
    std::lock_guard lock(mu_);
    auto& slot = latency_[route];
    if (!slot) slot = std::make_unique<Histogram>();
    h = slot.get();
    ++requests_by_code_[{route, status}];
  }
  h->Observe(seconds);
}

void Metrics::AddRead(int64_t now_unix_ms, uint64_t bytes) {
  bytes_read.fetch_add(bytes, std::memory_order_relaxed);
  shards_read.fetch_add(1, std::memory_order_relaxed);
  throughput.Add(now_unix_ms, bytes, 0);
}

void Metrics::AddWrite(int64_t now_unix_ms, uint64_t bytes) {
  bytes_written.fetch_add(bytes, std::memory_order_relaxed);
  shards_written.fetch_add(1, std::memory_order_relaxed);
  throughput.Add(now_unix_ms, 0, bytes);
}

std::string PromLabel(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string Metrics::Render() const {
  std::string out;
  auto counter = [&](const char* name, const char* help, uint64_t v) {
    out += fmt::format("# HELP {} {}\n# TYPE {} counter\n{} {}\n", name, help, name, name, v);
  };
  counter("dfrp_bytes_written_total", "Payload bytes stored through the API.",
          bytes_written.load());
  counter("dfrp_bytes_read_total", "Verified payload bytes served.", bytes_read.load());
  counter("dfrp_shards_written_total", "Shards stored through the API.", shards_written.load());
  counter("dfrp_shards_read_total", "Shard reads served (whole or ranges).", shards_read.load());
  counter("dfrp_verification_failures_total",
          "Reads, verifications and scrubs that found bytes that do not verify.",
          verification_failures.load());
  out += "# HELP dfrp_migrations_total Volume migrations run by the daemon, by outcome.\n";
  out += "# TYPE dfrp_migrations_total counter\n";
  out += fmt::format("dfrp_migrations_total{{result=\"succeeded\"}} {}\n",
                     migrations_succeeded.load());
  out += fmt::format("dfrp_migrations_total{{result=\"failed\"}} {}\n", migrations_failed.load());
  out += fmt::format("dfrp_migrations_total{{result=\"cancelled\"}} {}\n",
                     migrations_cancelled.load());
  counter("dfrp_scrub_bytes_verified_total", "Payload bytes the background scrubber verified.",
          scrub_bytes.load());
  counter("dfrp_scrub_shards_verified_total", "Shards the background scrubber verified.",
          scrub_shards.load());
  counter("dfrp_scrub_corrupt_total", "Corrupt shards the background scrubber found.",
          scrub_corrupt.load());
  out += "# HELP dfrp_http_connections_open Connections being served.\n";
  out += "# TYPE dfrp_http_connections_open gauge\n";
  out += fmt::format("dfrp_http_connections_open {}\n", connections_open.load());
  out += "# HELP dfrp_http_rejected_total Connections or requests refused before routing.\n";
  out += "# TYPE dfrp_http_rejected_total counter\n";
  out += fmt::format("dfrp_http_rejected_total{{reason=\"overloaded\"}} {}\n",
                     rejected_overloaded.load());
  out +=
      fmt::format("dfrp_http_rejected_total{{reason=\"timeout\"}} {}\n", rejected_timeout.load());
  out += fmt::format("dfrp_http_rejected_total{{reason=\"header_too_large\"}} {}\n",
                     rejected_header.load());
  std::lock_guard lock(mu_);
  out += "# HELP dfrp_http_requests_total HTTP requests answered, by route and status.\n";
  out += "# TYPE dfrp_http_requests_total counter\n";
  for (const auto& [key, n] : requests_by_code_)
    out += fmt::format("dfrp_http_requests_total{{route=\"{}\",code=\"{}\"}} {}\n",
                       PromLabel(key.first), key.second, n);
  out += "# HELP dfrp_http_request_duration_seconds Time from a request's header to its answer.\n";
  out += "# TYPE dfrp_http_request_duration_seconds histogram\n";
  for (const auto& [route, h] : latency_)
    h->Render("dfrp_http_request_duration_seconds", fmt::format("route=\"{}\"", PromLabel(route)),
              &out);
  return out;
}

}  // namespace dfrp::node
