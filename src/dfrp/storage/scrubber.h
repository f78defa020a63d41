// Scrubber: walks every shard of the store (or of one volume) in disk order and re-verifies
// it in full (Store::Verify: payload against the root, stored tree node by node), at a
// bounded rate, resumable from where it stopped.
//
// State lives in STATE_DIR/scrub.sqlite, owned by the scrubber alone (docs/FORMAT.md, "Scrub
// state"): per volume a cursor, the disk position (segment, offset) of the last shard checked
// in the current pass, and per shard when it was last verified and how that went. Positions
// and shard ids are facts of the drives, not of the index, so the state stays valid when the
// index is rebuilt; state that belongs to another store is reset.
//
// The daemon runs it in the background: Run() checks a stop callback between shards and while
// it throttles, saves its cursor at least every checkpoint interval and when it returns, and
// reports progress and findings through callbacks. One scrub per store at a time (a lock file
// beside the state; a second gets Busy).
//
// Thread-safety: a Scrubber is used from one thread; the callbacks run on that thread (the
// progress callback also from hashing threads, one at a time).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dfrp/core/clock.h"
#include "dfrp/core/status.h"
#include "dfrp/core/uuid.h"
#include "dfrp/storage/store.h"

struct sqlite3;

namespace dfrp::storage {

struct ScrubFinding {
  core::Uuid id;
  uint32_t volume = 0;
  uint64_t segment = 0;
  uint64_t offset = 0;  // of the record in its segment
  std::string segment_path;
  core::Status status;  // Corruption for damage; IOError, NotFound, ... otherwise
};

struct ScrubProgress {
  uint32_t volume = 0;
  uint64_t bytes_done = 0;   // payload bytes verified in this run, all volumes
  uint64_t bytes_total = 0;  // payload bytes this run set out to verify
};

struct ScrubOptions {
  std::optional<uint32_t> volume;  // only this volume; all available ones otherwise
  double rate_bytes_per_sec = 0;   // payload bytes verified per second at most; 0: no limit
  std::function<bool()> should_stop;
  std::function<void(const ScrubProgress&)> progress;
  std::function<void(const ScrubFinding&)> on_finding;
  int64_t checkpoint_interval_ms = 1000;
  // Shards read from the index per query. The walk holds one page in memory, so the
  // scrubber's memory does not grow with the number of shards.
  size_t page_rows = 4096;
  core::Clock* clock = nullptr;  // nullptr: the store's (StoreOptions::clock)
  // Waits while throttling; tests replace it. Default: std::this_thread::sleep_for.
  std::function<void(int64_t nanos)> sleep;
};

struct ScrubVolumeReport {
  uint32_t volume = 0;
  uint64_t shards = 0;  // verified in this run
  uint64_t bytes = 0;
  bool resumed = false;         // continued a pass an earlier run had begun
  bool pass_completed = false;  // reached the volume's last shard
  std::string skipped;          // why the volume was not scrubbed (missing, uninitialized)
};

struct ScrubReport {
  uint64_t shards_verified = 0;
  uint64_t bytes_verified = 0;
  std::vector<ScrubFinding> findings;
  std::vector<ScrubVolumeReport> volumes;
  uint64_t index_pages = 0;  // pages of shards read from the index (ScrubOptions::page_rows)
  bool stopped = false;      // should_stop ended the run early; the next run resumes
  bool state_reset = false;  // the state file was absent, damaged or of another store
  uint64_t corrupt() const;
};

// What the state file says of one shard.
struct ShardScrubRecord {
  int64_t verified_unix_ms = 0;
  bool ok = false;
  std::string error;
};

class Scrubber {
 public:
  ~Scrubber();
  Scrubber(const Scrubber&) = delete;
  Scrubber& operator=(const Scrubber&) = delete;

  // Opens (creating) STATE_DIR/scrub.sqlite for `store` and takes the scrub lock. Busy if
  // another scrub holds it.
  static core::Result<std::unique_ptr<Scrubber>> Open(Store& store, const std::string& state_dir,
                                                      core::FileSystem* fs);

  // Scrubs until every selected volume finished its pass, or should_stop said so.
  core::Result<ScrubReport> Run(const ScrubOptions& opt);

  // When a shard was last verified (nullopt if never).
  core::Result<std::optional<ShardScrubRecord>> LastVerified(const core::Uuid& id);

 private:
  Scrubber(Store& store, sqlite3* db, std::unique_ptr<core::FileLock> lock)
      : store_(store), db_(db), lock_(std::move(lock)) {}
  core::Status Exec(const char* sql);
  core::Status Error(std::string_view what) const;
  core::Status Init(bool* reset);

  Store& store_;
  sqlite3* db_;
  std::unique_ptr<core::FileLock> lock_;
  bool reset_ = false;
};

inline constexpr std::string_view kScrubStateFileName = "scrub.sqlite";
inline constexpr std::string_view kScrubLockFileName = "scrub.lock";

}  // namespace dfrp::storage
