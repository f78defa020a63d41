// Clang's thread-safety analysis (-Wthread-safety), as LevelDB's port/thread_annotations.h:
// a field says which mutex guards it, a function which mutexes it needs or must not hold, and
// the clang builds (fuzz, ThreadSanitizer) check every access at compile time. Other
// compilers see empty macros.
//
// libstdc++'s std::mutex carries no annotations, so annotated code uses core::Mutex and
// core::MutexLock below (thin wrappers, same cost).
#pragma once

#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define DFRP_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define DFRP_THREAD_ANNOTATION(x)
#endif

#define CAPABILITY(x) DFRP_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY DFRP_THREAD_ANNOTATION(scoped_lockable)
#define GUARDED_BY(x) DFRP_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) DFRP_THREAD_ANNOTATION(pt_guarded_by(x))
#define ACQUIRED_BEFORE(...) DFRP_THREAD_ANNOTATION(acquired_before(__VA_ARGS__))
#define ACQUIRED_AFTER(...) DFRP_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))
#define REQUIRES(...) DFRP_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define ACQUIRE(...) DFRP_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) DFRP_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) DFRP_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define EXCLUDES(...) DFRP_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define RETURN_CAPABILITY(x) DFRP_THREAD_ANNOTATION(lock_returned(x))
#define NO_THREAD_SAFETY_ANALYSIS DFRP_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace dfrp::core {

// std::mutex with annotations. Not recursive.
class CAPABILITY("mutex") Mutex {
 public:
  void Lock() ACQUIRE() { mu_.lock(); }
  void Unlock() RELEASE() { mu_.unlock(); }
  bool TryLock() TRY_ACQUIRE(true) { return mu_.try_lock(); }
  // For callers that know the mutex is held (no runtime check).
  void AssertHeld() const {}
  // For std::condition_variable_any and std::unique_lock.
  void lock() ACQUIRE() { mu_.lock(); }
  void unlock() RELEASE() { mu_.unlock(); }

 private:
  std::mutex mu_;
};

// Holds a Mutex for a scope.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() RELEASE() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

// A condition variable over a Mutex the caller holds (through MutexLock or Lock()).
class CondVar {
 public:
  // Waits until notified (spuriously too: call it in a loop over the condition).
  void Wait(Mutex* mu) REQUIRES(mu) { cv_.wait(*mu); }
  // Waits up to `ms`; false when the time ran out.
  bool WaitForMillis(Mutex* mu, int64_t ms) REQUIRES(mu) {
    return cv_.wait_for(*mu, std::chrono::milliseconds(ms)) == std::cv_status::no_timeout;
  }
  // Waits until `deadline` at the latest; false when it passed.
  bool WaitUntil(Mutex* mu, std::chrono::steady_clock::time_point deadline) REQUIRES(mu) {
    return cv_.wait_until(*mu, deadline) == std::cv_status::no_timeout;
  }
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable_any cv_;
};

}  // namespace dfrp::core
