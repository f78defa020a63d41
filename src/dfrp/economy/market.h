// Market: a node's market state in one place, and the JSON that both dfrp-market and dfrpd's
// /v1/market routes show (one shape for both, as the storage commands do).
//
//   policy      economic.toml (policy.h)
//   capacity    STATE_DIR/capacity.json, written by `dfrp-market measure` (measure.h); until
//               there is one, the policy's reference figures (prices at their floors)
//   oracle      the price vector per epoch, STATE_DIR/market.db (oracle.h)
//   usage       the usage counter, STATE_DIR/usage.db (usage.h); may be absent (a client)
//   admission   the sigmoid weighting's wallet rates and unfunded buckets (fee_match.h)
//
// Tick() ends the epochs that passed: each epoch's usage (bytes written and read, proofs,
// job CPU) against the measured capacity is its utilisation, and prices take one step each.
// dfrpd calls it every second; the CLI never does (prices move only while dfrpd runs).
//
// Thread-safety: all methods are safe from any thread.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "dfrp/core/clock.h"
#include "dfrp/core/file_system.h"
#include "dfrp/economy/fee_match.h"
#include "dfrp/economy/oracle.h"
#include "dfrp/economy/policy.h"
#include "dfrp/economy/usage.h"

namespace dfrp::economy {

struct MarketOptions {
  std::string state_dir;
  core::FileSystem* fs = nullptr;
  core::Clock* clock = nullptr;
  UsageCounter* usage = nullptr;  // not owned; null: no usage (utilisation 0)
  // Bytes kept and the quota they count against (the storage utilisation); may be empty.
  std::function<std::pair<uint64_t, uint64_t>()> stored;
  uint32_t vector_dim = 16;
  // The neighbours' prices each ended epoch blends toward (the mesh's k nearest peers, per
  // resource); may be empty (no blending).
  std::function<std::array<std::vector<NeighbourPrice>, kResourceCount>()> neighbours;
};

class Market {
 public:
  static core::Result<std::unique_ptr<Market>> Open(const EconomicPolicy& policy,
                                                    const MarketOptions& opt);

  const EconomicPolicy& policy() const { return policy_; }
  PriceOracle& oracle() { return *oracle_; }
  AdmissionControl& admission() { return admission_; }
  // Why the capacity is not measured ("" when capacity.json was read).
  const std::string& capacity_note() const { return capacity_note_; }

  // Ends the epochs that passed; how many.
  core::Result<size_t> Tick();

  // GET /v1/market/prices, `dfrp-market prices`: the vector, epoch, utilisation, floors,
  // ceilings; `history` epochs when > 0.
  nlohmann::json PricesJson(size_t history) const;
  // POST /v1/market/quote, `dfrp-market quote`: the request parsed (InvalidArgument for a bad
  // one) and matched against the current prices. `accepted` tells the outcome.
  core::Result<nlohmann::json> QuoteJson(std::string_view request, bool* accepted) const;
  // GET /v1/market/capacity: capacity.json as measured, or null with the note.
  nlohmann::json CapacityJson() const;
  // GET /v1/market/usage, `dfrp-market usage`.
  core::Result<nlohmann::json> UsageJson(const UsageQuery& q) const;

 private:
  Market(const EconomicPolicy& p, const MarketOptions& o)
      : policy_(p), opt_(o), admission_(p.reward) {}
  const EconomicPolicy policy_;
  const MarketOptions opt_;
  std::unique_ptr<PriceOracle> oracle_;
  AdmissionControl admission_;
  std::string capacity_note_;
  std::optional<nlohmann::json> capacity_;
};

// STATE_DIR/capacity.json.
std::string CapacityPath(const std::string& state_dir);
// The capacity the oracle prices from (see Market); `note` says why when not measured.
OracleCapacity LoadOracleCapacity(core::FileSystem* fs, const std::string& state_dir,
                                  const EconomicPolicy& p, std::string* note,
                                  std::optional<nlohmann::json>* raw = nullptr);

// An amount as the API shows it: key -> decimal string, key_base_units -> integer.
void PutAmount(nlohmann::json& j, const std::string& key, const EconomicPolicy& p, Amount a);
nlohmann::json PriceVectorJson(const EconomicPolicy& p, const PriceVector& v);

}  // namespace dfrp::economy
