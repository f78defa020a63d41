// The storage service behind dfrp-storage's commands: one interface, two implementations
// (STYLE.md section 11, as Bitcoin Core's src/interfaces/). LocalStorageService
// (local_storage_service.h) opens the store itself; RemoteStorageService
// (remote_storage_service.h) sends each call to the dfrpd that serves the store, through its
// HTTP API (docs/API.md), so that two processes never write one store. MakeStorageService,
// called once at the edge (RunStorageCli), picks one: the remote one exactly while a daemon
// holds STATE_DIR/dfrpd.lock. Commands hold a StorageService& and never ask which it is.
//
// Results come back in the JSON shapes of node/views.h, which are the API's documents, so a
// command prints the same bytes from either implementation. Errors are Status values whose
// codes are the CLI's exit codes (core::ExitCodeFor). What the remote implementation cannot
// do beside a running daemon (lay out, re-index, scrub or mount the store behind its back)
// fails with Busy naming the daemon (pid, URL) and the way out.
//
// Thread-safety: not safe to share between threads; one command calls one at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dfrp/core/clock.h"
#include "dfrp/core/config.h"
#include "dfrp/core/file_system.h"
#include "dfrp/core/status.h"
#include "dfrp/core/uuid.h"
#include "dfrp/fuse/fuse_view.h"
#include "dfrp/node/views.h"
#include "dfrp/storage/metadata.h"
#include "dfrp/storage/proof.h"
#include "dfrp/storage/scrubber.h"
#include "dfrp/storage/store.h"

namespace dfrp::cli {

// Progress of work in phases, (phase, done, total): a migration's "copy" then "verify" (in
// bytes) then "switch", resume --path's "verify". total 0: nothing to draw yet.
using PhaseProgress = std::function<void(std::string_view phase, uint64_t done, uint64_t total)>;
// Where notes about the store go (a recovered tail, a cleaned-up torn record).
using NoticeFn = std::function<void(const std::string&)>;

// One input of write-shard, as the command classified it (its checks and messages are the
// same for both implementations).
struct WriteInput {
  enum class Kind {
    kFile,     // a regular file, read when its turn comes
    kStdin,    // "-"
    kStream,   // a pipe or device named by path: read once, like standard input
    kMissing,  // nothing there (yet): the write names it
  };
  std::string name;  // as given: a path, or "-"
  Kind kind = Kind::kFile;
  int64_t size = -1;  // a regular file's size when it was classified
};

// What write-shard stored: the node::WrittenJson element of each shard, in input order, and
// why the rest was not stored. Without a daemon a batch is all or nothing (`written` is empty
// when `status` is not ok); through one, each input is its own write, so inputs before a
// failure stay stored.
struct WriteOutcome {
  nlohmann::json written = nlohmann::json::array();
  core::Status status;
};

struct InitOutcome {
  storage::InitReport report;
  nlohmann::json volumes;  // list-volumes --json's array, after the init
};

struct ByteRange {
  uint64_t offset = 0;
  uint64_t length = 0;
};

// A shard's payload (or a range of it), ready to be read. Use it before the next call of the
// service that made it (the local one may reopen its store then), and never after the service.
class PayloadSource {
 public:
  virtual ~PayloadSource() = default;
  // Hands `sink` the bytes in order, each only after it verified; stops at the first error
  // (of the sink, or Corruption for a byte that does not verify, NotFound, ...), so what the
  // sink got is always a verified prefix.
  virtual core::Status ReadTo(const storage::SinkFn& sink) = 0;
};

// What add-drive asks for, as given on the command line.
struct AddDriveRequest {
  std::string path;     // the drive's folder (relative to the current folder, or absolute)
  std::string quota;    // "500G"
  bool create = false;  // create the folder if it does not exist
};

class StorageService {
 public:
  using VerifyEach = std::function<void(nlohmann::json)>;  // a node::VerifyJson element

  virtual ~StorageService() = default;

  // init-storage: lays out every configured drive as a volume (creating missing drive folders
  // when `create_missing_folders`) and makes sure of the admin token. Beside a daemon the
  // store exists: this succeeds when every drive is already a volume, and is refused when it
  // would lay out a new one.
  virtual core::Result<InitOutcome> Init(bool create_missing_folders) = 0;

  // write-shard: stores the inputs with metadata `base` (leaf size 0: the store's). Inputs
  // are all opened and their metadata checked before a byte is stored. `progress` gets bytes
  // (done, total) over the whole call.
  virtual WriteOutcome Write(const std::vector<WriteInput>& inputs,
                             const storage::ShardMetadata& base,
                             const storage::ProgressFn& progress) = 0;

  // read-shard: the payload of a shard, or `range` of it (only the leaves it touches are
  // verified). An unknown shard, or a range past its end (InvalidArgument), is reported here
  // or by ReadTo before its first byte, depending on the implementation.
  virtual core::Result<std::unique_ptr<PayloadSource>> OpenPayload(
      const core::Uuid& id, const std::optional<ByteRange>& range) = 0;

