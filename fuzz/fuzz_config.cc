// Fuzzes the config parsers: the input is a config file's text, parsed both as a .env file
// (ParseDotEnv) and as flat TOML (ParseTomlFlat); whatever parses goes through
// ConfigFromValues, and short inputs also through ParseByteSize.
//
// Properties: no crash, no uncaught exception; a config that validates has drives numbered
// 0..n-1, each named by the canonical keys DRIVE_<n> and QUOTA_<n> (no aliases such as
// DRIVE_-0), with distinct absolute paths and non-zero quotas that ParseByteSize gives for
// their QUOTA_<n> values, a power-of-two LEAF_SIZE in [512, 1 MiB], VECTOR_DIM in [1, 4096] and an
// absolute STATE_DIR; a size that parses parses the same from its decimal form, and from
// FormatBytes' form when that is exact.
#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "dfrp/core/config.h"
#include "fuzz_util.h"

namespace {

using dfrp::core::ConfigFromValues;
using dfrp::core::ParseByteSize;

void CheckConfig(const std::map<std::string, std::string>& values) {
  auto cfg = ConfigFromValues(values, "/srv/dfrp", "fuzz.conf");
  if (!cfg) return;
  std::set<std::string> paths;
  for (size_t i = 0; i < cfg->drives.size(); ++i) {
    const auto& d = cfg->drives[i];
    DFRP_FUZZ_CHECK(d.index == static_cast<int>(i));
    DFRP_FUZZ_CHECK(!d.path.empty() && d.path.front() == '/');
    DFRP_FUZZ_CHECK(paths.insert(d.path).second);
    DFRP_FUZZ_CHECK(d.quota > 0);
    // Only the canonical keys DRIVE_<i> and QUOTA_<i> may name drive i.
    DFRP_FUZZ_CHECK(values.count("DRIVE_" + std::to_string(i)) == 1);
    auto q = values.find("QUOTA_" + std::to_string(i));
    DFRP_FUZZ_CHECK(q != values.end() && ParseByteSize(q->second) == d.quota);
  }
  DFRP_FUZZ_CHECK(cfg->leaf_size >= 512 && cfg->leaf_size <= (1u << 20) &&
                  (cfg->leaf_size & (cfg->leaf_size - 1)) == 0);
  DFRP_FUZZ_CHECK(cfg->vector_dim >= 1 && cfg->vector_dim <= 4096);
  DFRP_FUZZ_CHECK(!cfg->state_dir.empty() && cfg->state_dir.front() == '/');
}

void CheckByteSize(std::string_view text) {
  auto v = ParseByteSize(text);
  if (!v) return;
  DFRP_FUZZ_CHECK(ParseByteSize(std::to_string(*v)) == v);
  const std::string shown = dfrp::core::FormatBytes(*v);
  // Exact values print as "<n> <unit>"; every unit but PiB is one ParseByteSize reads back.
  if (shown.find('.') == std::string::npos && !shown.ends_with("PiB"))
    DFRP_FUZZ_CHECK(ParseByteSize(shown) == v);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = dfrp::fuzz::AsView(data, size);
  if (size <= 64) CheckByteSize(text);
  if (auto env = dfrp::core::ParseDotEnv(text, "fuzz.env")) {
    CheckConfig(*env);
    for (const auto& [k, v] : *env)
      if (k.starts_with("QUOTA_")) CheckByteSize(v);
  }
  if (auto toml = dfrp::core::ParseTomlFlat(text, "fuzz.toml")) CheckConfig(*toml);
  return 0;
}
