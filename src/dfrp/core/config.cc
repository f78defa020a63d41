#include "dfrp/core/config.h"

#include <fmt/format.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <climits>
#include <cstdlib>
#include <set>
#include <thread>

#include "dfrp/core/bytes.h"
#include "dfrp/core/file_system.h"

extern char** environ;

namespace dfrp::core {

namespace {

constexpr std::string_view kFixedKeys[] = {"LEAF_SIZE",
                                           "VECTOR_DIM",
                                           "VECTOR_METRIC",
                                           "STATE_DIR",
                                           "API_ADDR",
                                           "SCRUB_RATE",
                                           "MAX_CONNECTIONS",
                                           "MAX_HEADER_BYTES",
                                           "API_HOSTS",
                                           "MAX_BODY_MEMORY",
                                           "ECONOMIC_POLICY",
                                           "ROLES",
                                           "WALLET",
                                           "WALLET_PASSPHRASE_FILE",
                                           "PEERS",
                                           "ADVERTISE_URL",
                                           "TRUSTED_PEERS",
                                           "COMPUTE_APPS",
                                           "COMPUTE_JOB_USER",
                                           "COMPUTE_HOSTFILE",
                                           "COMPUTE_RSH_AGENT",
                                           "COMPUTE_SLOTS",
                                           "COMPUTE_CLIENT_BINARIES"};

// DRIVE_12 -> ("DRIVE", 12); anything else -> nullopt.
std::optional<std::pair<std::string_view, int>> SplitIndexedKey(std::string_view key) {
  for (std::string_view prefix : {"DRIVE_", "QUOTA_"}) {
    if (!key.starts_with(prefix)) continue;
    std::string_view digits = key.substr(prefix.size());
    if (digits.empty() || digits.size() > 4) return std::nullopt;
    for (char c : digits)
      if (c < '0' || c > '9') return std::nullopt;  // from_chars alone would take "-0"
    if (digits.size() > 1 && digits[0] == '0') return std::nullopt;
    int n = 0;
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (ec != std::errc() || p != digits.data() + digits.size()) return std::nullopt;
    return std::make_pair(prefix.substr(0, 5), n);
  }
  return std::nullopt;
}

std::string Absolute(const std::string& path, const std::string& base_dir) {
  std::string joined = (!path.empty() && path.front() == '/') ? path : JoinPath(base_dir, path);
  // Drop "." and empty segments for tidier messages; ".." is kept as written.
  std::string out;
  size_t i = 0;
  while (i <= joined.size()) {
    size_t j = joined.find('/', i);
    if (j == std::string::npos) j = joined.size();
    std::string_view seg(joined.data() + i, j - i);
    if (!seg.empty() && seg != ".") {
      if (!out.empty() || joined.front() == '/') out.push_back('/');
      out.append(seg);
    }
    i = j + 1;
  }
  if (out.empty()) out = joined.front() == '/' ? "/" : ".";
  return out;
}

std::string CurrentDir() {
  char buf[PATH_MAX];
  if (::getcwd(buf, sizeof(buf)) == nullptr) return ".";
  return buf;
}

Result<uint32_t> ParseSmallInt(const std::string& key, const std::string& value) {
  uint32_t n = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec != std::errc() || p != value.data() + value.size() || value.empty())
    return Err(Status::InvalidArgument(
        fmt::format("{} = '{}' is not a whole number: write it like {}=4096", key, value, key)));
  return n;
}

}  // namespace

bool IsKnownConfigKey(std::string_view key) {
  if (SplitIndexedKey(key)) return true;
  return std::find(std::begin(kFixedKeys), std::end(kFixedKeys), key) != std::end(kFixedKeys);
}

std::optional<uint64_t> ParseByteSize(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
    text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.remove_suffix(1);
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  if (digits == 0) return std::nullopt;
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + digits, n);
  if (ec != std::errc()) return std::nullopt;
  std::string_view suffix = text.substr(digits);
  while (!suffix.empty() && suffix.front() == ' ') suffix.remove_prefix(1);
  int shift = 0;
  if (!suffix.empty()) {
    switch (std::toupper(static_cast<unsigned char>(suffix.front()))) {
      case 'K':
        shift = 10;
        break;
      case 'M':
        shift = 20;
        break;
      case 'G':
        shift = 30;
        break;
      case 'T':
        shift = 40;
        break;
      case 'B':
        shift = 0;
        break;
      default:
        return std::nullopt;
    }
    std::string_view rest = suffix.substr(1);
    if (suffix.front() == 'B' || suffix.front() == 'b') {
      if (!rest.empty()) return std::nullopt;
    } else if (!(rest.empty() || rest == "B" || rest == "iB" || rest == "b")) {
      return std::nullopt;
    }
  }
  if (shift > 0 && n > (UINT64_MAX >> shift)) return std::nullopt;
  return n << shift;
}

