// Node: the storage node behind dfrpd's API, free of HTTP types.
//
// It owns the store twice over: one writer Store (the process holds the store's writer lock
// for as long as it runs, so no other process writes) used by one writer thread and the
// admin operations under writer_mu_, and a reader Store that every read shares under a short
// lock (a ShardReader, once opened, reads without it). After a volume moves, a fresh reader
// Store replaces the old one; reads in flight keep the old one (and its open files) alive.
//
// Writes are group-committed: the writer thread takes every PUT waiting in its queue as one
// batch (one fsync for all); if the batch fails, each is written alone so that one bad
// request fails only itself.
//
// Long work (migrate, resume with a new path) runs as an Operation on its own thread.
//
// Thread-safety: every public member may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "dfrp/core/config.h"
#include "dfrp/core/status.h"
#include "dfrp/core/uuid.h"
#include "dfrp/node/metrics.h"
#include "dfrp/node/token.h"
#include "dfrp/storage/proof.h"
#include "dfrp/storage/store.h"

namespace dfrp::node {

struct NodeOptions {
  core::NodeConfig config;
  storage::StoreOptions store;
  // Pause between two full scrub passes.
  int64_t scrub_pass_interval_ms = 60'000;
};

// A PUT's payload: in memory, or (large bodies) in a spool file the Node removes after use.
struct PutShard {
  storage::ShardMetadata meta;
  std::string name;
  std::string body;
  std::string spool_path;
  uint64_t size = 0;
};

struct WriteOutcome {
  core::Status status;
  storage::WrittenShard shard;
};

// A shard opened for reading: the reader borrows a file from `store`, which it keeps alive.
struct OpenedShard {
  std::shared_ptr<storage::Store> store;
  std::shared_ptr<const storage::ShardReader> reader;
};

class Node {
 public:
  ~Node();
  static core::Result<std::unique_ptr<Node>> Open(const NodeOptions& opt);
  // Stops the scrubber, cancels running operations and drains the write queue; idempotent.
  void Stop();

  const core::NodeConfig& config() const { return opt_.config; }
  const std::string& token() const { return token_; }
  const core::Uuid& store_id() const { return store_id_; }
  Metrics& metrics() { return metrics_; }
  // What opening the store noticed (a recovered tail, ...), for the log.
  std::vector<std::string> notices() const { return writer_->notices(); }
  int64_t NowMs() const { return opt_.store.clock->NowUnixMillis(); }
  double UptimeSeconds() const { return static_cast<double>(NowMs() - started_ms_) / 1000.0; }

  // --- Reads.
  core::Result<OpenedShard> OpenShard(const core::Uuid& id);
  core::Result<storage::ShardInfo> Stat(const core::Uuid& id);
  storage::VerifyResult Verify(const core::Uuid& id);
  core::Result<storage::ProofSet> Prove(const core::Uuid& id, uint64_t leaf);
  core::Result<storage::ProofSet> Audit(const core::Uuid& id, const std::string& seed,
                                        uint32_t challenges);
  std::vector<storage::VolumeInfo> Volumes();
  // The most bytes one more shard may hold (the largest free space of a volume taking
  // writes), from the last snapshot; 0 when no volume takes writes.
  uint64_t WritableBytes();

  // --- Writes. `done` is called once, on the writer thread.
  void SubmitWrite(PutShard put, std::function<void(WriteOutcome)> done);
  // Where PUT bodies too large to keep in memory are spooled.
  std::string SpoolPath();

  // --- Admin.
  core::Result<storage::VolumeInfo> Pause(uint32_t volume, const std::string& reason);
  core::Result<storage::VolumeInfo> Resume(uint32_t volume);
  core::Result<uint64_t> RetireSource(uint32_t volume);
  // Starts an operation; returns its JSON (as GET /v1/operations/{id}).
  core::Result<nlohmann::json> StartMigrate(uint32_t volume, const std::string& to, bool resume,
                                            bool delete_source);
  core::Result<nlohmann::json> StartResumeAt(uint32_t volume, const std::string& path);
  core::Result<nlohmann::json> Operation(const core::Uuid& id);
  nlohmann::json Operations();
  // Asks a running operation to stop; Busy when it already ended.
  core::Result<nlohmann::json> Cancel(const core::Uuid& id);

  nlohmann::json StatusJson(const std::string& api_addr);
  std::string MetricsText();

  struct Op;  // internal

 private:
  explicit Node(const NodeOptions& opt) : opt_(opt) {}
  core::Status RefreshReader();
  std::shared_ptr<storage::Store> Reader();
  void RefreshVolumes();  // needs writer_mu_
  void WriterLoop(std::stop_token st);
  void ScrubLoop(std::stop_token st);
  void RunMigrate(std::shared_ptr<Op> op, std::string to, bool resume, bool delete_source);
  void RunResumeAt(std::shared_ptr<Op> op, std::string path);
  core::Result<std::shared_ptr<Op>> NewOp(const std::string& kind, uint32_t volume,
                                          nlohmann::json params);
  void Finish(const std::shared_ptr<Op>& op, const core::Status& s, nlohmann::json result);
  nlohmann::json OpJson(const Op& op) const;

  NodeOptions opt_;
  std::string token_;
  core::Uuid store_id_;
  int64_t started_ms_ = 0;
  Metrics metrics_;

  std::mutex writer_mu_;  // guards writer_
  std::unique_ptr<storage::Store> writer_;

  std::mutex reader_mu_;  // guards reader_ and the calls made on it
  std::shared_ptr<storage::Store> reader_;
  std::atomic<uint64_t> generation_{0};  // bumped when a volume moves

  // Shards opened lately: a record never changes once written, and every read verifies the
  // payload against the root in the (CRC-checked when first read) prefix, so a cached reader
  // is as good as a fresh one until a volume moves (RefreshReader clears it). Saves the index
  // lookup and the prefix read of a hot shard.
  struct IdHash {
    size_t operator()(const core::Uuid& id) const;
  };
  static constexpr size_t kOpenCacheEntries = 65536;
  std::mutex open_cache_mu_;
  std::unordered_map<core::Uuid, OpenedShard, IdHash> open_cache_;  // guarded by open_cache_mu_

  std::mutex verify_mu_;  // guards verify_store_ and the calls made on it
  std::unique_ptr<storage::Store> verify_store_;
  uint64_t verify_generation_ = 0;

  std::mutex volumes_mu_;
  std::vector<storage::VolumeInfo> volumes_;  // snapshot, refreshed after each change

  struct PendingWrite {
    PutShard put;
    std::function<void(WriteOutcome)> done;
  };
  std::mutex queue_mu_;
  std::condition_variable_any queue_cv_;
  std::deque<PendingWrite> queue_;
  bool stopping_ = false;

  std::mutex ops_mu_;
  std::list<std::shared_ptr<Op>> ops_;  // newest first
  std::vector<std::jthread> op_threads_;
  std::unique_ptr<core::FileLock> migrate_lock_;  // held while a migration runs

  std::mutex scrub_mu_;
  nlohmann::json scrub_;  // the scrub section of /v1/status

  std::jthread writer_thread_;
  std::jthread scrub_thread_;
};

}  // namespace dfrp::node
