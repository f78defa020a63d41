#include "dfrp/node/reader_cache.h"

#include <cstring>

namespace dfrp::node {

using core::Result;
using core::Status;

size_t ReaderCache::IdHash::operator()(const core::Uuid& id) const {
  uint64_t a, b;  // UUIDv7: the random half varies the most
  std::memcpy(&a, id.bytes.data(), 8);
  std::memcpy(&b, id.bytes.data() + 8, 8);
  return static_cast<size_t>(b ^ (a * 0x9e3779b97f4a7c15ull));
}

uint64_t ReaderCache::CostOf(const storage::ShardReader& r) {
  // The reader and its control block, the metadata string's heap buffer, the list node and
  // the hash map's node and bucket.
  constexpr uint64_t kOverhead = sizeof(storage::ShardReader) + sizeof(Entry) + 128;
  return kOverhead + r.prefix().metadata.capacity();
}

Status ReaderCache::Refresh() {
  DFRP_ASSIGN_OR_RETURN(std::unique_ptr<storage::Store> fresh,
                        storage::Store::Open(config_, storage::Store::Mode::kRead, opt_));
  std::shared_ptr<storage::Store> shared(std::move(fresh));
  std::list<Entry> dropped;  // freed after the locks are let go
  {
    core::MutexLock lru(&lru_mu_);
    core::MutexLock store(&store_mu_);
    reader_.swap(shared);
    dropped.swap(lru_);
    by_id_.clear();
    bytes_ = 0;
    generation_.fetch_add(1);
  }
  return Status::OK();
}

Result<OpenedShard> ReaderCache::Open(const core::Uuid& id) {
  {
    core::MutexLock lock(&lru_mu_);
    if (auto it = by_id_.find(id); it != by_id_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      return it->second->shard;
    }
  }
  OpenedShard out;
  uint64_t gen = 0;
  {
    core::MutexLock lock(&store_mu_);
    gen = generation_.load();
    out.store = reader_;
    DFRP_ASSIGN_OR_RETURN(storage::ShardReader r, reader_->OpenShard(id));
    out.reader = std::make_shared<const storage::ShardReader>(std::move(r));
  }
  Insert(id, out, gen);
  return out;
}

void ReaderCache::Insert(const core::Uuid& id, const OpenedShard& s, uint64_t gen) {
  const uint64_t cost = CostOf(*s.reader);
  if (cost > capacity_) return;
  std::list<Entry> evicted;  // freed after the lock is let go
  core::MutexLock lock(&lru_mu_);
  // A volume moved since this reader was opened (Refresh bumps the generation under
  // lru_mu_): do not keep it.
  if (gen != generation_.load() || by_id_.count(id)) return;
  lru_.push_front(Entry{id, s, cost});
  by_id_.emplace(id, lru_.begin());
  bytes_ += cost;
  while (bytes_ > capacity_ && !lru_.empty()) {
    auto last = std::prev(lru_.end());
    bytes_ -= last->cost;
    by_id_.erase(last->id);
    evicted.splice(evicted.begin(), lru_, last);
  }
}

Result<storage::ShardInfo> ReaderCache::Stat(const core::Uuid& id) {
  core::MutexLock lock(&store_mu_);
  return reader_->Stat(id);
}

uint64_t ReaderCache::bytes() const {
  core::MutexLock lock(&lru_mu_);
  return bytes_;
}

size_t ReaderCache::entries() const {
  core::MutexLock lock(&lru_mu_);
  return lru_.size();
}

}  // namespace dfrp::node
