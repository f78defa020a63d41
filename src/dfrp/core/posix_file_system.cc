// The POSIX implementation of FileSystem.
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <linux/falloc.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

#if DFRP_HAVE_LIBURING
#include <liburing.h>
#endif

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>  // renameat2, RENAME_NOREPLACE
#include <cstdlib>

#include "dfrp/core/file_system.h"

namespace dfrp::core {

namespace {

class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  ~FdGuard() {
    if (fd_ >= 0) ::close(fd_);
  }
  int release() { return std::exchange(fd_, -1); }
  int get() const { return fd_; }

 private:
  int fd_;
};

// Closes *fd once (later calls are no-ops), naming `path` in the error.
Status CloseOnce(int* fd, const std::string& path) {
  if (*fd < 0) return Status::OK();
  int rc = ::close(*fd);
  *fd = -1;
  if (rc != 0) return Status::FromErrno(errno, "cannot close", path);
  return Status::OK();
}

class PosixRandomAccessFile final : public RandomAccessFile {
 public:
  PosixRandomAccessFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixRandomAccessFile() override { ::close(fd_); }
  Status ReadExactCached(uint64_t offset, size_t n, char* dst) const override {
    size_t done = 0;
    while (done < n) {
      iovec iov{dst + done, n - done};
      ssize_t r = ::preadv2(fd_, &iov, 1, static_cast<off_t>(offset + done), RWF_NOWAIT);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && (errno == EAGAIN || errno == EOPNOTSUPP))
        return Status::Busy(fmt::format("{}: the bytes at {} are not in memory", path_, offset));
      if (r < 0) return Status::FromErrno(errno, "cannot read", path_);
      // A short read without EOF means the rest is not cached; ReadExact tells EOF apart.
      if (r == 0) return ReadExact(offset, n, dst);
      done += static_cast<size_t>(r);
    }
    return Status::OK();
  }
  Result<size_t> Read(uint64_t offset, size_t n, char* dst) const override {
    size_t done = 0;
    while (done < n) {
      ssize_t r = ::pread(fd_, dst + done, n - done, static_cast<off_t>(offset + done));
      if (r < 0) {
        if (errno == EINTR) continue;
        return Err(Status::FromErrno(errno, "cannot read", path_));
      }
      if (r == 0) break;
      done += static_cast<size_t>(r);
    }
    return done;
  }
  Result<uint64_t> Size() const override {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return Err(Status::FromErrno(errno, "cannot stat", path_));
    return static_cast<uint64_t>(st.st_size);
  }
  const std::string& path() const override { return path_; }

 private:
  std::string path_;
  int fd_;
};

class PosixSequentialFile final : public SequentialFile {
 public:
  PosixSequentialFile(std::string path, int fd, bool owned, int64_t size)
      : path_(std::move(path)), fd_(fd), owned_(owned), size_(size) {}
  ~PosixSequentialFile() override {
    if (owned_) ::close(fd_);
  }
  Result<size_t> Read(size_t n, char* dst) override {
    size_t done = 0;
    while (done < n) {
      ssize_t r = ::read(fd_, dst + done, n - done);
      if (r < 0) {
        if (errno == EINTR) continue;
        return Err(Status::FromErrno(errno, "cannot read", path_));
      }
      if (r == 0) break;
      done += static_cast<size_t>(r);
    }
    return done;
  }
  const std::string& path() const override { return path_; }
  int64_t KnownSize() const override { return size_; }

