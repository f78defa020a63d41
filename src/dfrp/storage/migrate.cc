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

Status OpeningWriterAccess::Run(const std::function<Status(Store&)>& f) {
  // Another writer (a write batch of another process) usually ends within moments.
  const int64_t deadline = opt_.clock->NowMonotonicNanos() + int64_t{wait_ms_} * 1'000'000;
  for (;;) {
    auto store = Store::Open(config_, Store::Mode::kWrite, opt_);
    if (store) return f(**store);
    if (!store.error().IsBusy() || opt_.clock->NowMonotonicNanos() >= deadline)
      return store.error();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

Result<std::unique_ptr<core::FileLock>> LockMigration(core::FileSystem* fs,
                                                      const std::string& state_dir) {
  auto lock = fs->TryLock(core::JoinPath(state_dir, "MIGRATE.lock"));
  if (!lock && lock.error().IsBusy())
    return Err(Status::Busy(
        "another migration of this store is running: wait for it to finish, then ask again"));
  return lock;
}

namespace {

// Seconds on the store's clock since `start_ns`.
double SecondsSince(const StoreOptions& opt, int64_t start_ns) {
  return static_cast<double>(opt.clock->NowMonotonicNanos() - start_ns) / 1e9;
}

// The steps of one migration, sharing its arguments.
class Migration {
 public:
  Migration(WriterAccess& writer, const core::NodeConfig& config, const StoreOptions& opt,
            uint32_t volume, const std::string& to, const MigrateOptions& options,
            MigrateReport* report)
      : writer_(writer),
        config_(config),
        opt_(opt),
        volume_(volume),
        to_(to),
        o_(options),
        r_(*report) {
    r_.volume = volume;
    r_.to = to;
  }

  Status Run() {
    const int64_t start = opt_.clock->NowMonotonicNanos();
    Status s = Begin();
    if (s.ok() && !r_.already_there) s = CopyAndVerify();
    if (s.ok() && !r_.already_there) s = Switch();
    if (s.ok()) s = AfterSwitch();
    r_.total_seconds = SecondsSince(opt_, start);
    return s;
  }

 private:
  bool Stopping() const { return o_.should_stop && o_.should_stop(); }
  void Progress(std::string_view phase, uint64_t done, uint64_t total) const {
    if (o_.progress) o_.progress(phase, done, total);
  }

  Status Begin() {
    return writer_.Run([&](Store& store) -> Status {
      DFRP_ASSIGN_OR_RETURN(src_, store.BeginMigration(volume_, to_));
      r_.from = src_.from;
      if (src_.from != src_.to) return Status::OK();
      // An earlier run made the switch (or the volume already lives there): finish the rest.
      r_.already_there = true;
      if (o_.resume) {
        DFRP_RETURN_IF_ERROR(store.Resume(volume_, "").status());
        r_.resumed = true;
      }
      return Status::OK();
    });
  }

  // The copy was stopped or failed: a cancel puts the volume back at its old path; anything
  // else leaves it paused for a later run.
  Status Stopped(const Status& s) {
    if (!Stopping())
      return s.WithContext(fmt::format(
          "the migration of volume {} to {} stopped; the volume stays at {}, paused ({})", volume_,
          to_, src_.from, o_.retry_hint));
    Status undo = writer_.Run([&](Store& store) {
      Status u = store.Resume(volume_, "").status();
      if (u.ok() && !o_.resume) u = store.Pause(volume_, "a cancelled migration");
      return u;
    });
    return Status::Busy(fmt::format(
        "the migration of volume {} was cancelled; {}", volume_,
        undo.ok() ? "the volume is back at its old path" : "undoing it failed: " + undo.message()));
  }

  Status CopyAndVerify() {
    r_.files = src_.files.size();
    r_.bytes = src_.bytes;
    const int64_t copy_start = opt_.clock->NowMonotonicNanos();
    Status copied = CopyVolumeFiles(
        opt_.fs, src_, [&](uint64_t d, uint64_t t) { Progress("copy", d, t); },
        [&] { return Stopping(); });
    if (!copied.ok()) return Stopped(copied);
    r_.copy_seconds = SecondsSince(opt_, copy_start);
    const int64_t verify_start = opt_.clock->NowMonotonicNanos();
    Progress("verify", 0, src_.bytes);
    StoreOptions ropt = opt_;
    ropt.should_stop = [&] { return Stopping() || (opt_.should_stop && opt_.should_stop()); };
    auto reader = Store::Open(config_, Store::Mode::kRead, ropt);
    if (!reader) return Stopped(reader.error());
    auto check = (*reader)->VerifyCopy(volume_, to_,
                                       [&](uint64_t d, uint64_t t) { Progress("verify", d, t); });
    if (!check && (Stopping() || !check.error().IsCorruption())) return Stopped(check.error());
    if (!check)
      return check.error().WithContext(
          fmt::format("the copy at {} did not verify; volume {} stays at {}, paused ({})", to_,
                      volume_, src_.from, o_.retry_hint));
    r_.shards_verified = check->shards;
    r_.verify_seconds = SecondsSince(opt_, verify_start);
    if (Stopping()) return Stopped(Status::Busy("cancelled before the switch"));
    return Status::OK();
  }

  Status Switch() {
    Progress("switch", src_.bytes, src_.bytes);
    Status s = writer_.Run([&](Store& store) { return store.FinishMigration(src_, o_.resume); });
    if (!s.ok()) return Stopped(s);
    r_.resumed = o_.resume;
    return Status::OK();
  }

  // New reads go to the new folder before the old one can be deleted.
  Status AfterSwitch() {
    if (o_.after_switch) DFRP_RETURN_IF_ERROR(o_.after_switch());
    if (!o_.delete_source) return Status::OK();
    Status s = writer_.Run([&](Store& store) -> Status {
      DFRP_ASSIGN_OR_RETURN(r_.source_bytes_deleted, store.RetireSource(volume_));
      r_.source_deleted = true;
      return Status::OK();
    });
    if (s.ok()) return s;
    return s.WithContext(
        fmt::format("volume {} now lives at {} (the migration finished), but deleting the old "
                    "copy at {} failed; delete it with retire-source {}",
                    volume_, r_.to, r_.from, volume_));
  }

  WriterAccess& writer_;
  const core::NodeConfig& config_;
  const StoreOptions& opt_;
  const uint32_t volume_;
  const std::string to_;
  const MigrateOptions& o_;
  MigrateReport& r_;
  MigrationSource src_;
};

}  // namespace

Status RunMigration(WriterAccess& writer, const core::NodeConfig& config, const StoreOptions& opt,
                    uint32_t volume, const std::string& to, const MigrateOptions& options,
                    MigrateReport* report) {
  return Migration(writer, config, opt, volume, to, options, report).Run();
}

Result<MigrateReport> MigrateVolume(const core::NodeConfig& config, const StoreOptions& opt,
                                    uint32_t volume, const std::string& to,
                                    const MigrateOptions& options) {
  DFRP_ASSIGN_OR_RETURN(auto lock, LockMigration(opt.fs, config.state_dir));
  OpeningWriterAccess writer(config, opt, options.lock_wait_ms);
  MigrateReport report;
  DFRP_RETURN_IF_ERROR(RunMigration(writer, config, opt, volume, to, options, &report));
  return report;
}

}  // namespace dfrp::storage
