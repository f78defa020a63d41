// FileSystem: every file operation dfrp makes goes through this interface (STYLE.md
// section 4), so tests can swap in a fault-injecting file system that drops unsynced data,
// fails the Nth write or sync, or tears a write.
//
// Contracts common to all methods: paths are used as given (callers resolve relative paths);
// failures are returned as Status values naming the operation and the path, never thrown.
// A WritableFile's bytes are durable only after Sync() returned ok; a new file's directory
// entry is durable only after SyncDir() of its parent returned ok.
//
// Thread-safety: FileSystem implementations are safe to share between threads. A
// RandomAccessFile may be read from several threads at once; a WritableFile may not be
// written from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dfrp/core/status.h"

namespace dfrp::core {

class RandomAccessFile {
 public:
  virtual ~RandomAccessFile() = default;
  // Reads up to n bytes at offset into dst; returns how many were read (fewer only at the end
  // of the file).
  virtual Result<size_t> Read(uint64_t offset, size_t n, char* dst) const = 0;
  virtual Result<uint64_t> Size() const = 0;
  virtual const std::string& path() const = 0;
  // Reads exactly n bytes or fails with Corruption ("file ends early") naming the path.
  Status ReadExact(uint64_t offset, size_t n, char* dst) const;
  // As ReadExact, but only from memory (the page cache): Busy, without waiting, when any of
  // the bytes would have to come from the device. For a server thread that must never wait
  // for a disk. The default (a file that cannot tell) is always Busy.
  virtual Status ReadExactCached(uint64_t offset, size_t n, char* dst) const;
};

// A stream read once from the start: an input file or standard input.
class SequentialFile {
 public:
  virtual ~SequentialFile() = default;
  // Reads up to n bytes; 0 means end of stream.
  virtual Result<size_t> Read(size_t n, char* dst) = 0;
  virtual const std::string& path() const = 0;
  // The size if the stream is a regular file, else nullopt-like -1.
  virtual int64_t KnownSize() const = 0;
};

class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Writes all of data at offset (positional; the file grows as needed).
  virtual Status WriteAt(uint64_t offset, std::string_view data) = 0;
  // Makes every byte written so far durable (fdatasync).
  virtual Status Sync() = 0;
  // Cuts the file to size bytes (the bytes dropped need a Sync to be durably gone).
  virtual Status Truncate(uint64_t size) = 0;
  // Reserves space for [offset, offset+len) so later writes there cannot fail for space;
  // ENOSPC is returned as NoSpace. A no-op where the file system cannot preallocate.
  virtual Status Allocate(uint64_t offset, uint64_t len) = 0;
  // Hints the OS to start writing back [offset, offset+len) now; no durability promise.
  virtual void StartWriteback(uint64_t offset, uint64_t len) = 0;
  virtual Result<uint64_t> Size() const = 0;
  virtual Status Close() = 0;
  virtual const std::string& path() const = 0;
};

// A stream written once, front to back, that is not a regular file to replace: a character
// device (/dev/null, a tape), a FIFO, standard output. Nothing is synced: a stream has no copy
// to make durable.
class OutputStream {
 public:
  virtual ~OutputStream() = default;
  // Writes all of data (short writes and EINTR are retried).
  virtual Status Write(std::string_view data) = 0;
  virtual Status Close() = 0;
  virtual const std::string& path() const = 0;
};

// What a path names (FileSystem::TypeOf).
enum class FileType {
  kRegular,
  kDirectory,
  kSymlink,  // only when links are not followed
  kCharDevice,
  kBlockDevice,
  kFifo,
  kSocket,
  kOther,
};

// An exclusive advisory lock held until destroyed.
class FileLock {
 public:
  virtual ~FileLock() = default;
};

struct FsSpace {
  uint64_t total_bytes = 0;
  uint64_t available_bytes = 0;  // to an unprivileged writer
};

// One file of FileSystem::ReadFiles: up to `limit` bytes of `path` go to dst.
struct FileRead {
  const std::string* path = nullptr;
  char* dst = nullptr;
  size_t limit = 0;
  size_t got = 0;  // out: bytes read (fewer than limit at the end of the file)
  Status status;   // out: OK, or why the file could not be opened or read
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  virtual Result<std::unique_ptr<RandomAccessFile>> OpenForRead(const std::string& path) = 0;
  virtual Result<std::unique_ptr<SequentialFile>> OpenSequential(const std::string& path) = 0;
  // Opens for writing, creating the file (mode 0644, or 0600 when `private_mode`) if absent;
  // never truncates.
  virtual Result<std::unique_ptr<WritableFile>> OpenForWrite(const std::string& path,
                                                             bool private_mode = false) = 0;
  // Creates the file only if it does not exist yet (O_EXCL); InvalidArgument-free: an existing
  // file gives IOError with EEXIST in the message.
  virtual Result<std::unique_ptr<WritableFile>> CreateNew(const std::string& path,
                                                          bool private_mode = false) = 0;

