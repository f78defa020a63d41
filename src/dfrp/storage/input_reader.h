// Reading the inputs of a write batch: exact reads that notice a file changing under us, and
// a prefetcher that reads many small inputs ahead on worker threads, in batch order.
//
// Thread-safety: InputPrefetcher is driven by one consumer thread; its workers are internal.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dfrp/core/file_system.h"
#include "dfrp/core/status.h"

namespace dfrp::storage {

// InvalidArgument: `name` shrank or grew while it was read.
core::Status ChangedWhileReading(const std::string& name, uint64_t expected, uint64_t got);
// Reads exactly n bytes (done already read of expected), or reports the input as changed.
core::Status ReadInputExact(core::SequentialFile& in, const std::string& name, uint64_t expected,
                            uint64_t done, size_t n, char* dst);
// Reports the input as changed if it has more than `expected` bytes.
core::Status CheckAtEnd(core::SequentialFile& in, const std::string& name, uint64_t expected);

class InputPrefetcher {
 public:
  struct Item {
    core::Status status;
    std::string payload;
  };
  struct Input {
    std::string path;                        // a file to open, or
    core::SequentialFile* stream = nullptr;  // an open stream (not owned)
    std::string name;
    uint64_t size = 0;
  };
  // Starts `threads` workers over the inputs, cut into groups of consecutive inputs.
  InputPrefetcher(core::FileSystem* fs, std::vector<Input> inputs, int threads = 2);
  ~InputPrefetcher();
  InputPrefetcher(const InputPrefetcher&) = delete;
  InputPrefetcher& operator=(const InputPrefetcher&) = delete;

  // The next input's bytes (or why they could not be read), in the order given.
  Item Next();

 private:
  static constexpr size_t kGroupItems = 256;
  static constexpr uint64_t kGroupBytes = 4 << 20;
  static constexpr size_t kWindowGroups = 8;  // groups read ahead of the consumer

  Item Load(const Input& input);
  void Work(std::stop_token st, size_t first_group, size_t step);

  core::FileSystem* fs_;
  std::vector<Input> inputs_;
  std::vector<size_t> group_starts_;  // index of each group's first input, then inputs_.size()
  std::mutex mu_;
  std::condition_variable_any cv_;
  std::map<size_t, std::vector<Item>> done_;  // finished groups; guarded by mu_
  size_t next_group_ = 0;                     // the consumer's; guarded by mu_
  std::vector<Item> taken_;                   // the consumer's current group
  size_t taken_pos_ = 0;
  std::vector<std::jthread> workers_;  // last: stopped and joined before the rest goes
};

}  // namespace dfrp::storage
