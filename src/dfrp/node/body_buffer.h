// BodyBuffer: a request body held in memory, allocated piece by piece as its bytes arrive,
// so that a client that declares a large body and sends little costs little (never more
// than what arrived plus one piece).
//
// Thread-safety: none; one connection fills it, then the writer thread reads it.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

namespace dfrp::node {

class BodyBuffer {
 public:
  static constexpr size_t kPiece = 256 << 10;

  explicit BodyBuffer(uint64_t size) : size_(size) {}

  uint64_t size() const { return size_; }
  uint64_t received() const { return received_; }
  bool complete() const { return received_ == size_; }
  // Memory allocated so far.
  uint64_t allocated() const { return allocated_; }

  // Where the next bytes go: the free part of the last piece, a new piece allocated when it
  // is full. Empty once the body is complete.
  std::span<char> Space() {
    if (complete()) return {};
    const uint64_t used_in_last = received_ - (allocated_ - last_size_);
    if (pieces_.empty() || used_in_last == last_size_) {
      last_size_ = static_cast<size_t>(std::min<uint64_t>(kPiece, size_ - received_));
      pieces_.push_back(std::make_unique_for_overwrite<char[]>(last_size_));
      allocated_ += last_size_;
      return {pieces_.back().get(), last_size_};
    }
    return {pieces_.back().get() + used_in_last, static_cast<size_t>(last_size_ - used_in_last)};
  }
  // Records that n bytes were written into the last Space().
  void Commit(size_t n) { received_ += n; }

  // Copies up to n bytes at `offset` (of what was received) into dst; returns how many.
  size_t ReadAt(uint64_t offset, char* dst, size_t n) const {
    size_t done = 0;
    while (done < n && offset < received_) {
      const size_t piece = static_cast<size_t>(offset / kPiece);
      const size_t at = static_cast<size_t>(offset % kPiece);
      const size_t k =
          static_cast<size_t>(std::min<uint64_t>({n - done, kPiece - at, received_ - offset}));
      std::memcpy(dst + done, pieces_[piece].get() + at, k);
      done += k;
      offset += k;
    }
    return done;
  }

 private:
  uint64_t size_;
  uint64_t received_ = 0;
  uint64_t allocated_ = 0;
  size_t last_size_ = 0;
  std::vector<std::unique_ptr<char[]>> pieces_;
};

}  // namespace dfrp::node
