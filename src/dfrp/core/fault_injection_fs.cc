#include "dfrp/core/fault_injection_fs.h"

#include <fmt/format.h>

#include <algorithm>
#include <functional>

namespace dfrp::core {

namespace {

class FaultyWritableFile final : public WritableFile {
 public:
  FaultyWritableFile(FaultInjectingFileSystem* fs, std::unique_ptr<WritableFile> base)
      : fs_(fs), base_(std::move(base)) {}
  Status WriteAt(uint64_t offset, std::string_view data) override {
    DFRP_RETURN_IF_ERROR(fs_->CheckUp("write"));
    bool tear = false;
    Status planned = fs_->OnOp(FaultInjectingFileSystem::Op::kWrite, &tear);
    if (tear) {
      (void)base_->WriteAt(offset, data.substr(0, data.size() / 2));
      return planned;
    }
    DFRP_RETURN_IF_ERROR(planned);
    return base_->WriteAt(offset, data);
  }
  Status Sync() override {
    DFRP_RETURN_IF_ERROR(fs_->CheckUp("sync"));
    DFRP_RETURN_IF_ERROR(fs_->OnOp(FaultInjectingFileSystem::Op::kSync));
    DFRP_ASSIGN_OR_RETURN(uint64_t size, base_->Size());
    DFRP_RETURN_IF_ERROR(fs_->OnSync(path(), size));
    return base_->Sync();
  }
  Status Truncate(uint64_t size) override {
    DFRP_RETURN_IF_ERROR(fs_->CheckUp("truncate"));
    fs_->OnTruncate(path(), size);
    return base_->Truncate(size);
  }
  Status Allocate(uint64_t offset, uint64_t len) override {
    DFRP_RETURN_IF_ERROR(fs_->CheckUp("allocate"));
    DFRP_RETURN_IF_ERROR(fs_->OnOp(FaultInjectingFileSystem::Op::kAllocate));
    return base_->Allocate(offset, len);
  }
  void StartWriteback(uint64_t offset, uint64_t len) override {}
  Result<uint64_t> Size() const override { return base_->Size(); }
  Status Close() override { return base_->Close(); }
  const std::string& path() const override { return base_->path(); }

 private:
  FaultInjectingFileSystem* fs_;
  std::unique_ptr<WritableFile> base_;
};

class FaultyOutputStream final : public OutputStream {
 public:
  FaultyOutputStream(FaultInjectingFileSystem* fs, std::unique_ptr<OutputStream> base)
      : fs_(fs), base_(std::move(base)) {}
  Status Write(std::string_view data) override {
    DFRP_RETURN_IF_ERROR(fs_->CheckUp("write"));
    bool tear = false;
    Status planned = fs_->OnOp(FaultInjectingFileSystem::Op::kWrite, &tear);
    if (tear) {
      (void)base_->Write(data.substr(0, data.size() / 2));
      return planned;
    }
    DFRP_RETURN_IF_ERROR(planned);
    return base_->Write(data);
  }
  Status Close() override { return base_->Close(); }
  const std::string& path() const override { return base_->path(); }

 private:
  FaultInjectingFileSystem* fs_;
  std::unique_ptr<OutputStream> base_;
};

}  // namespace

void FaultInjectingFileSystem::CrashAtSync(int n) {
  std::lock_guard<std::mutex> lock(mu_);
  crash_countdown_ = n;
}

void FaultInjectingFileSystem::FailNth(Op op, int n, Status error) {
  std::lock_guard<std::mutex> lock(mu_);
  failures_[op] = PlannedFailure{n, std::move(error)};
}

void FaultInjectingFileSystem::TearNthWrite(int n) {
  std::lock_guard<std::mutex> lock(mu_);
  tear_countdown_ = n;
}

int FaultInjectingFileSystem::ops_seen(Op op) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = ops_seen_.find(op);
  return it == ops_seen_.end() ? 0 : it->second;
}

Status FaultInjectingFileSystem::OnOp(Op op, bool* tear) {
  std::lock_guard<std::mutex> lock(mu_);
  ++ops_seen_[op];
  if (op == Op::kWrite && tear_countdown_ > 0 && --tear_countdown_ == 0) {
    *tear = true;
    down_ = true;
    return Status::IOError("simulated power cut in the middle of a write");
  }
  auto it = failures_.find(op);
  if (it != failures_.end() && it->second.countdown > 0 && --it->second.countdown == 0)
    return it->second.error;
  return Status::OK();
}

bool FaultInjectingFileSystem::crashed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return down_;
}

