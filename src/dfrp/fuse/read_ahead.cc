#include "dfrp/fuse/read_ahead.h"

#include <algorithm>
#include <cstring>

namespace dfrp::fuse {

VerifyPool::VerifyPool(unsigned threads) {
  for (unsigned i = 0; i < std::max(threads, 1u); ++i) threads_.emplace_back([this] { Work(); });
}

VerifyPool::~VerifyPool() {
  {
    core::MutexLock lock(&mu_);
    stopping_ = true;
    jobs_.clear();
  }
  cv_.SignalAll();
  for (auto& t : threads_) t.join();
}

void VerifyPool::Submit(std::function<void()> job) {
  {
    core::MutexLock lock(&mu_);
    jobs_.push_back(std::move(job));
  }
  cv_.Signal();
}

void VerifyPool::Work() {
  for (;;) {
    std::function<void()> job;
    {
      core::MutexLock lock(&mu_);
      while (!stopping_ && jobs_.empty()) cv_.Wait(&mu_);
      if (stopping_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

// A read made ahead: the read it answers, and its result once a worker has made it.
struct ShardStream::Piece {
  uint64_t offset = 0;
  size_t size = 0;  // as asked
  std::unique_ptr<char[]> bytes;
  core::Mutex mu;
  core::CondVar cv;
  bool done GUARDED_BY(mu) = false;
  core::Result<size_t> result GUARDED_BY(mu) = size_t{0};
};

void ShardStream::TopUp(uint64_t offset, size_t size) {
  if (size != spare_size_) {
    spare_.clear();
    spare_size_ = size;
  }
  uint64_t from = ahead_.empty() ? offset + size : ahead_.back()->offset + ahead_.back()->size;
  while (ahead_.size() < depth_ && from < reader_.size()) {
    auto piece = std::make_shared<Piece>();
    piece->offset = from;
    piece->size = size;
    if (spare_.empty()) {
      piece->bytes = std::make_unique_for_overwrite<char[]>(size);
    } else {
      piece->bytes = std::move(spare_.back());
      spare_.pop_back();
    }
    // A worker hashes on its own thread: the pool's threads, the caller's and the other
    // streams' already share the cores.
    pool_.Submit([&reader = reader_, piece] {
      core::Result<size_t> r = reader.ReadAt(piece->offset, piece->size, piece->bytes.get(), 1);
      {
        core::MutexLock lock(&piece->mu);
        piece->result = std::move(r);
        piece->done = true;
      }
      piece->cv.SignalAll();
    });
    ahead_.push_back(std::move(piece));
    from += size;
  }
}

core::Result<size_t> ShardStream::Read(uint64_t offset, size_t size, char* dst) {
  std::shared_ptr<Piece> piece;
  {
    core::MutexLock lock(&mu_);
    const bool sequential = offset == next_;
    // Read-ahead serves the reads it was made for, in order; a reader that goes elsewhere
    // drops it (workers finish what they started, and the bytes go unread).
    while (!ahead_.empty() && ahead_.front()->offset < offset) ahead_.pop_front();
    if (!ahead_.empty() && ahead_.front()->offset == offset && ahead_.front()->size == size) {
      piece = std::move(ahead_.front());
      ahead_.pop_front();
      ++hits_;
    } else {
      ahead_.clear();
    }
    next_ = offset + size;
    if ((piece || sequential) && size >= kMinReadAhead) TopUp(offset, size);
  }
  if (!piece) return reader_.ReadAt(offset, size, dst, size >= (1 << 20) ? 0 : 1);
  core::Result<size_t> got = size_t{0};
  {
    core::MutexLock lock(&piece->mu);
    while (!piece->done) piece->cv.Wait(&piece->mu);
    got = piece->result;
  }
  if (got) std::memcpy(dst, piece->bytes.get(), *got);  // only verified bytes
  core::MutexLock lock(&mu_);
  if (piece->size == spare_size_ && spare_.size() <= depth_)
    spare_.push_back(std::move(piece->bytes));
  return got;
}

uint64_t ShardStream::read_ahead_hits() const {
  core::MutexLock lock(&mu_);
  return hits_;
}

}  // namespace dfrp::fuse
