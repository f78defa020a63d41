#include "dfrp/crypto/group_verifier.h"

#include <vector>

namespace dfrp::crypto::bls {

bool GroupVerifier::Verify(const PublicKey& key, ByteSpan message, const Signature& sig) {
  Item mine{.triple = {&key, message, &sig}};
  core::MutexLock lock(&mu_);
  queue_.push_back(&mine);
  if (queue_.size() >= opt_.max_batch) gather_cv_.Signal();
  for (;;) {
    while (!mine.done && checking_) cv_.Wait(&mu_);
    if (mine.done) return mine.ok;
    // No batch is being checked: this thread checks the next one (its own triple among them,
    // or, if more than a batch queued before it, an earlier batch first).
    checking_ = true;
    if (opt_.gather.count() > 0 && queue_.size() < opt_.max_batch) {
      const auto now = std::chrono::steady_clock::now();
      if (last_end_ && now - *last_end_ < opt_.busy) {
        const auto deadline = now + opt_.gather;
        while (queue_.size() < opt_.max_batch && gather_cv_.WaitUntil(&mu_, deadline)) {
        }
      }
    }
    std::vector<Item*> batch;
    while (!queue_.empty() && batch.size() < opt_.max_batch) {
      batch.push_back(queue_.front());
      queue_.pop_front();
    }
    std::vector<SignedMessage> triples;
    triples.reserve(batch.size());
    for (const Item* item : batch) triples.push_back(item->triple);
    mu_.Unlock();
    const std::vector<bool> ok = BatchVerifyEach(triples, triples.size() >= 8 ? opt_.threads : 1);
    mu_.Lock();
    for (size_t i = 0; i < batch.size(); ++i) {
      batch[i]->ok = ok[i];
      batch[i]->done = true;
    }
    ++batches_;
    verified_ += batch.size();
    last_end_ = std::chrono::steady_clock::now();
    checking_ = false;
    cv_.SignalAll();
  }
}

uint64_t GroupVerifier::batches() const {
  core::MutexLock lock(&mu_);
  return batches_;
}

uint64_t GroupVerifier::verified() const {
  core::MutexLock lock(&mu_);
  return verified_;
}

}  // namespace dfrp::crypto::bls