  // stat-shard: node::ShardInfoJson (GET /v1/shards/{id}/meta).
  virtual core::Result<nlohmann::json> Stat(const core::Uuid& id) = 0;
  // search-shards: node::SearchShardsJson (GET /v1/shards?near=). Locally the vector index is
  // opened (caught up with the store, or rebuilt) and saved again when that changed it.
  virtual core::Result<nlohmann::json> SearchShards(const node::SearchQuery& query) = 0;

  // verify-shard ID...: one result per id, in order, to `each` (a shard that is unknown or
  // unavailable is a result, not an error). Errors stop the walk (an unreachable daemon).
  virtual core::Status Verify(const std::vector<core::Uuid>& ids, const VerifyEach& each,
                              const storage::ProgressFn& progress) = 0;
  // verify-shard --all: every shard of the store in disk order. Reads the drives directly
  // in both implementations (a read-only open is safe beside a daemon, and the API has no
  // list of shards to walk).
  virtual core::Status VerifyAll(const VerifyEach& each, const storage::ProgressFn& progress) = 0;

  // prove-shard and audit: the same ProofSet from either implementation.
  virtual core::Result<storage::ProofSet> Prove(const core::Uuid& id, uint64_t leaf) = 0;
  virtual core::Result<storage::ProofSet> Audit(const core::Uuid& id, const std::string& seed,
                                                uint32_t challenges) = 0;

  // list-volumes: the array of node::VolumeJson (GET /v1/volumes' "volumes").
  virtual core::Result<nlohmann::json> ListVolumes() = 0;

  // pause: stops writes to `volume`, or to every volume; returns the volumes paused.
  virtual core::Result<std::vector<uint32_t>> Pause(std::optional<uint32_t> volume,
                                                    const std::string& reason) = 0;
  // resume: writes again to `volume`, or to every paused or full volume that no migration is
  // copying; returns the volumes resumed.
  virtual core::Result<std::vector<uint32_t>> Resume(std::optional<uint32_t> volume) = 0;
  // resume N --path DIR: verifies the copy of a paused volume at `path` (absolute), then moves
  // the volume there and resumes it. The check as JSON: {volume, path, segments,
  // shards_verified, bytes}.
  virtual core::Result<nlohmann::json> ResumeAt(uint32_t volume, const std::string& path,
                                                const PhaseProgress& progress) = 0;
  // migrate and pause-migrate: storage::MigrateVolume, in this process or in the daemon. The
  // report as JSON: the API's migrate result (volume, from, to, files, bytes, shards_verified,
  // copy_seconds, verify_seconds, total_seconds, resumed, source_deleted,
  // source_bytes_deleted, already_there). Ctrl-C ends the process: without a daemon the
  // volume is whole at its old path until the switch (run the command again to finish);
  // through one the daemon is asked to cancel first (the volume stays at its old path).
  virtual core::Result<nlohmann::json> Migrate(uint32_t volume, const std::string& to, bool resume,
                                               bool delete_source,
                                               const PhaseProgress& progress) = 0;
  // retire-source: deletes the old copy of a moved volume; returns the bytes freed.
  virtual core::Result<uint64_t> RetireSource(uint32_t volume) = 0;

  // What only the process that owns the store may do (Busy beside a daemon):
  // rebuild-index,
  virtual core::Result<storage::RebuildReport> RebuildIndex(
      const storage::ProgressFn& progress) = 0;
  // add-drive: checks the request, lays the drive out as the next volume, then appends
  // DRIVE_n and QUOTA_n to the config file (./dfrp.toml for the embedded default); returns
  // add-drive --json's object {volume, path, quota, config, store_id}.
  virtual core::Result<nlohmann::json> AddDrive(const AddDriveRequest& request) = 0;
  // scrub (its state is STATE_DIR/scrub.sqlite, which has one writer: the daemon's scrubber),
  virtual core::Result<storage::ScrubReport> Scrub(const storage::ScrubOptions& options) = 0;
  // and mount (the view lives as long as the mount, across moves only the daemon knows of).
  virtual core::Status Mount(const fuse::FuseViewOptions& options) = 0;
};

// The edge's choice: a RemoteStorageService while a dfrpd serves config.state_dir, else a
// LocalStorageService. Fails when a daemon holds the lock but cannot be found
// (node::FindDaemon). `fs` and `clock` are used for every file and every reading of the time.
core::Result<std::unique_ptr<StorageService>> MakeStorageService(const core::NodeConfig& config,
                                                                 core::FileSystem* fs,
                                                                 core::Clock* clock,
                                                                 NoticeFn notice);

// The volumes a pause or resume without a number acts on, from list-volumes' JSON: every
// volume (pause), or every paused or full one that no migration is copying (resume: name that
// one to cancel its migration).
std::vector<uint32_t> VolumesToPauseOrResume(const nlohmann::json& volumes, bool resuming);

}  // namespace dfrp::cli
