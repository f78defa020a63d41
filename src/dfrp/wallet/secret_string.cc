#include "dfrp/wallet/secret_string.h"

#include <sodium.h>

#include <cstring>
#include <new>
#include <utility>

namespace dfrp::wallet {

void SecretString::Free::operator()(char* p) const { sodium_free(p); }  // wipes, then frees

SecretString::SecretString(SecretString&& other) noexcept
    : buf_(std::move(other.buf_)),
      size_(std::exchange(other.size_, 0)),
      capacity_(std::exchange(other.capacity_, 0)) {}

SecretString& SecretString::operator=(SecretString&& other) noexcept {
  buf_ = std::move(other.buf_);
  size_ = std::exchange(other.size_, 0);
  capacity_ = std::exchange(other.capacity_, 0);
  return *this;
}

void SecretString::Reserve(size_t n) {
  if (n <= capacity_) return;
  size_t capacity = capacity_ < 64 ? 64 : capacity_;
  while (capacity < n) capacity *= 2;
  if (sodium_init() < 0) throw std::bad_alloc();
  std::unique_ptr<char, Free> bigger(static_cast<char*>(sodium_malloc(capacity)));
  if (bigger == nullptr) throw std::bad_alloc();
  if (size_ > 0) std::memcpy(bigger.get(), buf_.get(), size_);
  buf_ = std::move(bigger);  // the old buffer is wiped as it is freed
  capacity_ = capacity;
}

void SecretString::append(std::string_view text) {
  if (text.empty()) return;
  Reserve(size_ + text.size());
  std::memcpy(buf_.get() + size_, text.data(), text.size());
  size_ += text.size();
}

void SecretString::resize(size_t n) {
  if (n > size_) {
    Reserve(n);
    std::memset(buf_.get() + size_, 0, n - size_);
  } else if (n < size_) {
    sodium_memzero(buf_.get() + n, size_ - n);
  }
  size_ = n;
}

void SecretString::Clear() { resize(0); }

bool SecretString::operator==(const SecretString& other) const {
  return size_ == other.size_ &&
         (size_ == 0 || sodium_memcmp(buf_.get(), other.buf_.get(), size_) == 0);
}

SecretString TakeSecret(std::string* text) {
  SecretString secret(*text);
  sodium_memzero(text->data(), text->size());
  text->clear();
  return secret;
}

}  // namespace dfrp::wallet
