// UsageCounter: what each wallet made this node do (bytes written, bytes read, proofs served,
// CPU of jobs), per wallet, per shard and per epoch, kept in SQLite at STATE_DIR/usage.db so
// that dfrp-storage and dfrpd share it (WAL, busy_timeout). It is the storage layer's
// IoObserver (storage/observer.h); the market's `usage` views read it (UsageJson).
//
// Exactly-once rules:
//   - A write is keyed by its shard id (INSERT OR IGNORE): never counted twice. The writes of a
//     store batch are recorded together, right after the store made the batch durable
//     (Store::Write calls OnWrite per shard, then OnWriteBatchDone): one write_batches row per
//     (wallet, epoch, request) whose blob lists the shards and their sizes, in one
//     transaction, so the store's writer pays one small commit per batch (about 80 us for
//     256 shards), not a row per shard. The flusher thread (or the next Flush, view or
//     Reconcile) spreads each batch row into per-shard write rows and deletes it, in one
//     transaction per batch row, so a crash at any point neither loses nor doubles a write.
//   - A crash (kill -9, power cut) between the store's commit and that insert loses nothing:
//     Reconcile(store), called right after opening with the store that holds the writer lock,
//     counts every shard of the store that has no write row and whose UUIDv7 time is not
//     before the usage database was created, as who="local", flagged reconciled (so only its
//     wallet is lost, never its bytes).
//   - Reads and proofs are summed in memory and flushed in one transaction every second (a
//     background thread, or the next call once a second has passed) and at Close: a crash
//     loses at most the last second of read and proof counts, and never counts one twice
//     (the sums leave memory only when their transaction committed).
//   - Job usage (AddJobUsage) is written at once, one transaction per call.
// A damaged usage.db (not SQLite, failing integrity_check, an unknown schema version) is
// refused at Open with a message naming the file and the way out (RebuildUsage), never
// silently zeroed.
//
// Epochs: epoch = unix_ms / (epoch_seconds * 1000), time from the injected Clock; rows keep
// the epoch's start in milliseconds, so a changed epoch length never merges two epochs.
//
// Thread-safety: every member may be called from any thread. Lock order: db_mu_ ->
// pending_mu_.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "dfrp/core/clock.h"
#include "dfrp/core/file_system.h"
#include "dfrp/core/request_context.h"
#include "dfrp/core/status.h"
#include "dfrp/core/thread_annotations.h"
#include "dfrp/core/uuid.h"
#include "dfrp/storage/observer.h"
#include "dfrp/storage/store.h"

struct sqlite3;

namespace dfrp::economy {

inline constexpr std::string_view kUsageFileName = "usage.db";
inline constexpr int kUsageSchemaVersion = 1;

struct UsageOptions {
  std::string path;              // STATE_DIR/usage.db (UsagePath)
  int64_t epoch_seconds = 60;    // economic.toml's pricing.epoch_seconds
  core::Clock* clock = nullptr;  // required
  // Flush read and proof sums every second on a thread of its own. Off: they are flushed by
  // the first call once a second has passed on the clock, by Flush and by Close (tests).
  bool background_flush = true;
};

// One line of a usage view: the sums of one wallet, epoch or shard (`key`).
struct UsageRow {
  std::string key;
  uint64_t shards_written = 0;
  uint64_t bytes_written = 0;
  uint64_t reads = 0;
  uint64_t bytes_read = 0;
  uint64_t proofs = 0;
  uint64_t proof_leaves = 0;
  uint64_t jobs = 0;
  uint64_t cpu_usec = 0;
  uint64_t cycles = 0;
};

struct UsageQuery {
  std::optional<std::string> wallet;  // only this wallet's usage
  size_t top = 10;                    // how many wallets top_wallets lists
  size_t shard_limit = 100;           // how many shards `shards` lists (most bytes first)
};

class UsageCounter final : public storage::IoObserver {
 public:
  // Opens (creating when absent) the usage database. Corruption naming the file and the way
  // out for a damaged one; IOError when SQLite cannot open it.
  static core::Result<std::unique_ptr<UsageCounter>> Open(const UsageOptions& opt);
  ~UsageCounter() override;  // Close(); a failure of the last flush is lost with it

