#include "dfrp/core/file_system.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "dfrp/core/uuid.h"

namespace dfrp::core {

Status RandomAccessFile::ReadExact(uint64_t offset, size_t n, char* dst) const {
  auto got = Read(offset, n, dst);
  if (!got) return got.error();
  if (*got != n)
    return Status::Corruption(fmt::format("{} ends at byte {}, before the {} bytes expected at {}",
                                          path(), offset + *got, n, offset));
  return Status::OK();
}

Status RandomAccessFile::ReadExactCached(uint64_t, size_t, char*) const {
  return Status::Busy(fmt::format("{}: cannot tell whether a read would wait", path()));
}

void FileSystem::ReadFiles(std::span<FileRead> files) {
  std::string bytes;
  for (FileRead& f : files) {
    f.status = ReadFileUpTo(*f.path, f.limit, &bytes);
    f.got = f.status.ok() ? bytes.size() : 0;
    std::memcpy(f.dst, bytes.data(), f.got);
  }
}

std::string JoinPath(std::string_view a, std::string_view b) {
  if (a.empty()) return std::string(b);
  if (!b.empty() && b.front() == '/') return std::string(b);
  std::string out(a);
  if (out.back() != '/') out.push_back('/');
  out.append(b);
  return out;
}

std::string DirName(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

namespace {
class StringSequentialFile final : public SequentialFile {
 public:
  StringSequentialFile(std::string data, std::string name)
      : data_(std::move(data)), name_(std::move(name)) {}
  Result<size_t> Read(size_t n, char* dst) override {
    const size_t k = std::min(n, data_.size() - pos_);
    std::memcpy(dst, data_.data() + pos_, k);
    pos_ += k;
    return k;
  }
  const std::string& path() const override { return name_; }
  int64_t KnownSize() const override { return static_cast<int64_t>(data_.size()); }

 private:
  std::string data_;
  std::string name_;
  size_t pos_ = 0;
};
}  // namespace

std::unique_ptr<SequentialFile> SequentialFileFromString(std::string data, std::string name) {
  return std::make_unique<StringSequentialFile>(std::move(data), std::move(name));
}

std::string NormalizePath(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view part = path.substr(i, j - i);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    i = j + 1;
  }
  std::string out;
  for (auto part : parts) {
    out += '/';
    out += part;
  }
  return out.empty() ? "/" : out;
}

namespace {
Status WriteAtomic(FileSystem* fs, const std::string& path, std::string_view data,
                   bool private_mode, bool replace) {
  const std::string tmp =
      fmt::format("{}.tmp-{}", path, DefaultUuidGenerator()->NewV7().ToString());
  auto file = fs->CreateNew(tmp, private_mode);
  if (!file) return file.error();
  Status s = (*file)->WriteAt(0, data);
  if (s.ok()) s = (*file)->Sync();
  if (s.ok()) s = (*file)->Close();
  if (s.ok()) s = replace ? fs->Rename(tmp, path) : fs->RenameNoReplace(tmp, path);
  if (!s.ok()) {
    (void)fs->RemoveFile(tmp);
    return s;
  }
  return fs->SyncDir(DirName(path));
}
}  // namespace

Result<FileType> FileSystem::TypeOf(const std::string& path, bool) {
  return Err(Status::IOError(
      fmt::format("cannot tell what {} is: this file system does not implement TypeOf", path)));
}

Result<std::unique_ptr<OutputStream>> FileSystem::OpenOutputStream(const std::string& path) {
  return Err(Status::IOError(fmt::format(
      "cannot open {} as a stream: this file system does not implement OpenOutputStream", path)));
}

Result<bool> FileSystem::IsLocked(const std::string& path) {
  return Err(Status::IOError(fmt::format(
      "cannot probe the lock on {}: this file system does not implement IsLocked", path)));
}

Status WriteFileAtomic(FileSystem* fs, const std::string& path, std::string_view data,
                       bool private_mode) {
  return WriteAtomic(fs, path, data, private_mode, /*replace=*/true);
}

Status WriteNewFileAtomic(FileSystem* fs, const std::string& path, std::string_view data,
                          bool private_mode) {
  return WriteAtomic(fs, path, data, private_mode, /*replace=*/false);
}

Result<std::string> ReadWholeFile(FileSystem* fs, const std::string& path) {
  DFRP_ASSIGN_OR_RETURN(auto file, fs->OpenForRead(path));
  DFRP_ASSIGN_OR_RETURN(uint64_t size, file->Size());
  std::string data(size, '\0');
  DFRP_RETURN_IF_ERROR(file->ReadExact(0, size, data.data()));
  return data;
}

}  // namespace dfrp::core
