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

// How a migration reaches the store's writer for its first and last steps. The CLI opens a
// writer Store for each step (waiting for another writer to finish); the daemon lends the one
// it holds for as long as it runs. Nothing else differs between the two, so the whole job is
// written once (RunMigration).
class WriterAccess {
 public:
  virtual ~WriterAccess() = default;
  // Runs f on the writer Store, exclusively; f's Status, or why the writer could not be had.
  virtual core::Status Run(const std::function<core::Status(Store&)>& f) = 0;
};

// Opens a writer Store for each call, waiting up to wait_ms for another writer (the CLI).
class OpeningWriterAccess final : public WriterAccess {
 public:
  OpeningWriterAccess(const core::NodeConfig& config, const StoreOptions& opt, int wait_ms)
      : config_(config), opt_(opt), wait_ms_(wait_ms) {}
  core::Status Run(const std::function<core::Status(Store&)>& f) override;

 private:
  const core::NodeConfig& config_;
  const StoreOptions& opt_;
  int wait_ms_;
};

struct MigrateOptions {
  bool resume = true;          // pause-migrate resumes writes; `migrate` leaves the volume paused
  bool delete_source = false;  // retire the old copy once the switch is made
  // Reports (phase, done, total): "copy" in bytes, then "verify" in bytes, then "switch".
  std::function<void(std::string_view, uint64_t, uint64_t)> progress;
  int lock_wait_ms = 60000;  // MigrateVolume: how long to wait for another writer
  // Asked after each copied block and each verified record, and before the switch: true
  // cancels. The volume is then put back at its old path (and paused again unless `resume`),
  // and the migration ends with Busy saying so.
  std::function<bool()> should_stop;
  // Called after the switch and before the old copy is deleted; the daemon points its readers
  // at the new folder here. An error ends the migration with it (the switch stays made).
  std::function<core::Status()> after_switch;
  // How a user continues after a stop (the CLI and the API name different commands).
  std::string retry_hint = "migrate it again to finish, or resume the volume to cancel";
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

// Takes STATE_DIR/MIGRATE.lock, held for a whole migration: a second run of the same one must
// not copy over a destination that the first has already switched to. Busy when taken.
core::Result<std::unique_ptr<core::FileLock>> LockMigration(core::FileSystem* fs,
                                                            const std::string& state_dir);

// The whole job, with the migration lock held by the caller: Store::BeginMigration through
// `writer`, the copy and Store::VerifyCopy without it (writes to other volumes and all reads
// go on), Store::FinishMigration through `writer` again, then `after_switch` and, with
// delete_source, Store::RetireSource. *report holds what was done so far, also on an error.
// A failure to delete the old copy after a good switch is an error that says the volume moved.
core::Status RunMigration(WriterAccess& writer, const core::NodeConfig& config,
                          const StoreOptions& opt, uint32_t volume, const std::string& to,
                          const MigrateOptions& options, MigrateReport* report);

// LockMigration, then RunMigration opening a writer Store for each step (the CLI's path).
core::Result<MigrateReport> MigrateVolume(const core::NodeConfig& config, const StoreOptions& opt,
                                          uint32_t volume, const std::string& to,
                                          const MigrateOptions& options);

}  // namespace dfrp::storage
