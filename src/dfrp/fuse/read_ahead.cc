#include "dfrp/fuse/read_ahead.h"

#include <algorithm>
#include <cstring>

namespace dfrp::fuse {

VerifyPool::VerifyPool(unsigned threads) {
  for (unsigned i = 0; i < std::max(threads, 1u); ++i)
    threads_.emplace_back([this](std::stop_token st) { Work(st); });
}

VerifyPool::~VerifyPool() {
  std::lock_guard<std::mutex> lock(mu_);  // so no worker misses the wake-up
  for (auto& t : threads_) t.request_stop();
  cv_.notify_all();
}

void VerifyPool::Submit(std::function<void()> job) {
  std::lock_guard<std::mutex> lock(mu_);
  jobs_.push_back(std::move(job));
  cv_.notify_one();
}

void VerifyPool::Work(std::stop_token st) {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (!cv_.wait(lock, st, [&] { return !jobs_.empty(); })) return;
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
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;                        // guarded by mu
  core::Result<size_t> result = size_t{0};  // guarded by mu
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
      std::lock_guard<std::mutex> lock(piece->mu);
      piece->result = std::move(r);
      piece->done = true;
      piece->cv.notify_all();
    });
    ahead_.push_back(std::move(piece));
    from += size;
  }
}

core::Result<size_t> ShardStream::Read(uint64_t offset, size_t size, char* dst) {
  std::shared_ptr<Piece> piece;
  {
    std::lock_guard<std::mutex> lock(mu_);
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
    std::unique_lock<std::mutex> lock(piece->mu);
    piece->cv.wait(lock, [&] { return piece->done; });
    got = piece->result;
  }
  if (got) std::memcpy(dst, piece->bytes.get(), *got);  // only verified bytes
  std::lock_guard<std::mutex> lock(mu_);
  if (piece->size == spare_size_ && spare_.size() <= depth_)
    spare_.push_back(std::move(piece->bytes));
  return got;
}

uint64_t ShardStream::read_ahead_hits() const {
  std::lock_guard<std::mutex> lock(mu_);
  return hits_;
}

}  // namespace dfrp::fuse