std::string FormatBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int unit = 0;
  uint64_t whole = bytes;
  while (unit < 5 && whole >= 1024 && whole % 1024 == 0) {
    whole /= 1024;
    ++unit;
  }
  if (whole < 1024 || unit == 5) return fmt::format("{} {}", whole, kUnits[unit]);
  double v = static_cast<double>(bytes);
  unit = 0;
  while (v >= 1024 && unit < 5) {
    v /= 1024;
    ++unit;
  }
  return fmt::format("{:.1f} {}", v, kUnits[unit]);
}

Result<std::map<std::string, std::string>> ParseDotEnv(std::string_view text,
                                                       std::string_view name) {
  std::map<std::string, std::string> out;
  int line_no = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.front())))
      line.remove_prefix(1);
    if (line.empty() || line.front() == '#') {
      if (end == text.size()) break;
      continue;
    }
    if (line.starts_with("export ")) line.remove_prefix(7);
    size_t eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0)
      return Err(Status::InvalidArgument(
          fmt::format("{} line {}: expected KEY=VALUE, found '{}'", name, line_no, line)));
    std::string key(line.substr(0, eq));
    while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back()))) key.pop_back();
    while (!key.empty() && std::isspace(static_cast<unsigned char>(key.front()))) key.erase(0, 1);
    if (key.empty())
      return Err(Status::InvalidArgument(
          fmt::format("{} line {}: a line with an empty key; write KEY=VALUE", name, line_no)));
    std::string_view value = line.substr(eq + 1);
    while (!value.empty() && std::isspace(static_cast<unsigned char>(value.front())))
      value.remove_prefix(1);
    if (!value.empty() && (value.front() == '"' || value.front() == '\'')) {
      char q = value.front();
      size_t close = value.find(q, 1);
      if (close == std::string_view::npos)
        return Err(Status::InvalidArgument(
            fmt::format("{} line {}: the value of {} has no closing {}", name, line_no, key, q)));
      value = value.substr(1, close - 1);
    } else {
      size_t hash = value.find(" #");
      if (hash != std::string_view::npos) value = value.substr(0, hash);
      while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back())))
        value.remove_suffix(1);
    }
    if (out.count(key))
      return Err(Status::InvalidArgument(
          fmt::format("{} line {}: {} is set twice; keep one", name, line_no, key)));
    out[key] = std::string(value);
    if (end == text.size()) break;
  }
  return out;
}

Result<std::map<std::string, std::string>> ParseTomlFlat(std::string_view text,
                                                         std::string_view name) {
  toml::table table;
  try {
    table = toml::parse(text, name);
  } catch (const toml::parse_error& e) {
    const auto& src = e.source();
    return Err(Status::InvalidArgument(
        fmt::format("{} line {}: {}", name, src.begin.line, e.description())));
  }
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : table) {
    std::string key(k.str());
    if (auto s = v.value_exact<std::string>()) {
      out[key] = *s;
    } else if (auto i = v.value_exact<int64_t>()) {
      if (*i < 0)
        return Err(Status::InvalidArgument(fmt::format("{}: {} must not be negative", name, key)));
      out[key] = std::to_string(*i);
    } else {
      return Err(Status::InvalidArgument(fmt::format(
          "{}: {} must be a string or a whole number (keys are flat: DRIVE_0 = \"/mnt/d0\")", name,
          key)));
    }
  }
  return out;
}

