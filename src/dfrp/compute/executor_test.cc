// The executor against a real mpirun (Open MPI), the project's reference apps and a
// misbehaving app (dfrp-app-hog): determinism, correctness against a serial computation,
// every limit, processes left behind, the job user.
#include "dfrp/compute/executor.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace dfrp::compute {
namespace {

std::string Libexec() {
  const char* b = std::getenv("DFRP_BINARY_DIR");
  return std::string(b != nullptr ? b : ".") + "/libexec";
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Processes working in a folder under `dir` (a job's processes start in its home/): what a
// job left running, whatever other tests run at the same time.
int CountProcessesIn(const std::string& dir) {
  int n = 0;
  DIR* d = opendir("/proc");
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    char buf[4096];
    const ssize_t len =
        readlink((std::string("/proc/") + e->d_name + "/cwd").c_str(), buf, sizeof buf - 1);
    if (len > 0 && std::string(buf, static_cast<size_t>(len)).rfind(dir + "/", 0) == 0) ++n;
  }
  closedir(d);
  return n;
}

// Processes whose command line mentions `needle` (the job's leftovers).
int CountProcesses(const std::string& needle) {
  int n = 0;
  DIR* d = opendir("/proc");
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    const std::string cmd = ReadFile(std::string("/proc/") + e->d_name + "/cmdline");
    if (cmd.find(needle) != std::string::npos) ++n;
  }
  closedir(d);
  return n;
}

// Same splitmix64 finalizer as the apps (apps/app_common.h), for the serial check.
uint64_t Mix(uint64_t seed, uint64_t stream, uint64_t index) {
  uint64_t z = seed ^ (stream * 0x9e3779b97f4a7c15ULL) ^ (index * 0xbf58476d1ce4e5b9ULL);
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

class ExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dfrp-exec-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    // The job user (dfrp-job, when the tests run as root) must be able to reach job folders.
    ASSERT_EQ(chmod(dir_.c_str(), 0711), 0);
    for (const char* app : {"dfrp-jobrun", "dfrp-app-matmul", "dfrp-app-hog"})
      ASSERT_EQ(access((Libexec() + "/" + app).c_str(), X_OK), 0)
          << Libexec() << "/" << app << " is not built (is libopenmpi-dev installed?)";
  }
  void TearDown() override {
    if (!dir_.empty()) std::system(("rm -rf " + dir_).c_str());
  }

  RunReport Run(const std::string& app, std::vector<std::string> args, uint32_t ranks,
                JobLimits limits = {.cpu_seconds = 60,
                                    .gpu_seconds = 0,
                                    .memory_bytes = 2ULL << 30,
                                    .wall_seconds = 60}) {
    RunRequest req;
    req.program = Libexec() + "/" + app;
    req.args = std::move(args);
    req.ranks = ranks;
    req.limits = limits;
    req.job_dir = dir_ + "/job-" + std::to_string(++runs_);
    auto rep = RunJob(*core::DefaultFileSystem(), cfg_, req);
    EXPECT_TRUE(rep.has_value()) << rep.status().ToString();
    last_dir_ = req.job_dir;
    return rep.has_value() ? *rep : RunReport{};
  }

  std::string Output(uint32_t rank) {
    return ReadFile(last_dir_ + "/results/rank-" + std::to_string(rank) + ".out");
  }

  ExecutorConfig cfg_;
  std::string dir_;
  std::string last_dir_;
  int runs_ = 0;
};

