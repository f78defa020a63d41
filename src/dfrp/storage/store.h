// Store: the immutable sharded store over several drives.
//
// Each configured drive DRIVE_n is volume n: a self-contained folder holding a volume header
// (DFRP-VOLUME) and append-only segment files. Shards are records appended to the newest
// segment of the lowest-numbered volume with room under its quota ("linear expansion"); a
// shard never straddles volumes, and a segment, once a newer one exists, never changes.
//
// Durability: Write() returns only after every record of the batch is fdatasync'ed (and any
// new segment's folder entry synced), so an acknowledged shard survives a power cut. The
// index (a SQLite cache in STATE_DIR) is updated after that; anything the index missed is
// found again on the next open by scanning only the segments' unindexed tails.
//
// Concurrency: one writer per store, enforced with a lock file in STATE_DIR (a second writer
// gets Busy); any number of readers in other processes, which see only committed shards.
// A Store object is used from one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "dfrp/core/clock.h"
#include "dfrp/core/config.h"
#include "dfrp/core/file_system.h"
#include "dfrp/core/request_context.h"
#include "dfrp/core/status.h"
#include "dfrp/core/uuid.h"
#include "dfrp/crypto/sha256.h"
#include "dfrp/storage/index.h"
#include "dfrp/storage/metadata.h"
#include "dfrp/storage/observer.h"
#include "dfrp/storage/shard_reader.h"

namespace dfrp::storage {

enum class VolumeState { kActive, kFull, kPaused, kMissing, kUninitialized };
const char* VolumeStateName(VolumeState s);

struct VolumeInfo {
  uint32_t index = 0;
  std::string path;
  uint64_t quota = 0;
  uint64_t used = 0;  // bytes of its segment files
  uint64_t free = 0;  // quota - used, capped by the file system's free space
  uint64_t shards = 0;
  uint64_t payload_bytes = 0;
  uint64_t segments = 0;
  VolumeState state = VolumeState::kActive;
  std::string problem;       // why it is missing, paused, full or uninitialized, and what to do
  std::string moved_from;    // DRIVE_n's path, when the volume was moved away from it
  std::string migrating_to;  // the destination of an unfinished migration
};

// What checking a copy of a volume found (VerifyCopy, Resume with a new path, migration).
struct VolumeCheck {
  uint32_t volume = 0;
  std::string path;
  uint64_t segments = 0;
  uint64_t shards = 0;  // records verified by recomputing their Merkle roots
  uint64_t bytes = 0;   // bytes of the segment files
};

// The files of a volume a migration copies, as they were when writes to it stopped.
struct MigrationSource {
  uint32_t volume = 0;
  std::string from;                                     // the volume's folder now
  std::string to;                                       // the destination folder (absolute)
  std::vector<std::pair<std::string, uint64_t>> files;  // relative paths and sizes; the
                                                        // volume header comes last
  uint64_t bytes = 0;
};

struct RebuildReport {
  uint64_t volumes = 0;
  uint64_t segments = 0;
  uint64_t shards = 0;
  uint64_t payload_bytes = 0;        // of the shards found (not read)
  uint64_t bytes_read = 0;           // what the scan read: record prefixes, commit records
  std::vector<std::string> damage;   // places where a segment's record chain was broken
  std::vector<std::string> notes;    // interrupted writes past the last commit (not damage)
  std::vector<std::string> skipped;  // volumes that could not be read: their entries are kept
};

// Progress of long work: bytes (or items) done out of total.
using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;
// Receives verified payload bytes in order.
using SinkFn = std::function<core::Status(std::string_view)>;

struct WriteRequest {
  std::string name;  // for messages: the file path or "-"
  std::string path;  // a file to store, opened only when its turn comes; or empty and:
  std::unique_ptr<core::SequentialFile> input;  // a stream (standard input), read once
  int64_t size_hint = -1;  // the file's size if the caller just read it off stat(2)
  ShardMetadata meta;      // content type, owner, vector, tags, leaf size; the store fills the rest
  // Who asked for this shard, when a batch joins several requests (the daemon's group commit);
  // unset: the context given to Store::Write. Only the observer reads it.
  std::optional<core::RequestContext> ctx;
};

struct WrittenShard {
  core::Uuid id;
  crypto::Hash root{};
  uint64_t size = 0;
  uint32_t leaf_size = 0;
  uint32_t volume = 0;
  std::string name;
  uint64_t segment = 0;  // where its record lies on the volume
  uint64_t offset = 0;
};

struct ShardInfo {
  ShardLocation location;
  ShardMetadata metadata;
  std::string volume_path;
  std::string segment_path;
};

struct VerifyResult {
  core::Uuid id;
  bool ok = false;
  core::Status status;  // why it failed (Corruption, NotFound for a missing volume, ...)
  ShardLocation location;
  std::string segment_path;
};

struct InitReport {
  core::Uuid store_id;
  bool new_store = false;
  bool adopted = false;               // the store id was read back from the drives
  std::vector<uint32_t> initialized;  // volumes laid out now
  std::vector<uint32_t> already;      // volumes that were there
};

struct StoreOptions {
  uint64_t segment_target_size = 256ull << 20;  // roll to a new segment past this size
  bool create_missing_drive_folders = false;    // init: mkdir -p a drive folder that is absent
  int hash_threads = 0;                         // 0: one per CPU
  // Tests that reopen a store thousands of times may turn off SQLite's own syncs. The index
  // is a cache, so this never risks shard data, only recovery work after a power cut.
  bool sync_index = true;
  // Required: the clock and file system every read and write goes through, picked by the
  // edge (a main, a command's entry, a test). Init and Open refuse options without them.
  core::Clock* clock = nullptr;
  core::FileSystem* fs = nullptr;
  // Asked by the long loops (VerifyCopy, and so Resume with a path; VerifyAll) between
  // records: true ends them early with Busy. The daemon sets it when it is told to stop.
  std::function<bool()> should_stop;
};

struct Manifest;  // internal (store_internal.h)

class Store {
 public:
  enum class Mode { kRead, kWrite };
  ~Store();

