#include "dfrp/storage/migrate.h"

#include <fmt/format.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <thread>

#include "dfrp/storage/format.h"
#include "dfrp/storage/store_internal.h"

namespace dfrp::storage {

using core::Err;
using core::Result;
using core::Status;

namespace {

constexpr size_t kCopyBlock = 8 << 20;
constexpr size_t kBlocksAhead = 3;

double SecondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Reads [0, size) of a file in blocks on its own thread, a few blocks ahead of the consumer.
class BlockReader {
 public:
  BlockReader(const core::RandomAccessFile& file, uint64_t size)
      : thread_([this, &file, size](std::stop_token stop) { Run(file, size, stop); }) {}
  ~BlockReader() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancelled_ = true;
    }
    cv_.notify_all();
  }
  // The next block; an empty string at the end. A failed read is returned once.
  Result<std::string> Next() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !ready_.empty() || done_ || !error_.ok(); });
    if (!ready_.empty()) {
      std::string block = std::move(ready_.front());
      ready_.pop_front();
      cv_.notify_all();
      return block;
    }
    if (!error_.ok()) return Err(error_);
    return std::string();
  }

 private:
  void Run(const core::RandomAccessFile& file, uint64_t size, std::stop_token stop) {
    for (uint64_t pos = 0; pos < size;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return ready_.size() < kBlocksAhead || cancelled_; });
        if (cancelled_ || stop.stop_requested()) return;
      }
      const size_t n = static_cast<size_t>(std::min<uint64_t>(kCopyBlock, size - pos));
      std::string block(n, '\0');
      Status s = file.ReadExact(pos, n, block.data());
      std::lock_guard<std::mutex> lock(mu_);
      if (!s.ok()) {
        error_ = s;
        cv_.notify_all();
        return;
      }
      ready_.push_back(std::move(block));
      cv_.notify_all();
      pos += n;
    }
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
    cv_.notify_all();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> ready_;
  Status error_;
  bool done_ = false;
  bool cancelled_ = false;
  std::jthread thread_;  // last: it starts once the members above exist
};

Status CopyOneFile(core::FileSystem* fs, const std::string& from, const std::string& to,
                   uint64_t size, const std::function<void(uint64_t)>& moved,
                   const std::function<bool()>& should_stop) {
  DFRP_ASSIGN_OR_RETURN(auto in, fs->OpenForRead(from));
  DFRP_ASSIGN_OR_RETURN(uint64_t have, in->Size());
  if (have < size)
    return Status::Corruption(fmt::format(
        "{} is {} bytes, shorter than the {} it had when the copy began", from, have, size));
  DFRP_ASSIGN_OR_RETURN(auto out, fs->OpenForWrite(to));
  DFRP_RETURN_IF_ERROR(out->Truncate(0));  // a copy a crash interrupted starts over
  DFRP_RETURN_IF_ERROR(out->Allocate(0, size));
  BlockReader reader(*in, size);
  for (uint64_t pos = 0; pos < size;) {
    DFRP_ASSIGN_OR_RETURN(std::string block, reader.Next());
    if (block.empty()) return Status::Internal(fmt::format("{} ended early", from));
    DFRP_RETURN_IF_ERROR(out->WriteAt(pos, block));
    out->StartWriteback(pos, block.size());
    pos += block.size();
    moved(block.size());
    if (should_stop && should_stop())
      return Status::Busy(fmt::format("the copy of {} was cancelled", from));
  }
  DFRP_RETURN_IF_ERROR(out->Sync());
  return out->Close();
}

}  // namespace

Status CopyVolumeFiles(core::FileSystem* fs, const MigrationSource& src,
                       const std::function<void(uint64_t, uint64_t)>& progress,
                       const std::function<bool()>& should_stop) {
  // Leftovers of an interrupted header write at the destination.
  if (auto names = fs->ListDir(src.to))
    for (const auto& name : *names)
      if (name.starts_with(std::string(kVolumeFileName) + ".tmp-") ||
          name == kAbandonedVolumeFileName)
        DFRP_RETURN_IF_ERROR(fs->RemoveFile(core::JoinPath(src.to, name)));
  uint64_t done = 0;
  std::set<std::string> dirs{src.to};
  for (const auto& [name, size] : src.files) {
    if (name == kVolumeFileName) continue;  // last, below
    const std::string to = core::JoinPath(src.to, name);
    const std::string dir = core::DirName(to);
    if (!dirs.count(dir)) {
      DFRP_RETURN_IF_ERROR(fs->CreateDirRecursive(dir));
      DFRP_RETURN_IF_ERROR(fs->SyncDir(core::DirName(dir)));
      dirs.insert(dir);
    }
    DFRP_RETURN_IF_ERROR(CopyOneFile(
        fs, core::JoinPath(src.from, name), to, size,
        [&](uint64_t n) {
          done += n;
          if (progress) progress(done, src.bytes);
        },
        should_stop));
  }
  for (const auto& dir : dirs) DFRP_RETURN_IF_ERROR(fs->SyncDir(dir));
  // The header last: until it is there, the copy is not a volume.
  DFRP_ASSIGN_OR_RETURN(std::string header,
                        core::ReadWholeFile(fs, core::JoinPath(src.from, kVolumeFileName)));
  DFRP_RETURN_IF_ERROR(core::WriteFileAtomic(fs, core::JoinPath(src.to, kVolumeFileName), header));
  done += header.size();
  if (progress) progress(done, src.bytes);
  return Status::OK();
}