  // Counts the store's shards that have no write row (see the file comment); returns how
  // many it counted now. Reads the store's index, never a payload.
  core::Result<uint64_t> Reconcile(storage::Store& store) EXCLUDES(db_mu_);

  void OnWrite(const core::RequestContext& ctx, const core::Uuid& shard,
               uint64_t payload_bytes) override EXCLUDES(pending_mu_);
  void OnWriteBatchDone() override EXCLUDES(db_mu_);
  void OnRead(const core::RequestContext& ctx, const core::Uuid& shard,
              uint64_t verified_bytes) override EXCLUDES(db_mu_);
  void OnProof(const core::RequestContext& ctx, const core::Uuid& shard, uint64_t leaves) override
      EXCLUDES(db_mu_);
  // Adds a job's CPU time and cycles to its row (job_id, wallet, epoch).
  core::Status AddJobUsage(const core::RequestContext& ctx, const std::string& job_id,
                           uint64_t cpu_usec, uint64_t cycles) EXCLUDES(db_mu_);

  // Writes the read and proof sums held in memory, in one transaction.
  core::Status Flush() EXCLUDES(db_mu_);
  // Flush, stop the flushing thread, close the database; idempotent.
  core::Status Close() EXCLUDES(db_mu_);
  // The first failure of an observer call (which cannot return one) since the last call, for
  // the log; a failed write insert is made up for by the next Reconcile.
  core::Status TakeError() EXCLUDES(db_mu_);

  // --- Views (each flushes first, so it includes every count made so far).
  core::Result<std::vector<UsageRow>> ByWallet(const std::optional<std::string>& wallet = {})
      EXCLUDES(db_mu_);
  core::Result<std::vector<UsageRow>> ByEpoch(const std::optional<std::string>& wallet = {})
      EXCLUDES(db_mu_);  // key: the epoch number (decimal)
  core::Result<std::vector<UsageRow>> ByShard(const std::optional<std::string>& wallet = {},
                                              size_t limit = 100) EXCLUDES(db_mu_);
  core::Result<std::vector<UsageRow>> TopWallets(size_t n) EXCLUDES(db_mu_);
  // What `dfrp-market usage [--wallet ADDR] --json` and GET /v1/market/usage show: totals,
  // wallets, epochs, shards, top_wallets (snake_case keys).
  core::Result<nlohmann::json> UsageJson(const UsageQuery& q) EXCLUDES(db_mu_);

  int64_t epoch_seconds() const { return opt_.epoch_seconds; }
  int64_t EpochOf(int64_t unix_ms) const { return unix_ms / (opt_.epoch_seconds * 1000); }
  const std::string& path() const { return opt_.path; }

 private:
  struct Sums {
    uint64_t reads = 0, bytes = 0, proofs = 0, leaves = 0;
  };
  using Key = std::tuple<std::string, core::Uuid, int64_t>;  // who, shard, epoch start ms
  // The same key without a copy of `who`: a read of a known key allocates nothing.
  using KeyView = std::tuple<std::string_view, const core::Uuid&, int64_t>;
  // The writes of the current store batch with one (who, epoch start ms, request id): the
  // time of the last one and the write_batches blob (16-byte shard id, u64 LE bytes)...
  using WriteKey = std::tuple<std::string, int64_t, std::string>;
  using WriteKeyView = std::tuple<std::string_view, int64_t, std::string_view>;
  struct WriteGroup {
    int64_t at_ms = 0;
    std::string shards;
  };
  using WriteGroups = std::map<WriteKey, WriteGroup, std::less<>>;
  core::Status InsertWritesLocked() REQUIRES(db_mu_) EXCLUDES(pending_mu_);
  // Spreads the write_batches rows into per-shard write rows, one batch per transaction.
  core::Status ExpandBatchesLocked() REQUIRES(db_mu_);
  // Spreads the oldest write_batches row; false when there was none.
  core::Result<bool> ExpandOneBatchLocked() REQUIRES(db_mu_);

