// ShardVectors: the index of shard vectors (an HNSW graph, hnswlib) that `search-shards` and
// dfrpd's GET /v1/shards?near= ask for the shards nearest a vector.
//
// It is a cache, like the store's SQLite index, and never the only copy of anything: every
// vector in it is read from a record's prefix on the drives. It lives in memory and is saved
// as a snapshot, STATE_DIR/vectors.idx (docs/FORMAT.md), written whole to a temporary file,
// synced and renamed, so a crash leaves the old snapshot or the new one.
//
// Coverage. Per volume, the snapshot says up to which record it has looked (a disk place)
// and how many shards lie up to there. A volume's records are appended and indexed in disk
// order, so every shard past that place is one the snapshot has not seen: opening reads only
// their prefixes (the shards stored since the last save, by this process or any other). If
// the store's index counts a different number of shards up to that place (it was rebuilt and
// found other records), or the snapshot belongs to another store, was made for another
// VECTOR_METRIC, or fails its checksum, it is not trusted: the index is rebuilt from the
// drives, and report() says why. After a kill -9 at any point it therefore agrees with the
// store once reopened.
//
// Thread-safety: every public member may be called from several threads (one mutex). Open
// reads the Store it is given, which nobody else may use meanwhile (a Store is used from one
// thread at a time).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "dfrp/core/config.h"
#include "dfrp/core/status.h"
#include "dfrp/core/thread_annotations.h"
#include "dfrp/core/uuid.h"
#include "dfrp/storage/index.h"
#include "dfrp/storage/observer.h"
#include "dfrp/storage/store.h"
#include "dfrp/vector/hnsw_graph.h"
#include "dfrp/vector/vector_math.h"

namespace dfrp::vector {

inline constexpr std::string_view kShardVectorsFileName = "vectors.idx";

struct ShardVectorsOptions {
  uint32_t dim = 16;
  Metric metric = Metric::kCosine;
  // The graph's shape: links per node and the candidate list while building (hnswlib's M and
  // ef_construction). The snapshot keeps them; other values rebuild it.
  uint32_t m = 16;
  uint32_t ef_construction = 200;
  // The candidate list of a search when the caller gives none (at least k).
  uint32_t ef_search = 64;
  // Threads that insert while building; 0: one per CPU.
  int build_threads = 0;
};

// The options a node's config gives (VECTOR_DIM, VECTOR_METRIC; the rest are defaults).
ShardVectorsOptions ShardVectorsOptionsFor(const core::NodeConfig& config);

// What opening found and did.
struct ShardVectorsReport {
  bool built = false;                // rebuilt from the drives (else: the snapshot was loaded)
  std::string why_built;             // "no saved index", "it fails its checksum", ...
  uint64_t scanned = 0;              // record prefixes read (shards stored since the snapshot)
  uint64_t added = 0;                // of them, shards with a vector now in the index
  uint64_t skipped = 0;              // vectors that cannot be indexed (see notices)
  std::vector<std::string> notices;  // an unreadable volume, a vector refused
};

struct SearchOptions {
  size_t k = 10;
  size_t ef = 0;       // 0: ShardVectorsOptions::ef_search (never less than k)
  bool exact = false;  // brute force over every vector: the reference for recall
};

struct Hit {
  core::Uuid id;
  float distance = 0;  // 1 - cos under cosine, Euclidean under l2
};

class ShardVectors {
 public:
  ~ShardVectors();
  ShardVectors(const ShardVectors&) = delete;
  ShardVectors& operator=(const ShardVectors&) = delete;

  // Loads STATE_DIR/vectors.idx, checks it against `store` and adds what was stored since;
  // rebuilds from the drives when it is missing, damaged or stale, or when `rebuild`. Errors
  // only when the store itself cannot be read (an IOError of its index, say); a shard whose
  // volume is missing is left out with a notice, and picked up at a later open.
  static core::Result<std::unique_ptr<ShardVectors>> Open(
      storage::Store* store, const std::string& state_dir, const ShardVectorsOptions& opt,
      bool rebuild = false, const storage::ProgressFn& progress = nullptr);

  // Takes a stored shard into account: it moves its volume's coverage past `place` (when it
  // lies past it) and adds the vector, if any (empty: none). The store's observer calls this
  // for every stored shard, in disk order per volume.
  void Add(const core::Uuid& id, uint32_t volume, storage::DiskPlace place,
           std::span<const float> vector) EXCLUDES(mu_);

  // The k nearest shards to `query` (checked with CheckVector, naming `what`), nearest first.
  core::Result<std::vector<Hit>> Search(std::span<const float> query, const SearchOptions& o,
                                        std::string_view what = "--near") const EXCLUDES(mu_);

  // Writes the snapshot if anything changed since it was read or last written.
  core::Status Save() EXCLUDES(mu_);

  uint64_t size() const EXCLUDES(mu_);
  uint64_t unsaved() const EXCLUDES(mu_);
  const ShardVectorsReport& report() const { return report_; }
  const ShardVectorsOptions& options() const { return opt_; }

  struct Coverage {
    storage::DiskPlace last;  // the last record looked at
    uint64_t scanned = 0;     // shards up to and including it
  };

 private:
  ShardVectors(core::FileSystem* fs, std::string path, core::Uuid store_id,
               const ShardVectorsOptions& opt);
  void Reset(size_t capacity) REQUIRES(mu_);
  // Loads the snapshot; a reason it cannot be used otherwise.
  std::string Load() REQUIRES(mu_);
  // Reads every shard past each volume's coverage and adds those with a vector; a reason the
  // index is stale, or "".
  core::Result<std::string> CatchUp(storage::Store* store, const storage::ProgressFn& progress)
      REQUIRES(mu_);
  void Insert(std::vector<std::pair<core::Uuid, std::vector<float>>> items) REQUIRES(mu_);
  std::string Encode() const REQUIRES(mu_);
  std::string Decode(std::string_view bytes) REQUIRES(mu_);

  core::FileSystem* fs_;
  const std::string path_;
  const core::Uuid store_id_;
  const ShardVectorsOptions opt_;
  ShardVectorsReport report_;

  mutable core::Mutex mu_;
  std::unique_ptr<HnswGraph> graph_ GUARDED_BY(mu_);
  std::vector<core::Uuid> ids_ GUARDED_BY(mu_);  // label -> shard id
  std::map<uint32_t, Coverage> coverage_ GUARDED_BY(mu_);
  uint64_t unsaved_ GUARDED_BY(mu_) = 0;
};

// The storage observer that tells a ShardVectors of every stored shard.
class ShardVectorsObserver final : public storage::IoObserver {
 public:
  explicit ShardVectorsObserver(ShardVectors* index) : index_(index) {}
  void OnWrite(const core::RequestContext&, const core::Uuid&, uint64_t) override {}
  void OnRead(const core::RequestContext&, const core::Uuid&, uint64_t) override {}
  void OnProof(const core::RequestContext&, const core::Uuid&, uint64_t) override {}
  void OnStored(const core::Uuid& shard, uint32_t volume, uint64_t segment, uint64_t offset,
                const storage::ShardMetadata& meta) override {
    index_->Add(shard, volume, {segment, offset}, meta.vector);
  }

 private:
  ShardVectors* index_;
};

}  // namespace dfrp::vector
