// BodyBuffer: a request body held in memory, allocated piece by piece as its bytes arrive,
// so that a client that declares a large body and sends little costs little (never more
// than what arrived plus one piece, and at most twice what arrived past the first piece).
//
// Thread-safety: none; one connection fills it, then the writer thread reads it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

namespace dfrp::node {

class BodyBuffer {
 public:
  // Pieces grow from kFirstPiece to kPiece: a client that sends a byte costs 16 KiB.
  static constexpr size_t kFirstPiece = 16 << 10;
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
    if (pieces_.empty() || received_ == allocated_) {
      const size_t want = pieces_.empty() ? kFirstPiece : std::min(kPiece, 2 * sizes_.back());
      const size_t n = static_cast<size_t>(std::min<uint64_t>(want, size_ - received_));
      pieces_.push_back(std::make_unique_for_overwrite<char[]>(n));
      starts_.push_back(allocated_);
      sizes_.push_back(n);
      allocated_ += n;
    }
    const size_t used = static_cast<size_t>(received_ - starts_.back());
    return {pieces_.back().get() + used, sizes_.back() - used};
  }
  // Records that n bytes were written into the last Space().
  void Commit(size_t n) { received_ += n; }

  // Copies up to n bytes at `offset` (of what was received) into dst; returns how many.
  size_t ReadAt(uint64_t offset, char* dst, size_t n) const {
    size_t done = 0;
    // The piece holding `offset`: the last one that starts at or before it.
    size_t i = static_cast<size_t>(std::upper_bound(starts_.begin(), starts_.end(), offset) -
                                   starts_.begin());
    while (done < n && offset < received_ && i > 0) {
      const size_t piece = i - 1;
      const size_t at = static_cast<size_t>(offset - starts_[piece]);
      const size_t k = static_cast<size_t>(
          std::min<uint64_t>({n - done, sizes_[piece] - at, received_ - offset}));
      std::memcpy(dst + done, pieces_[piece].get() + at, k);
      done += k;
      offset += k;
      if (at + k == sizes_[piece]) ++i;
    }
    return done;
  }

 private:
  uint64_t size_;
  uint64_t received_ = 0;
  uint64_t allocated_ = 0;
  std::vector<std::unique_ptr<char[]>> pieces_;
  std::vector<uint64_t> starts_;  // where each piece begins in the body
  std::vector<size_t> sizes_;
};

}  // namespace dfrp::node
