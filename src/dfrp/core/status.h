// Status and Result<T>: the one error vocabulary of dfrp.
//
// A Status is cheap when ok (no allocation). Every error a user can cause carries a message
// that names the thing and the way out. Codes map one-to-one onto the CLI exit codes
// (see ExitCode), so a library error reaches the shell unchanged.
//
// Thread-safety: values; safe to copy between threads.
#pragma once

#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace dfrp::core {

class [[nodiscard]] Status {
 public:
  enum class Code : unsigned char {
    kOk = 0,
    kInvalidArgument,  // usage or config error: the caller can fix the input
    kCorruption,       // integrity failure: bytes on disk or on the wire do not verify
    kNotFound,         // the named thing does not exist (or its volume is missing)
    kNoSpace,          // out of capacity: quota or file system full
    kBusy,             // another writer holds the store, or the volume is paused
    kIOError,          // the operating system refused an operation
    kInternal,         // a bug or an unexpected state
    kRefused,          // the market refused: a price over its cap, a fee over max_fee
    kUnavailable,      // a peer could not be reached or did not answer in time: retryable
  };

  Status() = default;
  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string msg) {
    return {Code::kInvalidArgument, std::move(msg)};
  }
  static Status Corruption(std::string msg) { return {Code::kCorruption, std::move(msg)}; }
  static Status NotFound(std::string msg) { return {Code::kNotFound, std::move(msg)}; }
  static Status NoSpace(std::string msg) { return {Code::kNoSpace, std::move(msg)}; }
  static Status Busy(std::string msg) { return {Code::kBusy, std::move(msg)}; }
  static Status IOError(std::string msg) { return {Code::kIOError, std::move(msg)}; }
  static Status Internal(std::string msg) { return {Code::kInternal, std::move(msg)}; }
  static Status Refused(std::string msg) { return {Code::kRefused, std::move(msg)}; }
  static Status Unavailable(std::string msg) { return {Code::kUnavailable, std::move(msg)}; }
  // An IOError built from errno, naming the operation and the path.
  static Status FromErrno(int err, std::string_view what, std::string_view path);

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsCorruption() const { return code_ == Code::kCorruption; }
  bool IsNoSpace() const { return code_ == Code::kNoSpace; }
  bool IsBusy() const { return code_ == Code::kBusy; }
  bool IsRefused() const { return code_ == Code::kRefused; }
  bool IsUnavailable() const { return code_ == Code::kUnavailable; }
  // Worth trying again, later or elsewhere: a peer unreachable or slow (Unavailable), or one
  // busy with a writer or a pause (Busy). Nothing else changes by waiting.
  bool IsRetryable() const { return code_ == Code::kUnavailable || code_ == Code::kBusy; }
  const std::string& message() const;
  // "Corruption: <message>" style, for logs.
  std::string ToString() const;
  // Returns a copy whose message is prefixed with `context: `.
  Status WithContext(std::string_view context) const;

 private:
  Status(Code code, std::string msg)
      : code_(code), msg_(std::make_shared<const std::string>(std::move(msg))) {}
  Code code_ = Code::kOk;
  std::shared_ptr<const std::string> msg_;  // null when ok
};

const char* CodeName(Status::Code code);

// Process exit codes shared by every dfrp CLI (documented in the README).
enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,
  kExitUsage = 2,
  kExitIntegrity = 3,
  kExitNotFound = 4,
  kExitCapacity = 5,
  kExitBusy = 6,
  kExitRefused = 7,
};
int ExitCodeFor(const Status& s);

// Carries a failed Status into a Result<T> of any T: `return Err(Status::NotFound(...));`.
struct ErrorValue {
  Status status;
  operator Status() const& { return status; }  // so DFRP_RETURN_IF_ERROR works in Status functions
  operator Status() && { return std::move(status); }
};
inline ErrorValue Err(Status s) { return ErrorValue{std::move(s)}; }

// Result<T>: a T, or the Status saying why there is none. The shape of std::expected
// (has_value, *, ->, error), written out because libstdc++ 12 hides <expected> from clang,
// which builds the fuzz targets.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(const T& v) : ok_(true) { new (&value_) T(v); }
  Result(T&& v) : ok_(true) { new (&value_) T(std::move(v)); }
  template <typename U>
  requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::decay_t<U>, T> &&
           !std::is_same_v<std::decay_t<U>, ErrorValue> && !std::is_same_v<std::decay_t<U>, Result>)
      Result(U&& v)
      : ok_(true) {
    new (&value_) T(std::forward<U>(v));
  }
  Result(ErrorValue e) : ok_(false), status_(std::move(e.status)) {}
  Result(const Result& o) : ok_(o.ok_), status_(o.status_) {
    if (ok_) new (&value_) T(o.value_);
  }
  Result(Result&& o) noexcept(std::is_nothrow_move_constructible_v<T>)
      : ok_(o.ok_), status_(std::move(o.status_)) {
    if (ok_) new (&value_) T(std::move(o.value_));
  }
  Result& operator=(Result o) {
    Destroy();
    ok_ = o.ok_;
    status_ = std::move(o.status_);
    if (ok_) new (&value_) T(std::move(o.value_));
    return *this;
  }
  ~Result() { Destroy(); }

  bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  T& operator*() & { return value_; }
  const T& operator*() const& { return value_; }
  T&& operator*() && { return std::move(value_); }
  T* operator->() { return &value_; }
  const T* operator->() const { return &value_; }
  T& value() & { return value_; }
  const T& value() const& { return value_; }
  // The failure; OK when there is a value.
  const Status& error() const& { return status_; }
  Status& error() & { return status_; }
  Status status() const { return ok_ ? Status::OK() : status_; }

 private:
  void Destroy() {
    if (ok_) value_.~T();
    ok_ = false;
  }
  bool ok_;
  Status status_;
  union {
    T value_;
  };
};

}  // namespace dfrp::core

#define DFRP_CONCAT_INNER(a, b) a##b
#define DFRP_CONCAT(a, b) DFRP_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function when `expr` (a Status) is not ok.
#define DFRP_RETURN_IF_ERROR(expr)                                             \
  do {                                                                         \
    ::dfrp::core::Status dfrp_status_ = (expr);                                \
    if (!dfrp_status_.ok()) return ::dfrp::core::Err(std::move(dfrp_status_)); \
  } while (0)

// `lhs = value of expr`, or return its error from the enclosing function.
#define DFRP_ASSIGN_OR_RETURN(lhs, expr) \
  DFRP_ASSIGN_OR_RETURN_IMPL(DFRP_CONCAT(dfrp_result_, __LINE__), lhs, expr)
#define DFRP_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr)                        \
  auto tmp = (expr);                                                      \
  if (!tmp.has_value()) return ::dfrp::core::Err(std::move(tmp.error())); \
  lhs = std::move(*tmp)
