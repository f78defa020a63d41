// WriteQueue: group commit of the daemon's PUTs. One writer thread takes every write waiting
// in the queue (up to kMaxBatchItems shards or kMaxBatchBytes) as one Store::Write batch, so
// one fsync serves them all. If a batch fails, each of its writes is tried alone, so that one
// bad request fails only itself. A write is answered (its `done` called, on the writer
// thread) only once its batch is durable and indexed.
//
// Thread-safety: every member may be called from any thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "dfrp/core/file_system.h"
#include "dfrp/core/thread_annotations.h"
#include "dfrp/node/body_buffer.h"
#include "dfrp/node/metrics.h"
#include "dfrp/node/store_writer.h"
#include "dfrp/storage/metadata.h"
#include "dfrp/storage/store.h"

namespace dfrp::node {

// A PUT's payload: in memory, or (large bodies) in a spool file the queue removes after use.
struct PutShard {
  storage::ShardMetadata meta;
  std::string name;
  std::unique_ptr<BodyBuffer> body;  // null when spooled
  std::string spool_path;
  uint64_t size = 0;
  // Whatever must live exactly as long as the body (the server's hold on its memory budget).
  std::shared_ptr<void> hold;
  core::RequestContext ctx;  // who asked: the write is counted for them once durable
};

struct WriteOutcome {
  core::Status status;
  storage::WrittenShard shard;
};

class WriteQueue {
 public:
  static constexpr size_t kMaxBatchItems = 256;
  static constexpr uint64_t kMaxBatchBytes = 64ull << 20;

  WriteQueue(StoreWriter& writer, Metrics& metrics, core::FileSystem* fs, core::Clock* clock);
  ~WriteQueue();
  // Starts the writer thread.
  void Start();
  // Answers everything queued, then ends the writer thread; later writes are refused (Busy).
  void Stop() EXCLUDES(mu_);

  // Queues a write; `done` is called once, on the writer thread (or at once when stopping).
  void Submit(PutShard put, std::function<void(WriteOutcome)> done) EXCLUDES(mu_);
  size_t queued() const EXCLUDES(mu_);

 private:
  struct Pending {
    PutShard put;
    std::function<void(WriteOutcome)> done;
  };
  void Loop() EXCLUDES(mu_);
  std::vector<Pending> TakeBatch() EXCLUDES(mu_);
  core::Status WriteRange(std::vector<Pending>& batch, size_t from, size_t to);

  StoreWriter& writer_;
  Metrics& metrics_;
  core::FileSystem* const fs_;
  core::Clock* const clock_;

  mutable core::Mutex mu_;
  core::CondVar cv_;
  std::deque<Pending> queue_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace dfrp::node