int FaultInjectingFileSystem::syncs_seen() const {
  std::lock_guard<std::mutex> lock(mu_);
  return syncs_seen_;
}

Status FaultInjectingFileSystem::CheckUp(const std::string& what) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (down_) return Status::IOError(fmt::format("{} refused: simulated power cut", what));
  return Status::OK();
}

Status FaultInjectingFileSystem::CountSync() {
  std::lock_guard<std::mutex> lock(mu_);
  if (down_) return Status::IOError("sync refused: simulated power cut");
  ++syncs_seen_;
  if (crash_countdown_ > 0 && --crash_countdown_ == 0) {
    down_ = true;
    return Status::IOError("simulated power cut during sync");
  }
  return Status::OK();
}

Status FaultInjectingFileSystem::OnSync(const std::string& path, uint64_t size) {
  DFRP_RETURN_IF_ERROR(CountSync());
  std::lock_guard<std::mutex> lock(mu_);
  files_[path].durable_size = size;
  return Status::OK();
}

void FaultInjectingFileSystem::OnTruncate(const std::string& path, uint64_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(path);
  if (it != files_.end() && it->second.durable_size > size) it->second.durable_size = size;
}

namespace {
// Zeroes a random half of the 4 KiB blocks of [from, to) in the file.
Status TearBlocks(WritableFile& f, uint64_t from, uint64_t to, uint64_t* seed) {
  const std::string zeros(4096, '\0');
  for (uint64_t block = from / 4096 * 4096; block < to; block += 4096) {
    *seed = *seed * 6364136223846793005ull + 1442695040888963407ull;  // an LCG step
    if ((*seed >> 33) & 1) continue;                                  // this block made it
    const uint64_t begin = std::max(block, from), end = std::min(block + 4096, to);
    DFRP_RETURN_IF_ERROR(f.WriteAt(begin, std::string_view(zeros).substr(0, end - begin)));
  }
  return Status::OK();
}
}  // namespace

Status FaultInjectingFileSystem::DropUnsyncedData(uint64_t tear_seed) {
  std::map<std::string, Tracked> files;
  std::vector<PendingRename> renames;
  {
    std::lock_guard<std::mutex> lock(mu_);
    files.swap(files_);
    renames.swap(renames_);
    down_ = false;
    crash_countdown_ = 0;
    tear_countdown_ = 0;
    failures_.clear();
  }
  // Renames whose folder was never synced did not happen.
  for (auto it = renames.rbegin(); it != renames.rend(); ++it) {
    files.erase(it->to);
    files.erase(it->from);
    if (it->had_target) {
      DFRP_ASSIGN_OR_RETURN(auto f, base_->OpenForWrite(it->to, false));
      DFRP_RETURN_IF_ERROR(f->Truncate(0));
      DFRP_RETURN_IF_ERROR(f->WriteAt(0, it->old_target));
      DFRP_RETURN_IF_ERROR(f->Sync());
    } else if (base_->Exists(it->to)) {
      DFRP_RETURN_IF_ERROR(base_->RemoveFile(it->to));
    }
  }
  for (const auto& [path, t] : files) {
    if (!base_->Exists(path)) continue;
    if (!t.entry_durable) {
      DFRP_RETURN_IF_ERROR(base_->RemoveFile(path));
      continue;
    }
    DFRP_ASSIGN_OR_RETURN(auto f, base_->OpenForWrite(path, false));
    DFRP_ASSIGN_OR_RETURN(uint64_t size, f->Size());
    if (size <= t.durable_size) continue;
    if (tear_seed == 0) {
      DFRP_RETURN_IF_ERROR(f->Truncate(t.durable_size));
    } else {
      uint64_t seed = tear_seed ^ std::hash<std::string>{}(path);
      DFRP_RETURN_IF_ERROR(TearBlocks(*f, t.durable_size, size, &seed));
    }
  }
  return Status::OK();
}

Result<std::unique_ptr<RandomAccessFile>> FaultInjectingFileSystem::OpenForRead(
    const std::string& path) {
  DFRP_RETURN_IF_ERROR(CheckUp("open"));
  return base_->OpenForRead(path);
}

Result<std::unique_ptr<SequentialFile>> FaultInjectingFileSystem::OpenSequential(
    const std::string& path) {
  DFRP_RETURN_IF_ERROR(CheckUp("open"));
  return base_->OpenSequential(path);
}

