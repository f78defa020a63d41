// StoreWriter: the daemon's one writer Store and the snapshot of its volumes.
//
// dfrpd opens the store in write mode once and holds its writer lock for as long as it runs,
// so no other process writes the store. Every use of that Store (a write batch, pause,
// resume, the first and last steps of a migration) goes through Run(), one at a time; the
// volume snapshot is refreshed after each, so that status pages and the free-space check of
// a PUT never wait behind a long write.
//
// Thread-safety: every member may be called from any thread. Lock order: mu_ before
// snapshot_mu_; no other lock of the node is taken while mu_ is held, except by f.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dfrp/core/thread_annotations.h"
#include "dfrp/storage/migrate.h"
#include "dfrp/storage/store.h"

namespace dfrp::node {

class StoreWriter final : public storage::WriterAccess {
 public:
  explicit StoreWriter(std::unique_ptr<storage::Store> store);

  // Runs f on the writer Store, then refreshes the volume snapshot. (WriterAccess.)
  core::Status Run(const std::function<core::Status(storage::Store&)>& f) override EXCLUDES(mu_);
  const core::Uuid& store_id() const { return store_id_; }
  std::vector<std::string> notices() const EXCLUDES(mu_);

  // The volumes as of the last change; refreshed first when the writer is free this moment.
  std::vector<storage::VolumeInfo> Volumes() EXCLUDES(mu_, snapshot_mu_);
  // The snapshot alone (never waits for the writer).
  std::vector<storage::VolumeInfo> Snapshot() const EXCLUDES(snapshot_mu_);
  // The most bytes one more shard may hold: the largest free space of a volume taking
  // writes, from the snapshot; 0 when none takes writes.
  uint64_t WritableBytes() const EXCLUDES(snapshot_mu_);

 private:
  void Refresh() REQUIRES(mu_) EXCLUDES(snapshot_mu_);

  const core::Uuid store_id_;
  mutable core::Mutex mu_ ACQUIRED_BEFORE(snapshot_mu_);
  std::unique_ptr<storage::Store> store_ GUARDED_BY(mu_);
  mutable core::Mutex snapshot_mu_;
  std::vector<storage::VolumeInfo> volumes_ GUARDED_BY(snapshot_mu_);
};

}  // namespace dfrp::node
