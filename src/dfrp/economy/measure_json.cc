// Capacity <-> JSON (STATE_DIR/capacity.json). Strict on the way in: every key present, none
// unknown, every figure a finite number >= 0, each failure naming its field.
#include <cmath>
#include <limits>
#include <set>

#include "dfrp/economy/measure.h"

namespace dfrp::economy {

namespace {

using nlohmann::json;

json Optional(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

core::Status BadField(const std::string& field, const std::string& why) {
  return core::Status::InvalidArgument("capacity.json: " + field + ": " + why +
                                       ": measure again with `dfrp-market measure`");
}

// Checks that `j` is an object with exactly `keys`.
core::Status CheckKeys(const json& j, const std::string& where, const std::set<std::string>& keys) {
  if (!j.is_object()) return BadField(where.empty() ? "(top level)" : where, "must be an object");
  const std::string prefix = where.empty() ? "" : where + ".";
  for (const auto& k : keys) {
    if (!j.contains(k)) return BadField(prefix + k, "missing");
  }
  for (const auto& [k, v] : j.items()) {
    if (!keys.contains(k)) return BadField(prefix + k, "unknown key");
  }
  return core::Status::OK();
}

core::Result<double> Figure(const json& j, const std::string& field) {
  if (!j.is_number())
    return core::Err(BadField(field, "must be a number, got " + std::string(j.type_name())));
  const double v = j.get<double>();
  if (!std::isfinite(v)) return core::Err(BadField(field, "must be finite"));
  if (v < 0) return core::Err(BadField(field, "must not be negative, got " + std::to_string(v)));
  return v;
}

core::Result<std::optional<double>> OptionalFigure(const json& j, const std::string& field) {
  if (j.is_null()) return std::optional<double>();
  DFRP_ASSIGN_OR_RETURN(double v, Figure(j, field));
  return std::optional<double>(v);
}

core::Result<std::string> Text(const json& j, const std::string& field) {
  if (!j.is_string())
    return core::Err(BadField(field, "must be a string, got " + std::string(j.type_name())));
  return j.get<std::string>();
}

core::Result<bool> Flag(const json& j, const std::string& field) {
  if (!j.is_boolean())
    return core::Err(BadField(field, "must be true or false, got " + std::string(j.type_name())));
  return j.get<bool>();
}

// A non-negative integer no larger than `max`.
core::Result<uint64_t> Count(const json& j, const std::string& field, uint64_t max) {
  if (!j.is_number_integer() || (!j.is_number_unsigned() && j.get<int64_t>() < 0)) {
    return core::Err(BadField(field, "must be a non-negative integer, got " + j.dump()));
  }
  const uint64_t v = j.get<uint64_t>();
  if (v > max) return core::Err(BadField(field, "must be at most " + std::to_string(max)));
  return v;
}

core::Result<VolumeCapacity> VolumeFromJson(const json& j, const std::string& where) {
  DFRP_RETURN_IF_ERROR(CheckKeys(j, where,
                                 {"index", "path", "read_iops_4k", "read_mb_per_sec",
                                  "write_mb_per_sec", "direct_io", "error"}));
  VolumeCapacity v;
  DFRP_ASSIGN_OR_RETURN(const uint64_t index,
                        Count(j["index"], where + ".index", std::numeric_limits<uint32_t>::max()));
  v.index = static_cast<uint32_t>(index);
  DFRP_ASSIGN_OR_RETURN(v.path, Text(j["path"], where + ".path"));
  DFRP_ASSIGN_OR_RETURN(v.read_iops_4k, OptionalFigure(j["read_iops_4k"], where + ".read_iops_4k"));
  DFRP_ASSIGN_OR_RETURN(v.read_mb_per_sec,
                        OptionalFigure(j["read_mb_per_sec"], where + ".read_mb_per_sec"));
  DFRP_ASSIGN_OR_RETURN(v.write_mb_per_sec,
                        OptionalFigure(j["write_mb_per_sec"], where + ".write_mb_per_sec"));
  DFRP_ASSIGN_OR_RETURN(v.direct_io, Flag(j["direct_io"], where + ".direct_io"));
  DFRP_ASSIGN_OR_RETURN(v.error, Text(j["error"], where + ".error"));
  return v;
}

}  // namespace

json CapacityToJson(const Capacity& c) {
  json volumes = json::array();
  for (const auto& v : c.volumes) {
    volumes.push_back({{"index", v.index},
                       {"path", v.path},
                       {"read_iops_4k", Optional(v.read_iops_4k)},
                       {"read_mb_per_sec", Optional(v.read_mb_per_sec)},
                       {"write_mb_per_sec", Optional(v.write_mb_per_sec)},
                       {"direct_io", v.direct_io},
                       {"error", v.error}});
  }
  return {{"cores", c.cores},
          {"sha256_per_sec_one_core", c.sha256_per_sec_one_core},
          {"sha256_per_sec_all_cores", c.sha256_per_sec_all_cores},
          {"gpu_tflops", Optional(c.gpu_tflops)},
          {"gpu_reason", c.gpu_reason},
          {"volumes", std::move(volumes)},
          {"measured_unix_ms", c.measured_unix_ms},
          {"seconds", c.seconds},
          {"quick", c.quick}};
}

core::Result<Capacity> CapacityFromJson(const json& j) {
  DFRP_RETURN_IF_ERROR(
      CheckKeys(j, "",
                {"cores", "sha256_per_sec_one_core", "sha256_per_sec_all_cores", "gpu_tflops",
                 "gpu_reason", "volumes", "measured_unix_ms", "seconds", "quick"}));
  Capacity c;
  DFRP_ASSIGN_OR_RETURN(const uint64_t cores,
                        Count(j["cores"], "cores", std::numeric_limits<unsigned>::max()));
  c.cores = static_cast<unsigned>(cores);
  DFRP_ASSIGN_OR_RETURN(c.sha256_per_sec_one_core,
                        Figure(j["sha256_per_sec_one_core"], "sha256_per_sec_one_core"));
  DFRP_ASSIGN_OR_RETURN(c.sha256_per_sec_all_cores,
                        Figure(j["sha256_per_sec_all_cores"], "sha256_per_sec_all_cores"));
  DFRP_ASSIGN_OR_RETURN(c.gpu_tflops, OptionalFigure(j["gpu_tflops"], "gpu_tflops"));
  DFRP_ASSIGN_OR_RETURN(c.gpu_reason, Text(j["gpu_reason"], "gpu_reason"));
  if (!j["volumes"].is_array()) return core::Err(BadField("volumes", "must be an array"));
  for (size_t i = 0; i < j["volumes"].size(); ++i) {
    DFRP_ASSIGN_OR_RETURN(VolumeCapacity v,
                          VolumeFromJson(j["volumes"][i], "volumes[" + std::to_string(i) + "]"));
    c.volumes.push_back(std::move(v));
  }
  DFRP_ASSIGN_OR_RETURN(const uint64_t ms, Count(j["measured_unix_ms"], "measured_unix_ms",
                                                 std::numeric_limits<int64_t>::max()));
  c.measured_unix_ms = static_cast<int64_t>(ms);
  DFRP_ASSIGN_OR_RETURN(c.seconds, Figure(j["seconds"], "seconds"));
  DFRP_ASSIGN_OR_RETURN(c.quick, Flag(j["quick"], "quick"));
  return c;
}

}  // namespace dfrp::economy
