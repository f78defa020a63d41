// Verified reads of one opened shard for the FUSE view, with read-ahead for a sequential
// reader: when a read starts where the previous one ended, the next few reads of the same
// size are read and verified on a small pool of worker threads while the caller sends this
// one, so a sequential reader's next request finds its bytes verified already. Nothing is
// handed out before it verified (storage::ShardReader::ReadAt); bytes read ahead are only
// ever handed out for the exact read they were made for, and dropped when the reader goes
// elsewhere.
//
// Thread-safety: a VerifyPool is shared by all streams; a ShardStream may be read from
// several threads at once (FUSE may serve one open file on any of its threads).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "dfrp/core/status.h"
#include "dfrp/core/thread_annotations.h"
#include "dfrp/storage/shard_reader.h"

namespace dfrp::fuse {

// Worker threads that run read-ahead jobs in the order given. Jobs still queued when the
// pool is destroyed are dropped; those running are finished first.
class VerifyPool {
 public:
  explicit VerifyPool(unsigned threads);
  ~VerifyPool();
  VerifyPool(const VerifyPool&) = delete;
  VerifyPool& operator=(const VerifyPool&) = delete;
  void Submit(std::function<void()> job) EXCLUDES(mu_);

 private:
  void Work() EXCLUDES(mu_);
  core::Mutex mu_;
  core::CondVar cv_;
  std::deque<std::function<void()>> jobs_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

class ShardStream {
 public:
  // Reads of at least this many bytes that follow one another get read-ahead.
  static constexpr size_t kMinReadAhead = 64 << 10;

  // `reader` and `pool` must outlive the stream; `depth` reads are kept ahead at most (0:
  // none). Reads ahead still running when the stream goes finish on their own.
  ShardStream(const storage::ShardReader& reader, VerifyPool& pool, unsigned depth = 2)
      : reader_(reader), pool_(pool), depth_(depth) {}

  // As ShardReader::ReadAt into dst (hashing on every core for reads of 1 MiB and more), or
  // copied from read-ahead when this exact read was read ahead and verified already. On an
  // error dst holds no verified bytes and must not be used.
  core::Result<size_t> Read(uint64_t offset, size_t size, char* dst) EXCLUDES(mu_);
  // Reads answered from read-ahead so far (for tests).
  uint64_t read_ahead_hits() const EXCLUDES(mu_);

 private:
  struct Piece;
  // Queues read-ahead after a read of [offset, offset + size).
  void TopUp(uint64_t offset, size_t size) REQUIRES(mu_);

  const storage::ShardReader& reader_;
  VerifyPool& pool_;
  const unsigned depth_;
  mutable core::Mutex mu_;
  uint64_t next_ GUARDED_BY(mu_) = 0;                         // where the last read ended
  std::deque<std::shared_ptr<Piece>> ahead_ GUARDED_BY(mu_);  // in offset order
  // Buffers of pieces already copied out, kept for the next pieces (a buffer freed and
  // allocated again per read would be fresh pages each time: a page fault per 4 KiB).
  std::vector<std::unique_ptr<char[]>> spare_ GUARDED_BY(mu_);  // of spare_size_ bytes
  size_t spare_size_ GUARDED_BY(mu_) = 0;
  uint64_t hits_ GUARDED_BY(mu_) = 0;
};

}  // namespace dfrp::fuse
