// dfrp-jobrun: runs one compute job under mpirun inside its limits and reports what happened.
//
// The node does not fork and babysit mpirun itself: dfrpd is multithreaded, and a child of a
// multithreaded process may only call async-signal-safe functions until it execs. So the node
// posix_spawns this small program, which owns the job from start to end:
//
//   1. becomes a session leader and a child subreaper (PR_SET_CHILD_SUBREAPER), so every
//      process the job starts, even one that daemonizes, stays below it and can be killed;
//      asks for SIGTERM when the node dies (PR_SET_PDEATHSIG), and then kills the job;
//   2. makes the job's folders (out/, tmp/, home/) and, when it runs as root, gives them to the
//      unprivileged job user; a job never runs as root, and without --user root is refused;
//   3. forks mpirun in a cgroup of the job's own where the machine allows it (memory and tasks
//      for the whole job, its CPU time measured; see MakeJobCgroup) and with the job's
//      rlimits (CPU seconds per process, data segment per
//      process, processes of the job user, file size, no core dumps), a clean environment
//      (PATH, HOME and TMPDIR inside the job, DFRP_OUT_DIR) and the job user's ids;
//   4. waits up to the wall-time limit, then SIGTERM, 2 s of grace, SIGKILL; after mpirun
//      ends, kills whatever the job left behind (and anything left in its cgroup), reaps it
//      and removes the cgroup;
//      With --sandbox BWRAP (a client's own binary), the program is first copied into the job
//      folder (bin/app, the node's, mode 0755) and mpirun runs inside bubblewrap: no network
//      (a private loopback), its own IPC, PID and UTS namespaces, /usr and /etc read-only, an
//      empty /tmp, and of the job folder only bin/ (read-only), out/, tmp/ and home/;
//      one host only (no hostfile);
//   5. moves each rank-<r>.out out of the job user's reach into results/ (a folder the job
//      user cannot write), refusing anything but a regular file, and writes report.json
//      (synced, then renamed into place).
//
// usage: dfrp-jobrun --job-dir DIR --ranks N --cpu-seconds S --memory-bytes B --wall-seconds S
//                    [--user NAME] [--mpirun PATH] [--hostfile FILE] [--rsh-agent CMD]
//                    [--max-output-bytes B] [--nproc-headroom N] [--sandbox BWRAP]
//                    -- PROGRAM [ARGS...]
// Exit: 0 when report.json was written (whatever the job did), 2 for usage errors, 1 when the
// job could not be set up (the reason on stderr).
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <linux/close_range.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

volatile sig_atomic_t g_stop = 0;
void OnStop(int) { g_stop = 1; }

// mpirun's pid, and once it is reaped (by whichever wait found it), its status and rusage:
// the usage of mpirun and of every process it reaped, which on one host are the ranks.
pid_t g_main = -1;
bool g_main_reaped = false;
int g_main_status = 0;
rusage g_main_usage{};

// Reaps every child that has ended, keeping mpirun's status when it is among them.
void ReapEnded() {
  for (;;) {
    int st = 0;
    rusage ru{};
    const pid_t p = wait4(-1, &st, WNOHANG, &ru);
    if (p <= 0) return;
    if (p == g_main) {
      g_main_reaped = true;
      g_main_status = st;
      g_main_usage = ru;
    }
  }
}

[[noreturn]] void Die(int code, const std::string& msg) {
  std::fprintf(stderr, "dfrp-jobrun: %s\n", msg.c_str());
  std::exit(code);
}

int64_t NowMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

uint64_t ParseU64(const char* text, const char* flag) {
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || text[0] == '-')
    Die(2, std::string(flag) + ": '" + text + "' is not a whole number");
  return v;
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// The direct children of this process (the subreaper adopts every orphan of the job).
std::vector<pid_t> Children() {
  std::vector<pid_t> out;
  const std::string path =
      "/proc/" + std::to_string(getpid()) + "/task/" + std::to_string(getpid()) + "/children";
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return out;
  long p = 0;
  while (std::fscanf(f, "%ld", &p) == 1) out.push_back(static_cast<pid_t>(p));
  std::fclose(f);
  return out;
}

