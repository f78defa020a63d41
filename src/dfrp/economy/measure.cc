// The capacity measurement: hashing on one and all cores, and each volume's test file written,
// read sequentially and read at random. Raw POSIX and steady_clock on purpose (see measure.h).
#include "dfrp/economy/measure.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <thread>

#include "dfrp/crypto/sha256.h"

namespace dfrp::economy {

namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr uint64_t kMiB = 1024 * 1024;
constexpr uint64_t kBlock = 4096;
constexpr uint64_t kMinFree = 16 * kMiB;

double SecondsSince(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

unsigned CountCores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

// Hashes chained 64-byte inputs for `seconds`; returns the count. The clock is read every
// 4096 hashes so that reading it costs nothing next to the hashing.
uint64_t HashFor(double seconds, const std::atomic<bool>* go, HashMethod method) {
  while (go != nullptr && !go->load(std::memory_order_acquire)) std::this_thread::yield();
  char input[64] = {};
  uint64_t count = 0;
  std::unique_ptr<EVP_MD, decltype(&EVP_MD_free)> md(nullptr, EVP_MD_free);
  if (method == HashMethod::kEvpPerInput) {
    md.reset(EVP_MD_fetch(nullptr, "SHA256", nullptr));
    if (!md) return 0;
  }
  const auto start = SteadyClock::now();
  do {
    if (method == HashMethod::kNode) {
      for (int i = 0; i < 4096; ++i) {
        crypto::Hash h = crypto::Sha256Of(std::string_view(input, sizeof(input)));
        std::memcpy(input, h.data(), h.size());  // the next input depends on this hash
      }
    } else {
      unsigned char out[EVP_MAX_MD_SIZE];
      for (int i = 0; i < 4096; ++i) {
        if (EVP_Digest(input, sizeof(input), out, nullptr, md.get(), nullptr) != 1) return 0;
        std::memcpy(input, out, 32);
      }
    }
    count += 4096;
  } while (SecondsSince(start) < seconds);
  return count;
}

}  // namespace

double MeasureHashRate(unsigned threads_wanted, double seconds, HashMethod method) {
  const unsigned n = std::max(1u, threads_wanted);
  std::atomic<bool> go{false};
  std::vector<uint64_t> counts(n, 0);
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < n; ++i) {
    threads.emplace_back([&, i] { counts[i] = HashFor(seconds, &go, method); });
  }
  const auto start = SteadyClock::now();
  go.store(true, std::memory_order_release);
  for (auto& t : threads) t.join();
  const double elapsed = SecondsSince(start);
  uint64_t total = 0;
  for (uint64_t c : counts) total += c;
  return static_cast<double>(total) / elapsed;
}

namespace {

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<char, FreeDeleter>;

AlignedBuffer AllocAligned(size_t bytes) {
  void* p = nullptr;
  if (posix_memalign(&p, kBlock, bytes) != 0) return nullptr;
  return AlignedBuffer(static_cast<char*>(p));
}

// The open test file; closes and removes it on every way out.
class TestFile {
 public:
  TestFile() = default;
  TestFile(const TestFile&) = delete;
  TestFile& operator=(const TestFile&) = delete;
  ~TestFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  // Opens with O_DIRECT, or buffered when the file system refuses it (tmpfs answers EINVAL).
  // Returns 0, or the errno of the failed open.
  int Create(const std::string& folder, bool* direct) {
    const std::string path = folder + "/.dfrp-measure-" + std::to_string(::getpid());
    ::unlink(path.c_str());  // a leftover of a killed run with the same pid
    const int flags = O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC;
    fd_ = ::open(path.c_str(), flags | O_DIRECT, 0600);
    *direct = fd_ >= 0;
    if (fd_ < 0 && errno == EINVAL) fd_ = ::open(path.c_str(), flags, 0600);
    if (fd_ < 0) return errno;
    path_ = path;
    return *direct ? ProbeDirect(direct) : 0;
  }
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

 private:
  // Some file systems accept O_DIRECT at open and refuse the I/O itself (EINVAL): one aligned
  // write finds out, and such a file goes on buffered.
  int ProbeDirect(bool* direct) {
    void* p = nullptr;
    if (posix_memalign(&p, kBlock, kBlock) != 0) return ENOMEM;
    std::memset(p, 0, kBlock);
    const ssize_t n = ::pwrite(fd_, p, kBlock, 0);
    const int err = n < 0 ? errno : 0;
    std::free(p);
    if (err != EINVAL) return err;
    *direct = false;
    const int fl = fcntl(fd_, F_GETFL);
    return fl >= 0 && fcntl(fd_, F_SETFL, fl & ~O_DIRECT) == 0 ? 0 : errno;
  }

