// SecretString: bytes that must not outlive their use (a passphrase, a secret key typed as
// hex). They live in sodium_malloc memory (guard pages, mlock where the OS allows) that is
// wiped whenever it is given up: on destruction, on Clear, when the string shrinks (the bytes
// cut off) and when it grows into a larger buffer (the old one). A move hands the buffer over
// without copying it. There is no implicit conversion to std::string: view() lends the bytes.
// Running out of memory throws std::bad_alloc, as it does for std::string.
//
// Thread-safety: a value; not safe to modify from two threads at once.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace dfrp::wallet {

class SecretString {
 public:
  SecretString() = default;
  // Copies `text`; the caller wipes its own copy (see TakeSecret).
  explicit SecretString(std::string_view text) { append(text); }
  SecretString(SecretString&& other) noexcept;
  SecretString& operator=(SecretString&& other) noexcept;
  SecretString(const SecretString&) = delete;
  SecretString& operator=(const SecretString&) = delete;
  ~SecretString() = default;

  std::string_view view() const { return {buf_.get(), size_}; }
  char* data() { return buf_.get(); }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  void append(std::string_view text);
  void push_back(char c) { append(std::string_view(&c, 1)); }
  // Grows with zero bytes, or shrinks and wipes the bytes cut off.
  void resize(size_t n);
  // Wipes the bytes and empties the string; the buffer is kept.
  void Clear();

  // Compares in time that depends on the lengths only.
  bool operator==(const SecretString& other) const;

 private:
  struct Free {
    void operator()(char* p) const;
  };
  void Reserve(size_t n);

  std::unique_ptr<char, Free> buf_;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

// Copies `*text` into a SecretString and wipes `*text` (for bytes that arrive in a
// std::string, such as an environment variable's value).
SecretString TakeSecret(std::string* text);

}  // namespace dfrp::wallet
