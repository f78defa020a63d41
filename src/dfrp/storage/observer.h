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

#include "dfrp/core/request_context.h"
#include "dfrp/core/uuid.h"

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
  // Bytes verified and handed out.
  virtual void OnRead(const core::RequestContext& ctx, const core::Uuid& shard,
                      uint64_t verified_bytes) = 0;
  // A proof or an audit answered; `leaves` is how many leaves it proves.
  virtual void OnProof(const core::RequestContext& ctx, const core::Uuid& shard,
                       uint64_t leaves) = 0;
};

}  // namespace dfrp::storage
