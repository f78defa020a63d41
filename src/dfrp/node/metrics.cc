#include "dfrp/node/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <memory>

namespace dfrp::node {

void RouteStats::Observe(int status, int64_t nanos) {
  const double seconds = static_cast<double>(nanos) / 1e9;
  size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_nanos_.fetch_add(static_cast<uint64_t>(std::max<int64_t>(nanos, 0)),
                       std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  const size_t code = status >= 100 && status <= 599 ? static_cast<size_t>(status) : 0;
  by_status_[code].fetch_add(1, std::memory_order_relaxed);
}

void RouteStats::Render(const std::string& label, std::string* codes, std::string* latency) const {
  for (size_t code = 0; code < by_status_.size(); ++code) {
    const uint64_t n = by_status_[code].load(std::memory_order_relaxed);
    if (n > 0)
      *codes += fmt::format("dfrp_http_requests_total{{{},code=\"{}\"}} {}\n", label, code, n);
  }
  const char* name = "dfrp_http_request_duration_seconds";
  // Read the count first: a scrape that races observations may see buckets a little ahead of
  // the count, never behind it.
  const uint64_t count = count_.load(std::memory_order_relaxed);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kBounds.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    *latency += fmt::format("{}_bucket{{{},le=\"{}\"}} {}\n", name, label, kBounds[i], cumulative);
  }
  cumulative += buckets_[kBounds.size()].load(std::memory_order_relaxed);
  *latency += fmt::format("{}_bucket{{{},le=\"+Inf\"}} {}\n", name, label, cumulative);
  *latency += fmt::format("{}_sum{{{}}} {}\n", name, label,
                          static_cast<double>(sum_nanos_.load(std::memory_order_relaxed)) / 1e9);
  *latency += fmt::format("{}_count{{{}}} {}\n", name, label, count);
}

void ThroughputSeries::Add(int64_t now_unix_ms, uint64_t read_bytes, uint64_t write_bytes) {
  const int64_t step = kIntervalSeconds * 1000;
  const int64_t start = now_unix_ms - now_unix_ms % step;
  Slot& slot = ring_[static_cast<size_t>(start / step) % ring_.size()];
  if (slot.start.load(std::memory_order_acquire) != start) {
    std::lock_guard lock(begin_mu_);
    if (slot.start.load(std::memory_order_relaxed) != start) {
      slot.read_bytes.store(0, std::memory_order_relaxed);
      slot.write_bytes.store(0, std::memory_order_relaxed);
      slot.start.store(start, std::memory_order_release);
    }
  }
  if (read_bytes > 0) slot.read_bytes.fetch_add(read_bytes, std::memory_order_relaxed);
  if (write_bytes > 0) slot.write_bytes.fetch_add(write_bytes, std::memory_order_relaxed);
}

std::vector<ThroughputSeries::Sample> ThroughputSeries::Samples(int64_t now_unix_ms) const {
  const int64_t step = kIntervalSeconds * 1000;
  const int64_t last = now_unix_ms - now_unix_ms % step;
  std::vector<Sample> out;
  out.reserve(kSamples);
  for (int64_t t = last - static_cast<int64_t>(kSamples - 1) * step; t <= last; t += step) {
    Sample s{t, 0, 0};
    if (t >= 0) {
      const Slot& slot = ring_[static_cast<size_t>(t / step) % ring_.size()];
      if (slot.start.load(std::memory_order_acquire) == t) {
        s.read_bytes = slot.read_bytes.load(std::memory_order_relaxed);
        s.write_bytes = slot.write_bytes.load(std::memory_order_relaxed);
      }
    }
    out.push_back(s);
  }
  return out;
}

RouteStats* Metrics::Route(std::string_view route) {
  std::lock_guard lock(mu_);
  auto it = routes_.find(route);
  if (it == routes_.end())
    it = routes_.emplace(std::string(route), std::make_unique<RouteStats>()).first;
  return it->second.get();
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
  std::string codes, latency;
  {
    std::lock_guard lock(mu_);
    for (const auto& [route, stats] : routes_)
      stats->Render(fmt::format("route=\"{}\"", PromLabel(route)), &codes, &latency);
  }
  out += "# HELP dfrp_http_requests_total HTTP requests answered, by route and status.\n";
  out += "# TYPE dfrp_http_requests_total counter\n";
  out += codes;
  out += "# HELP dfrp_http_request_duration_seconds Time from a request's header to its answer.\n";
  out += "# TYPE dfrp_http_request_duration_seconds histogram\n";
  out += latency;
  return out;
}

}  // namespace dfrp::node