 private:
  std::string path_;
  int fd_;
  bool owned_;
  int64_t size_;
};

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }
  Status WriteAt(uint64_t offset, std::string_view data) override {
    size_t done = 0;
    while (done < data.size()) {
      ssize_t r =
          ::pwrite(fd_, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
      if (r < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno(errno, "cannot write", path_);
      }
      done += static_cast<size_t>(r);
    }
    return Status::OK();
  }
  Status Sync() override {
    if (::fdatasync(fd_) != 0) return Status::FromErrno(errno, "cannot sync", path_);
    return Status::OK();
  }
  Status Truncate(uint64_t size) override {
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0)
      return Status::FromErrno(errno, "cannot truncate", path_);
    return Status::OK();
  }
  Status Allocate(uint64_t offset, uint64_t len) override {
    if (len == 0) return Status::OK();
    // KEEP_SIZE: the blocks are reserved but the file does not grow, so a crash leaves no
    // zero-filled tail that a scan would have to tell apart from a torn record.
    if (::fallocate(fd_, FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                    static_cast<off_t>(len)) == 0)
      return Status::OK();
    if (errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL) return Status::OK();
    return Status::FromErrno(errno, "cannot reserve space in", path_);
  }
  void StartWriteback(uint64_t offset, uint64_t len) override {
    ::sync_file_range(fd_, static_cast<off_t>(offset), static_cast<off_t>(len),
                      SYNC_FILE_RANGE_WRITE);
  }
  Result<uint64_t> Size() const override {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return Err(Status::FromErrno(errno, "cannot stat", path_));
    return static_cast<uint64_t>(st.st_size);
  }
  Status Close() override { return CloseOnce(&fd_, path_); }
  const std::string& path() const override { return path_; }

 private:
  std::string path_;
  int fd_;
};

class PosixOutputStream final : public OutputStream {
 public:
  PosixOutputStream(std::string path, int fd, bool owned)
      : path_(std::move(path)), fd_(fd), owned_(owned) {}
  ~PosixOutputStream() override {
    if (owned_ && fd_ >= 0) ::close(fd_);
  }
  Status Write(std::string_view data) override {
    while (!data.empty()) {
      ssize_t r = ::write(fd_, data.data(), data.size());
      if (r < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno(errno, "cannot write", path_);
      }
      data.remove_prefix(static_cast<size_t>(r));
    }
    return Status::OK();
  }
  Status Close() override { return owned_ ? CloseOnce(&fd_, path_) : Status::OK(); }
  const std::string& path() const override { return path_; }

 private:
  std::string path_;
  int fd_;
  bool owned_;
};

FileType TypeOfMode(mode_t mode) {
  if (S_ISREG(mode)) return FileType::kRegular;
  if (S_ISDIR(mode)) return FileType::kDirectory;
  if (S_ISLNK(mode)) return FileType::kSymlink;
  if (S_ISCHR(mode)) return FileType::kCharDevice;
  if (S_ISBLK(mode)) return FileType::kBlockDevice;
  if (S_ISFIFO(mode)) return FileType::kFifo;
  if (S_ISSOCK(mode)) return FileType::kSocket;
  return FileType::kOther;
}

class PosixFileLock final : public FileLock {
 public:
  explicit PosixFileLock(int fd) : fd_(fd) {}
  ~PosixFileLock() override {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }

 private:
  int fd_;
};

