// Migration of a volume to a new folder (a new drive): pause writes to it, copy its files raw
// and sequentially, make the copy durable, verify every record of the copy by recomputing
// its Merkle root, switch the volume to the copy atomically, and resume.
//
// The copy runs without the writer lock, so writes to the other volumes and reads of every
// volume go on while it runs. Interrupted anywhere (kill -9, power cut), the volume is valid
// at exactly one path afterwards: the switch is one atomic rewrite of STATE_DIR/STORE, made
// only once the copy is durable and verified, and the copy's volume header is written last,
// so a partial copy is never taken for a volume. Running the same migration again finishes
// the job.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "dfrp/core/config.h"
#include "dfrp/core/file_system.h"
#include "dfrp/core/status.h"
#include "dfrp/storage/store.h"

namespace dfrp::storage {

struct MigrateOptions {
  bool resume = true;          // pause-migrate resumes writes; `migrate` leaves the volume paused
  bool delete_source = false;  // retire the old copy once the switch is made
  // Reports (phase, done, total): "copy" in bytes, then "verify" in bytes.
  std::function<void(std::string_view, uint64_t, uint64_t)> progress;
  int lock_wait_ms = 60000;  // how long to wait for another writer when the lock is needed again
};

struct MigrateReport {
  uint32_t volume = 0;
  std::string from;
  std::string to;
  bool already_there = false;  // an earlier run had finished the switch
  uint64_t files = 0;
  uint64_t bytes = 0;
  uint64_t shards_verified = 0;
  double copy_seconds = 0;
  double verify_seconds = 0;
  double total_seconds = 0;
  bool resumed = false;
  bool source_deleted = false;
  uint64_t source_bytes_deleted = 0;
};

// Copies src.files from src.from to src.to: each file sequentially in large blocks (read
// ahead on a second thread) and synced, the folders synced, and the volume header last,
// atomically. `progress` gets (bytes done, bytes in all). When `should_stop` says so (it is
// asked after each block), the copy ends with Busy; the destination is then a partial copy
// without a volume header, which the next copy starts over.
core::Status CopyVolumeFiles(core::FileSystem* fs, const MigrationSource& src,
                             const std::function<void(uint64_t, uint64_t)>& progress,
                             const std::function<bool()>& should_stop = nullptr);

// The whole job: Store::BeginMigration under the writer lock, the copy and Store::VerifyCopy
// without it, Store::FinishMigration under the lock again (waiting up to lock_wait_ms for a
// writer that holds it).
core::Result<MigrateReport> MigrateVolume(const core::NodeConfig& config, const StoreOptions& opt,
                                          uint32_t volume, const std::string& to,
                                          const MigrateOptions& options);

}  // namespace dfrp::storage
