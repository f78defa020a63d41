// PriceOracle: this node's price vector, epoch by epoch, kept in STATE_DIR/market.db.
//
// The first vector comes from the measured capacity (pricing.h, PriceVectorFromCapacity).
// After each epoch (pricing.epoch_seconds on the injected clock) the epoch's usage becomes a
// utilisation per resource against the measured capacity, and each price takes one demand
// step (StepPrices), then the blend toward the neighbours' median when the mesh gave any.
// Epochs that passed while no dfrpd ran count as idle (prices decay), at most 64 of them.
// Every epoch is one SQLite transaction (synchronous=FULL): the history survives a crash,
// and an epoch is applied once (its row is the proof).
//
// market.db: table epochs(epoch INTEGER PRIMARY KEY, unix_ms, prices TEXT, utilization
// TEXT): prices and utilisation as JSON arrays of integers in price-vector order
// (docs/FORMAT.md). A damaged market.db is refused with a message naming it; it holds no
// money, so moving it aside only restarts prices from the capacity.
//
// Thread-safety: all methods are safe from any thread (one mutex).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "dfrp/core/clock.h"
#include "dfrp/core/status.h"
#include "dfrp/economy/policy.h"
#include "dfrp/economy/pricing.h"

struct sqlite3;

namespace dfrp::economy {

// What a node did during one epoch, and what it holds (for the storage utilisation).
struct EpochUsage {
  uint64_t bytes_written = 0, bytes_read = 0, proofs = 0;
  uint64_t cpu_usec = 0, gpu_usec = 0;
  uint64_t bytes_stored = 0, bytes_quota = 0;
};

// The capacity the utilisation is measured against.
struct OracleCapacity {
  CapacityFigures figures;
  unsigned cores = 1;
  unsigned gpus = 0;
};

struct EpochRecord {
  uint64_t epoch = 0;
  int64_t unix_ms = 0;
  PriceVector prices{};
  Utilization utilization{};
};

class PriceOracle {
 public:
  // Opens (or creates) `state_dir`/market.db. A new history starts from `capacity`.
  static core::Result<std::unique_ptr<PriceOracle>> Open(const std::string& state_dir,
                                                         const EconomicPolicy& policy,
                                                         const OracleCapacity& capacity,
                                                         core::Clock* clock);
  ~PriceOracle();

  uint64_t EpochAt(int64_t unix_ms) const;
  uint64_t CurrentEpoch() const { return EpochAt(clock_->NowUnixMillis()); }
  // The latest vector (the start vector before any epoch ended).
  EpochRecord Current() const;
  // The same, and (read together) whether any epoch has ended: until one has, the record is
  // the start vector, numbered with the epoch now, the number the first ended epoch carries.
  EpochRecord Current(bool* any_ended) const;
  std::vector<EpochRecord> History(size_t limit) const;

  // Utilisation of one epoch's usage against the capacity.
  Utilization UtilizationOf(const EpochUsage& u) const;
  // Ends every epoch up to (not including) the current one: `usage(epoch)` gives each one's
  // usage; the last ended epoch blends with `neighbours` (per resource; may be empty).
  // Returns how many epochs were applied.
  core::Result<size_t> Advance(
      const std::function<EpochUsage(uint64_t)>& usage,
      const std::array<std::vector<NeighbourPrice>, kResourceCount>& neighbours = {});

  const EconomicPolicy& policy() const { return policy_; }
  const OracleCapacity& capacity() const { return capacity_; }

 private:
  PriceOracle(const EconomicPolicy& policy, const OracleCapacity& capacity, core::Clock* clock)
      : policy_(policy), capacity_(capacity), clock_(clock) {}
  core::Status Load();
  core::Status Append(const EpochRecord& r);

  const EconomicPolicy policy_;
  const OracleCapacity capacity_;
  core::Clock* clock_;
  std::string path_;
  mutable std::mutex mu_;
  sqlite3* db_ = nullptr;
  EpochRecord current_;  // guarded by mu_
  bool has_history_ = false;
};

// JSON arrays of integers <-> vectors (market.db and the API use these).
std::string PricesToText(const PriceVector& v);
std::optional<PriceVector> PricesFromText(const std::string& text);

}  // namespace dfrp::economy