class PosixFileSystem final : public FileSystem {
 public:
  Result<std::unique_ptr<RandomAccessFile>> OpenForRead(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Err(Status::FromErrno(errno, "cannot open", path));
    return std::make_unique<PosixRandomAccessFile>(path, fd);
  }
  Result<std::unique_ptr<SequentialFile>> OpenSequential(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Err(Status::FromErrno(errno, "cannot open", path));
    FdGuard guard(fd);
    struct stat st;
    if (::fstat(fd, &st) != 0) return Err(Status::FromErrno(errno, "cannot stat", path));
    if (S_ISDIR(st.st_mode))
      return Err(Status::InvalidArgument(fmt::format("{} is a folder, not a file", path)));
    int64_t size = S_ISREG(st.st_mode) ? static_cast<int64_t>(st.st_size) : -1;
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    return std::make_unique<PosixSequentialFile>(path, guard.release(), true, size);
  }
  Result<std::unique_ptr<WritableFile>> OpenForWrite(const std::string& path,
                                                     bool private_mode) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, private_mode ? 0600 : 0644);
    if (fd < 0) return Err(Status::FromErrno(errno, "cannot open for writing", path));
    return std::make_unique<PosixWritableFile>(path, fd);
  }
  Result<std::unique_ptr<WritableFile>> CreateNew(const std::string& path,
                                                  bool private_mode) override {
    int fd =
        ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, private_mode ? 0600 : 0644);
    if (fd < 0) return Err(Status::FromErrno(errno, "cannot create", path));
    return std::make_unique<PosixWritableFile>(path, fd);
  }
  bool Exists(const std::string& path) override { return ::access(path.c_str(), F_OK) == 0; }
  bool IsDirectory(const std::string& path) override {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  }
  Result<uint64_t> FileSize(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return Err(Status::FromErrno(errno, "cannot stat", path));
    return static_cast<uint64_t>(st.st_size);
  }
  Result<std::vector<std::string>> ListDir(const std::string& path) override {
    DIR* d = ::opendir(path.c_str());
    if (d == nullptr) return Err(Status::FromErrno(errno, "cannot list", path));
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(d)) {
      std::string_view n = e->d_name;
      if (n == "." || n == "..") continue;
      names.emplace_back(n);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    return names;
  }
  Status CreateDir(const std::string& path) override {
    if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST)
      return Status::FromErrno(errno, "cannot create folder", path);
    return Status::OK();
  }
  Status CreateDirRecursive(const std::string& path) override {
    if (path.empty() || IsDirectory(path)) return Status::OK();
    std::string parent = DirName(path);
    if (parent != path && parent != "." && parent != "/") {
      Status s = CreateDirRecursive(parent);
      if (!s.ok()) return s;
    }
    return CreateDir(path);
  }
  Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return Status::FromErrno(errno, "cannot remove", path);
    return Status::OK();
  }
  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0)
      return Status::FromErrno(errno, "cannot rename to " + to + " from", from);
    return Status::OK();
  }
  Status RenameNoReplace(const std::string& from, const std::string& to) override {
    if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0)
      return Status::OK();
    if (errno != EINVAL && errno != ENOSYS)
      return Status::FromErrno(errno, "cannot rename to " + to + " from", from);
    // No RENAME_NOREPLACE on this file system: link(2) refuses an existing target too.
    if (::link(from.c_str(), to.c_str()) != 0)
      return Status::FromErrno(errno, "cannot link " + to + " to", from);
    return RemoveFile(from);
  }
  Status SyncDir(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return Status::FromErrno(errno, "cannot open folder", path);
    FdGuard guard(fd);
    if (::fsync(fd) != 0) return Status::FromErrno(errno, "cannot sync folder", path);
    return Status::OK();
  }
  Result<std::unique_ptr<FileLock>> TryLock(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return Err(Status::FromErrno(errno, "cannot open lock file", path));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int err = errno;
      ::close(fd);
      if (err == EWOULDBLOCK) return Err(Status::Busy(fmt::format("{} is locked", path)));
      return Err(Status::FromErrno(err, "cannot lock", path));
    }
    return std::make_unique<PosixFileLock>(fd);
  }
  Result<FsSpace> Space(const std::string& path) override {
    struct statvfs sv;
    if (::statvfs(path.c_str(), &sv) != 0)
      return Err(Status::FromErrno(errno, "cannot read free space of", path));
    FsSpace s;
    s.total_bytes = static_cast<uint64_t>(sv.f_blocks) * sv.f_frsize;
    s.available_bytes = static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize;
    return s;
  }
  Result<std::string> RealPath(const std::string& path) override {
    char buf[PATH_MAX];
    if (::realpath(path.c_str(), buf) == nullptr)
      return Err(Status::FromErrno(errno, "cannot resolve", path));
    return std::string(buf);
  }
  Result<std::pair<uint64_t, uint64_t>> FileIdentity(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return Err(Status::FromErrno(errno, "cannot stat", path));
    return std::pair<uint64_t, uint64_t>(static_cast<uint64_t>(st.st_dev),
                                         static_cast<uint64_t>(st.st_ino));
  }
  bool IsWritable(const std::string& path) override { return ::access(path.c_str(), W_OK) == 0; }
  Result<uint32_t> PermissionBits(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return Err(Status::FromErrno(errno, "cannot stat", path));
    return static_cast<uint32_t>(st.st_mode & 07777);
  }
  Status ReadFileUpTo(const std::string& path, size_t limit, std::string* out) override {
    out->resize(limit);
    FileRead f;
    f.path = &path;
    f.dst = out->data();
    f.limit = limit;
    ReadOne(f);
    out->resize(f.got);
    return f.status;
  }
  Result<FileType> TypeOf(const std::string& path, bool follow_links) override {
    struct stat st;
    if ((follow_links ? ::stat(path.c_str(), &st) : ::lstat(path.c_str(), &st)) != 0)
      return Err(Status::FromErrno(errno, "cannot stat", path));
    return TypeOfMode(st.st_mode);
  }
  Result<std::unique_ptr<OutputStream>> OpenOutputStream(const std::string& path) override {
    int fd;
    do {
      fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);  // a FIFO's open waits for a reader
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return Err(Status::FromErrno(errno, "cannot open for writing", path));
    return std::make_unique<PosixOutputStream>(path, fd, true);
  }
  Result<bool> IsLocked(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) return false;
    if (fd < 0) return Err(Status::FromErrno(errno, "cannot open", path));
    FdGuard guard(fd);
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
      ::flock(fd, LOCK_UN);
      return false;
    }
    if (errno == EWOULDBLOCK) return true;
    return Err(Status::FromErrno(errno, "cannot probe the lock on", path));
  }
  void ReadFiles(std::span<FileRead> files) override {
#if DFRP_HAVE_LIBURING
    if (files.size() > 1 && ReadWithUring(files)) return;
#endif
    for (FileRead& f : files) ReadOne(f);
  }

 private:
  static void ReadOne(FileRead& f) {
    f.got = 0;
    int fd = ::open(f.path->c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      f.status = Status::FromErrno(errno, "cannot open", *f.path);
      return;
    }
    FdGuard guard(fd);
    while (f.got < f.limit) {
      ssize_t r = ::read(fd, f.dst + f.got, f.limit - f.got);
      if (r < 0) {
        if (errno == EINTR) continue;
        f.status = Status::FromErrno(errno, "cannot read", *f.path);
        return;
      }
      f.got += static_cast<size_t>(r);
      if (r == 0 || f.got < f.limit) break;  // end of file
    }
    f.status = Status::OK();
  }