  int fd_ = -1;
  std::string path_;
};

std::string FolderError(const std::string& folder, int err, std::string_view what) {
  if (err == ENOENT || err == ENOTDIR) {
    return "volume folder " + folder + " does not exist: create it or correct the volume's path";
  }
  if (err == EACCES || err == EPERM || err == EROFS) {
    return "volume folder " + folder + " is read-only (" + std::strerror(err) +
           "): make it writable for the node's user to measure it";
  }
  if (err == ENOSPC || err == EDQUOT) {
    return "volume folder " + folder + ": no space to measure: free at least 16 MiB";
  }
  return "volume folder " + folder + ": " + std::string(what) + ": " + std::strerror(err);
}

struct VolumePlan {
  uint64_t file_bytes;
  double random_seconds;
};

// Writes the whole file in 1 MiB blocks of random bytes, then fdatasync; returns MB/s.
core::Result<double> TimeWrite(int fd, uint64_t bytes, const std::string& folder) {
  AlignedBuffer buf = AllocAligned(kMiB);
  if (!buf) return core::Err(core::Status::Internal("out of memory for a 1 MiB buffer"));
  std::mt19937_64 rng(12345);
  for (size_t i = 0; i < kMiB; i += 8) {
    const uint64_t v = rng();
    std::memcpy(buf.get() + i, &v, 8);  // incompressible, so no layer can shrink the writes
  }
  const auto start = SteadyClock::now();
  for (uint64_t off = 0; off < bytes; off += kMiB) {
    const ssize_t n = ::pwrite(fd, buf.get(), kMiB, static_cast<off_t>(off));
    if (n != static_cast<ssize_t>(kMiB)) {
      const int err = n < 0 ? errno : ENOSPC;
      return core::Err(core::Status::IOError(FolderError(folder, err, "write")));
    }
  }
  if (::fdatasync(fd) != 0) {
    return core::Err(core::Status::IOError(FolderError(folder, errno, "fdatasync")));
  }
  return static_cast<double>(bytes) / 1e6 / SecondsSince(start);
}

void DropCache(int fd, bool direct) {
  if (!direct) (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
}

core::Result<double> TimeSequentialRead(int fd, uint64_t bytes, bool direct,
                                        const std::string& folder) {
  AlignedBuffer buf = AllocAligned(kMiB);
  if (!buf) return core::Err(core::Status::Internal("out of memory for a 1 MiB buffer"));
  DropCache(fd, direct);
  const auto start = SteadyClock::now();
  for (uint64_t off = 0; off < bytes; off += kMiB) {
    const ssize_t n = ::pread(fd, buf.get(), kMiB, static_cast<off_t>(off));
    if (n != static_cast<ssize_t>(kMiB)) {
      return core::Err(core::Status::IOError(FolderError(folder, n < 0 ? errno : EIO, "read")));
    }
  }
  return static_cast<double>(bytes) / 1e6 / SecondsSince(start);
}

// 4 KiB reads at aligned offsets inside the file, one at a time, from a fixed-seed PRNG.
core::Result<double> TimeRandomRead(int fd, uint64_t bytes, double seconds, bool direct,
                                    const std::string& folder) {
  AlignedBuffer buf = AllocAligned(kBlock);
  if (!buf) return core::Err(core::Status::Internal("out of memory for a 4 KiB buffer"));
  DropCache(fd, direct);
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<uint64_t> block(0, bytes / kBlock - 1);
  uint64_t reads = 0;
  const auto start = SteadyClock::now();
  double elapsed = 0;
  do {
    const off_t off = static_cast<off_t>(block(rng) * kBlock);
    const ssize_t n = ::pread(fd, buf.get(), kBlock, off);
    if (n != static_cast<ssize_t>(kBlock)) {
      return core::Err(core::Status::IOError(FolderError(folder, n < 0 ? errno : EIO, "read")));
    }
    ++reads;
    elapsed = SecondsSince(start);
  } while (elapsed < seconds);
  return static_cast<double>(reads) / elapsed;
}

// The file size for this volume: the plan's, bounded by half the free space.
core::Result<uint64_t> FileSizeFor(const std::string& folder, uint64_t wanted) {
  struct stat st;
  if (::stat(folder.c_str(), &st) != 0) {
    return core::Err(core::Status::NotFound(FolderError(folder, errno, "stat")));
  }
  if (!S_ISDIR(st.st_mode)) {
    return core::Err(core::Status::NotFound(FolderError(folder, ENOTDIR, "stat")));
  }
  struct statvfs vfs;
  if (::statvfs(folder.c_str(), &vfs) != 0) {
    return core::Err(core::Status::IOError(FolderError(folder, errno, "statvfs")));
  }
  const uint64_t free_bytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  if (free_bytes < kMinFree) {
    return core::Err(core::Status::NoSpace(FolderError(folder, ENOSPC, "statvfs")));
  }
  const uint64_t size = std::min(wanted, free_bytes / 2) / kMiB * kMiB;
  return std::max(size, kMiB);
}

core::Status MeasureVolume(const VolumePlan& plan, VolumeCapacity* v,
                           const std::function<void(const std::string&)>& say) {
  DFRP_ASSIGN_OR_RETURN(const uint64_t bytes, FileSizeFor(v->path, plan.file_bytes));
  TestFile file;
  if (const int err = file.Create(v->path, &v->direct_io); err != 0) {
    return core::Status::IOError(FolderError(v->path, err, "create the measurement file"));
  }
  say("volume " + std::to_string(v->index) + " (" + v->path + "): writing " +
      std::to_string(bytes / kMiB) + " MiB" +
      (v->direct_io ? " with O_DIRECT" : " buffered: the file system refuses O_DIRECT"));
  DFRP_ASSIGN_OR_RETURN(v->write_mb_per_sec, TimeWrite(file.fd(), bytes, v->path));
  say("volume " + std::to_string(v->index) + ": sequential read");
  DFRP_ASSIGN_OR_RETURN(v->read_mb_per_sec,
                        TimeSequentialRead(file.fd(), bytes, v->direct_io, v->path));
  say("volume " + std::to_string(v->index) + ": 4 KiB random reads");
  DFRP_ASSIGN_OR_RETURN(v->read_iops_4k, TimeRandomRead(file.fd(), bytes, plan.random_seconds,
                                                        v->direct_io, v->path));
  return core::Status::OK();
}

}  // namespace

core::Result<Capacity> MeasureCapacity(const std::vector<std::pair<uint32_t, std::string>>& volumes,
                                       const MeasureOptions& opt) {
  if (opt.clock == nullptr) {
    return core::Err(core::Status::InvalidArgument(
        "MeasureCapacity: MeasureOptions.clock is null: pass the node's clock"));
  }
  auto say = [&](const std::string& line) {
    if (opt.progress) opt.progress(line);
  };
  const auto start = SteadyClock::now();
  Capacity c;
  c.quick = opt.quick;
  c.measured_unix_ms = opt.clock->NowUnixMillis();
  c.cores = CountCores();
  const double hash_s = opt.hash_seconds > 0 ? opt.hash_seconds : (opt.quick ? 1.0 : 3.0);
  say(fmt::format("sha256: one core, {:g} s", hash_s));
  c.sha256_per_sec_one_core = MeasureHashRate(1, hash_s);
  say(fmt::format("sha256: {} cores, {:g} s", c.cores, hash_s));
  c.sha256_per_sec_all_cores = MeasureHashRate(c.cores, hash_s);
  say("gpu: looking for libcuda.so.1");
  GpuMeasurement gpu =
      MeasureGpuFp32(opt.gpu_seconds > 0 ? opt.gpu_seconds : (opt.quick ? 1.0 : 3.0));
  c.gpu_tflops = gpu.tflops;
  c.gpu_reason = std::move(gpu.reason);
  if (!c.gpu_tflops) say("gpu: " + c.gpu_reason);
  VolumePlan plan;
  plan.file_bytes = opt.file_bytes > 0 ? opt.file_bytes : (opt.quick ? 64 : 512) * kMiB;
  plan.random_seconds =
      opt.random_read_seconds > 0 ? opt.random_read_seconds : (opt.quick ? 2.0 : 5.0);
  for (const auto& [index, folder] : volumes) {
    VolumeCapacity v;
    v.index = index;
    v.path = folder;
    core::Status st = MeasureVolume(plan, &v, say);
    if (!st.ok()) {
      v.read_iops_4k.reset();
      v.read_mb_per_sec.reset();
      v.write_mb_per_sec.reset();
      v.error = st.message();
      say("volume " + std::to_string(index) + ": " + v.error);
    }
    c.volumes.push_back(std::move(v));
  }
  c.seconds = SecondsSince(start);
  return c;
}

}  // namespace dfrp::economy