Result<std::unique_ptr<WritableFile>> FaultInjectingFileSystem::OpenForWrite(
    const std::string& path, bool private_mode) {
  DFRP_RETURN_IF_ERROR(CheckUp("open"));
  const bool existed = base_->Exists(path);
  if (!existed) DFRP_RETURN_IF_ERROR(OnOp(Op::kCreate));
  DFRP_ASSIGN_OR_RETURN(auto f, base_->OpenForWrite(path, private_mode));
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!files_.count(path)) {
      Tracked t;
      if (existed) {
        auto size = f->Size();
        t.durable_size = size ? *size : 0;
      } else {
        t.entry_durable = false;
      }
      files_[path] = t;
    }
  }
  return std::unique_ptr<WritableFile>(new FaultyWritableFile(this, std::move(f)));
}

Result<std::unique_ptr<WritableFile>> FaultInjectingFileSystem::CreateNew(const std::string& path,
                                                                          bool private_mode) {
  DFRP_RETURN_IF_ERROR(CheckUp("create"));
  DFRP_RETURN_IF_ERROR(OnOp(Op::kCreate));
  DFRP_ASSIGN_OR_RETURN(auto f, base_->CreateNew(path, private_mode));
  {
    std::lock_guard<std::mutex> lock(mu_);
    files_[path] = Tracked{0, false};
  }
  return std::unique_ptr<WritableFile>(new FaultyWritableFile(this, std::move(f)));
}

Status FaultInjectingFileSystem::CreateDir(const std::string& path) {
  DFRP_RETURN_IF_ERROR(CheckUp("mkdir"));
  return base_->CreateDir(path);
}

Status FaultInjectingFileSystem::CreateDirRecursive(const std::string& path) {
  DFRP_RETURN_IF_ERROR(CheckUp("mkdir"));
  return base_->CreateDirRecursive(path);
}

Status FaultInjectingFileSystem::RemoveFile(const std::string& path) {
  DFRP_RETURN_IF_ERROR(CheckUp("remove"));
  {
    std::lock_guard<std::mutex> lock(mu_);
    files_.erase(path);
  }
  return base_->RemoveFile(path);
}

Status FaultInjectingFileSystem::Rename(const std::string& from, const std::string& to) {
  DFRP_RETURN_IF_ERROR(CheckUp("rename"));
  PendingRename pending{from, to, false, {}};
  if (base_->Exists(to)) {
    auto size = base_->FileSize(to);
    if (size && *size <= (1u << 20)) {
      auto old = ReadWholeFile(base_, to);
      if (old) {
        pending.had_target = true;
        pending.old_target = std::move(*old);
      }
    }
  }
  TrackRename(std::move(pending));
  return base_->Rename(from, to);
}

Status FaultInjectingFileSystem::RenameNoReplace(const std::string& from, const std::string& to) {
  DFRP_RETURN_IF_ERROR(CheckUp("rename"));
  DFRP_RETURN_IF_ERROR(base_->RenameNoReplace(from, to));
  TrackRename(PendingRename{from, to, false, {}});  // there was no target to put back
  return Status::OK();
}

void FaultInjectingFileSystem::TrackRename(PendingRename pending) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(pending.from);
  if (it != files_.end()) {
    files_[pending.to] = it->second;
    files_.erase(it);
  }
  renames_.push_back(std::move(pending));
}

Status FaultInjectingFileSystem::SyncDir(const std::string& path) {
  DFRP_RETURN_IF_ERROR(CountSync());
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [file, t] : files_)
      if (DirName(file) == path) t.entry_durable = true;
    std::erase_if(renames_, [&](const PendingRename& r) { return DirName(r.to) == path; });
  }
  return base_->SyncDir(path);
}

Result<std::unique_ptr<OutputStream>> FaultInjectingFileSystem::OpenOutputStream(
    const std::string& path) {
  DFRP_RETURN_IF_ERROR(CheckUp("open"));
  DFRP_ASSIGN_OR_RETURN(auto s, base_->OpenOutputStream(path));
  return std::unique_ptr<OutputStream>(new FaultyOutputStream(this, std::move(s)));
}

Status FaultInjectingFileSystem::ReadFileUpTo(const std::string& path, size_t limit,
                                              std::string* out) {
  DFRP_RETURN_IF_ERROR(CheckUp("read"));
  return base_->ReadFileUpTo(path, limit, out);
}

void FaultInjectingFileSystem::ReadFiles(std::span<FileRead> files) {
  if (Status down = CheckUp("read"); !down.ok()) {
    for (FileRead& f : files) f.status = down;
    return;
  }
  base_->ReadFiles(files);
}

}  // namespace dfrp::core