TEST_F(ExecutorTest, MatmulIsBitwiseDeterministicAndMatchesASerialProduct) {
  const uint64_t n = 48;
  const uint64_t seed = 7;
  const RunReport a = Run("dfrp-app-matmul", {"48", "7"}, 3);
  ASSERT_TRUE(a.ok()) << a.end << " " << a.problem << "\n" << a.log_tail;
  std::string all;
  for (uint32_t r = 0; r < 3; ++r) all += Output(r);
  const RunReport b = Run("dfrp-app-matmul", {"48", "7"}, 3);
  ASSERT_TRUE(b.ok()) << b.log_tail;
  EXPECT_EQ(a.result_root, b.result_root);
  EXPECT_EQ(a.outputs, b.outputs);
  ASSERT_EQ(all.size(), n * n * 8);
  auto entry = [&](uint64_t m, uint64_t i, uint64_t j) {
    return static_cast<int64_t>(Mix(seed, m, i * n + j) % 33) - 16;
  };
  for (uint64_t i = 0; i < n; ++i)
    for (uint64_t j = 0; j < n; ++j) {
      int64_t want = 0;
      for (uint64_t k = 0; k < n; ++k) want += entry(1, i, k) * entry(2, k, j);
      int64_t got = 0;
      std::memcpy(&got, all.data() + (i * n + j) * 8, 8);  // little-endian host
      ASSERT_EQ(got, want) << "C[" << i << "][" << j << "]";
    }
  // One rank computes the same matrix (the rows are only split differently).
  const RunReport one = Run("dfrp-app-matmul", {"48", "7"}, 1);
  ASSERT_TRUE(one.ok()) << one.log_tail;
  EXPECT_EQ(Output(0), all);
  EXPECT_NE(one.result_root, a.result_root);  // a different rank split is a different set
  EXPECT_GT(a.usage.wall_ms, 0u);
  EXPECT_GT(a.usage.max_rss_bytes, 0u);
}

TEST_F(ExecutorTest, MonteCarloTotalIsTheSameForAnyRankCount) {
  std::string total;
  for (uint32_t ranks : {1u, 2u, 4u}) {
    const RunReport rep = Run("dfrp-app-montecarlo", {"200000", "11"}, ranks);
    ASSERT_TRUE(rep.ok()) << rep.log_tail;
    for (uint32_t r = 0; r < ranks; ++r) {
      const std::string line = Output(r);
      const std::string t = line.substr(line.find(" total-hits "));
      if (total.empty()) total = t;
      EXPECT_EQ(t, total) << "rank " << r << " of " << ranks;
    }
  }
  // pi to a few digits: 200000 samples give about 3.14 +- 0.01.
  const uint64_t pi_e9 = std::stoull(total.substr(total.find("pi-e9 ") + 6));
  EXPECT_NEAR(static_cast<double>(pi_e9) / 1e9, 3.14159, 0.02);
}

TEST_F(ExecutorTest, KnnMergedAnswerIsTheSameForOneTwoAndFourRanks) {
  std::string answer;
  for (uint32_t ranks : {1u, 2u, 4u}) {
    const RunReport rep = Run("dfrp-app-knn", {"3000", "16", "5", "8", "3"}, ranks);
    ASSERT_TRUE(rep.ok()) << rep.log_tail;
    if (answer.empty()) answer = Output(0);
    EXPECT_EQ(Output(0), answer) << ranks << " ranks";
  }
  // 8 queries × 5 neighbours, distances never decreasing within a query.
  std::istringstream in(answer);
  std::string q;
  uint64_t qi = 0, pos = 0, idx = 0, dist = 0, lines = 0, last = 0;
  while (in >> q >> qi >> pos >> idx >> dist) {
    if (pos > 0) {
      EXPECT_GE(dist, last);
    }
    last = dist;
    EXPECT_LT(idx, 3000u);
    ++lines;
  }
  EXPECT_EQ(lines, 40u);
}

TEST_F(ExecutorTest, ATamperedRankOutputNoLongerProvesAgainstTheRoot) {
  const RunReport rep = Run("dfrp-app-montecarlo", {"10000", "5"}, 3);
  ASSERT_TRUE(rep.ok()) << rep.log_tail;
  const auto proof = ResultProof(rep.outputs, 1);
  auto fresh = HashResults(*core::DefaultFileSystem(), last_dir_, 3);
  ASSERT_TRUE(fresh.has_value());
  EXPECT_TRUE(VerifyRankOutput((*fresh)[1], 3, proof, rep.result_root));
  {
    std::ofstream f(last_dir_ + "/results/rank-1.out", std::ios::binary | std::ios::app);
    f << "x";
  }
  fresh = HashResults(*core::DefaultFileSystem(), last_dir_, 3);
  ASSERT_TRUE(fresh.has_value());
  EXPECT_FALSE(VerifyRankOutput((*fresh)[1], 3, proof, rep.result_root));
  EXPECT_NE(*ResultRoot(*fresh), rep.result_root);
}