Result<NodeConfig> ConfigFromValues(const std::map<std::string, std::string>& values,
                                    const std::string& base_dir, std::string source) {
  NodeConfig cfg;
  cfg.source = std::move(source);
  std::map<int, std::string> drive_paths;
  std::map<int, std::string> quotas;
  for (const auto& [key, value] : values) {
    if (auto idx = SplitIndexedKey(key)) {
      (idx->first == "DRIVE" ? drive_paths : quotas)[idx->second] = value;
      continue;
    }
    if (!IsKnownConfigKey(key))
      return Err(Status::InvalidArgument(
          fmt::format("{}: unknown key {} (known: DRIVE_n, QUOTA_n, "
                      "LEAF_SIZE, VECTOR_DIM, VECTOR_METRIC, STATE_DIR, API_ADDR, "
                      "SCRUB_RATE, MAX_CONNECTIONS, MAX_HEADER_BYTES, "
                      "API_HOSTS, MAX_BODY_MEMORY, ECONOMIC_POLICY, "
                      "ROLES, WALLET, WALLET_PASSPHRASE_FILE, PEERS, ADVERTISE_URL, TRUSTED_PEERS, "
                      "COMPUTE_APPS, COMPUTE_JOB_USER, COMPUTE_HOSTFILE, COMPUTE_RSH_AGENT, "
                      "COMPUTE_SLOTS, COMPUTE_CLIENT_BINARIES); "
                      "remove it or fix its spelling",
                      cfg.source, key)));
  }
  if (auto it = values.find("LEAF_SIZE"); it != values.end()) {
    DFRP_ASSIGN_OR_RETURN(cfg.leaf_size, ParseSmallInt("LEAF_SIZE", it->second));
    if (cfg.leaf_size < 512 || cfg.leaf_size > (1u << 20) ||
        (cfg.leaf_size & (cfg.leaf_size - 1)) != 0)
      return Err(Status::InvalidArgument(
          fmt::format("{}: LEAF_SIZE = {} is not a power of two between 512 and 1048576",
                      cfg.source, cfg.leaf_size)));
  }
  if (auto it = values.find("VECTOR_DIM"); it != values.end()) {
    DFRP_ASSIGN_OR_RETURN(cfg.vector_dim, ParseSmallInt("VECTOR_DIM", it->second));
    if (cfg.vector_dim < 1 || cfg.vector_dim > 4096)
      return Err(Status::InvalidArgument(fmt::format(
          "{}: VECTOR_DIM = {} must be between 1 and 4096", cfg.source, cfg.vector_dim)));
  }
  if (auto it = values.find("VECTOR_METRIC"); it != values.end() && !it->second.empty()) {
    if (it->second != "cosine" && it->second != "l2")
      return Err(Status::InvalidArgument(
          fmt::format("{}: VECTOR_METRIC = '{}' is not a metric: use cosine (the default) or l2",
                      cfg.source, it->second)));
    cfg.vector_metric = it->second;
  }
  if (auto it = values.find("API_ADDR"); it != values.end() && !it->second.empty()) {
    const std::string& a = it->second;
    const size_t colon = a.rfind(':');
    uint64_t port = 0;
    if (colon == 0 || colon == std::string::npos ||
        !ParseDecimal(std::string_view(a).substr(colon + 1), &port) || port > 65535)
      return Err(Status::InvalidArgument(fmt::format(
          "{}: API_ADDR = '{}' is not HOST:PORT; write it like API_ADDR=127.0.0.1:7480 (port 0 "
          "picks a free port)",
          cfg.source, a)));
    cfg.api_addr = a;
  }
  if (auto it = values.find("SCRUB_RATE"); it != values.end() && !it->second.empty()) {
    if (it->second == "0" || it->second == "off") {
      cfg.scrub_rate = 0;
    } else {
      auto bytes = ParseByteSize(it->second);
      if (!bytes)
        return Err(Status::InvalidArgument(fmt::format(
            "{}: SCRUB_RATE = '{}' is not a rate; write bytes per second with K, M or G, such as "
            "SCRUB_RATE=8M, or 0 to turn the background scrubber off",
            cfg.source, it->second)));
      cfg.scrub_rate = *bytes;
    }
  }
  if (auto it = values.find("MAX_CONNECTIONS"); it != values.end()) {
    DFRP_ASSIGN_OR_RETURN(cfg.max_connections, ParseSmallInt("MAX_CONNECTIONS", it->second));
    if (cfg.max_connections < 1 || cfg.max_connections > 100000)
      return Err(Status::InvalidArgument(
          fmt::format("{}: MAX_CONNECTIONS = {} must be between 1 and 100000", cfg.source,
                      cfg.max_connections)));
  }
  if (auto it = values.find("MAX_HEADER_BYTES"); it != values.end()) {
    DFRP_ASSIGN_OR_RETURN(cfg.max_header_bytes, ParseSmallInt("MAX_HEADER_BYTES", it->second));
    if (cfg.max_header_bytes < 1024 || cfg.max_header_bytes > (1u << 20))
      return Err(Status::InvalidArgument(
          fmt::format("{}: MAX_HEADER_BYTES = {} must be between 1024 and 1048576", cfg.source,
                      cfg.max_header_bytes)));
  }
  if (auto it = values.find("API_HOSTS"); it != values.end()) {
    // A comma- or space-separated list of names a Host header may carry besides the listen
    // address and the loopback names.
    std::string name;
    for (char c : it->second + ",") {
      if (c == ',' || c == ' ' || c == '\t') {
        if (!name.empty()) cfg.api_hosts.push_back(name);
        name.clear();
      } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_') {
        name += c;
      } else {
        return Err(Status::InvalidArgument(fmt::format(
            "{}: API_HOSTS = '{}' holds '{}', which no host name does; write names separated "
            "by commas, such as API_HOSTS=node1.example.net,10.0.0.5",
            cfg.source, it->second, c)));
      }
    }
  }
  if (auto it = values.find("MAX_BODY_MEMORY"); it != values.end() && !it->second.empty()) {
    auto bytes = ParseByteSize(it->second);
    if (!bytes || *bytes < (1ull << 20))
      return Err(Status::InvalidArgument(fmt::format(
          "{}: MAX_BODY_MEMORY = '{}' must be a size of at least 1M, such as 256M (the memory "
          "all request bodies in flight may hold together)",
          cfg.source, it->second)));
    cfg.max_body_memory = *bytes;
  }
  if (auto it = values.find("ECONOMIC_POLICY"); it != values.end() && !it->second.empty())
    cfg.economic_policy = Absolute(it->second, base_dir);
  if (auto it = values.find("ROLES"); it != values.end() && !it->second.empty()) {
    cfg.roles.clear();
    for (std::string_view rest = it->second; !rest.empty();) {
      const size_t comma = rest.find(',');
      std::string_view role = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      while (!role.empty() && role.front() == ' ') role.remove_prefix(1);
      while (!role.empty() && role.back() == ' ') role.remove_suffix(1);
      if (role != "storage" && role != "authority" && role != "compute")
        return Err(Status::InvalidArgument(
            fmt::format("{}: ROLES = '{}': '{}' is not a role (storage, authority, compute)",
                        cfg.source, it->second, std::string(role).substr(0, 32))));
      if (std::find(cfg.roles.begin(), cfg.roles.end(), role) == cfg.roles.end())
        cfg.roles.emplace_back(role);
    }
  }
  if (auto it = values.find("WALLET"); it != values.end() && !it->second.empty())
    cfg.wallet = Absolute(it->second, base_dir);
  // The mesh: bootstrap peers and this node's own URL as peers reach it (node/mesh_service.h
  // checks each fully when dfrpd starts).
  auto url_ok = [](std::string_view u) {
    return u.starts_with("http://") && u.size() > 7 && u.size() <= 200 &&
           u.find_first_of(" \t\"'") == std::string_view::npos;
  };
  if (auto it = values.find("PEERS"); it != values.end()) {
    for (std::string_view rest = it->second; !rest.empty();) {
      const size_t cut = rest.find_first_of(", ");
      std::string_view u = rest.substr(0, cut);
      rest = cut == std::string_view::npos ? std::string_view() : rest.substr(cut + 1);
      if (u.empty()) continue;
      if (!url_ok(u))
        return Err(Status::InvalidArgument(fmt::format(
            "{}: PEERS: '{}' is not a peer's URL (give http://host:port, comma-separated)",
            cfg.source, std::string(u).substr(0, 64))));
      cfg.peers.emplace_back(u);
    }
  }
  if (auto it = values.find("ADVERTISE_URL"); it != values.end() && !it->second.empty()) {
    if (!url_ok(it->second))
      return Err(Status::InvalidArgument(fmt::format(
          "{}: ADVERTISE_URL = '{}' is not a URL peers can reach (give http://host:port)",
          cfg.source, it->second.substr(0, 64))));
    cfg.advertise_url = it->second;
  }
  // Wallet addresses, checked when dfrpd starts (core does not decode addresses).
  if (auto it = values.find("TRUSTED_PEERS"); it != values.end()) {
    for (std::string_view rest = it->second; !rest.empty();) {
      const size_t cut = rest.find_first_of(", ");
      std::string_view a = rest.substr(0, cut);
      rest = cut == std::string_view::npos ? std::string_view() : rest.substr(cut + 1);
      if (!a.empty()) cfg.trusted_peers.emplace_back(a);
    }
  }
  if (auto it = values.find("WALLET_PASSPHRASE_FILE"); it != values.end() && !it->second.empty())
    cfg.wallet_passphrase_file = Absolute(it->second, base_dir);
  // Compute (docs/COMPUTE.md): the operator's app catalog, the user jobs run as, and the hosts
  // mpirun may spread a job over.
  if (auto it = values.find("COMPUTE_APPS"); it != values.end() && !it->second.empty())
    cfg.compute_apps = Absolute(it->second, base_dir);
  if (auto it = values.find("COMPUTE_JOB_USER"); it != values.end() && !it->second.empty()) {
    if (it->second == "root" || it->second.size() > 32 ||
        it->second.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") != std::string::npos)
      return Err(Status::InvalidArgument(fmt::format(
          "{}: COMPUTE_JOB_USER = '{}' is not an unprivileged user name (jobs never run as root)",
          cfg.source, it->second.substr(0, 40))));
    cfg.compute_job_user = it->second;
  }
  if (auto it = values.find("COMPUTE_HOSTFILE"); it != values.end() && !it->second.empty())
    cfg.compute_hostfile = Absolute(it->second, base_dir);
  if (auto it = values.find("COMPUTE_RSH_AGENT"); it != values.end())
    cfg.compute_rsh_agent = it->second;
  cfg.compute_slots = std::max(1u, std::thread::hardware_concurrency());
  if (auto it = values.find("COMPUTE_SLOTS"); it != values.end() && !it->second.empty()) {
    uint64_t n = 0;
    const auto [p, ec] =
        std::from_chars(it->second.data(), it->second.data() + it->second.size(), n);
    if (ec != std::errc() || p != it->second.data() + it->second.size() || n == 0 || n > 1024)
      return Err(Status::InvalidArgument(
          fmt::format("{}: COMPUTE_SLOTS = '{}' must be 1..1024 (the most MPI ranks of one job)",
                      cfg.source, it->second.substr(0, 32))));
    cfg.compute_slots = static_cast<uint32_t>(n);
  }
  if (auto it = values.find("COMPUTE_CLIENT_BINARIES"); it != values.end()) {
    if (it->second != "true" && it->second != "false")
      return Err(Status::InvalidArgument(
          fmt::format("{}: COMPUTE_CLIENT_BINARIES = '{}' must be true or false", cfg.source,
                      it->second.substr(0, 32))));
    cfg.compute_client_binaries = it->second == "true";
  }
  if (cfg.HasRole("compute") && cfg.wallet.empty())
    return Err(Status::InvalidArgument(fmt::format(
        "{}: ROLES names compute, whose result claims are signed by the node's wallet: set "
        "WALLET",
        cfg.source)));
  if (cfg.HasRole("authority") && cfg.wallet.empty())
    return Err(Status::InvalidArgument(fmt::format(
        "{}: ROLES names authority, which signs votes with the wallet of a committee member: "
        "set WALLET to that wallet's keystore",
        cfg.source)));
  cfg.config_dir = base_dir;
  auto state = values.find("STATE_DIR");
  cfg.state_dir =
      Absolute(state != values.end() && !state->second.empty() ? state->second : "dfrp-data/state",
               base_dir);
  for (const auto& [n, q] : quotas)
    if (!drive_paths.count(n))
      return Err(Status::InvalidArgument(
          fmt::format("{}: QUOTA_{} is set but DRIVE_{} is not; add DRIVE_{} or remove QUOTA_{}",
                      cfg.source, n, n, n, n)));
  int expect = 0;
  std::set<std::string> seen;
  for (const auto& [n, raw_path] : drive_paths) {
    if (n != expect)
      return Err(Status::InvalidArgument(
          fmt::format("{}: DRIVE_{} is set but DRIVE_{} is not; number drives from 0 without gaps",
                      cfg.source, n, expect)));
    ++expect;
    if (raw_path.empty())
      return Err(Status::InvalidArgument(
          fmt::format("{}: DRIVE_{} is empty; give the drive's folder", cfg.source, n)));
    auto q = quotas.find(n);
    if (q == quotas.end())
      return Err(Status::InvalidArgument(fmt::format(
          "{}: DRIVE_{} has no QUOTA_{}; add QUOTA_{}=<size> such as 500G", cfg.source, n, n, n)));
    auto bytes = ParseByteSize(q->second);
    if (!bytes || *bytes == 0)
      return Err(Status::InvalidArgument(fmt::format(
          "{}: QUOTA_{} = '{}' is not a size; write bytes or a number with K, M, G or T, "
          "such as QUOTA_{}=500G",
          cfg.source, n, q->second, n)));
    DriveConfig d{n, Absolute(raw_path, base_dir), *bytes};
    if (!seen.insert(d.path).second)
      return Err(Status::InvalidArgument(fmt::format(
          "{}: DRIVE_{} repeats the path {} of an earlier drive; give each drive its own folder",
          cfg.source, n, d.path)));
    cfg.drives.push_back(std::move(d));
  }
  return cfg;
}