  // Lays out every configured drive as a volume of one store (init-storage). Idempotent.
  static core::Result<InitReport> Init(const core::NodeConfig& config, const StoreOptions& opt);

  // Opens the store. kWrite takes the writer lock (Busy if another process has it) and
  // recovers unindexed tails; kRead recovers them too when no writer is active.
  static core::Result<std::unique_ptr<Store>> Open(const core::NodeConfig& config, Mode mode,
                                                   const StoreOptions& opt);

  const core::Uuid& store_id() const { return store_id_; }
  std::vector<VolumeInfo> ListVolumes();
  // Notes from opening (a recovered tail, a cleaned-up torn record); for the log.
  const std::vector<std::string>& notices() const { return notices_; }

  // Stores a batch of shards; all or nothing (see the file comment for durability). Once the
  // batch is durable, the observer (if any) is told of each shard, with the request's own
  // context or else `ctx`; written[i] is batch[i].
  core::Result<std::vector<WrittenShard>> Write(std::vector<WriteRequest>& batch,
                                                const ProgressFn& progress = nullptr,
                                                const core::RequestContext& ctx = {});
  // The observer told of committed writes (not owned; null: none). Reads and proofs are
  // counted by whoever serves them (observer.h). Set it before the first Write.
  void SetObserver(IoObserver* observer) { observer_ = observer; }
  IoObserver* observer() const { return observer_; }
  // Streams the payload to sink, verified against the Merkle root before any byte is handed
  // over. Corruption (exit 3) when a byte does not verify; NotFound when the shard is unknown
  // or its volume is missing (the message says which).
  core::Status Read(const core::Uuid& id, const SinkFn& sink);
  core::Result<ShardInfo> Stat(const core::Uuid& id);
  // The metadata of the shard at `loc` (from Index pages or ForEachShard), read off its
  // record's prefix without a look-up in the index.
  core::Result<ShardMetadata> ReadMetadata(const ShardLocation& loc);
  VerifyResult Verify(const core::Uuid& id, const ProgressFn& progress = nullptr);
  // Verifies every indexed shard in disk order; calls fn for each result.
  core::Status VerifyAll(const std::function<void(const VerifyResult&)>& fn,
                         const ProgressFn& progress = nullptr);
  // Opens a shard for verified random access: range reads, proofs of storage, the FUSE view
  // (see shard_reader.h). Its prefix is read and checked now. The reader borrows this Store's
  // file and stays valid while the Store lives; it may be used from several threads at once
  // (this call itself may not). NotFound and Corruption as Read. (store_proof.cc)
  core::Result<ShardReader> OpenShard(const core::Uuid& id);
  // Calls fn for each indexed shard in disk order (of one volume, or of all), until fn returns
  // false. fn must not call back into the Store.
  core::Status ForEachShard(std::optional<uint32_t> volume,
                            const std::function<bool(const ShardLocation&)>& fn);
  // One page of a walk over a volume's indexed shards in disk order, and what such a walk from
  // a place would cover (Index::Page, Index::SpanAfter): the scrubber holds one page at a time,
  // so its memory does not grow with the store. (store_proof.cc)
  core::Result<std::vector<ShardLocation>> ShardPage(uint32_t volume, DiskPlace after,
                                                     DiskPlace last, size_t limit);
  core::Result<ShardSpan> ShardSpanAfter(uint32_t volume, DiskPlace after);
  // The clock and file system this store was opened with (StoreOptions).
  core::Clock* clock() const { return opt_.clock; }
  core::FileSystem* fs() const { return fs_; }
  // The configured folder of a volume and a segment's path in it ("" for an unknown volume).
  std::string SegmentPathFor(uint32_t volume, uint64_t segment) const;

  // --- Volume operations. Those that change a volume need Mode::kWrite; each change is one
  // atomic rewrite of STATE_DIR/STORE, so a crash leaves the old state or the new one.

