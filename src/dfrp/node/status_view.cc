#include "dfrp/node/status_view.h"

#include <fmt/format.h>

#include "dfrp/core/version.h"
#include "dfrp/node/compute_service.h"

namespace dfrp::node {

using nlohmann::json;

json StatusJson(Node& node, const std::string& api_addr, const ServerFigures& server) {
  const int64_t now = node.NowMs();
  uint64_t shards = 0, payload = 0;
  for (const auto& v : node.writer().Snapshot()) {
    shards += v.shards;
    payload += v.payload_bytes;
  }
  Metrics& m = node.metrics();
  json samples = json::array();
  for (const auto& s : m.throughput.Samples(now))
    samples.push_back(
        {{"t_unix_ms", s.t_unix_ms}, {"read_bytes", s.read_bytes}, {"write_bytes", s.write_bytes}});
  return {{"version", core::kVersion},
          {"uptime_seconds", node.UptimeSeconds()},
          {"store_id", node.store_id().ToString()},
          {"state_dir", node.config().state_dir},
          {"api_addr", api_addr},
          {"started_unix_ms", node.started_ms()},
          {"shards", shards},
          {"payload_bytes", payload},
          {"counters",
           {{"bytes_written", m.bytes_written.load()},
            {"bytes_read", m.bytes_read.load()},
            {"shards_written", m.shards_written.load()},
            {"shards_read", m.shards_read.load()},
            {"verification_failures", m.verification_failures.load()},
            {"requests", m.requests.load()}}},
          {"memory",
           {{"body_bytes_reserved", server.body_bytes_reserved},
            {"body_budget", server.body_budget},
            {"reader_cache_bytes", node.readers().bytes()},
            {"reader_cache_capacity", node.readers().capacity()},
            {"reader_cache_entries", node.readers().entries()}}},
          {"throughput",
           {{"interval_seconds", ThroughputSeries::kIntervalSeconds}, {"samples", samples}}},
          {"scrub", node.scrub().Json()},
          {"vectors",
           {{"indexed", node.vectors().size()},
            {"unsaved", node.vectors().unsaved()},
            {"dim", node.vectors().options().dim},
            {"metric", vector::MetricName(node.vectors().options().metric)},
            {"save_errors", node.metrics().vector_save_errors.load()}}},
          {"escrows", node.provider() ? node.provider()->Json() : nlohmann::json()},
          {"ledger_sync", node.ledger_sync() ? node.ledger_sync()->Json() : nlohmann::json()},
          {"mesh", node.mesh() ? node.mesh()->Json() : nlohmann::json()},
          {"compute", node.compute() ? node.compute()->Json() : nlohmann::json()},
          {"fraud", node.fraud() ? node.fraud()->Summary() : nlohmann::json()},
          {"operations", node.operations().List()}};
}

std::string MetricsText(Node& node, const ServerFigures& server) {
  std::string out = fmt::format(
      "# HELP dfrp_build_info The daemon's version.\n# TYPE dfrp_build_info gauge\n"
      "dfrp_build_info{{version=\"{}\"}} 1\n"
      "# HELP dfrp_uptime_seconds Seconds since the daemon started.\n"
      "# TYPE dfrp_uptime_seconds gauge\ndfrp_uptime_seconds {}\n",
      core::kVersion, node.UptimeSeconds());
  const std::vector<storage::VolumeInfo> vols = node.writer().Snapshot();
  auto gauge = [&](const char* name, const char* help, auto value) {
    out += fmt::format("# HELP {} {}\n# TYPE {} gauge\n", name, help, name);
    for (const auto& v : vols)
      out += fmt::format("{}{{volume=\"{}\",state=\"{}\"}} {}\n", name, v.index,
                         storage::VolumeStateName(v.state), value(v));
  };
  gauge("dfrp_volume_quota_bytes", "Each volume's quota.", [](const auto& v) { return v.quota; });
  gauge("dfrp_volume_used_bytes", "Bytes of each volume's segment files.",
        [](const auto& v) { return v.used; });
  gauge("dfrp_volume_shards", "Shards on each volume.", [](const auto& v) { return v.shards; });
  auto single = [&](const char* name, const char* help, auto value) {
    out += fmt::format("# HELP {} {}\n# TYPE {} gauge\n{} {}\n", name, help, name, name, value);
  };
  single("dfrp_scrub_pass_progress", "Fraction of the current scrub pass done.",
         node.scrub().Progress());
  single("dfrp_body_bytes_reserved", "Request-body memory held by PUTs in flight.",
         server.body_bytes_reserved);
  single("dfrp_body_budget_bytes", "The most request-body memory PUTs may hold (MAX_BODY_MEMORY).",
         server.body_budget);
  single("dfrp_reader_cache_bytes", "Memory held by kept shard readers.", node.readers().bytes());
  // The market: this epoch's prices (in the currency, per unit) and the utilisation that set
  // them; usage.db's totals as the market's thread last read them (as of the last ended epoch).
  {
    economy::Market& m = node.market();
    const economy::EpochRecord cur = m.oracle().Current();
    single("dfrp_market_epoch", "The market's current epoch.", m.oracle().CurrentEpoch());
    out +=
        "# HELP dfrp_market_price Price per unit of each resource, in the currency.\n"
        "# TYPE dfrp_market_price gauge\n";
    for (economy::Resource r : economy::kResources)
      out += fmt::format("dfrp_market_price{{resource=\"{}\"}} {}\n", economy::ResourceName(r),
                         m.policy().FormatPrice(cur.prices[static_cast<size_t>(r)]));
    out +=
        "# HELP dfrp_market_utilization_ratio Utilisation of each resource in the last ended "
        "epoch.\n# TYPE dfrp_market_utilization_ratio gauge\n";
    for (economy::Resource r : economy::kResources)
      out +=
          fmt::format("dfrp_market_utilization_ratio{{resource=\"{}\"}} {}\n",
                      economy::ResourceName(r), cur.utilization[static_cast<size_t>(r)] / 10000.0);
    const Metrics& mt = node.metrics();
    out += fmt::format(
        "# HELP dfrp_usage_bytes_written_total Bytes written, as counted for payment (usage.db).\n"
        "# TYPE dfrp_usage_bytes_written_total counter\ndfrp_usage_bytes_written_total {}\n"
        "# HELP dfrp_usage_bytes_read_total Verified bytes read, as counted for payment.\n"
        "# TYPE dfrp_usage_bytes_read_total counter\ndfrp_usage_bytes_read_total {}\n"
        "# HELP dfrp_usage_proofs_total Proofs and audits answered.\n"
        "# TYPE dfrp_usage_proofs_total counter\ndfrp_usage_proofs_total {}\n"
        "# HELP dfrp_usage_wallets Wallets with counted usage.\n"
        "# TYPE dfrp_usage_wallets gauge\ndfrp_usage_wallets {}\n",
        mt.usage_bytes_written.load(), mt.usage_bytes_read.load(), mt.usage_proofs.load(),
        mt.usage_wallets.load());
    single("dfrp_market_errors_total", "Market epochs that failed to end (market.db).",
           node.metrics().market_errors.load());
  }
  out += fmt::format(
      "# HELP dfrp_vector_index_shards Shards with a vector in the search index.\n"
      "# TYPE dfrp_vector_index_shards gauge\ndfrp_vector_index_shards {}\n"
      "# HELP dfrp_vector_save_errors_total Saves of the vector index that failed.\n"
      "# TYPE dfrp_vector_save_errors_total counter\ndfrp_vector_save_errors_total {}\n",
      node.vectors().size(), node.metrics().vector_save_errors.load());
  if (node.authority()) {
    const Metrics& mt = node.metrics();
    constexpr std::array<const char*, 3> kKinds = {"order", "settlement", "beacon"};
    auto family = [&](const char* name, const char* help, const auto& counters, size_t kinds) {
      out += fmt::format("# HELP {} {}\n# TYPE {} counter\n", name, help, name);
      for (size_t k = 0; k < kinds; ++k)
        out += fmt::format("{}{{kind=\"{}\"}} {}\n", name, kKinds[k], counters[k].load());
    };
    family("dfrp_ledger_votes_total", "Votes this authority gave (each lock synced first).",
           mt.ledger_votes, 3);
    family("dfrp_ledger_refusals_total",
           "Votes refused: funds, a lock on another order or period, outside a window, a proof "
           "that does not verify, a beacon slot not begun.",
           mt.ledger_refusals, 3);
    family("dfrp_ledger_rejected_total",
           "Messages rejected: malformed, not verifying, out of sequence, unknown escrow.",
           mt.ledger_rejected, 3);
    family("dfrp_ledger_certificates_applied_total", "Certificates applied (money moved).",
           mt.ledger_applied, 2);
    family("dfrp_ledger_certificates_repeated_total",
           "Certificates received again after they were applied (nothing moved).",
           mt.ledger_already, 2);
    const auto& v = node.authority()->verifier();
    out += fmt::format(
        "# HELP dfrp_ledger_verify_batches_total Batches of signature checks (orders, "
        "certificates, settlements) this authority ran.\n"
        "# TYPE dfrp_ledger_verify_batches_total counter\ndfrp_ledger_verify_batches_total {}\n"
        "# HELP dfrp_ledger_verify_signatures_total Signatures checked in those batches.\n"
        "# TYPE dfrp_ledger_verify_signatures_total counter\n"
        "dfrp_ledger_verify_signatures_total {}\n",
        v.batches(), v.verified());
  }
  if (const ProviderService* p = node.provider()) {
    const nlohmann::json j = p->Json();
    out += fmt::format(
        "# HELP dfrp_escrow_releases_total Periods this provider released (certified).\n"
        "# TYPE dfrp_escrow_releases_total counter\ndfrp_escrow_releases_total {}\n"
        "# HELP dfrp_escrow_release_failures_total Releases that failed (no beacon, no quorum, "
        "a shard this node could not prove).\n"
        "# TYPE dfrp_escrow_release_failures_total counter\n"
        "dfrp_escrow_release_failures_total {}\n"
        "# HELP dfrp_escrow_open Open escrows this wallet provides.\n"
        "# TYPE dfrp_escrow_open gauge\ndfrp_escrow_open {}\n",
        j["releases_sent"].get<uint64_t>(), j["failures"].get<uint64_t>(),
        j["open_escrows"].get<uint64_t>());
  }
  if (const MeshService* m = node.mesh()) out += m->MetricsText();
  out += node.metrics().Render();
  return out;
}

}  // namespace dfrp::node