#if DFRP_HAVE_LIBURING
  static bool ReadWithUring(std::span<FileRead> files);
#endif
};

#if DFRP_HAVE_LIBURING
// Each file is three linked requests on one ring: open into a registered slot, read, close
// the slot (hard-linked, so it runs after a short or failed read too). The kernel runs them
// inline from the page cache and dentry cache, so a group of kSlots files costs one
// io_uring_enter instead of 3 * kSlots system calls. Each thread keeps its ring (setting one up
// and tearing it down maps and unmaps memory, which costs TLB flushes on every core). False
// (nothing read) when the kernel or a seccomp filter refuses io_uring; that is remembered, and
// the caller reads file by file.
constexpr unsigned kSlots = 64;
struct ThreadRing {
  io_uring ring;
  bool ready = false;
  ThreadRing() {
    if (io_uring_queue_init(4 * kSlots, &ring, 0) != 0) return;
    int empty[kSlots];
    std::fill(std::begin(empty), std::end(empty), -1);
    if (io_uring_register_files(&ring, empty, kSlots) != 0) {
      io_uring_queue_exit(&ring);
      return;
    }
    ready = true;
  }
  ~ThreadRing() { Close(); }
  void Close() {
    if (ready) io_uring_queue_exit(&ring);  // waits for requests still in flight
    ready = false;
  }
};