  // Stops writes to a volume (they go to the next volume with room); reads go on. `reason`
  // is shown by list-volumes. Pausing a paused volume is fine.
  core::Status Pause(uint32_t volume, const std::string& reason);
  // Lets writes go to a paused volume (or one marked full after the file system ran out of
  // space) again, and forgets an unfinished migration. With `new_path`, the volume must be
  // paused: the copy there is checked first (VerifyCopy) and the volume moved to it; a copy
  // that fails the check is refused and the volume stays where it is, paused.
  core::Result<VolumeCheck> Resume(uint32_t volume, const std::string& new_path,
                                   const ProgressFn& progress = nullptr);
  // Checks that `path` holds a complete, valid copy of `volume`: its volume header, every
  // segment as long as the original's (when the original is readable), every record
  // verified by recomputing its Merkle root, and every indexed shard of the volume at its
  // place. Corruption naming what is wrong otherwise. Needs no lock.
  core::Result<VolumeCheck> VerifyCopy(uint32_t volume, const std::string& path,
                                       const ProgressFn& progress = nullptr);
  // Migration, in three steps (migrate.h runs them): Begin pauses the volume, records the
  // migration and lists the files to copy; the copy and VerifyCopy need no lock; Finish
  // checks that the source did not change, moves the volume to `to`, retires the source's
  // header, and resumes writes when `resume`.
  core::Result<MigrationSource> BeginMigration(uint32_t volume, const std::string& to);
  core::Status FinishMigration(const MigrationSource& copied, bool resume);
  // Deletes the old copy of a volume that was moved (its segments and retired header).
  core::Result<uint64_t> RetireSource(uint32_t volume);
  // Rebuilds the index from the drives alone, reading record prefixes and commit records,
  // never payloads; a segment whose record chain is broken is searched past the damage.
  // Readers keep using the old index until the new one commits.
  core::Result<RebuildReport> RebuildIndex(const ProgressFn& progress = nullptr);

  struct Volume;  // internal

 private:
  Store() = default;
  core::Status LoadVolumes(const core::NodeConfig& config);
  core::Status LoadSegments(Volume& v);
  void RemoveStaleSpools();
  bool SegmentsIdentify(const std::string& drive, uint32_t volume);
  // Indexes committed records past the marks. A writer also moves interrupted writes aside;
  // a reader only indexes, and only while it holds (or can take) the writer lock.
  core::Status Recover(bool writer, bool holding_lock);
  core::Status QuarantineTail(Volume& vol, uint64_t seg, const core::RandomAccessFile& file,
                              uint64_t from, uint64_t to);
  core::Result<const core::RandomAccessFile*> SegmentFile(uint32_t volume, uint64_t segment);
  core::Result<ShardLocation> Locate(const core::Uuid& id);
  core::Status CheckVolumeReadable(uint32_t volume) const;
  core::Status NeedWriter(const char* what) const;
  // Busy naming `what` when opt_.should_stop says to stop.
  core::Status CheckStop(const char* what) const;
  core::Result<Volume*> VolumeFor(uint32_t volume, const char* what);
  // Applies `change` to a copy of the manifest and writes it atomically.
  core::Status UpdateManifest(const std::function<void(Manifest&)>& change);
  void ApplyVolumeStates();
  core::Status CompletePendingMoves();
  void MarkFull(uint32_t volume, const core::Status& why);
  void ForgetOpenSegments(uint32_t volume);
  std::vector<std::pair<std::string, std::string>> GuardedFolders(uint32_t volume) const;
  core::Status CheckOutsideVolumes(const std::string& path, uint32_t volume, const char* what);
  core::Status SyncFolder(const std::string& path);
  std::string SegmentPath(uint32_t volume, uint64_t segment) const;

  StoreOptions opt_;
  core::FileSystem* fs_ = nullptr;
  core::Uuid store_id_;
  std::string state_dir_;
  uint32_t leaf_size_ = 4096;
  uint32_t vector_dim_ = 16;
  bool nonzero_vectors_ = true;  // VECTOR_METRIC = "cosine"
  std::unique_ptr<core::FileLock> lock_;
  std::unique_ptr<Index> index_;
  std::vector<std::unique_ptr<Volume>> volumes_;
  std::map<SegmentKey, std::unique_ptr<core::RandomAccessFile>> open_segments_;
  std::vector<std::string> notices_;
  std::set<SegmentKey> sealed_segments_;      // damaged tails: never appended to again
  std::vector<std::string> config_problems_;  // refuse writes until fixed (a quota too low)
  std::unique_ptr<Manifest> manifest_;
  // Shards past the index marks that a reader found while a writer held the lock (so it
  // could not index them): served from memory.
  std::map<core::Uuid, ShardLocation> unindexed_;
  IoObserver* observer_ = nullptr;
  friend class BatchWriter;
};

// Files in STATE_DIR.
inline constexpr std::string_view kManifestFileName = "STORE";
inline constexpr std::string_view kLockFileName = "LOCK";
inline constexpr std::string_view kIndexFileName = "index.sqlite";

}  // namespace dfrp::storage
