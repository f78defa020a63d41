#include "dfrp/node/daemon.h"

#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "dfrp/core/clock.h"
#include "dfrp/core/config.h"
#include "dfrp/core/file_system.h"
#include "dfrp/core/version.h"
#include "dfrp/node/node.h"
#include "dfrp/node/server.h"
#include "dfrp/node/token.h"

namespace dfrp::node {

using core::Status;

namespace {

int Fail(const Status& s) {
  std::fprintf(stderr, "dfrpd: %s\n", s.message().c_str());
  return core::ExitCodeFor(s);
}

struct Flags {
  std::string config_path;
  bool quiet = false;
  ServerOptions server;
};

// Parses the command line into *f; an exit code when the process should end now (--help,
// --version, a usage error).
std::optional<int> ParseFlags(int argc, char** argv, Flags* f) {
  CLI::App app{"dfrpd: the dfrp storage node (HTTP API, dashboard, metrics, scrubber)", "dfrpd"};
  app.set_version_flag("--version", fmt::format("dfrpd {}", core::kVersion));
  app.add_option("--config", f->config_path,
                 "config file (.toml or .env); default $DFRP_CONFIG, ./dfrp.toml, ./.env, else "
                 "the embedded default (drives under ./dfrp-data)");
  app.add_flag("-q,--quiet", f->quiet, "print only errors");
  ServerOptions& s = f->server;
  int64_t header_ms = s.header_timeout.count(), body_ms = s.body_timeout.count(),
          idle_ms = s.idle_timeout.count(), grace_ms = s.grace.count();
  app.add_option("--header-timeout-ms", header_ms,
                 "time a client has to send a request line and headers (then 408)")
      ->check(CLI::Range(int64_t{1}, int64_t{3'600'000}));
  app.add_option("--body-timeout-ms", body_ms,
                 "time a client has for each piece of a body, and each write of an answer")
      ->check(CLI::Range(int64_t{1}, int64_t{3'600'000}));
  app.add_option("--min-body-rate", s.min_body_rate,
                 "bytes per second a request body must average past its first body timeout "
                 "(then 408)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40));
  app.add_option("--idle-timeout-ms", idle_ms, "how long a kept-alive connection may sit idle")
      ->check(CLI::Range(int64_t{1}, int64_t{3'600'000}));
  app.add_option("--grace-ms", grace_ms,
                 "on SIGTERM/SIGINT, the time dfrpd takes at most to stop (requests in flight "
                 "finish within it)")
      ->check(CLI::Range(int64_t{0}, int64_t{3'600'000}));
  app.add_option("--threads", s.threads, "HTTP threads (default: one per CPU, at least 2)")
      ->check(CLI::Range(0, 256));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "dfrpd: %s (see dfrpd --help)\n", e.what());
    return core::kExitUsage;
  }
  s.header_timeout = std::chrono::milliseconds(header_ms);
  s.body_timeout = std::chrono::milliseconds(body_ms);
  s.idle_timeout = std::chrono::milliseconds(idle_ms);
  s.grace = std::chrono::milliseconds(grace_ms);
  return std::nullopt;
}

// Takes STATE_DIR/dfrpd.lock, trying for a second (a client checking whether a daemon runs
// holds it for a moment); Busy naming the daemon that holds it.
core::Result<std::unique_ptr<core::FileLock>> LockDaemon(core::FileSystem* fs,
                                                         const core::NodeConfig& config) {
  const std::string lock_path = core::JoinPath(config.state_dir, std::string(kDaemonLockFileName));
  auto lock = fs->TryLock(lock_path);
  for (int i = 0; i < 50 && !lock && lock.error().IsBusy(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    lock = fs->TryLock(lock_path);
  }
  if (lock || !lock.error().IsBusy()) return lock;
  std::string who;
  if (auto info = core::ReadWholeFile(
          fs, core::JoinPath(config.state_dir, std::string(kDaemonInfoFileName)))) {
    auto j = nlohmann::json::parse(*info, nullptr, false);
    if (j.is_object()) who = fmt::format(" (pid {}, {})", j.value("pid", 0), j.value("url", "?"));
  }
  return core::Err(Status::Busy(
      fmt::format("another dfrpd serves the store in {}{}: stop it first, or give this one "
                  "another config",
                  config.state_dir, who)));
}

void PrintStart(const core::NodeConfig& config, Node& node, const std::string& url) {
  if (config.is_embedded_default)
    std::fprintf(stderr,
                 "dfrpd: no config found (--config, DFRP_CONFIG, ./dfrp.toml, ./.env): using the "
                 "embedded default, two 64 MiB drives under ./dfrp-data\n");
  std::fprintf(stderr,
               "dfrpd %s: store %s (%s), %zu volume(s)\n"
               "dfrpd: API %s, dashboard %s/, admin token in %s/%s\n",
               core::kVersion, node.store_id().ToString().c_str(), config.state_dir.c_str(),
               config.drives.size(), url.c_str(), url.c_str(), config.state_dir.c_str(),
               std::string(kTokenFileName).c_str());
  for (const auto& n : node.notices()) std::fprintf(stderr, "dfrpd: %s\n", n.c_str());
}

// The last resort of --grace-ms: once the grace period after the signal is over, the
// process ends whatever is still running. Only what was never acknowledged is cut off.
void Watchdog(std::chrono::milliseconds grace, bool quiet) {
  std::thread([grace, quiet] {
    std::this_thread::sleep_for(grace);
    if (!quiet)
      std::fprintf(stderr,
                   "dfrpd: the grace period (%lld ms) is over with work still running: exiting "
                   "now (every acknowledged write is durable)\n",
                   static_cast<long long>(grace.count()));
    std::fflush(stderr);
    ::_exit(core::kExitOk);
  }).detach();
}

int Serve(const Flags& flags, const core::NodeConfig& config, core::FileSystem* fs,
          const sigset_t& signals) {
  const std::string info_path = core::JoinPath(config.state_dir, std::string(kDaemonInfoFileName));
  // What a daemon that died left behind must not be read while this one starts.
  (void)fs->RemoveFile(info_path);
  {
    // Lays out drives not laid out yet (idempotent); folders are created for the embedded
    // default only, as init-storage --create would.
    storage::StoreOptions iopt;
    iopt.fs = fs;
    iopt.clock = core::SystemClock();
    iopt.create_missing_drive_folders = config.is_embedded_default;
    if (auto init = storage::Store::Init(config, iopt); !init) return Fail(init.error());
  }
  NodeOptions nopt;
  nopt.config = config;
  nopt.store.fs = fs;
  nopt.store.clock = core::SystemClock();
  // Tests only: a daemon whose wall clock runs ahead or behind (a skewed authority in
  // tests/node/epoch_split_test.py). Said at start, loudly.
  std::unique_ptr<core::OffsetClock> skewed;
  if (const char* v = std::getenv("DFRP_TEST_CLOCK_OFFSET_MS")) {
    int64_t ms = 0;
    const std::string_view text(v);
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
    if (ec != std::errc() || end != text.data() + text.size() || ms < -86'400'000 ||
        ms > 86'400'000)
      return Fail(core::Status::InvalidArgument(fmt::format(
          "DFRP_TEST_CLOCK_OFFSET_MS={:?} is not a number of milliseconds within a day (it is "
          "for tests; unset it)",
          text.substr(0, 32))));
    skewed = std::make_unique<core::OffsetClock>(core::SystemClock(), ms);
    nopt.store.clock = skewed.get();
    std::fprintf(stderr,
                 "dfrpd: WARNING: DFRP_TEST_CLOCK_OFFSET_MS=%lld: this daemon's clock is shifted "
                 "(for tests only)\n",
                 static_cast<long long>(ms));
  }
  auto node = Node::Open(nopt);
  if (!node)
    return Fail(
        node.error().IsBusy()
            ? node.error().WithContext("dfrpd needs the store's writer lock for as long as it runs")
            : node.error());
  ServerOptions sopt = flags.server;
  sopt.addr = config.api_addr;
  sopt.api_hosts = config.api_hosts;
  sopt.max_connections = config.max_connections;
  sopt.max_header_bytes = config.max_header_bytes;
  sopt.body_memory_budget = config.max_body_memory;
  // An authority's ledger requests run in the verify lane: each waits on a synced commit, and
  // the signature checks of those in flight together are batched (crypto/group_verifier.h),
  // so more of them at once keep the cores busy and the batches large
  // (docs/BENCHMARKS.md, "Certified transfers").
  if (config.HasRole("authority")) sopt.verify_threads = std::max(sopt.verify_threads, 8);
  // The server drains within most of the grace period; the rest is for the node's threads.
  const auto grace = sopt.grace;
  sopt.grace =
      grace - std::min<std::chrono::milliseconds>(grace / 4, std::chrono::milliseconds(500));
  Server server(**node, sopt);
  auto bound = server.Listen();
  if (!bound) return Fail(bound.error());
  const std::string url = "http://" + *bound;
  nlohmann::json info = {{"pid", static_cast<int>(::getpid())},
                         {"api_addr", *bound},
                         {"url", url},
                         {"started_unix_ms", (*node)->NowMs()},
                         {"version", core::kVersion},
                         {"store_id", (*node)->store_id().ToString()}};
  if (Status s = core::WriteFileAtomic(fs, info_path, info.dump(2) + "\n"); !s.ok()) return Fail(s);
  (*node)->StartMesh(url);
  if (!flags.quiet) PrintStart(config, **node, url);

  std::atomic<bool> signalled{false};
  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    signalled = true;
    if (sig != SIGUSR1) {  // SIGUSR1: Run() ended by itself, see below
      if (!flags.quiet)
        std::fprintf(stderr, "dfrpd: %s: finishing requests in flight, then stopping\n",
                     sig == SIGINT ? "SIGINT" : "SIGTERM");
      Watchdog(grace, flags.quiet);
    }
    (*node)->BeginStop();
    server.Stop();
  });
  server.Run();
  (*node)->Stop();
  (void)fs->RemoveFile(info_path);
  // Run() ends after a signal; should it end otherwise, wake the waiting thread.
  if (!signalled) pthread_kill(signal_thread.native_handle(), SIGUSR1);
  signal_thread.join();
  if (!flags.quiet) std::fprintf(stderr, "dfrpd: stopped\n");
  return core::kExitOk;
}

}  // namespace

int RunDaemon(int argc, char** argv) {
  Flags flags;
  if (auto code = ParseFlags(argc, argv, &flags)) return *code;
  // Signals are taken by one thread with sigwait; every other thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  core::ConfigOptions copt;
  copt.explicit_path = flags.config_path;
  auto config = core::LoadConfig(copt);
  if (!config) return Fail(config.error());
  core::FileSystem* fs = core::DefaultFileSystem();  // the edge: the real file system
  if (Status s = fs->CreateDirRecursive(config->state_dir); !s.ok()) return Fail(s);
  auto daemon_lock = LockDaemon(fs, *config);
  if (!daemon_lock) return Fail(daemon_lock.error());
  return Serve(flags, *config, fs, signals);
}

}  // namespace dfrp::node
