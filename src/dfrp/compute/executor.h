// Runs a job's app under mpirun through dfrp-jobrun (apps/dfrp-jobrun: the process that owns
// the job's process tree, its limits and its unprivileged user), then hashes each rank's output
// into the job's result set.
//
// The node never forks mpirun itself: it posix_spawns dfrp-jobrun and waits for it, so this is
// safe to call from any thread of a multithreaded daemon. A call blocks until the job ends
// (at most its wall-time limit plus a few seconds).
//
// Thread-safety: RunJob may be called from several threads at once, each for its own job
// folder.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "dfrp/compute/job.h"
#include "dfrp/core/file_system.h"
#include "dfrp/core/status.h"

namespace dfrp::compute {

struct ExecutorConfig {
  std::string jobrun;                 // dfrp-jobrun's path; empty: DefaultLibexecDir()/dfrp-jobrun
  std::string mpirun = "mpirun";      // Open MPI's launcher, on PATH or a path
  std::string job_user = "dfrp-job";  // the user jobs run as when the node runs as root
  std::string hostfile;               // an Open MPI hostfile: ranks across an operator's hosts
  std::string rsh_agent;              // how mpirun reaches those hosts (plm_rsh_agent)
  std::string bwrap = "bwrap";        // bubblewrap, for a sandboxed run (RunRequest::sandbox)
  uint64_t max_output_bytes = 1ULL << 30;  // per file a rank writes (RLIMIT_FSIZE)
};

struct RunRequest {
  std::string program;  // absolute path of the app
  std::vector<std::string> args;
  uint32_t ranks = 1;
  JobLimits limits;
  std::string job_dir;  // absolute; created; must not hold an earlier run's report.json
  // A client's own binary: dfrp-jobrun copies `program` into the job folder and runs mpirun
  // inside bubblewrap (no network, read-only system, the job folder only), on this host alone.
  bool sandbox = false;
  // Told dfrp-jobrun's pid once it started (SIGTERM to it stops the job, reported
  // "stopped"), and 0 once it was reaped (the pid is no longer the job's).
  std::function<void(pid_t)> on_pid;
};

// How a run ended, as dfrp-jobrun saw it.
struct RunReport {
  // "exited" (every rank wrote its output and mpirun exited 0), "failed" (a non-zero exit),
  // "signal", "wall-time" (killed at the wall-time limit), "stopped" (the node stopped it) or
  // "incomplete" (exited 0 but a rank's output is missing or not a regular file).
  std::string end;
  int exit_code = -1;
  int signal = 0;
  JobUsage usage;
  std::string user;    // who the job ran as
  std::string limits;  // how its limits were enforced, and why not through cgroups
  // The job's cgroup ("v2", "v1"; empty when it had none, and `limits` says why): what it
  // measured of the whole job.
  std::string cgroup;
  std::vector<std::string> cgroup_paths;  // its folders (removed when the job ended)
  uint64_t memory_peak_bytes = 0;         // the job's memory at its highest
  uint64_t oom_kills = 0;                 // processes the kernel killed at the job's memory limit
  uint64_t forks_refused = 0;             // forks refused at the job's task limit
  std::string problem;                    // what was wrong with the outputs, if anything
  int killed_stragglers = 0;
  std::string log_tail;  // the end of mpirun's output (mpirun.log), for a failed run
  // When end == "exited": each rank's output in results/ and the root over them.
  std::vector<RankOutput> outputs;
  crypto::Hash result_root{};
  bool ok() const { return end == "exited"; }
};

// Where the reference apps and dfrp-jobrun are: $DFRP_LIBEXEC when set, else the build's
// libexec folder when it exists (a build tree), else /usr/local/libexec/dfrp.
std::string DefaultLibexecDir(core::FileSystem& fs);

// Runs the job; an error only when it could not be run at all (dfrp-jobrun missing, the job
// user missing, the folder unusable): Unavailable, naming the cause. A job that fails, runs
// out of time or breaks a limit is a report with ok() false.
core::Result<RunReport> RunJob(core::FileSystem& fs, const ExecutorConfig& cfg,
                               const RunRequest& req);

// The Merkle root of a rank's output (leaves of kResultLeafSize; EmptyRoot() for no bytes).
crypto::Hash OutputRoot(std::string_view data);
// OutputRoot and the size of the file at `path`, read a MiB at a time.
core::Result<RankOutput> HashOutput(core::FileSystem& fs, const std::string& path, uint32_t rank);
// Hashes results/rank-<r>.out of a finished job folder for r in 0..ranks-1.
core::Result<std::vector<RankOutput>> HashResults(core::FileSystem& fs, const std::string& job_dir,
                                                  uint32_t ranks);

}  // namespace dfrp::compute