TEST_F(ExecutorTest, RunsAsTheJobUserNeverRoot) {
  const RunReport rep = Run("dfrp-app-hog", {"sleep", "0"}, 1);
  ASSERT_TRUE(rep.ok()) << rep.end << " " << rep.log_tail;
  if (geteuid() == 0) {
    EXPECT_EQ(rep.user, "dfrp-job");
    struct stat st {};
    // The results are root's copies, in a folder only root may enter; what the job user
    // made (out/, tmp/, home/) is gone with the job.
    ASSERT_EQ(stat((last_dir_ + "/results").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 0u);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    ASSERT_EQ(stat((last_dir_ + "/results/rank-0.out").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 0u);
    EXPECT_NE(stat((last_dir_ + "/out").c_str(), &st), 0);
    EXPECT_NE(stat((last_dir_ + "/home").c_str(), &st), 0);
    // A job user that does not exist: refused with the way out, nothing run as root.
    cfg_.job_user = "dfrp-no-such-user";
    RunRequest req;
    req.program = Libexec() + "/dfrp-app-hog";
    req.args = {"sleep", "0"};
    req.limits = {.cpu_seconds = 5, .gpu_seconds = 0, .memory_bytes = 1 << 30, .wall_seconds = 5};
    req.job_dir = dir_ + "/nouser";
    auto r = RunJob(*core::DefaultFileSystem(), cfg_, req);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.status().code(), core::Status::Code::kUnavailable);
    EXPECT_NE(r.status().message().find("dfrp-no-such-user"), std::string::npos);
    EXPECT_NE(r.status().message().find("setup.sh"), std::string::npos);
  } else {
    EXPECT_FALSE(rep.user.empty());
  }
  EXPECT_NE(rep.limits.find("rlimits"), std::string::npos);
}

TEST_F(ExecutorTest, WallTimeLimitKillsTheWholeJob) {
  const RunReport rep =
      Run("dfrp-app-hog", {"sleep", "60"}, 2,
          {.cpu_seconds = 60, .gpu_seconds = 0, .memory_bytes = 1 << 30, .wall_seconds = 2});
  EXPECT_EQ(rep.end, "wall-time");
  EXPECT_FALSE(rep.ok());
  EXPECT_TRUE(rep.outputs.empty());
  EXPECT_GE(rep.usage.wall_ms, 2000u);
  EXPECT_LT(rep.usage.wall_ms, 30000u);
  EXPECT_EQ(CountProcesses(last_dir_), 0);
}

TEST_F(ExecutorTest, CpuLimitStopsASpinningRank) {
  const RunReport rep =
      Run("dfrp-app-hog", {"spin", "40"}, 1,
          {.cpu_seconds = 1, .gpu_seconds = 0, .memory_bytes = 1 << 30, .wall_seconds = 60});
  EXPECT_FALSE(rep.ok());
  EXPECT_NE(rep.end, "wall-time");
  EXPECT_LT(rep.usage.wall_ms, 30000u);
}

TEST_F(ExecutorTest, MemoryLimitStopsAnAllocatingRank) {
  const RunReport rep =
      Run("dfrp-app-hog", {"alloc", "1024"}, 1,
          {.cpu_seconds = 60, .gpu_seconds = 0, .memory_bytes = 256ULL << 20, .wall_seconds = 60});
  EXPECT_FALSE(rep.ok());
  EXPECT_LT(rep.usage.max_rss_bytes, 512ULL << 20);
  // The same app within its limit succeeds, so the limit is what stopped it.
  const RunReport fits =
      Run("dfrp-app-hog", {"alloc", "16"}, 1,
          {.cpu_seconds = 60, .gpu_seconds = 0, .memory_bytes = 256ULL << 20, .wall_seconds = 60});
  EXPECT_TRUE(fits.ok()) << fits.end << " " << fits.log_tail;
}

TEST_F(ExecutorTest, AnAppThatForksPastItsLimitIsStoppedAndCleanedUp) {
  const RunReport rep = Run("dfrp-app-hog", {"fork", "2000"}, 1);
  EXPECT_FALSE(rep.ok());
  EXPECT_EQ(CountProcesses(last_dir_), 0);
  EXPECT_EQ(CountProcessesIn(last_dir_), 0);
}

// This process's cgroup in the v1 hierarchy of `controller` (as /proc/self/cgroup names it).
std::string OwnV1Cgroup(const std::string& controller) {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    const size_t a = line.find(':'), b = line.find(':', a + 1);
    if (b == std::string::npos) continue;
    if (("," + line.substr(a + 1, b - a - 1) + ",").find("," + controller + ",") ==
        std::string::npos)
      continue;
    const std::string path = line.substr(b + 1);
    return "/sys/fs/cgroup/" + controller + (path == "/" ? "" : path);
  }
  return "";
}