Result<NodeConfig> LoadConfig(const ConfigOptions& options) {
  auto getenv =
      options.getenv ? options.getenv : [](const std::string& k) -> std::optional<std::string> {
    const char* v = std::getenv(k.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
  auto env_names = options.env_names ? options.env_names : []() {
    std::vector<std::string> names;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      std::string_view kv(*e);
      names.emplace_back(kv.substr(0, kv.find('=')));
    }
    return names;
  };
  const std::string cwd = options.cwd.empty() ? CurrentDir() : options.cwd;
  FileSystem* fs = DefaultFileSystem();

  std::string path = options.explicit_path;
  if (path.empty()) path = getenv("DFRP_CONFIG").value_or("");
  if (path.empty()) {
    if (fs->Exists(JoinPath(cwd, "dfrp.toml")))
      path = "dfrp.toml";
    else if (fs->Exists(JoinPath(cwd, ".env")))
      path = ".env";
  }
  std::map<std::string, std::string> values;
  std::string base_dir = cwd;
  std::string source = "embedded default";
  bool embedded = path.empty();
  if (embedded) {
    values = {{"DRIVE_0", "dfrp-data/drive0"},
              {"QUOTA_0", "64M"},
              {"DRIVE_1", "dfrp-data/drive1"},
              {"QUOTA_1", "64M"}};
  } else {
    std::string abs = Absolute(path, cwd);
    auto text = ReadWholeFile(fs, abs);
    if (!text)
      return Err(Status::InvalidArgument(
          fmt::format("cannot read config {}: {}; pass --config with an existing file", abs,
                      text.error().message())));
    bool is_toml = abs.ends_with(".toml");
    auto parsed = is_toml ? ParseTomlFlat(*text, abs) : ParseDotEnv(*text, abs);
    if (!parsed) return Err(parsed.error());
    values = std::move(*parsed);
    base_dir = DirName(abs);
    source = abs;
  }
  // Environment overrides. Paths from the environment resolve against the current folder.
  bool overridden = false;
  for (const std::string& name : env_names()) {
    if (!IsKnownConfigKey(name)) continue;
    if (auto v = getenv(name)) {
      std::string value = *v;
      if ((name.starts_with("DRIVE_") || name == "STATE_DIR" || name == "ECONOMIC_POLICY" ||
           name == "WALLET" || name == "WALLET_PASSPHRASE_FILE" || name == "COMPUTE_APPS" ||
           name == "COMPUTE_HOSTFILE") &&
          !value.empty() && value[0] != '/')
        value = Absolute(value, cwd);
      values[name] = value;
      overridden = true;
    }
  }
  if (embedded && overridden) {
    // With drives given in the environment, the embedded drives do not apply.
    bool env_drives = false;
    for (const std::string& name : env_names())
      if (name.starts_with("DRIVE_") && getenv(name)) env_drives = true;
    if (env_drives) {
      for (auto it = values.begin(); it != values.end();) {
        bool from_env = static_cast<bool>(getenv(it->first));
        if ((it->first.starts_with("DRIVE_") || it->first.starts_with("QUOTA_")) && !from_env)
          it = values.erase(it);
        else
          ++it;
      }
      source = "environment";
      embedded = false;
    }
  }
  auto cfg = ConfigFromValues(values, base_dir, source);
  if (!cfg) return cfg;
  cfg->is_embedded_default = embedded;
  // economic.toml is looked for beside a config file only.
  if (source == "environment" || embedded) cfg->config_dir.clear();
  if (cfg->drives.empty() && options.require_drives)
    return Err(Status::InvalidArgument(
        fmt::format("{} names no drives; add DRIVE_0=<folder> and QUOTA_0=<size>", cfg->source)));
  return cfg;
}

}  // namespace dfrp::core
