// Node configuration: drives with quotas and a few store-wide settings.
//
// Sources, first found wins: `--config PATH`, then $DFRP_CONFIG, then ./dfrp.toml, then
// ./.env, then the embedded default (two small drives under ./dfrp-data). Both file formats
// hold the same flat keys (DRIVE_0, QUOTA_0, ..., LEAF_SIZE, VECTOR_DIM, STATE_DIR); a TOML
// file may use strings or integers. Environment variables of the same names override the
// file. Relative paths are resolved against the config file's folder (the current folder for
// the environment and the default). Unknown keys are an error that names the key.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dfrp/core/status.h"

namespace dfrp::core {

struct DriveConfig {
  int index = 0;       // n in DRIVE_n
  std::string path;    // absolute
  uint64_t quota = 0;  // bytes
};

struct NodeConfig {
  std::vector<DriveConfig> drives;  // ordered by index, 0..n-1 without gaps
  uint32_t leaf_size = 4096;
  uint32_t vector_dim = 16;
  // How shard vectors are compared (VECTOR_METRIC): "cosine" (the default) or "l2"
  // (vector/vector_math.h). Unlike VECTOR_DIM it may change; the vector index is rebuilt.
  std::string vector_metric = "cosine";
  std::string state_dir;  // absolute
  // The daemon (dfrpd): where its HTTP API listens, how fast its background scrubber reads
  // (bytes of payload per second; 0 turns it off), how many connections it serves at once,
  // and how large a request's header may be.
  std::string api_addr = "127.0.0.1:7480";
  uint64_t scrub_rate = 8ull << 20;
  uint32_t max_connections = 256;
  uint32_t max_header_bytes = 16384;
  // Names besides the listen address and the loopback names that a request's Host header
  // may carry (API_HOSTS); others are refused, against DNS rebinding.
  std::vector<std::string> api_hosts;
  // The memory all request bodies in flight may hold together (MAX_BODY_MEMORY).
  uint64_t max_body_memory = 256ull << 20;
  // The economic policy file (ECONOMIC_POLICY, absolute), empty when not set: then
  // economic.toml in config_dir (the config file's folder) if it exists, else the embedded
  // default (economy/policy.h).
  std::string economic_policy;
  std::string config_dir;
  // What the node does (ROLES, comma-separated): "storage" (the default), "authority" (a
  // member of the ledger's committee, which needs WALLET) and "compute" (takes jobs; needs
  // WALLET).
  std::vector<std::string> roles = {"storage"};
  // The keystore of the node's wallet (WALLET, absolute) and the file holding its passphrase
  // (WALLET_PASSPHRASE_FILE; else the environment's DFRP_PASSPHRASE).
  std::string wallet;
  std::string wallet_passphrase_file;
  // The mesh (needs WALLET): bootstrap peers' URLs (PEERS, comma-separated) and the URL peers
  // reach this node at (ADVERTISE_URL; empty: http:// and the API's bound address).
  std::vector<std::string> peers;
  std::string advertise_url;
  // Wallet addresses this node trusts from the start (TRUSTED_PEERS, comma-separated): with
  // itself and the committee's authorities, where trust vectors begin (mesh/trust.h).
  std::vector<std::string> trusted_peers;
  // Compute (dfrp-compute; docs/COMPUTE.md): the catalog of the operator's own apps
  // (COMPUTE_APPS, absolute; empty: the reference apps only), the unprivileged user jobs run
  // as when the node runs as root (COMPUTE_JOB_USER), and for a job over several hosts an Open
  // MPI hostfile (COMPUTE_HOSTFILE) and how mpirun reaches them (COMPUTE_RSH_AGENT).
  std::string compute_apps;
  std::string compute_job_user = "dfrp-job";
  std::string compute_hostfile;
  std::string compute_rsh_agent;
  uint32_t compute_slots = 1;  // COMPUTE_SLOTS: the most ranks of one job (default: the cores)
  // COMPUTE_CLIENT_BINARIES: the operator opts in to running a client's own binary (the app
  // "client"), inside bubblewrap with no network (docs/COMPUTE.md, "Client binaries").
  bool compute_client_binaries = false;
  bool HasRole(std::string_view role) const {
    for (const auto& r : roles)
      if (r == role) return true;
    return false;
  }
  std::string source;  // the file it came from, or "embedded default"
  bool is_embedded_default = false;
};

struct ConfigOptions {
  std::string explicit_path;  // from --config; empty if not given
  std::string cwd;            // empty: the process's current folder
  // Looks up an environment variable; defaults to getenv.
  std::function<std::optional<std::string>(const std::string&)> getenv;
  // Lists the names of all environment variables (to find DRIVE_n set only there).
  std::function<std::vector<std::string>()> env_names;
  // False for a tool that stores nothing (dfrp-wallet on a client): a config that names no
  // drives is then accepted, with `drives` empty.
  bool require_drives = true;
};

// InvalidArgument naming the file and the key for a bad config, and (with require_drives) for
// one that names no drives.
Result<NodeConfig> LoadConfig(const ConfigOptions& options);

// Parses the flat key/value form of a config (already read from TOML or .env) and validates
// it. `base_dir` resolves relative paths. Exposed for tests.
Result<NodeConfig> ConfigFromValues(const std::map<std::string, std::string>& values,
                                    const std::string& base_dir, std::string source);

// Parses a `.env` file: KEY=VALUE lines, '#' comments, optional `export `, optional quotes.
Result<std::map<std::string, std::string>> ParseDotEnv(std::string_view text,
                                                       std::string_view name);
// Parses a flat TOML document into the same map (integers are rendered as decimal strings).
Result<std::map<std::string, std::string>> ParseTomlFlat(std::string_view text,
                                                         std::string_view name);

// "500G", "64M", "1024", "2TiB" -> bytes. Binary suffixes K, M, G, T (optionally followed by
// "iB" or "B"); no fractions.
std::optional<uint64_t> ParseByteSize(std::string_view text);
// 1536 -> "1.5 KiB"; exact values print without decimals ("64 MiB").
std::string FormatBytes(uint64_t bytes);

// True for keys the config understands.
bool IsKnownConfigKey(std::string_view key);

}  // namespace dfrp::core
