#include "dfrp/storage/input_reader.h"

#include <fmt/format.h>

namespace dfrp::storage {

using core::Status;

Status ChangedWhileReading(const std::string& name, uint64_t expected, uint64_t got) {
  return Status::InvalidArgument(fmt::format(
      "{} {} while it was read ({} bytes expected, {} found): store it again once nothing "
      "is writing to it; nothing was written",
      name, got < expected ? "shrank" : "grew", expected, got));
}

Status ReadInputExact(core::SequentialFile& in, const std::string& name, uint64_t expected,
                      uint64_t done, size_t n, char* dst) {
  DFRP_ASSIGN_OR_RETURN(size_t got, in.Read(n, dst));
  if (got != n) return ChangedWhileReading(name, expected, done + got);
  return Status::OK();
}

Status CheckAtEnd(core::SequentialFile& in, const std::string& name, uint64_t expected) {
  char extra;
  DFRP_ASSIGN_OR_RETURN(size_t got, in.Read(1, &extra));
  if (got != 0) return ChangedWhileReading(name, expected, expected + got);
  return Status::OK();
}

InputPrefetcher::InputPrefetcher(core::FileSystem* fs, std::vector<Input> inputs, int threads)
    : fs_(fs), inputs_(std::move(inputs)) {
  uint64_t bytes = 0;
  for (size_t i = 0; i < inputs_.size(); ++i) {
    if (group_starts_.empty() || i - group_starts_.back() >= kGroupItems || bytes >= kGroupBytes) {
      group_starts_.push_back(i);
      bytes = 0;
    }
    bytes += inputs_[i].size;
  }
  const size_t groups = group_starts_.size();
  group_starts_.push_back(inputs_.size());
  const size_t n = std::min<size_t>(static_cast<size_t>(std::max(threads, 1)), groups);
  for (size_t w = 0; w < n; ++w)
    workers_.emplace_back([this, w, n](std::stop_token st) { Work(st, w, n); });
}

InputPrefetcher::~InputPrefetcher() {
  std::lock_guard<std::mutex> lock(mu_);  // so no worker misses the wake-up
  for (auto& w : workers_) w.request_stop();
  cv_.notify_all();
}

InputPrefetcher::Item InputPrefetcher::Load(const Input& input) {
  Item item;
  if (input.stream == nullptr) {
    // One byte more than expected tells a file that grew from one that did not.
    item.status = fs_->ReadFileUpTo(input.path, input.size + 1, &item.payload);
    if (item.status.ok() && item.payload.size() != input.size)
      item.status = ChangedWhileReading(input.name, input.size, item.payload.size());
    return item;
  }
  item.payload.resize(static_cast<size_t>(input.size));
  item.status = ReadInputExact(*input.stream, input.name, input.size, 0, item.payload.size(),
                               item.payload.data());
  if (item.status.ok()) item.status = CheckAtEnd(*input.stream, input.name, input.size);
  return item;
}

void InputPrefetcher::Work(std::stop_token st, size_t first_group, size_t step) {
  const size_t groups = group_starts_.size() - 1;
  for (size_t g = first_group; g < groups; g += step) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (!cv_.wait(lock, st, [&] { return g < next_group_ + kWindowGroups; })) return;
    }
    std::vector<Item> items;
    items.reserve(group_starts_[g + 1] - group_starts_[g]);
    for (size_t i = group_starts_[g]; i < group_starts_[g + 1] && !st.stop_requested(); ++i)
      items.push_back(Load(inputs_[i]));
    std::lock_guard<std::mutex> lock(mu_);
    done_[g] = std::move(items);
    cv_.notify_all();
  }
}

InputPrefetcher::Item InputPrefetcher::Next() {
  if (taken_pos_ == taken_.size()) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return done_.count(next_group_) > 0; });
    taken_ = std::move(done_[next_group_]);
    done_.erase(next_group_);
    ++next_group_;
    taken_pos_ = 0;
    cv_.notify_all();
  }
  return std::move(taken_[taken_pos_++]);
}

}  // namespace dfrp::storage
