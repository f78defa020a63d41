// The daemon's counters and request-latency histograms, rendered in the Prometheus text
// format (0.0.4). Counters and histograms are atomics: observing a request takes no lock.
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
#include <string_view>
#include <vector>

namespace dfrp::node {

// The requests of one route: answers by status and a latency histogram, all atomics, so that
// a request's observation takes no lock (the HTTP threads share them).
class RouteStats {
 public:
  static constexpr std::array<double, 14> kBounds = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};
  void Observe(int status, int64_t nanos);
  // Appends this route's dfrp_http_requests_total lines (statuses seen) to *codes and its
  // dfrp_http_request_duration_seconds lines to *latency.
  void Render(const std::string& label, std::string* codes, std::string* latency) const;

 private:
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets_{};  // the last is +Inf
  std::atomic<uint64_t> sum_nanos_{0};
  std::atomic<uint64_t> count_{0};
  std::array<std::atomic<uint64_t>, 600> by_status_{};  // [100, 599]; others count as 0
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
  // One slot per interval, reused every kSamples + 1 intervals; adding takes a lock only
  // when an interval begins (to empty its slot), so the GETs of both HTTP threads do not
  // contend for it.
  struct Slot {
    std::atomic<int64_t> start{-1};  // the interval's start (ms); set after the bytes are emptied
    std::atomic<uint64_t> read_bytes{0};
    std::atomic<uint64_t> write_bytes{0};
  };
  std::mutex begin_mu_;
  std::array<Slot, kSamples + 1> ring_{};
};

// What a ledger metric counts: orders (and their certificates), settlements (and theirs),
// beacon signatures.
enum LedgerKind : size_t { kLedgerOrder = 0, kLedgerSettlement = 1, kLedgerBeacon = 2 };

struct Metrics {
  std::atomic<uint64_t> bytes_written{0}, bytes_read{0}, shards_written{0}, shards_read{0};
  std::atomic<uint64_t> verification_failures{0}, requests{0};
  std::atomic<uint64_t> migrations_succeeded{0}, migrations_failed{0}, migrations_cancelled{0};
  std::atomic<uint64_t> scrub_bytes{0}, scrub_shards{0}, scrub_corrupt{0};
  std::atomic<int64_t> connections_open{0};
  std::atomic<uint64_t> rejected_overloaded{0}, rejected_timeout{0}, rejected_header{0};
  std::atomic<uint64_t> market_errors{0};       // market epochs that failed to end (market.db)
  std::atomic<uint64_t> vector_save_errors{0};  // saves of STATE_DIR/vectors.idx that failed
  // The ledger, on an authority, by kind (LedgerKind): votes given, refusals (402: funds, a
  // lock, a window, a proof), messages rejected (malformed, not verifying, out of sequence),
  // certificates applied now and applied before.
  std::array<std::atomic<uint64_t>, 3> ledger_votes{}, ledger_refusals{}, ledger_rejected{};
  std::array<std::atomic<uint64_t>, 3> ledger_applied{}, ledger_already{};
  // usage.db's totals, refreshed by the market's thread at start and once per ended epoch (a
  // scrape must not wait on SQLite on the HTTP thread).
  std::atomic<uint64_t> usage_bytes_written{0}, usage_bytes_read{0}, usage_proofs{0},
      usage_wallets{0};
  ThroughputSeries throughput;

  // The stats of a route by its label, made on first use; the pointer stays valid for the
  // Metrics' life (the server looks each route's up once, then observes without a lookup).
  RouteStats* Route(std::string_view route);
  // One answered request: the total and its route's stats.
  void ObserveRequest(RouteStats* route, int status, int64_t nanos) {
    requests.fetch_add(1, std::memory_order_relaxed);
    route->Observe(status, nanos);
  }
  void ObserveRequest(std::string_view route, int status, int64_t nanos) {
    ObserveRequest(Route(route), status, nanos);
  }
  void AddRead(int64_t now_unix_ms, uint64_t bytes);
  void AddWrite(int64_t now_unix_ms, uint64_t bytes);
  // Counters and histograms (the caller adds the gauges it computes at scrape time).
  std::string Render() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<RouteStats>, std::less<>> routes_;  // by label
};

// Escapes a Prometheus label value (backslash, quote, newline).
std::string PromLabel(const std::string& v);

}  // namespace dfrp::node
