#include "dfrp/compute/executor.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "dfrp/crypto/merkle.h"

extern char** environ;

namespace dfrp::compute {

using core::Err;
using core::Result;
using core::Status;

#ifndef DFRP_LIBEXEC_BUILD_DIR
#define DFRP_LIBEXEC_BUILD_DIR ""
#endif

std::string DefaultLibexecDir(core::FileSystem& fs) {
  if (const char* e = std::getenv("DFRP_LIBEXEC"); e != nullptr && e[0] != '\0') return e;
  const std::string build = DFRP_LIBEXEC_BUILD_DIR;
  if (!build.empty() && fs.IsDirectory(build)) return build;
  return "/usr/local/libexec/dfrp";
}

crypto::Hash OutputRoot(std::string_view data) { return crypto::MerkleRoot(data, kResultLeafSize); }

Result<RankOutput> HashOutput(core::FileSystem& fs, const std::string& path, uint32_t rank) {
  DFRP_ASSIGN_OR_RETURN(auto f, fs.OpenForRead(path));
  DFRP_ASSIGN_OR_RETURN(uint64_t size, f->Size());
  std::vector<crypto::Hash> leaves;
  leaves.reserve(size / kResultLeafSize + 1);
  std::string buf(1 << 20, '\0');
  uint64_t off = 0;
  while (off < size) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - off));
    DFRP_RETURN_IF_ERROR(f->ReadExactCached(off, want, buf.data()));
    for (size_t i = 0; i < want; i += kResultLeafSize)
      leaves.push_back(crypto::LeafHash(
          std::string_view(buf.data() + i, std::min<size_t>(kResultLeafSize, want - i))));
    off += want;
  }
  RankOutput o;
  o.rank = rank;
  o.size = size;
  o.root = crypto::RootFromLeafHashes(leaves);  // EmptyRoot() for no bytes, as MerkleRoot
  return o;
}

Result<std::vector<RankOutput>> HashResults(core::FileSystem& fs, const std::string& job_dir,
                                            uint32_t ranks) {
  std::vector<RankOutput> out;
  out.reserve(ranks);
  for (uint32_t r = 0; r < ranks; ++r) {
    DFRP_ASSIGN_OR_RETURN(
        auto o, HashOutput(fs, core::JoinPath(job_dir, fmt::format("results/rank-{}.out", r)), r));
    out.push_back(o);
  }
  return out;
}

namespace {

std::string Tail(const std::string& s, size_t n) {
  return s.size() <= n ? s : "..." + s.substr(s.size() - n);
}

// The last `n` bytes of a file the job wrote (it may be large), "" when unreadable.
std::string ReadTail(core::FileSystem& fs, const std::string& path, size_t n) {
  auto f = fs.OpenForRead(path);
  if (!f) return "";
  auto size = (*f)->Size();
  if (!size) return "";
  const uint64_t from = *size > n ? *size - n : 0;
  std::string buf(static_cast<size_t>(*size - from), '\0');
  auto got = (*f)->Read(from, buf.size(), buf.data());
  if (!got) return "";
  buf.resize(*got);
  return from > 0 ? "..." + buf : buf;
}

}  // namespace

