// FaultInjectingFileSystem: a FileSystem for tests that can simulate a power cut.
//
// It forwards every call to a real file system and remembers, per file written through it,
// how much of it is durable (the size at its last Sync) and whether its folder entry is
// durable (a SyncDir of its parent after it was created). CrashAtSync(n) makes the n-th
// Sync or SyncDir from now fail, and every call after it fail too, like a machine that lost
// power. DropUnsyncedData() then puts the files back the way a power cut would leave them:
// each file cut to its durable size, and files whose folder entry was never synced removed.
//
// It can also fail one operation without a crash (FailNth: the n-th write, sync, allocate or
// create fails with the Status given, such as an EIO-like IOError or an ENOSPC-like NoSpace,
// and everything goes on), and tear a write (TearNthWrite: the n-th write lands only its
// first half, then the power goes).
//
// A rename is durable only once its folder is synced: DropUnsyncedData puts back the old
// target (its content read before the rename; targets up to 1 MiB, which is all dfrp renames)
// and removes the renamed file. Limits: it models writes that only append past the durable
// size (what dfrp's segments and copies do).
//
// Thread-safety: safe to share between threads.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "dfrp/core/file_system.h"

namespace dfrp::core {

class FaultInjectingFileSystem final : public FileSystem {
 public:
  explicit FaultInjectingFileSystem(FileSystem* base) : base_(base) {}

  // The n-th Sync/SyncDir from now (1 = the next) fails and the "machine" is down after it.
  void CrashAtSync(int n);
  enum class Op { kWrite, kSync, kAllocate, kCreate };
  // The n-th operation of kind `op` from now (1 = the next) fails once with `error`; the file
  // system stays up. For kSync the data written so far is left as it is (not made durable).
  void FailNth(Op op, int n, Status error);
  // The n-th WriteAt from now writes only the first half of its bytes, then fails, and the
  // machine is down (as with CrashAtSync).
  void TearNthWrite(int n);
  // Operations of each kind seen so far (for tests that sweep every point).
  int ops_seen(Op op) const;
  bool crashed() const;
  int syncs_seen() const;
  // Applies the power cut to the files on disk and brings the file system back up. With
  // tear_seed == 0 each file is cut to its durable size; otherwise the unsynced part keeps
  // its length but each 4 KiB block of it survives or turns to zeros at random (seeded), as
  // a disk that wrote some of its cache in any order before it lost power.
  Status DropUnsyncedData(uint64_t tear_seed = 0);

  Result<std::unique_ptr<RandomAccessFile>> OpenForRead(const std::string& path) override;
  Result<std::unique_ptr<SequentialFile>> OpenSequential(const std::string& path) override;
  Result<std::unique_ptr<WritableFile>> OpenForWrite(const std::string& path,
                                                     bool private_mode) override;
  Result<std::unique_ptr<WritableFile>> CreateNew(const std::string& path,
                                                  bool private_mode) override;
  bool Exists(const std::string& path) override { return base_->Exists(path); }
  bool IsDirectory(const std::string& path) override { return base_->IsDirectory(path); }
  Result<uint64_t> FileSize(const std::string& path) override { return base_->FileSize(path); }
  Result<std::vector<std::string>> ListDir(const std::string& path) override {
    return base_->ListDir(path);
  }
  Status CreateDir(const std::string& path) override;
  Status CreateDirRecursive(const std::string& path) override;
  Status RemoveFile(const std::string& path) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status RenameNoReplace(const std::string& from, const std::string& to) override;
  Status SyncDir(const std::string& path) override;
  Result<std::unique_ptr<FileLock>> TryLock(const std::string& path) override {
    return base_->TryLock(path);
  }
  Result<FsSpace> Space(const std::string& path) override { return base_->Space(path); }
  Result<std::string> RealPath(const std::string& path) override { return base_->RealPath(path); }
  Result<std::pair<uint64_t, uint64_t>> FileIdentity(const std::string& path) override {
    return base_->FileIdentity(path);
  }
  bool IsWritable(const std::string& path) override { return base_->IsWritable(path); }
  Result<uint32_t> PermissionBits(const std::string& path) override {
    return base_->PermissionBits(path);
  }
  Status ReadFileUpTo(const std::string& path, size_t limit, std::string* out) override;
  Result<FileType> TypeOf(const std::string& path, bool follow_links) override {
    return base_->TypeOf(path, follow_links);
  }
  // The stream's writes count as kWrite operations (FailNth, TearNthWrite).
  Result<std::unique_ptr<OutputStream>> OpenOutputStream(const std::string& path) override;
  Result<bool> IsLocked(const std::string& path) override { return base_->IsLocked(path); }
  void ReadFiles(std::span<FileRead> files) override;

  // Called by the files it hands out.
  Status CheckUp(const std::string& what) const;
  Status OnSync(const std::string& path, uint64_t size);
  void OnTruncate(const std::string& path, uint64_t size);
  // Counts an operation; returns the planned failure when this is the one. For a write,
  // *tear is set when the write must land only half of its bytes.
  Status OnOp(Op op, bool* tear = nullptr);

 private:
  struct Tracked {
    uint64_t durable_size = 0;
    bool entry_durable = true;  // false for a file created since its folder was last synced
  };
  struct PendingRename {
    std::string from, to;
    bool had_target = false;
    std::string old_target;
  };
  Status CountSync();
  // Remembers a rename until its folder is synced; moves the tracking of `from` to `to`.
  void TrackRename(PendingRename pending);

  struct PlannedFailure {
    int countdown = 0;
    Status error;
  };

  FileSystem* base_;
  mutable std::mutex mu_;
  std::map<std::string, Tracked> files_;
  std::vector<PendingRename> renames_;  // not yet made durable by a SyncDir
  std::map<Op, PlannedFailure> failures_;
  std::map<Op, int> ops_seen_;
  int tear_countdown_ = 0;
  int crash_countdown_ = 0;  // 0: no crash planned
  int syncs_seen_ = 0;
  bool down_ = false;
};

}  // namespace dfrp::core