namespace {

// Opens the store for writing, waiting for another writer to finish.
Result<std::unique_ptr<Store>> OpenWriter(const core::NodeConfig& config, const StoreOptions& opt,
                                          int wait_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  for (;;) {
    auto s = Store::Open(config, Store::Mode::kWrite, opt);
    if (s || !s.error().IsBusy() || std::chrono::steady_clock::now() >= deadline) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace

Result<MigrateReport> MigrateVolume(const core::NodeConfig& config, const StoreOptions& opt,
                                    uint32_t volume, const std::string& to,
                                    const MigrateOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  // One migration at a time per store, for its whole length: a second run of the same one
  // must not copy over a destination that the first has already switched to.
  auto migration_lock = opt.fs->TryLock(core::JoinPath(config.state_dir, "MIGRATE.lock"));
  if (!migration_lock)
    return Err(migration_lock.error().IsBusy()
                   ? Status::Busy("another migration of this store is running: wait for it to "
                                  "finish, then run the command again")
                   : migration_lock.error());
  MigrateReport report;
  report.volume = volume;
  report.to = to;
  MigrationSource src;
  {
    DFRP_ASSIGN_OR_RETURN(auto store, OpenWriter(config, opt, options.lock_wait_ms));
    DFRP_ASSIGN_OR_RETURN(src, store->BeginMigration(volume, to));
    report.from = src.from;
    if (src.from == src.to) {
      // An earlier run made the switch (or the volume already lives there): finish the rest.
      report.already_there = true;
      if (options.resume) {
        DFRP_RETURN_IF_ERROR(store->Resume(volume, "").status());
        report.resumed = true;
      }
      if (options.delete_source) {
        auto freed = store->RetireSource(volume);
        if (freed) {
          report.source_deleted = true;
          report.source_bytes_deleted = *freed;
        }
      }
      report.total_seconds = SecondsSince(start);
      return report;
    }
  }  // the writer lock is released for the copy
  report.files = src.files.size();
  report.bytes = src.bytes;
  const auto copy_start = std::chrono::steady_clock::now();
  auto paused = [&](const Status& s) {
    return s.WithContext(fmt::format(
        "the migration of volume {} to {} stopped; the volume stays at {}, paused (run the "
        "command again to finish it, or `dfrp-storage resume {}` to cancel)",
        volume, to, src.from, volume));
  };
  Status copied = CopyVolumeFiles(opt.fs, src, [&](uint64_t done, uint64_t total) {
    if (options.progress) options.progress("copy", done, total);
  });
  if (!copied.ok()) return Err(paused(copied));
  report.copy_seconds = SecondsSince(copy_start);
  const auto verify_start = std::chrono::steady_clock::now();
  {
    DFRP_ASSIGN_OR_RETURN(auto reader, Store::Open(config, Store::Mode::kRead, opt));
    auto check = reader->VerifyCopy(volume, to, [&](uint64_t done, uint64_t total) {
      if (options.progress) options.progress("verify", done, total);
    });
    if (!check)
      return Err(check.error().WithContext(fmt::format(
          "the copy at {} did not verify; volume {} stays at {}, paused (run the command again "
          "to copy it afresh, or `dfrp-storage resume {}` to cancel)",
          to, volume, src.from, volume)));
    report.shards_verified = check->shards;
  }
  report.verify_seconds = SecondsSince(verify_start);
  auto store = OpenWriter(config, opt, options.lock_wait_ms);
  if (!store) return Err(paused(store.error()));
  Status finished = (*store)->FinishMigration(src, options.resume);
  if (!finished.ok()) return Err(paused(finished));
  report.resumed = options.resume;
  if (options.delete_source) {
    DFRP_ASSIGN_OR_RETURN(report.source_bytes_deleted, (*store)->RetireSource(volume));
    report.source_deleted = true;
  }
  report.total_seconds = SecondsSince(start);
  return report;
}

}  // namespace dfrp::storage