// Every process below this one, children first. Reads /proc/<pid>/task/<tid>/children of
// each thread, which lists the processes that thread started.
std::vector<pid_t> Descendants() {
  std::vector<pid_t> out;
  std::vector<pid_t> frontier = Children();
  while (!frontier.empty() && out.size() < 100000) {
    const pid_t p = frontier.back();
    frontier.pop_back();
    out.push_back(p);
    const std::string tasks = "/proc/" + std::to_string(p) + "/task";
    if (DIR* d = opendir(tasks.c_str())) {
      while (dirent* e = readdir(d)) {
        if (e->d_name[0] == '.') continue;
        std::FILE* f = std::fopen((tasks + "/" + e->d_name + "/children").c_str(), "r");
        if (f == nullptr) continue;
        long c = 0;
        while (std::fscanf(f, "%ld", &c) == 1) frontier.push_back(static_cast<pid_t>(c));
        std::fclose(f);
      }
      closedir(d);
    }
  }
  return out;
}

// SIGKILLs everything below this process and reaps it; returns how many it killed.
int KillAll() {
  int killed = 0;
  for (int round = 0; round < 50; ++round) {
    const std::vector<pid_t> all = Descendants();
    if (all.empty()) break;
    for (pid_t p : all)
      if (kill(p, SIGKILL) == 0) ++killed;
    // Reap what has died; the rest are reparented to us as their parents die.
    for (int i = 0; i < 20; ++i) {
      ReapEnded();
      if (Children().empty()) break;
      usleep(10000);
    }
  }
  ReapEnded();
  return killed;
}

// What the node's threads block or ignore (dfrpd waits for SIGTERM with sigwait and ignores
// SIGPIPE) is inherited through exec: undone here, for this process and the job.
void ResetSignals() {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig = 1; sig < NSIG; ++sig)
    if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
}

// Copies the job user's output `from` into a new file `to` that only root can write, when it
// is a regular file the job user owns with one link (no symlink, FIFO, device or hard link to
// someone else's file). Empty on success, else what was wrong.
std::string TakeOutput(const std::string& from, const std::string& to, uid_t owner,
                       uint64_t max_bytes) {
  const int in = open(from.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (in < 0) {
    if (errno == ENOENT) return "missing";
    if (errno == ELOOP) return "not a regular file (a symbolic link)";
    return std::string("cannot open: ") + std::strerror(errno);
  }
  struct stat st {};
  if (fstat(in, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_uid != owner ||
      static_cast<uint64_t>(st.st_size) > max_bytes) {
    close(in);
    return "not a regular file of the job's own";
  }
  const int out = open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (out < 0) {
    close(in);
    return std::string("cannot create the copy: ") + std::strerror(errno);
  }
  std::string why;
  char buf[1 << 16];
  uint64_t total = 0;
  for (;;) {
    const ssize_t n = read(in, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      why = std::string("cannot read: ") + std::strerror(errno);
      break;
    }
    if (n == 0) break;
    total += static_cast<uint64_t>(n);
    if (total > max_bytes) {
      why = "larger than the output limit";
      break;
    }
    for (ssize_t off = 0; off < n;) {
      const ssize_t w = write(out, buf + off, static_cast<size_t>(n - off));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        why = std::string("cannot write the copy: ") + std::strerror(errno);
        break;
      }
      off += w;
    }
    if (!why.empty()) break;
  }
  if (why.empty() && fsync(out) != 0)
    why = std::string("cannot sync the copy: ") + std::strerror(errno);
  close(out);
  close(in);
  if (!why.empty()) unlink(to.c_str());
  return why;
}

int RemoveOne(const char* path, const struct stat*, int flag, FTW*) {
  if (flag == FTW_DP) {
    rmdir(path);
  } else {
    unlink(path);
  }
  return 0;
}

// rm -rf without following symlinks (the job user made what is inside).
void RemoveTree(const std::string& path) {
  nftw(path.c_str(), RemoveOne, 16, FTW_DEPTH | FTW_PHYS);
}

void MakeDir(const std::string& path, mode_t mode) {
  if (mkdir(path.c_str(), mode) != 0 && errno != EEXIST)
    Die(1, "cannot create " + path + ": " + std::strerror(errno));
  if (chmod(path.c_str(), mode) != 0) Die(1, "cannot chmod " + path + ": " + std::strerror(errno));
}

void WriteFileSynced(const std::string& path, const std::string& data) {
  const std::string tmp = path + ".tmp";
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) Die(1, "cannot create " + tmp + ": " + std::strerror(errno));
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) Die(1, "cannot write " + tmp + ": " + std::strerror(errno));
    off += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) Die(1, "cannot sync " + tmp + ": " + std::strerror(errno));
  close(fd);
  if (rename(tmp.c_str(), path.c_str()) != 0)
    Die(1, "cannot rename " + tmp + ": " + std::strerror(errno));
  const std::string dir = path.substr(0, path.rfind('/'));
  const int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
}