  explicit UsageCounter(const UsageOptions& opt) : opt_(opt) {}
  core::Status Init() EXCLUDES(db_mu_);
  core::Status FlushLocked() REQUIRES(db_mu_) EXCLUDES(pending_mu_);
  void Count(const core::RequestContext& ctx, const core::Uuid& shard, const Sums& add)
      EXCLUDES(db_mu_);
  void NoteError(const core::Status& s) EXCLUDES(pending_mu_);
  int64_t EpochStartMs(int64_t unix_ms) const {
    return EpochOf(unix_ms) * opt_.epoch_seconds * 1000;
  }
  core::Result<std::vector<UsageRow>> Group(const std::string& key_sql,
                                            const std::optional<std::string>& wallet,
                                            const std::string& order, size_t limit)
      EXCLUDES(db_mu_);
  void FlushLoop() EXCLUDES(db_mu_);

  const UsageOptions opt_;
  core::Mutex db_mu_;
  sqlite3* db_ GUARDED_BY(db_mu_) = nullptr;
  int64_t created_ms_ GUARDED_BY(db_mu_) = 0;
  core::Mutex pending_mu_;
  core::CondVar wake_;
  std::map<Key, Sums, std::less<>> pending_ GUARDED_BY(pending_mu_);
  WriteGroups pending_writes_ GUARDED_BY(pending_mu_);  // until OnWriteBatchDone
  // The sums of the last key counted (a node of pending_), so that a run of reads of one
  // shard by one wallet skips the map; null after pending_ is swapped out.
  Sums* last_sums_ GUARDED_BY(pending_mu_) = nullptr;
  std::string last_who_ GUARDED_BY(pending_mu_);
  core::Uuid last_shard_ GUARDED_BY(pending_mu_);
  int64_t last_epoch_ms_ GUARDED_BY(pending_mu_) = 0;
  bool batches_pending_ GUARDED_BY(pending_mu_) = false;  // write_batches rows to spread
  int64_t last_flush_ms_ GUARDED_BY(pending_mu_) = 0;
  bool stop_ GUARDED_BY(pending_mu_) = false;
  core::Status error_ GUARDED_BY(pending_mu_);
  std::thread flusher_;
  // The flusher's connection for WAL checkpoints (background_flush only): set before the
  // flusher starts, closed after it ends.
  sqlite3* checkpoint_db_ = nullptr;
};

// STATE_DIR/usage.db.
std::string UsagePath(const std::string& state_dir);

struct UsageRebuild {
  std::string moved_to;  // where the damaged file went ("" when there was none)
  uint64_t shards = 0;   // writes recounted from the store
};
// Moves a damaged usage.db aside (usage.db.damaged-<unix_ms>, its -wal and -shm with it) and
// recounts every shard of `store` as a write by "local"; the read, proof and job counts of
// the old file are lost. The store's file system and clock are used.
core::Result<UsageRebuild> RebuildUsage(const std::string& state_dir, storage::Store& store,
                                        int64_t epoch_seconds = 60);

// cgroup v2 cpu.stat (the fields a job's accounting needs), and what this process's waited-for
// children used (getrusage RUSAGE_CHILDREN).
struct CpuStat {
  uint64_t usage_usec = 0;
  uint64_t user_usec = 0;
  uint64_t system_usec = 0;
};
// Corruption naming the file when a field is missing or not a number.
core::Result<CpuStat> ParseCgroupCpuStat(std::string_view text, std::string_view path);
core::Result<CpuStat> ReadCgroupCpuStat(core::FileSystem* fs, const std::string& path);
CpuStat ChildrenRusage();

}  // namespace dfrp::economy
