#include "dfrp/node/write_queue.h"

#include <algorithm>

namespace dfrp::node {

using core::Result;
using core::Status;

namespace {

// A PUT body held in memory, read by the store without a copy of its own (the body stays
// with the PutShard, which outlives the write and any retry of it alone).
class BodyStream final : public core::SequentialFile {
 public:
  BodyStream(const BodyBuffer& body, const std::string& name) : body_(body), name_(name) {}
  Result<size_t> Read(size_t n, char* dst) override {
    const size_t k = body_.ReadAt(pos_, dst, n);
    pos_ += k;
    return k;
  }
  const std::string& path() const override { return name_; }
  int64_t KnownSize() const override { return static_cast<int64_t>(body_.size()); }

 private:
  const BodyBuffer& body_;
  std::string name_;
  uint64_t pos_ = 0;
};

storage::WriteRequest RequestFor(const PutShard& p) {
  storage::WriteRequest req;
  req.name = p.name;
  req.meta = p.meta;
  req.ctx = p.ctx;
  if (!p.spool_path.empty()) {
    req.path = p.spool_path;
    req.size_hint = static_cast<int64_t>(p.size);
  } else {
    req.input = std::make_unique<BodyStream>(*p.body, p.name);
  }
  return req;
}

}  // namespace

WriteQueue::WriteQueue(StoreWriter& writer, Metrics& metrics, core::FileSystem* fs,
                       core::Clock* clock)
    : writer_(writer), metrics_(metrics), fs_(fs), clock_(clock) {}

WriteQueue::~WriteQueue() { Stop(); }

void WriteQueue::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void WriteQueue::Stop() {
  {
    core::MutexLock lock(&mu_);
    stopping_ = true;
  }
  cv_.SignalAll();
  if (thread_.joinable()) thread_.join();
}

size_t WriteQueue::queued() const {
  core::MutexLock lock(&mu_);
  return queue_.size();
}

void WriteQueue::Submit(PutShard put, std::function<void(WriteOutcome)> done) {
  {
    core::MutexLock lock(&mu_);
    if (!stopping_) {
      queue_.push_back({std::move(put), std::move(done)});
      cv_.Signal();
      return;
    }
  }
  if (!put.spool_path.empty()) (void)fs_->RemoveFile(put.spool_path);
  done({Status::Busy("dfrpd is shutting down: send the write again once it is back"), {}});
}

std::vector<WriteQueue::Pending> WriteQueue::TakeBatch() {
  std::vector<Pending> batch;
  core::MutexLock lock(&mu_);
  while (queue_.empty() && !stopping_) cv_.Wait(&mu_);
  uint64_t bytes = 0;
  while (!queue_.empty() && batch.size() < kMaxBatchItems &&
         (batch.empty() || bytes + queue_.front().put.size <= kMaxBatchBytes)) {
    bytes += queue_.front().put.size;
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return batch;  // empty: stopping, and every write queued before was answered
}

Status WriteQueue::WriteRange(std::vector<Pending>& batch, size_t from, size_t to) {
  std::vector<storage::WriteRequest> reqs;
  for (size_t i = from; i < to; ++i) reqs.push_back(RequestFor(batch[i].put));
  std::vector<storage::WrittenShard> written;
  Status s = writer_.Run([&](storage::Store& store) -> Status {
    DFRP_ASSIGN_OR_RETURN(written, store.Write(reqs));
    return Status::OK();
  });
  if (!s.ok()) return s;
  const int64_t now = clock_->NowUnixMillis();
  for (size_t i = from; i < to; ++i) {
    metrics_.AddWrite(now, batch[i].put.size);
    batch[i].done({Status::OK(), written[i - from]});
  }
  return Status::OK();
}

void WriteQueue::Loop() {
  for (;;) {
    std::vector<Pending> batch = TakeBatch();
    if (batch.empty()) return;
    Status s = WriteRange(batch, 0, batch.size());
    if (!s.ok()) {
      if (batch.size() == 1) {
        batch[0].done({s, {}});
      } else {
        // One bad request must not fail the others: write each alone.
        for (size_t i = 0; i < batch.size(); ++i) {
          Status one = WriteRange(batch, i, i + 1);
          if (!one.ok()) batch[i].done({one, {}});
        }
      }
    }
    for (const auto& p : batch)
      if (!p.put.spool_path.empty()) (void)fs_->RemoveFile(p.put.spool_path);
  }
}

}  // namespace dfrp::node
