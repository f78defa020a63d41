// dfrpd: the storage node as a daemon. Serves the store of the config (the same as the CLIs')
// over HTTP (docs/API.md) until SIGTERM or SIGINT, then stops accepting, finishes what is in
// flight and exits 0.
#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "dfrp/core/config.h"
#include "dfrp/core/file_system.h"
#include "dfrp/node/node.h"
#include "dfrp/node/server.h"

namespace {

using dfrp::core::Status;

int Fail(const Status& s) {
  std::fprintf(stderr, "dfrpd: %s\n", s.message().c_str());
  return dfrp::core::ExitCodeFor(s);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dfrpd: the dfrp storage node (HTTP API, dashboard, metrics, scrubber)", "dfrpd"};
  std::string config_path;
  bool quiet = false;
  app.set_version_flag("--version", fmt::format("dfrpd {}", dfrp::node::kVersion));
  app.add_option("--config", config_path,
                 "config file (.toml or .env); default $DFRP_CONFIG, ./dfrp.toml, ./.env, else "
                 "the embedded default (drives under ./dfrp-data)");
  app.add_flag("-q,--quiet", quiet, "print only errors");
  dfrp::node::ServerOptions sopt;
  int64_t header_ms = sopt.header_timeout.count(), body_ms = sopt.body_timeout.count(),
          idle_ms = sopt.idle_timeout.count(), grace_ms = sopt.grace.count();
  app.add_option("--header-timeout-ms", header_ms,
                 "time a client has to send a request line and headers (then 408)")
      ->check(CLI::Range(int64_t{1}, int64_t{3'600'000}));
  app.add_option("--body-timeout-ms", body_ms,
                 "time a client has for each piece of a body, and each write of an answer")
      ->check(CLI::Range(int64_t{1}, int64_t{3'600'000}));
  app.add_option("--idle-timeout-ms", idle_ms, "how long a kept-alive connection may sit idle")
      ->check(CLI::Range(int64_t{1}, int64_t{3'600'000}));
  app.add_option("--grace-ms", grace_ms,
                 "on SIGTERM/SIGINT, how long requests in flight may take to finish")
      ->check(CLI::Range(int64_t{0}, int64_t{3'600'000}));
  app.add_option("--threads", sopt.threads, "HTTP threads (default: one per CPU, at least 2)")
      ->check(CLI::Range(0, 256));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "dfrpd: %s (see dfrpd --help)\n", e.what());
    return dfrp::core::kExitUsage;
  }
  // Signals are taken by one thread with sigwait; every other thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  dfrp::core::ConfigOptions copt;
  copt.explicit_path = config_path;
  auto config = dfrp::core::LoadConfig(copt);
  if (!config) return Fail(config.error());
  dfrp::core::FileSystem* fs = dfrp::core::DefaultFileSystem();
  if (Status s = fs->CreateDirRecursive(config->state_dir); !s.ok()) return Fail(s);
  // A client checking whether a daemon runs takes this lock for a moment: try for a second.
  const std::string lock_path =
      dfrp::core::JoinPath(config->state_dir, std::string(dfrp::node::kDaemonLockFileName));
  auto daemon_lock = fs->TryLock(lock_path);
  for (int i = 0; i < 50 && !daemon_lock && daemon_lock.error().IsBusy(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    daemon_lock = fs->TryLock(lock_path);
  }
  if (!daemon_lock) {
    if (!daemon_lock.error().IsBusy()) return Fail(daemon_lock.error());
    std::string who;
    if (auto info = dfrp::core::ReadWholeFile(
            fs, dfrp::core::JoinPath(config->state_dir,
                                     std::string(dfrp::node::kDaemonInfoFileName)))) {
      auto j = nlohmann::json::parse(*info, nullptr, false);
      if (j.is_object()) who = fmt::format(" (pid {}, {})", j.value("pid", 0), j.value("url", "?"));
    }
    return Fail(Status::Busy(fmt::format(
        "another dfrpd serves the store in {}{}: stop it first, or give this one another config",
        config->state_dir, who)));
  }
  const std::string info_path =
      dfrp::core::JoinPath(config->state_dir, std::string(dfrp::node::kDaemonInfoFileName));
  // What a daemon that died left behind must not be read while this one starts.
  (void)fs->RemoveFile(info_path);
  {
    // Lays out drives not laid out yet (idempotent); folders are created for the embedded
    // default only, as init-storage --create would.
    dfrp::storage::StoreOptions iopt;
    iopt.create_missing_drive_folders = config->is_embedded_default;
    auto init = dfrp::storage::Store::Init(*config, iopt);
    if (!init) return Fail(init.error());
  }
  dfrp::node::NodeOptions nopt;
  nopt.config = *config;
  auto node = dfrp::node::Node::Open(nopt);
  if (!node) {
    if (node.error().IsBusy())
      return Fail(
          node.error().WithContext("dfrpd needs the store's writer lock for as long as it runs"));
    return Fail(node.error());
  }
  sopt.header_timeout = std::chrono::milliseconds(header_ms);
  sopt.body_timeout = std::chrono::milliseconds(body_ms);
  sopt.idle_timeout = std::chrono::milliseconds(idle_ms);
  sopt.grace = std::chrono::milliseconds(grace_ms);
  sopt.addr = config->api_addr;
  sopt.max_connections = config->max_connections;
  sopt.max_header_bytes = config->max_header_bytes;
  dfrp::node::Server server(**node, sopt);
  auto bound = server.Listen();
  if (!bound) return Fail(bound.error());

  const std::string url = "http://" + *bound;
  nlohmann::json info = {{"pid", static_cast<int>(::getpid())},
                         {"api_addr", *bound},
                         {"url", url},
                         {"started_unix_ms", (*node)->NowMs()},
                         {"version", dfrp::node::kVersion},
                         {"store_id", (*node)->store_id().ToString()}};
  if (Status s = dfrp::core::WriteFileAtomic(fs, info_path, info.dump(2) + "\n"); !s.ok())
    return Fail(s);
  if (!quiet) {
    if (config->is_embedded_default)
      std::fprintf(stderr,
                   "dfrpd: no config found (--config, DFRP_CONFIG, ./dfrp.toml, ./.env): using the "
                   "embedded default, two 64 MiB drives under ./dfrp-data\n");
    std::fprintf(stderr,
                 "dfrpd %s: store %s (%s), %zu volume(s)\n"
                 "dfrpd: API %s, dashboard %s/, admin token in %s/%s\n",
                 dfrp::node::kVersion, (*node)->store_id().ToString().c_str(),
                 config->state_dir.c_str(), config->drives.size(), url.c_str(), url.c_str(),
                 config->state_dir.c_str(), std::string(dfrp::node::kTokenFileName).c_str());
    for (const auto& n : (*node)->notices()) std::fprintf(stderr, "dfrpd: %s\n", n.c_str());
  }

  std::atomic<bool> signalled{false};
  std::jthread signal_thread([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    signalled = true;
    if (!quiet)
      std::fprintf(stderr, "dfrpd: %s: finishing requests in flight, then stopping\n",
                   sig == SIGINT ? "SIGINT" : "SIGTERM");
    server.Stop();
  });
  server.Run();
  (*node)->Stop();
  (void)fs->RemoveFile(info_path);
  // Run() ends after a signal; should it end otherwise, wake the waiting thread.
  if (!signalled) pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  if (!quiet) std::fprintf(stderr, "dfrpd: stopped\n");
  return dfrp::core::kExitOk;
}
