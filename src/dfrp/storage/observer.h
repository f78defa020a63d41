// IoObserver: the seam through which work done by the storage layer is counted (usage
// counting, docs/PROTOCOL "Usage counting"). Storage defines it and never includes its
// implementations (the economy's UsageCounter is one).
//
// Who calls what: Store::Write calls OnWrite for each shard of a batch once the whole batch is
// durable; reads and proofs are counted where they are served, with the request's context
// (the CLI's local service, the daemon's download, proof and audit routes), because only
// there is it known how many bytes actually went out.
//
// Thread-safety: implementations must accept calls from several threads at once. A call must
// not call back into the Store, and should be quick (it runs on the write and serving paths).
#pragma once

#include <cstdint>
#include <vector>

#include "dfrp/core/request_context.h"
#include "dfrp/core/uuid.h"
#include "dfrp/storage/metadata.h"

namespace dfrp::storage {

// Called on every committed write, every verified read and every proof or audit served.
class IoObserver {
 public:
  virtual ~IoObserver() = default;
  // After the batch holding `shard` is durable; OnWriteBatchDone follows the batch's last
  // OnWrite (an implementation may keep the writes until then, to record them together).
  virtual void OnWrite(const core::RequestContext& ctx, const core::Uuid& shard,
                       uint64_t payload_bytes) = 0;
  virtual void OnWriteBatchDone() {}
  // After the batch holding it is durable, before OnWriteBatchDone: the shard's place on its
  // volume and the metadata it was stored with. The vector index adds shards through this.
  virtual void OnStored(const core::Uuid& shard, uint32_t volume, uint64_t segment, uint64_t offset,
                        const ShardMetadata& meta) {}
  // Bytes verified and handed out.
  virtual void OnRead(const core::RequestContext& ctx, const core::Uuid& shard,
                      uint64_t verified_bytes) = 0;
  // A proof or an audit answered; `leaves` is how many leaves it proves.
  virtual void OnProof(const core::RequestContext& ctx, const core::Uuid& shard,
                       uint64_t leaves) = 0;
};

// Tells several observers, in the order added (a Store has one observer).
class ObserverList final : public IoObserver {
 public:
  // Not owned; must outlive this list. Add them all before the first write.
  void Add(IoObserver* o) { observers_.push_back(o); }
  void OnWrite(const core::RequestContext& ctx, const core::Uuid& shard,
               uint64_t payload_bytes) override {
    for (IoObserver* o : observers_) o->OnWrite(ctx, shard, payload_bytes);
  }
  void OnWriteBatchDone() override {
    for (IoObserver* o : observers_) o->OnWriteBatchDone();
  }
  void OnStored(const core::Uuid& shard, uint32_t volume, uint64_t segment, uint64_t offset,
                const ShardMetadata& meta) override {
    for (IoObserver* o : observers_) o->OnStored(shard, volume, segment, offset, meta);
  }
  void OnRead(const core::RequestContext& ctx, const core::Uuid& shard,
              uint64_t verified_bytes) override {
    for (IoObserver* o : observers_) o->OnRead(ctx, shard, verified_bytes);
  }
  void OnProof(const core::RequestContext& ctx, const core::Uuid& shard, uint64_t leaves) override {
    for (IoObserver* o : observers_) o->OnProof(ctx, shard, leaves);
  }

 private:
  std::vector<IoObserver*> observers_;
};

}  // namespace dfrp::storage