  virtual bool Exists(const std::string& path) = 0;
  virtual bool IsDirectory(const std::string& path) = 0;
  virtual Result<uint64_t> FileSize(const std::string& path) = 0;
  // Names (not paths) of the entries of a directory, sorted.
  virtual Result<std::vector<std::string>> ListDir(const std::string& path) = 0;
  virtual Status CreateDir(const std::string& path) = 0;           // ok if it exists
  virtual Status CreateDirRecursive(const std::string& path) = 0;  // mkdir -p
  virtual Status RemoveFile(const std::string& path) = 0;
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  // Renames only if `to` does not exist, in one atomic step (renameat2 RENAME_NOREPLACE; a
  // hard link and an unlink of `from` where the file system lacks it). If `to` exists, even
  // one created an instant before, IOError ending in strerror(EEXIST) and both files stay.
  virtual Status RenameNoReplace(const std::string& from, const std::string& to) = 0;
  // fsync of a directory, making entries created, renamed or removed in it durable.
  virtual Status SyncDir(const std::string& path) = 0;
  // Takes an exclusive lock on `path` (created if absent) without waiting. Busy if another
  // process holds it.
  virtual Result<std::unique_ptr<FileLock>> TryLock(const std::string& path) = 0;
  virtual Result<FsSpace> Space(const std::string& path) = 0;
  // Canonical absolute path (symlinks resolved); NotFound if it does not exist.
  virtual Result<std::string> RealPath(const std::string& path) = 0;
  // The (device, inode) pair of a file or folder, which tells the same folder apart from a
  // copy whatever path names it (symlinks, "..", bind mounts, hard links). NotFound if it
  // does not exist.
  virtual Result<std::pair<uint64_t, uint64_t>> FileIdentity(const std::string& path) = 0;
  // Whether the file can be written by this process (access W_OK).
  virtual bool IsWritable(const std::string& path) = 0;
  // The permission bits of a file or folder (st_mode & 07777); NotFound if it does not exist.
  virtual Result<uint32_t> PermissionBits(const std::string& path) = 0;
  // Reads a regular file from its start into *out, at most `limit` bytes (fewer at its end;
  // a short read is taken as the end, as POSIX promises for regular files). For many small
  // files: open, read, close and nothing more.
  virtual Status ReadFileUpTo(const std::string& path, size_t limit, std::string* out) = 0;
  // The three below came after other implementations (test wrappers) existed: their
  // defaults fail with IOError saying this file system cannot do it (as LevelDB's
  // Env::NewAppendableFile), so such a wrapper still compiles; the POSIX and fault-injecting
  // file systems implement them.
  //
  // What `path` is: with follow_links what a symbolic link leads to (stat), else the link
  // itself (lstat). NotFound when nothing is there (or a followed link leads nowhere).
  virtual Result<FileType> TypeOf(const std::string& path, bool follow_links);
  // Opens an existing file for writing from its start, neither creating nor truncating it
  // (O_WRONLY): a device, or a FIFO, for which it waits until a reader opens the other end, as
  // open(2) does. NotFound when nothing is there.
  virtual Result<std::unique_ptr<OutputStream>> OpenOutputStream(const std::string& path);
  // Whether someone holds an exclusive lock (TryLock's flock) on `path`, probed with a
  // read-only open that never creates the file (false when it does not exist) and released at
  // once. An error when the file is there but cannot be opened (not ours to read).
  virtual Result<bool> IsLocked(const std::string& path);
  // ReadFileUpTo for many files, each into its own buffer; each file's failure is its own
  // status. The POSIX file system hands them to io_uring in groups where the kernel allows it
  // (a few system calls per group instead of open, read and close per file); this default
  // reads them one by one through ReadFileUpTo.
  virtual void ReadFiles(std::span<FileRead> files);
};

// The process-wide POSIX file system; never null, never freed.
FileSystem* DefaultFileSystem();

// A SequentialFile over an already open descriptor (standard input); does not own fd.
std::unique_ptr<SequentialFile> SequentialFileFromFd(int fd, std::string name);

// An OutputStream over an already open descriptor (standard output); does not own fd.
std::unique_ptr<OutputStream> OutputStreamFromFd(int fd, std::string name);

// A SequentialFile over bytes in memory (generated inputs, request bodies already read).
std::unique_ptr<SequentialFile> SequentialFileFromString(std::string data, std::string name);

// An absolute path with "." and ".." components and repeated or trailing '/' removed,
// lexically (no symlink is followed): "/a/b/../c/" -> "/a/c". `path` must be absolute.
std::string NormalizePath(std::string_view path);

// Joins two path parts with one '/'.
std::string JoinPath(std::string_view a, std::string_view b);
// The parent folder of a path ("." for a bare name).
std::string DirName(std::string_view path);

// Writes `data` to `path` atomically and durably: a temporary file in the same folder,
// synced, renamed over `path`, and the folder synced.
Status WriteFileAtomic(FileSystem* fs, const std::string& path, std::string_view data,
                       bool private_mode = false);
// As WriteFileAtomic, but never replaces a file: the temporary file is renamed with
// RenameNoReplace, so a `path` that exists, or appears while the data is written, is left as it
// is and the call fails (IOError ending in strerror(EEXIST); the temporary file is removed).
Status WriteNewFileAtomic(FileSystem* fs, const std::string& path, std::string_view data,
                          bool private_mode = false);
// Reads a whole (small) file.
Result<std::string> ReadWholeFile(FileSystem* fs, const std::string& path);

}  // namespace dfrp::core
