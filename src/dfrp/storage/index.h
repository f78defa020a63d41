// The shard index: shard id -> where its record lives and its Merkle root.
//
// The index is only a cache of what the drives hold: every row can be rebuilt by scanning the
// volumes, and a lost or stale index costs time, never data. It lives in SQLite (WAL mode) in
// STATE_DIR, so opening it costs O(1) and a lookup O(log n) whatever the number of shards,
// and readers in other processes see only committed batches.
//
// Per segment it also keeps `indexed_end`, the offset up to which the segment's records are
// all in the index; recovery scans only what lies beyond it.
//
// Thread-safety: an Index is used from one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dfrp/core/status.h"
#include "dfrp/core/uuid.h"
#include "dfrp/crypto/sha256.h"

struct sqlite3;
struct sqlite3_stmt;

namespace dfrp::storage {

struct ShardLocation {
  core::Uuid id;
  uint32_t volume = 0;
  uint64_t segment = 0;
  uint64_t offset = 0;  // of the record in its segment file
  uint64_t record_len = 0;
  uint64_t payload_len = 0;
  uint32_t leaf_size = 0;
  crypto::Hash root{};
};

struct VolumeCounts {
  uint64_t shards = 0;
  uint64_t payload_bytes = 0;
};

// A record's place on its volume. Disk order is the order of places; DiskPlace{} comes before
// every record (segments are numbered from 1, and a record follows its segment's header).
struct DiskPlace {
  uint64_t segment = 0;
  uint64_t offset = 0;
  friend auto operator<=>(const DiskPlace&, const DiskPlace&) = default;
};

// The shards of one volume past a place, up to the last one there is (Index::SpanAfter).
struct ShardSpan {
  std::optional<DiskPlace> last;  // nullopt: none
  uint64_t shards = 0;
  uint64_t payload_bytes = 0;
};

using SegmentKey = std::pair<uint32_t, uint64_t>;  // (volume, segment)

class Index {
 public:
  ~Index();
  Index(const Index&) = delete;
  Index& operator=(const Index&) = delete;

  // Opens (creating if absent) the index at `path` for the store `store_id`. An index that
  // belongs to another store, or that SQLite finds damaged, is emptied (it will be rebuilt
  // from the drives) when `may_reset` (the caller holds the writer lock); otherwise that is
  // a Busy error. *was_reset tells the caller.
  static core::Result<std::unique_ptr<Index>> Open(const std::string& path,
                                                   const core::Uuid& store_id, bool may_reset,
                                                   bool* was_reset, bool sync = true);

  core::Result<std::optional<ShardLocation>> Find(const core::Uuid& id);
  // Adds shards and moves segment marks in one transaction. A shard id already present keeps
  // its row (the drives are the truth; this only happens when a scan meets a record twice).
  // With `durable`, the commit is synced before returning (otherwise a power cut may undo it,
  // which the tail scan makes good).
  core::Status Commit(std::span<const ShardLocation> added,
                      const std::map<SegmentKey, uint64_t>& marks, bool durable = false);
  // Commit in two steps, so the inserts can run while the data is being synced: Stage
  // opens a transaction and makes the changes (invisible to readers; on failure nothing is
  // left open); FinishStaged commits or rolls them back. Nothing else may use the index in
  // between.
  core::Status Stage(std::span<const ShardLocation> added,
                     const std::map<SegmentKey, uint64_t>& marks);
  core::Status FinishStaged(bool commit);
  core::Result<std::map<SegmentKey, uint64_t>> SegmentMarks();
  core::Result<std::map<uint32_t, VolumeCounts>> Counts();
  // Calls fn for each shard in disk order (volume, segment, offset), optionally of one volume,
  // until fn returns false.
  core::Status ForEach(std::optional<uint32_t> volume,
                       const std::function<bool(const ShardLocation&)>& fn);
  // One page of a walk over `volume` in disk order: up to `limit` shards placed after `after`
  // and not after `last`. Paging with the place of the last shard returned as the next
  // `after` visits each shard once, holding one page in memory (keyset pagination: each page
  // is one seek in the (volume, segment, offset) index, whatever the volume's size).
  core::Result<std::vector<ShardLocation>> Page(uint32_t volume, DiskPlace after, DiskPlace last,
                                                size_t limit);
  // What such a walk from `after` to the volume's last shard now would cover: that shard's
  // place, how many shards and payload bytes. Reads every row in the span (O(1) memory).
  core::Result<ShardSpan> SpanAfter(uint32_t volume, DiskPlace after);
  // Replaces every shard, mark and count of the `volumes` given with these, in one durable
  // transaction: readers keep seeing the old index until it commits (rebuild-index). Other
  // volumes' entries stay.
  core::Status Replace(std::span<const ShardLocation> all,
                       const std::map<SegmentKey, uint64_t>& marks,
                       const std::set<uint32_t>& volumes);
  // Forgets every shard and mark of one volume (all volumes when nullopt).
  core::Status Clear(std::optional<uint32_t> volume);

 private:
  explicit Index(sqlite3* db) : db_(db) {}
  core::Status Exec(const char* sql);

  core::Status Prepare();
  // The inserts and updates of Stage, inside a transaction the caller opened.
  core::Status Apply(std::span<const ShardLocation> added,
                     const std::map<SegmentKey, uint64_t>& marks);
  core::Status Error(std::string_view what) const;

  sqlite3* db_;
  bool sync_ = true;
  sqlite3_stmt* find_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
  sqlite3_stmt* mark_ = nullptr;
  sqlite3_stmt* count_ = nullptr;
};

}  // namespace dfrp::storage