// How many tasks (threads count) the user runs now: RLIMIT_NPROC counts them all.
uint64_t TasksOf(uid_t uid) {
  uint64_t n = 0;
  DIR* d = opendir("/proc");
  if (d == nullptr) return 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    struct stat st {};
    const std::string p = std::string("/proc/") + e->d_name;
    if (stat(p.c_str(), &st) != 0 || st.st_uid != uid) continue;
    const std::string task = p + "/task";
    if (DIR* t = opendir(task.c_str())) {
      while (dirent* te = readdir(t))
        if (te->d_name[0] != '.') ++n;
      closedir(t);
    }
  }
  closedir(d);
  return n;
}

// Copies `from` to a new file `to` (mode 0755): the client's binary, executable by the job user
// and not writable by it.
void CopyExecutable(const std::string& from, const std::string& to) {
  const int in = open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) Die(1, "cannot open the program " + from + ": " + std::strerror(errno));
  const int out = open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
  if (out < 0) Die(1, "cannot create " + to + ": " + std::strerror(errno));
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = read(in, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) Die(1, "cannot read " + from + ": " + std::strerror(errno));
    if (n == 0) break;
    for (ssize_t done = 0; done < n;) {
      const ssize_t w = write(out, buf + done, static_cast<size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) Die(1, "cannot write " + to + ": " + std::strerror(errno));
      done += w;
    }
  }
  if (fchmod(out, 0755) != 0 || close(out) != 0)
    Die(1, "cannot finish " + to + ": " + std::strerror(errno));
  close(in);
}

// --- The job's cgroup.
//
// Where the machine allows it, the whole job (mpirun, its daemons, every rank and whatever
// they fork) runs in a cgroup of its own, made below this process's cgroup (never above it: a
// container's limits keep holding): memory for the whole job, a task count (a fork bomb meets
// it), CPU time measured for every process of the job (even one that was never waited for).
// cgroup v2 is used when this process's cgroup delegates the memory and pids controllers to
// its children (systemd: Delegate=yes); otherwise the v1 memory and pids hierarchies (with
// cpuacct), when mounted under /sys/fs/cgroup and writable. Otherwise rlimits alone, and the
// report says why.
struct JobCgroup {
  std::string version;                // "v2" or "v1"; empty: none (see reason)
  std::vector<std::string> dirs;      // the job's cgroup in each hierarchy used
  std::string v2, memory, pids, cpu;  // the v2 cgroup, or the v1 ones
  std::string reason;                 // why none
};

bool Exists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}

bool WriteValue(const std::string& path, const std::string& value) {
  const int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size());
  close(fd);
  return ok;
}