// Whether a root process can make a child cgroup in the v1 memory and pids hierarchies here
// (what dfrp-jobrun uses when cgroup v2 delegates nothing).
bool V1CgroupsWritable() {
  if (geteuid() != 0) return false;
  for (const std::string c : {"memory", "pids"}) {
    const std::string own = OwnV1Cgroup(c);
    if (own.empty()) return false;
    const std::string probe = own + "/dfrp-test-probe-" + std::to_string(getpid());
    if (mkdir(probe.c_str(), 0755) != 0) return false;
    rmdir(probe.c_str());
  }
  return true;
}

TEST_F(ExecutorTest, TheJobRunsInACgroupOfItsOwnWhereTheMachineAllows) {
  const RunReport rep = Run("dfrp-app-hog", {"fork", "2000"}, 1);
  EXPECT_FALSE(rep.ok());
  EXPECT_EQ(CountProcessesIn(last_dir_), 0);
  if (rep.cgroup.empty()) {
    // No cgroup: the report says why, and rlimits stopped the fork bomb.
    EXPECT_FALSE(V1CgroupsWritable())
        << "v1 cgroups are writable here, yet the job had none: " << rep.limits;
    EXPECT_NE(rep.limits.find("no job cgroup: "), std::string::npos) << rep.limits;
    return;
  }
  // The job's cgroup refused its forks past the task limit, measured it, and is gone.
  EXPECT_NE(rep.limits.find("cgroup " + rep.cgroup + ": "), std::string::npos) << rep.limits;
  EXPECT_GT(rep.forks_refused, 0u) << rep.limits;
  EXPECT_GT(rep.memory_peak_bytes, 0u);
  EXPECT_EQ(rep.oom_kills, 0u);
  ASSERT_FALSE(rep.cgroup_paths.empty());
  for (const std::string& path : rep.cgroup_paths) {
    EXPECT_NE(path.find("/dfrp-job-"), std::string::npos) << path;
    struct stat st {};
    EXPECT_NE(stat(path.c_str(), &st), 0) << "the job's cgroup was left behind: " << path;
  }
  // A job within its limits runs in one too, and refuses it nothing.
  const RunReport fits = Run("dfrp-app-hog", {"spin", "1"}, 2);
  EXPECT_TRUE(fits.ok()) << fits.end << " " << fits.log_tail;
  EXPECT_EQ(fits.cgroup, rep.cgroup);
  EXPECT_EQ(fits.forks_refused, 0u);
  EXPECT_EQ(fits.oom_kills, 0u);
  EXPECT_GT(fits.usage.cpu_ms, 0u);
}

TEST_F(ExecutorTest, ProcessesLeftBehindAreKilled) {
  const RunReport rep = Run("dfrp-app-hog", {"orphan", "120"}, 2);
  EXPECT_TRUE(rep.ok()) << rep.end << " " << rep.log_tail;
  EXPECT_GE(rep.killed_stragglers, 2);
  EXPECT_EQ(CountProcessesIn(last_dir_), 0);
}

TEST_F(ExecutorTest, AMissingRankOutputIsIncompleteNotAResult) {
  const RunReport rep = Run("dfrp-app-hog", {"skip", "1"}, 3);
  EXPECT_EQ(rep.end, "incomplete");
  EXPECT_NE(rep.problem.find("rank 1"), std::string::npos) << rep.problem;
  EXPECT_TRUE(rep.outputs.empty());
}

TEST_F(ExecutorTest, ASymlinkOutputIsRefusedNeverFollowed) {
  const RunReport rep = Run("dfrp-app-hog", {"link", "0"}, 2);
  EXPECT_EQ(rep.end, "incomplete");
  EXPECT_NE(rep.problem.find("not a regular file"), std::string::npos) << rep.problem;
  struct stat st {};
  EXPECT_NE(lstat((last_dir_ + "/results/rank-0.out").c_str(), &st), 0);
}

TEST_F(ExecutorTest, AnAppThatFailsIsAFailedRunWithItsLog) {
  const RunReport rep = Run("dfrp-app-matmul", {"0", "1"}, 2);  // N=0: a usage error, exit 2
  EXPECT_FALSE(rep.ok());
  EXPECT_EQ(rep.end, "failed");
  EXPECT_NE(rep.log_tail.find("usage"), std::string::npos) << rep.log_tail;
}

}  // namespace
}  // namespace dfrp::compute