// Names files relative to a descriptor of their folder when the next file is in the same
// folder too, so the kernel walks the folder's path once instead of once per file (a batch of
// 100,000 inputs is usually a few folders). Folders left behind are closed by Retire(), once no
// queued request can still use them.
class FolderFds {
 public:
  ~FolderFds() {
    Retire();
    if (fd_ >= 0) ::close(fd_);
  }
  // The folder descriptor (or AT_FDCWD) and name to open `path` by.
  std::pair<int, const char*> For(const std::string& path, const std::string* next) {
    const size_t slash = path.rfind('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == path.size())
      return {AT_FDCWD, path.c_str()};
    const std::string_view folder(path.data(), slash);
    if (folder != folder_) {
      const bool shared = next != nullptr && next->size() > slash + 1 &&
                          std::string_view(*next).substr(0, slash + 1) ==
                              std::string_view(path).substr(0, slash + 1) &&
                          next->find('/', slash + 1) == std::string::npos;
      if (!shared) return {AT_FDCWD, path.c_str()};
      if (fd_ >= 0) retired_.push_back(fd_);
      folder_.assign(folder);
      // O_PATH needs only search permission, as opening the files by their full paths does.
      fd_ = ::open(folder_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    }
    if (fd_ < 0) return {AT_FDCWD, path.c_str()};  // could not open the folder: full paths
    return {fd_, path.c_str() + slash + 1};
  }
  void Retire() {
    for (int fd : retired_) ::close(fd);
    retired_.clear();
  }

 private:
  int fd_ = -1;
  std::string folder_;
  std::vector<int> retired_;
};

bool PosixFileSystem::ReadWithUring(std::span<FileRead> files) {
  static std::atomic<bool> refused{false};
  if (refused.load(std::memory_order_relaxed)) return false;
  thread_local ThreadRing thread_ring;
  thread_local bool broken = false;  // the ring failed once on this thread
  if (broken) return false;
  if (!thread_ring.ready) {
    refused = true;
    return false;
  }
  io_uring& ring = thread_ring.ring;
  FolderFds folders;
  for (size_t base = 0; base < files.size(); base += kSlots, folders.Retire()) {
    const unsigned n = static_cast<unsigned>(std::min<size_t>(kSlots, files.size() - base));
    for (unsigned j = 0; j < n; ++j) {
      FileRead& f = files[base + j];
      f.got = 0;
      f.status = Status::OK();
      io_uring_sqe* sqe = io_uring_get_sqe(&ring);
      const auto [dir, name] =
          folders.For(*f.path, base + j + 1 < files.size() ? files[base + j + 1].path : nullptr);
      // O_CLOEXEC does not apply to (and is refused for) a registered slot.
      io_uring_prep_openat_direct(sqe, dir, name, O_RDONLY, 0, j);
      sqe->flags |= IOSQE_IO_LINK;
      sqe->user_data = j * 4;
      sqe = io_uring_get_sqe(&ring);
      io_uring_prep_read(sqe, static_cast<int>(j), f.dst, static_cast<unsigned>(f.limit), 0);
      sqe->flags |= IOSQE_FIXED_FILE | IOSQE_IO_HARDLINK;
      sqe->user_data = j * 4 + 1;
      sqe = io_uring_get_sqe(&ring);
      io_uring_prep_close_direct(sqe, j);
      sqe->user_data = j * 4 + 2;
    }
    // A failure of the ring itself fails this group and every later one; the thread reads
    // file by file from then on.
    auto ring_failed = [&](int err) {
      thread_ring.Close();
      broken = true;
      for (size_t i = base; i < files.size(); ++i)
        files[i].status = Status::FromErrno(err, "cannot read", *files[i].path);
      return true;
    };
    int submitted = io_uring_submit(&ring);
    if (submitted < 0) return ring_failed(-submitted);
    for (unsigned seen = 0; seen < 3 * n;) {
      io_uring_cqe* cqe = nullptr;
      const int rc = io_uring_wait_cqe(&ring, &cqe);
      if (rc == -EINTR) continue;
      if (rc < 0) return ring_failed(-rc);
      FileRead& f = files[base + cqe->user_data / 4];
      const int res = cqe->res;
      const unsigned kind = cqe->user_data % 4;
      io_uring_cqe_seen(&ring, cqe);
      ++seen;
      if (kind == 0 && res < 0) {
        f.status = Status::FromErrno(-res, "cannot open", *f.path);
      } else if (kind == 1 && res >= 0) {
        f.got = static_cast<size_t>(res);
      } else if (kind == 1 && f.status.ok()) {
        f.status = Status::FromErrno(-res, "cannot read", *f.path);
      }
    }
  }
  return true;
}
#endif

}  // namespace

FileSystem* DefaultFileSystem() {
  static PosixFileSystem* fs = new PosixFileSystem();
  return fs;
}

std::unique_ptr<SequentialFile> SequentialFileFromFd(int fd, std::string name) {
  struct stat st;
  int64_t size = -1;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) size = static_cast<int64_t>(st.st_size);
  return std::make_unique<PosixSequentialFile>(std::move(name), fd, false, size);
}

std::unique_ptr<OutputStream> OutputStreamFromFd(int fd, std::string name) {
  return std::make_unique<PosixOutputStream>(std::move(name), fd, false);
}

}  // namespace dfrp::core