Result<RunReport> RunJob(core::FileSystem& fs, const ExecutorConfig& cfg, const RunRequest& req) {
  if (req.job_dir.empty() || req.job_dir[0] != '/')
    return Err(Status::InvalidArgument("job folder: give an absolute path"));
  const std::string report_path = core::JoinPath(req.job_dir, "report.json");
  if (fs.Exists(report_path))
    return Err(Status::InvalidArgument(fmt::format(
        "job folder {} already holds a run's report; give each run a new folder", req.job_dir)));
  DFRP_RETURN_IF_ERROR(fs.CreateDirRecursive(req.job_dir));
  const std::string jobrun =
      cfg.jobrun.empty() ? core::JoinPath(DefaultLibexecDir(fs), "dfrp-jobrun") : cfg.jobrun;
  if (!fs.Exists(jobrun))
    return Err(Status::Unavailable(
        fmt::format("{} is missing: build the project (it builds dfrp-jobrun beside the reference "
                    "apps) or set DFRP_LIBEXEC",
                    jobrun)));

  std::vector<std::string> av = {jobrun,
                                 "--job-dir",
                                 req.job_dir,
                                 "--ranks",
                                 std::to_string(req.ranks),
                                 "--cpu-seconds",
                                 std::to_string(req.limits.cpu_seconds),
                                 "--memory-bytes",
                                 std::to_string(req.limits.memory_bytes),
                                 "--wall-seconds",
                                 std::to_string(req.limits.wall_seconds),
                                 "--max-output-bytes",
                                 std::to_string(cfg.max_output_bytes),
                                 "--mpirun",
                                 cfg.mpirun};
  if (!cfg.job_user.empty()) {
    av.push_back("--user");
    av.push_back(cfg.job_user);
  }
  if (req.sandbox) {
    av.push_back("--sandbox");
    av.push_back(cfg.bwrap);
  }
  if (!cfg.hostfile.empty() && !req.sandbox) {
    av.push_back("--hostfile");
    av.push_back(cfg.hostfile);
  }
  if (!cfg.rsh_agent.empty() && !req.sandbox) {
    av.push_back("--rsh-agent");
    av.push_back(cfg.rsh_agent);
  }
  av.push_back("--");
  av.push_back(req.program);
  for (const auto& a : req.args) av.push_back(a);
  std::vector<char*> argv;
  for (auto& s : av) argv.push_back(s.data());
  argv.push_back(nullptr);

  const std::string err_path = core::JoinPath(req.job_dir, "jobrun.err");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  // None of the node's descriptors (its sockets are not close-on-exec) and none of its
  // blocked or ignored signals (dfrpd blocks SIGTERM in every thread and ignores SIGPIPE)
  // pass to dfrp-jobrun; it resets both again for the job.
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, jobrun.c_str(), &fa, &attr, argv.data(), environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0)
    return Err(Status::Unavailable(fmt::format("cannot start {}: {}", jobrun, std::strerror(rc))));
  if (req.on_pid) req.on_pid(pid);
  int status = 0;
  int werr = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      werr = errno;
      break;
    }
  }
  // Reaped: the pid may be reused from here on.
  if (req.on_pid) req.on_pid(0);
  if (werr != 0)
    return Err(Status::Internal(fmt::format("waiting for {}: {}", jobrun, std::strerror(werr))));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !fs.Exists(report_path)) {
    auto err = core::ReadWholeFile(&fs, err_path);
    std::string why = err.has_value() ? *err : std::string();
    while (!why.empty() && why.back() == '\n') why.pop_back();
    return Err(Status::Unavailable(fmt::format(
        "the job could not be run: {}",
        why.empty() ? fmt::format("dfrp-jobrun ended with status {}", status) : Tail(why, 2000))));
  }
  DFRP_ASSIGN_OR_RETURN(std::string text, core::ReadWholeFile(&fs, report_path));
  RunReport rep;
  try {
    const auto j = nlohmann::json::parse(text);
    rep.end = j.at("end").get<std::string>();
    rep.exit_code = j.at("exit_code").get<int>();
    rep.signal = j.at("signal").get<int>();
    rep.usage.cpu_ms = j.at("cpu_ms").get<uint64_t>();
    rep.usage.wall_ms = j.at("wall_ms").get<uint64_t>();
    rep.usage.max_rss_bytes = j.at("max_rss_bytes").get<uint64_t>();
    rep.killed_stragglers = j.at("killed_stragglers").get<int>();
    rep.user = j.at("user").get<std::string>();
    rep.limits = j.at("limits").get<std::string>();
    rep.problem = j.at("problem").get<std::string>();
    if (j.contains("cgroup")) {
      const auto& cg = j.at("cgroup");
      rep.cgroup = cg.at("version").get<std::string>();
      rep.cgroup_paths = cg.at("paths").get<std::vector<std::string>>();
      rep.memory_peak_bytes = cg.at("memory_peak_bytes").get<uint64_t>();
      rep.oom_kills = cg.at("oom_kills").get<uint64_t>();
      rep.forks_refused = cg.at("forks_refused").get<uint64_t>();
    }
  } catch (const nlohmann::json::exception& e) {
    return Err(Status::Corruption(fmt::format("{}: {}", report_path, e.what())));
  }
  if (!rep.ok()) {
    rep.log_tail = ReadTail(fs, core::JoinPath(req.job_dir, "mpirun.log"), 4000);
    return rep;
  }
  DFRP_ASSIGN_OR_RETURN(rep.outputs, HashResults(fs, req.job_dir, req.ranks));
  DFRP_ASSIGN_OR_RETURN(rep.result_root, ResultRoot(rep.outputs));
  return rep;
}

}  // namespace dfrp::compute
