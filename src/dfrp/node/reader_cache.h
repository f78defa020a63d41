// ReaderCache: the daemon's reader Store, shared by every read, and the readers of recently
// opened shards, bounded by bytes (least recently used goes first).
//
// A record never changes once written, and every read verifies the payload against the root
// in its CRC-checked prefix, so a kept ShardReader is as good as a fresh one: a hot GET then
// needs no index lookup and no prefix read. After a volume moves (a migration's switch, a
// resume with a path), Refresh() opens a fresh reader Store and drops every kept reader;
// reads in flight keep the old Store, and its open files, alive until they end.
//
// Thread-safety: every member may be called from any thread. Lock order: lru_mu_ before
// store_mu_.
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <unordered_map>

#include "dfrp/core/config.h"
#include "dfrp/core/thread_annotations.h"
#include "dfrp/core/uuid.h"
#include "dfrp/storage/shard_reader.h"
#include "dfrp/storage/store.h"

namespace dfrp::node {

// A shard opened for reading: the reader borrows a file from `store`, which it keeps alive.
struct OpenedShard {
  std::shared_ptr<storage::Store> store;
  std::shared_ptr<const storage::ShardReader> reader;
};

class ReaderCache {
 public:
  ReaderCache(const core::NodeConfig& config, const storage::StoreOptions& opt,
              uint64_t capacity_bytes)
      : config_(config), opt_(opt), capacity_(capacity_bytes) {}

  // Opens a fresh reader Store and drops every kept reader. Call once before use.
  core::Status Refresh() EXCLUDES(lru_mu_, store_mu_);
  // Bumped by every Refresh().
  uint64_t generation() const { return generation_.load(); }

  // A verified-read handle for the shard: kept, or opened now (index lookup, prefix read
  // and check). NotFound and Corruption as Store::OpenShard.
  core::Result<OpenedShard> Open(const core::Uuid& id) EXCLUDES(lru_mu_, store_mu_);
  core::Result<storage::ShardInfo> Stat(const core::Uuid& id) EXCLUDES(store_mu_);

  // What the kept readers hold, by this class's estimate, and how many there are.
  uint64_t bytes() const EXCLUDES(lru_mu_);
  size_t entries() const EXCLUDES(lru_mu_);
  uint64_t capacity() const { return capacity_; }

  // The memory one kept reader costs (the reader, its metadata, the cache's own node).
  static uint64_t CostOf(const storage::ShardReader& r);

 private:
  struct IdHash {
    size_t operator()(const core::Uuid& id) const;
  };
  struct Entry {
    core::Uuid id;
    OpenedShard shard;
    uint64_t cost = 0;
  };
  void Insert(const core::Uuid& id, const OpenedShard& s, uint64_t gen) EXCLUDES(lru_mu_);

  const core::NodeConfig config_;
  const storage::StoreOptions opt_;
  const uint64_t capacity_;
  std::atomic<uint64_t> generation_{0};

  mutable core::Mutex lru_mu_ ACQUIRED_BEFORE(store_mu_);
  std::list<Entry> lru_ GUARDED_BY(lru_mu_);  // most recently used first
  std::unordered_map<core::Uuid, std::list<Entry>::iterator, IdHash> by_id_ GUARDED_BY(lru_mu_);
  uint64_t bytes_ GUARDED_BY(lru_mu_) = 0;

  // One SQLite connection: every call on the reader Store is made under store_mu_ (a
  // ShardReader, once opened, reads without it).
  mutable core::Mutex store_mu_;
  std::shared_ptr<storage::Store> reader_ GUARDED_BY(store_mu_);
};

}  // namespace dfrp::node