// A cgroup or /proc file, whole (at most 1 MiB); empty when it cannot be read.
std::string ReadSmall(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string out;
  char buf[4096];
  for (ssize_t n; out.size() < (1u << 20) && (n = read(fd, buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

// SIGKILLs every process a cgroup.procs file lists; how many it signalled.
int KillListed(const std::string& procs_path) {
  const std::string text = ReadSmall(procs_path);
  int killed = 0;
  for (size_t at = 0; at < text.size();) {
    const pid_t p = static_cast<pid_t>(std::strtol(text.c_str() + at, nullptr, 10));
    if (p > 0 && kill(p, SIGKILL) == 0) ++killed;
    at = text.find('\n', at);
    if (at == std::string::npos) break;
    ++at;
  }
  return killed;
}

// The number after `key ` on a line of a flat-keyed cgroup file ("oom_kill 3"); 0 if absent.
uint64_t KeyedValue(const std::string& text, const std::string& key) {
  size_t at = 0;
  while ((at = text.find(key + " ", at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n')
      return std::strtoull(text.c_str() + at + key.size() + 1, nullptr, 10);
    at += key.size();
  }
  return 0;
}

// This process's cgroup path in the hierarchy of `controller` (v1), or the v2 one for "".
std::string OwnCgroup(const std::string& controller) {
  const std::string text = ReadSmall("/proc/self/cgroup");
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    const size_t a = line.find(':');
    const size_t b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    const std::string ctrls = line.substr(a + 1, b - a - 1);
    const std::string path = line.substr(b + 1);
    if (controller.empty() ? ctrls.empty()
                           : ("," + ctrls + ",").find("," + controller + ",") != std::string::npos)
      return path == "/" ? "" : path;
  }
  return "";
}

// Job cgroups a dfrp-jobrun that is gone (killed -9, the machine stopped) left in `parent`:
// what runs in them is killed, and they are removed.
void RemoveStaleJobCgroups(const std::string& parent) {
  DIR* d = opendir(parent.c_str());
  if (d == nullptr) return;
  std::vector<std::string> stale;
  while (dirent* e = readdir(d)) {
    const std::string n = e->d_name;
    if (n.rfind("dfrp-job-", 0) != 0) continue;
    const pid_t owner = static_cast<pid_t>(std::strtol(n.c_str() + 9, nullptr, 10));
    if (owner > 0 && (kill(owner, 0) == 0 || errno != ESRCH)) continue;  // its runner lives
    stale.push_back(parent + "/" + n);
  }
  closedir(d);
  for (const std::string& dir : stale) {
    for (int round = 0; round < 50 && rmdir(dir.c_str()) != 0 && errno == EBUSY; ++round) {
      KillListed(dir + "/cgroup.procs");
      usleep(20'000);
    }
  }
}

JobCgroup MakeJobCgroup(const std::string& name, uint64_t memory_limit, uint64_t pids_max) {
  JobCgroup c;
  if (geteuid() != 0) {
    c.reason = "no job cgroup: dfrpd does not run as root";
    return c;
  }
  std::string why_not_v2 = "cgroup v2 is not mounted";
  for (const std::string base : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
    if (!Exists(base + "/cgroup.controllers")) continue;
    const std::string own = base + OwnCgroup("");
    const std::string subtree = " " + ReadSmall(own + "/cgroup.subtree_control");
    if (subtree.find(" memory") == std::string::npos ||
        subtree.find(" pids") == std::string::npos) {
      why_not_v2 = "cgroup v2's " + own + " does not delegate memory and pids to child cgroups " +
                   "(systemd: Delegate=yes)";
      continue;
    }
    RemoveStaleJobCgroups(own);
    const std::string dir = own + "/" + name;
    if (mkdir(dir.c_str(), 0755) != 0) {
      why_not_v2 = "cannot make " + dir + ": " + std::strerror(errno);
      continue;
    }
    c.dirs.push_back(dir);
    if (!WriteValue(dir + "/memory.max", std::to_string(memory_limit)) ||
        !WriteValue(dir + "/pids.max", std::to_string(pids_max))) {
      why_not_v2 = "cannot set the limits of " + dir + ": " + std::strerror(errno);
      rmdir(dir.c_str());
      c.dirs.clear();
      continue;
    }
    c.version = "v2";
    c.v2 = dir;
    return c;
  }
  auto make_v1 = [&](const std::string& controller, std::string* out) {
    const std::string base = "/sys/fs/cgroup/" + controller;
    if (!Exists(base + "/cgroup.procs")) return;
    const std::string own = base + OwnCgroup(controller);
    RemoveStaleJobCgroups(own);
    const std::string dir = own + "/" + name;
    if (mkdir(dir.c_str(), 0755) != 0) return;
    c.dirs.push_back(dir);
    *out = dir;
  };
  make_v1("memory", &c.memory);
  make_v1("pids", &c.pids);
  make_v1("cpuacct", &c.cpu);
  const bool limited =
      !c.memory.empty() && !c.pids.empty() &&
      WriteValue(c.memory + "/memory.limit_in_bytes", std::to_string(memory_limit)) &&
      WriteValue(c.pids + "/pids.max", std::to_string(pids_max));
  if (!limited) {
    for (const std::string& d : c.dirs) rmdir(d.c_str());
    c = JobCgroup{};
    c.reason = "no job cgroup: " + why_not_v2 +
               ", and the cgroup v1 memory and pids hierarchies are not both mounted and "
               "writable under /sys/fs/cgroup";
    return c;
  }
  c.version = "v1";
  return c;
}

// In the job's child, before it drops root: joins every cgroup of the job.
bool JoinJobCgroup(const JobCgroup& c) {
  for (const std::string& d : c.dirs)
    if (!WriteValue(d + "/cgroup.procs", "0")) return false;
  return true;
}

// Kills every process left in the job's cgroup and removes it (a few tries: a killed process
// leaves its cgroup only once it is reaped). How many were killed.
int EndJobCgroup(const JobCgroup& c) {
  int killed = 0;
  if (c.version.empty()) return 0;
  const std::string procs = (c.version == "v2" ? c.v2 : c.memory) + "/cgroup.procs";
  for (int round = 0; round < 100 && !ReadSmall(procs).empty(); ++round) {
    killed += KillListed(procs);
    while (waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    usleep(20'000);
  }
  for (int round = 0; round < 50; ++round) {
    bool all = true;
    for (const std::string& d : c.dirs)
      if (Exists(d) && rmdir(d.c_str()) != 0) all = false;
    if (all) break;
    usleep(20'000);
  }
  return killed;
}

}  // namespace

int main(int argc, char** argv) {
  // Nothing of the node's passes to the job: no descriptor but 0-2 (its sockets are not
  // close-on-exec), no blocked or ignored signal.
  syscall(SYS_close_range, 3, ~0U, 0);
  ResetSignals();
  std::string job_dir;
  std::string user;
  std::string mpirun = "mpirun";
  std::string hostfile;
  std::string rsh_agent;
  std::string sandbox;  // bubblewrap's path: run the job inside it
  uint64_t ranks = 0;
  uint64_t cpu_s = 0;
  uint64_t mem = 0;
  uint64_t wall_s = 0;
  uint64_t max_out = 1ULL << 30;
  uint64_t headroom = 0;
  bool headroom_set = false;
  int i = 1;
  for (; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (i + 1 >= argc) Die(2, a + " needs a value (or an unknown flag)");
    const char* v = argv[++i];
    if (a == "--job-dir")
      job_dir = v;
    else if (a == "--user")
      user = v;
    else if (a == "--mpirun")
      mpirun = v;
    else if (a == "--hostfile")
      hostfile = v;
    else if (a == "--rsh-agent")
      rsh_agent = v;
    else if (a == "--sandbox")
      sandbox = v;
    else if (a == "--ranks")
      ranks = ParseU64(v, "--ranks");
    else if (a == "--cpu-seconds")
      cpu_s = ParseU64(v, "--cpu-seconds");
    else if (a == "--memory-bytes")
      mem = ParseU64(v, "--memory-bytes");
    else if (a == "--wall-seconds")
      wall_s = ParseU64(v, "--wall-seconds");
    else if (a == "--max-output-bytes")
      max_out = ParseU64(v, "--max-output-bytes");
    else if (a == "--nproc-headroom") {
      headroom = ParseU64(v, "--nproc-headroom");
      headroom_set = true;
    } else {
      Die(2, "unknown flag " + a);
    }
  }
  if (i >= argc) Die(2, "no program after --");
  if (job_dir.empty() || job_dir[0] != '/') Die(2, "--job-dir must be an absolute path");
  if (ranks == 0 || ranks > 1024) Die(2, "--ranks must be 1..1024");
  if (cpu_s == 0 || mem == 0 || wall_s == 0)
    Die(2, "--cpu-seconds, --memory-bytes and --wall-seconds are required and > 0");
  if (!headroom_set) headroom = 48 + 24 * ranks;
  if (!sandbox.empty() && (!hostfile.empty() || !rsh_agent.empty()))
    Die(2, "--sandbox runs on one host: give no --hostfile or --rsh-agent with it");
  std::vector<std::string> program(argv + i, argv + argc);

  // 1. Own the job's process tree.
  setsid();
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
    Die(1, std::string("PR_SET_CHILD_SUBREAPER: ") + std::strerror(errno));
  struct sigaction sa {};
  sa.sa_handler = OnStop;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() == 1) Die(1, "the node that started this job is gone");

  // 2. Who the job runs as, and its folders.
  const bool root = geteuid() == 0;
  uid_t uid = geteuid();
  gid_t gid = getegid();
  std::string run_as;
  if (root) {
    if (user.empty()) Die(1, "refusing to run a job as root: give --user (setup creates dfrp-job)");
    const passwd* pw = getpwnam(user.c_str());
    if (pw == nullptr)
      Die(1, "the job user '" + user +
                 "' does not exist: run scripts/setup.sh as root (it creates dfrp-job) or set "
                 "compute.job_user");
    if (pw->pw_uid == 0 || pw->pw_gid == 0)
      Die(1, "the job user '" + user + "' is root or in root's group; jobs never run as root");
    uid = pw->pw_uid;
    gid = pw->pw_gid;
    run_as = user;
  } else {
    const passwd* pw = getpwuid(uid);
    run_as = pw != nullptr ? pw->pw_name : std::to_string(uid);
  }
  const std::string out_dir = job_dir + "/out";
  const std::string tmp_dir = job_dir + "/tmp";
  const std::string home_dir = job_dir + "/home";
  const std::string results_dir = job_dir + "/results";
  // The job folder can be entered but not listed; results/ is root's alone.
  MakeDir(job_dir, 0711);
  for (const std::string& d : {out_dir, tmp_dir, home_dir}) {
    MakeDir(d, 0700);
    if (root && chown(d.c_str(), uid, gid) != 0)
      Die(1, "cannot give " + d + " to " + user + ": " + std::strerror(errno));
  }
  MakeDir(results_dir, 0700);
  std::vector<std::string> program_argv = program;
  const std::string bin_dir = job_dir + "/bin";
  if (!sandbox.empty()) {
    MakeDir(bin_dir, 0755);
    program_argv[0] = bin_dir + "/app";
    CopyExecutable(program[0], program_argv[0]);
  }

  // 3. The argv and environment of mpirun, built before the fork.
  std::vector<std::string> av;
  if (!sandbox.empty()) {
    av = {sandbox,         "--unshare-net", "--unshare-ipc",
          "--unshare-pid", "--unshare-uts", "--die-with-parent",
          "--dev",         "/dev",          "--proc",
          "/proc",         "--tmpfs",       "/tmp"};
    auto bind = [&av](const char* flag, const std::string& path) {
      av.insert(av.end(), {flag, path, path});
    };
    bind("--ro-bind", "/usr");
    bind("--ro-bind", "/etc");
    for (const char* p : {"/lib", "/lib64", "/bin"}) bind("--ro-bind-try", p);
    bind("--ro-bind", bin_dir);
    for (const std::string& d : {out_dir, tmp_dir, home_dir}) bind("--bind", d);
    av.push_back("--");
  }
  const std::vector<std::string> launch = {mpirun,
                                           "-np",
                                           std::to_string(ranks),
                                           "--oversubscribe",
                                           "--bind-to",
                                           "none",
                                           "--mca",
                                           "btl",
                                           "self,vader,tcp",
                                           "--mca",
                                           "btl_vader_single_copy_mechanism",
                                           "none"};
  av.insert(av.end(), launch.begin(), launch.end());
  if (!hostfile.empty()) {
    av.push_back("--hostfile");
    av.push_back(hostfile);
  }
  if (!rsh_agent.empty()) {
    av.push_back("--mca");
    av.push_back("plm_rsh_agent");
    av.push_back(rsh_agent);
  }
  av.push_back("-x");
  av.push_back("DFRP_OUT_DIR");
  for (const auto& p : program_argv) av.push_back(p);
  std::vector<std::string> env = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + home_dir,
                                  "TMPDIR=" + tmp_dir, "DFRP_OUT_DIR=" + out_dir, "LANG=C"};
  if (const char* p = std::getenv("OMPI_MCA_plm_rsh_agent"))
    env.push_back(std::string("OMPI_MCA_plm_rsh_agent=") + p);
  std::vector<char*> avp;
  for (auto& s : av) avp.push_back(s.data());
  avp.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& s : env) envp.push_back(s.data());
  envp.push_back(nullptr);
  // The job's cgroup: memory for every rank plus mpirun's own, the task headroom.
  const uint64_t job_memory = mem * ranks + (256ULL << 20);
  const JobCgroup cgroup =
      MakeJobCgroup("dfrp-job-" + std::to_string(getpid()), job_memory, headroom);
  // The user's task limit is checked before the cgroup's at a fork: with a cgroup it is only
  // a backstop (twice the headroom), so the job's own limit is the one a fork bomb meets.
  const uint64_t nproc = (root ? TasksOf(uid) : TasksOf(getuid())) +
                         (cgroup.version.empty() ? headroom : 2 * headroom);
  const std::string log_path = job_dir + "/mpirun.log";
  const int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) Die(1, "cannot create " + log_path + ": " + std::strerror(errno));
  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

  const int64_t start = NowMs();
  const pid_t pid = fork();
  if (pid < 0) Die(1, std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    // The job side (this process has one thread: no async-signal-safety limits here).
    dup2(null_fd, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    setpgid(0, 0);
    if (!JoinJobCgroup(cgroup)) {
      std::fprintf(stderr, "dfrp-jobrun: cannot join the job's cgroup: %s\n", std::strerror(errno));
      _exit(126);
    }
    auto lim = [](int res, uint64_t soft, uint64_t hard) {
      rlimit r{static_cast<rlim_t>(soft), static_cast<rlim_t>(hard)};
      if (setrlimit(res, &r) != 0) {
        std::fprintf(stderr, "dfrp-jobrun: setrlimit %d: %s\n", res, std::strerror(errno));
        _exit(126);
      }
    };
    lim(RLIMIT_CPU, cpu_s, cpu_s + 2);
    lim(RLIMIT_DATA, mem, mem);
    lim(RLIMIT_FSIZE, max_out, max_out);
    lim(RLIMIT_CORE, 0, 0);
    lim(RLIMIT_NPROC, nproc, nproc);
    if (root) {
      if (setgroups(0, nullptr) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
        std::fprintf(stderr, "dfrp-jobrun: cannot become %s: %s\n", user.c_str(),
                     std::strerror(errno));
        _exit(126);
      }
      if (setuid(0) == 0 || getuid() == 0) {
        std::fprintf(stderr, "dfrp-jobrun: still root after dropping privileges\n");
        _exit(126);
      }
    }
    ResetSignals();
    if (chdir(home_dir.c_str()) != 0 || access(out_dir.c_str(), W_OK | X_OK) != 0) {
      std::fprintf(stderr,
                   "dfrp-jobrun: the job user cannot reach %s (%s): every folder above the "
                   "job folder must be searchable by it (chmod o+x)\n",
                   out_dir.c_str(), std::strerror(errno));
      _exit(126);
    }
    execvpe(avp[0], avp.data(), envp.data());
    std::fprintf(stderr, "dfrp-jobrun: cannot run %s: %s\n", avp[0], std::strerror(errno));
    _exit(127);
  }
  close(log_fd);
  if (null_fd >= 0) close(null_fd);

  // 4. Wait, within the wall time.
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  const int64_t deadline = start + static_cast<int64_t>(wall_s) * 1000;
  std::string end = "exited";
  g_main = pid;
  int64_t term_at = -1;
  for (;;) {
    ReapEnded();
    if (g_main_reaped) break;
    // Nothing left to wait for (cannot happen while mpirun is unreaped; a guard, not a path).
    if (Children().empty() && kill(pid, 0) != 0) break;
    const int64_t now = NowMs();
    if (term_at < 0 && (now >= deadline || g_stop)) {
      end = g_stop ? "stopped" : "wall-time";
      kill(-pid, SIGTERM);
      kill(pid, SIGTERM);
      term_at = now;
    } else if (term_at >= 0 && now >= term_at + 2000) {
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      KillAll();
      continue;
    }
    int wait_ms = 50;
    if (term_at < 0)
      wait_ms = static_cast<int>(std::min<int64_t>(200, std::max<int64_t>(1, deadline - now)));
    if (pidfd >= 0) {
      pollfd p{pidfd, POLLIN, 0};
      poll(&p, 1, wait_ms);
    } else {
      usleep(static_cast<useconds_t>(wait_ms) * 1000);
    }
  }
  const int status = g_main_status;
  const rusage ru = g_main_usage;
  const int64_t wall_ms = NowMs() - start;
  const int stragglers = KillAll();
  if (pidfd >= 0) close(pidfd);
  // What the cgroup measured, read before it goes.
  uint64_t cg_cpu_ms = 0, cg_peak = 0, cg_oom = 0, cg_forks_refused = 0;
  if (cgroup.version == "v2") {
    cg_cpu_ms = KeyedValue(ReadSmall(cgroup.v2 + "/cpu.stat"), "usage_usec") / 1000;
    cg_peak = std::strtoull(ReadSmall(cgroup.v2 + "/memory.peak").c_str(), nullptr, 10);
    cg_oom = KeyedValue(ReadSmall(cgroup.v2 + "/memory.events"), "oom_kill");
    cg_forks_refused = KeyedValue(ReadSmall(cgroup.v2 + "/pids.events"), "max");
  } else if (cgroup.version == "v1") {
    if (!cgroup.cpu.empty())
      cg_cpu_ms =
          std::strtoull(ReadSmall(cgroup.cpu + "/cpuacct.usage").c_str(), nullptr, 10) / 1'000'000;
    cg_peak =
        std::strtoull(ReadSmall(cgroup.memory + "/memory.max_usage_in_bytes").c_str(), nullptr, 10);
    cg_oom = KeyedValue(ReadSmall(cgroup.memory + "/memory.oom_control"), "oom_kill");
    cg_forks_refused = KeyedValue(ReadSmall(cgroup.pids + "/pids.events"), "max");
  }
  const int cgroup_stragglers = EndJobCgroup(cgroup);

  int exit_code = -1;
  int sig = 0;
  if (WIFEXITED(status)) {
    exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    sig = WTERMSIG(status);
    if (end == "exited") end = "signal";
  }
  if (end == "exited" && exit_code != 0) end = "failed";

  // 5. Take the outputs out of the job user's reach.
  std::string outputs = "[";
  std::string problem;
  for (uint64_t r = 0; r < ranks; ++r) {
    const std::string name = "rank-" + std::to_string(r) + ".out";
    const std::string from = out_dir + "/" + name;
    const std::string to = results_dir + "/" + name;
    const std::string why = TakeOutput(from, to, uid, max_out);
    if (!why.empty()) {
      if (problem.empty())
        problem = why == "missing" ? "rank " + std::to_string(r) + " wrote no output (" + name + ")"
                                   : name + ": " + why;
      continue;
    }
    struct stat st {};
    stat(to.c_str(), &st);
    if (outputs.size() > 1) outputs += ",";
    outputs += "{\"rank\":" + std::to_string(r) + ",\"size\":" + std::to_string(st.st_size) + "}";
  }
  outputs += "]";
  if (end == "exited" && !problem.empty()) end = "incomplete";
  // What the job user left is gone with the job (its results are copies of root's).
  for (const std::string& d : {out_dir, tmp_dir, home_dir}) RemoveTree(d);

  // The CPU time of every process of the job: the cgroup's when it measured it (it counts
  // processes never waited for), else what the waited-for processes used.
  const uint64_t ru_cpu_ms =
      static_cast<uint64_t>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
      static_cast<uint64_t>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
  const bool cg_cpu = cgroup.version == "v2" || !cgroup.cpu.empty();
  const uint64_t cpu_ms = cg_cpu ? std::max(cg_cpu_ms, ru_cpu_ms) : ru_cpu_ms;
  std::string limits;
  if (!cgroup.version.empty())
    limits = "cgroup " + cgroup.version + ": " + std::to_string(job_memory) +
             " bytes of memory and " + std::to_string(headroom) + " tasks for the whole job; ";
  limits += "rlimits: " + std::to_string(cpu_s) + " CPU-s and " + std::to_string(mem) +
            " bytes of data per process, " + std::to_string(nproc) + " tasks for the user";
  if (cgroup.version.empty()) limits += " (" + cgroup.reason + ")";
  if (!sandbox.empty())
    limits += "; in bubblewrap: no network, read-only /usr and /etc, the job folder only";
  std::string report = "{";
  report += "\"end\":" + JsonString(end);
  report += ",\"exit_code\":" + std::to_string(exit_code);
  report += ",\"signal\":" + std::to_string(sig);
  report += ",\"cpu_ms\":" + std::to_string(cpu_ms);
  report += ",\"wall_ms\":" + std::to_string(wall_ms);
  report += ",\"max_rss_bytes\":" + std::to_string(static_cast<uint64_t>(ru.ru_maxrss) * 1024);
  report += ",\"killed_stragglers\":" + std::to_string(stragglers + cgroup_stragglers);
  if (!cgroup.version.empty()) {
    report += ",\"cgroup\":{\"version\":" + JsonString(cgroup.version);
    report += ",\"paths\":[";
    for (size_t d = 0; d < cgroup.dirs.size(); ++d)
      report += (d ? "," : "") + JsonString(cgroup.dirs[d]);
    report += "]";
    report += ",\"memory_limit_bytes\":" + std::to_string(job_memory);
    report += ",\"pids_max\":" + std::to_string(headroom);
    report += ",\"cpu_ms\":" + std::to_string(cg_cpu_ms);
    report += ",\"memory_peak_bytes\":" + std::to_string(cg_peak);
    report += ",\"oom_kills\":" + std::to_string(cg_oom);
    report += ",\"forks_refused\":" + std::to_string(cg_forks_refused) + "}";
  }
  report += ",\"user\":" + JsonString(run_as);
  report += ",\"limits\":" + JsonString(limits);
  report += ",\"problem\":" + JsonString(problem);
  report += ",\"outputs\":" + outputs;
  report += "}\n";
  WriteFileSynced(job_dir + "/report.json", report);
  return 0;
}
