// The capacity measurement behind the pricing oracle (`dfrp-market measure`): how many SHA-256
// hashes the node's cores do per second, the GPU's FP32 throughput where one exists, and per
// volume the 4 KiB random-read IOPS and the sequential read and write bandwidth.
//
// It measures the machine itself, so unlike the rest of dfrp it reads the monotonic clock
// directly (std::chrono::steady_clock, for elapsed time only) and writes and reads a test
// file with raw POSIX calls and O_DIRECT, bypassing core::FileSystem (scripts/lint_io_allow.txt
// says so). The wall-clock stamp (measured_unix_ms) still comes from the core::Clock passed in.
//
// The test file is `<folder>/.dfrp-measure-<pid>`; it is removed before MeasureCapacity
// returns, also when a step fails. Its size is bounded: 64 MiB quick, 512 MiB full, never more
// than half of the file system's free space. A volume that cannot be measured (missing
// folder, read-only, no space) gets its `error` and the other volumes are still measured.
//
// Figures are comparable with `fio` and `openssl speed`: bench/measure_vs_tools.sh runs both
// side by side with bench/measure_main.cc.
//
// Thread-safety: MeasureCapacity is reentrant but loads every core and disk while it runs, so
// run one at a time; CapacityToJson / CapacityFromJson are pure functions on values.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dfrp/core/clock.h"
#include "dfrp/core/status.h"

namespace dfrp::economy {

struct VolumeCapacity {
  uint32_t index = 0;
  std::string path;
  std::optional<double> read_iops_4k;      // 4 KiB random reads per second, queue depth 1
  std::optional<double> read_mb_per_sec;   // sequential 1 MiB reads (MB = 10^6 bytes)
  std::optional<double> write_mb_per_sec;  // sequential 1 MiB writes, then fdatasync (timed)
  // False when the file system refuses O_DIRECT (tmpfs): then the writes are buffered and
  // synced, and the page cache is dropped (posix_fadvise DONTNEED) before the reads.
  bool direct_io = true;
  std::string error;  // why the volume could not be measured; empty when it was
};

struct Capacity {
  unsigned cores = 0;
  double sha256_per_sec_one_core = 0;   // SHA-256 of 64-byte inputs per second, one thread
  double sha256_per_sec_all_cores = 0;  // the same with one thread per core, summed
  std::optional<double> gpu_tflops;     // FP32 SGEMM, when a GPU and its runtime exist
  std::string gpu_reason;               // why gpu_tflops is absent; empty when measured
  std::vector<VolumeCapacity> volumes;
  int64_t measured_unix_ms = 0;
  double seconds = 0;  // how long the whole measurement took
  bool quick = false;
};

struct MeasureOptions {
  bool quick = false;            // whole measurement under 30 s on a 2-core VM with 2 volumes
  core::Clock* clock = nullptr;  // for measured_unix_ms; required
  std::function<void(const std::string&)> progress;  // one line per step; may be empty
  // Overrides for tests and tools; 0 keeps the default of the mode (quick / full).
  uint64_t file_bytes = 0;         // test file size (default 64 MiB quick, 512 MiB full)
  double random_read_seconds = 0;  // default 2 s quick, 5 s full
  double hash_seconds = 0;         // per hash run (one core, all cores); default 1 s / 3 s
  double gpu_seconds = 0;          // SGEMM timing; default 1 s / 3 s
};

// Measures the cores, the GPU and each (index, folder) volume. Fails only on a bad option
// (InvalidArgument: no clock); what a volume's failure says is in its VolumeCapacity::error.
core::Result<Capacity> MeasureCapacity(const std::vector<std::pair<uint32_t, std::string>>& volumes,
                                       const MeasureOptions& opt);

// The GPU step alone: FP32 TFLOPS of an SGEMM through libcuda and libcublas found with
// dlopen, or no value and a reason ("no NVIDIA driver: libcuda.so.1 not found").
struct GpuMeasurement {
  std::optional<double> tflops;
  std::string reason;
};
GpuMeasurement MeasureGpuFp32(double seconds);

// The hash-rate step alone, by either method, on `threads` threads released together (the
// rate is the total over the slowest thread's time):
//   kNode         the node's own SHA-256 (crypto::Sha256Of: OpenSSL's low-level functions on a
//                 context on the stack), what MeasureCapacity reports and prices;
//   kEvpPerInput  one EVP_Digest call per input on a digest fetched once, the loop that
//                 `openssl speed sha256` times; bench/measure_vs_tools.sh compares this one with
//                 openssl to show the timing harness agrees with it (docs/BENCHMARKS.md).
enum class HashMethod { kNode, kEvpPerInput };
double MeasureHashRate(unsigned threads, double seconds, HashMethod method = HashMethod::kNode);

// snake_case keys as in the structs; null for an absent optional.
nlohmann::json CapacityToJson(const Capacity& c);
// The inverse, for STATE_DIR/capacity.json. InvalidArgument naming the bad field
// ("capacity.json: volumes[0].read_iops_4k: ...") on a missing or unknown key, a wrong type,
// or a figure that is negative or not finite.
core::Result<Capacity> CapacityFromJson(const nlohmann::json& j);

}  // namespace dfrp::economy
