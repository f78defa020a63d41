// GroupVerifier: BLS verifications asked at the same time by different threads are checked
// together, as one batch (BatchVerifyEach), the way a database commits a group of
// transactions with one sync. A thread that asks while no batch is being checked checks its
// own at once (a batch of one: no added wait when the load is light); while a batch is being
// checked, the next askers queue, and the first of them checks all that queued as the next
// batch. Under load each signature then costs about one Miller loop instead of two plus a
// final exponentiation (docs/BENCHMARKS.md, "Wallet": 2.5x on one thread).
//
// Under load a batch of one is the worst case, and on a machine with few cores it is the usual
// one: requests reach the verifier one after another, and the first of them, finding it idle,
// checks alone. So a verifier with a gather window (`gather`) lets the thread that would check
// a batch wait up to that long for more triples first, but only while the verifier is busy (a
// batch ended less than `busy` ago): at light load nothing waits.
//
// The answer for each triple is the same as bls::Verify's (ok or not); a batch that does not
// hold is checked again one by one, so one bad signature costs its batch a second pass but
// never fails another triple.
//
// Thread-safety: Verify may be called from any number of threads at once.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>

#include "dfrp/core/thread_annotations.h"
#include "dfrp/crypto/bls.h"

namespace dfrp::crypto::bls {

class GroupVerifier {
 public:
  struct Options {
    size_t max_batch = 256;  // the most triples one batch takes
    unsigned threads = 0;    // what a batch of 8 or more is spread over (0: all cores)
    // How long a batch waits for more triples while the verifier is busy (0: never).
    std::chrono::microseconds gather{0};
    // Busy: the last batch ended less than this long ago.
    std::chrono::microseconds busy{5000};
  };
  GroupVerifier() : GroupVerifier(Options{}) {}
  explicit GroupVerifier(Options opt) : opt_(opt) {}

  // True iff `sig` is `key`'s signature on `message` (under kSigDst), as bls::Verify.
  bool Verify(const PublicKey& key, ByteSpan message, const Signature& sig) EXCLUDES(mu_);

  // Batches checked so far and the triples in them (for metrics and the benchmark).
  uint64_t batches() const EXCLUDES(mu_);
  uint64_t verified() const EXCLUDES(mu_);

 private:
  struct Item {
    SignedMessage triple;
    bool done = false;  // under mu_
    bool ok = false;    // under mu_
  };

  const Options opt_;
  mutable core::Mutex mu_;
  core::CondVar cv_;         // a batch was checked
  core::CondVar gather_cv_;  // the batch being gathered is full
  std::deque<Item*> queue_ GUARDED_BY(mu_);
  bool checking_ GUARDED_BY(mu_) = false;  // a thread is gathering or checking a batch now
  std::optional<std::chrono::steady_clock::time_point> last_end_ GUARDED_BY(mu_);  // of a batch
  uint64_t batches_ GUARDED_BY(mu_) = 0;
  uint64_t verified_ GUARDED_BY(mu_) = 0;
};

}  // namespace dfrp::crypto::bls
