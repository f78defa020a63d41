#include "dfrp/node/views.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <ctime>

#include "dfrp/core/bytes.h"

namespace dfrp::node {

using core::Err;
using core::Result;
using core::Status;
using nlohmann::json;

std::string RootHex(const crypto::Hash& h) { return core::ToHex(crypto::HashBytes(h)); }

std::string IsoTime(int64_t unix_ms) {
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03d}Z", buf, static_cast<int>(unix_ms % 1000));
}

json VolumeJson(const storage::VolumeInfo& v) {
  json j = {{"index", v.index},
            {"path", v.path},
            {"quota", v.quota},
            {"used", v.used},
            {"free", v.free},
            {"shards", v.shards},
            {"state", storage::VolumeStateName(v.state)},
            {"segments", v.segments},
            {"payload_bytes", v.payload_bytes}};
  if (!v.problem.empty()) j["problem"] = v.problem;
  if (!v.moved_from.empty()) j["moved_from"] = v.moved_from;
  if (!v.migrating_to.empty()) j["migrating_to"] = v.migrating_to;
  return j;
}

json MigrateReportJson(const storage::MigrateReport& r) {
  return {{"volume", r.volume},
          {"from", r.from},
          {"to", r.to},
          {"already_there", r.already_there},
          {"files", r.files},
          {"bytes", r.bytes},
          {"shards_verified", r.shards_verified},
          {"copy_seconds", r.copy_seconds},
          {"verify_seconds", r.verify_seconds},
          {"total_seconds", r.total_seconds},
          {"resumed", r.resumed},
          {"source_deleted", r.source_deleted},
          {"source_bytes_deleted", r.source_bytes_deleted}};
}

json WrittenJson(const storage::WrittenShard& s) {
  return {{"shard_id", s.id.ToString()},
          {"merkle_root", RootHex(s.root)},
          {"size", s.size},
          {"leaf_size", s.leaf_size},
          {"volume", s.volume},
          {"file", s.name}};
}

json ShardInfoJson(const core::Uuid& id, const storage::ShardInfo& info) {
  const auto& m = info.metadata;
  json j = {{"shard_id", id.ToString()},
            {"merkle_root", RootHex(info.location.root)},
            {"size", m.size},
            {"leaf_size", m.leaf_size},
            {"volume", info.location.volume},
            {"volume_path", info.volume_path},
            {"segment", info.segment_path},
            {"offset", info.location.offset},
            {"record_len", info.location.record_len},
            {"content_type", m.content_type},
            {"created_unix_ms", m.created_unix_ms},
            {"created", IsoTime(m.created_unix_ms)},
            {"meta", m.tags}};
  j["owner"] = m.owner.empty() ? json(nullptr) : json(m.owner);
  j["vector"] = m.vector.empty() ? json(nullptr) : json(m.vector);
  return j;
}

json VerifyJson(const storage::VerifyResult& r) {
  json j = {{"shard_id", r.id.ToString()}, {"ok", r.ok}};
  if (!r.segment_path.empty()) {
    j["volume"] = r.location.volume;
    j["segment"] = r.segment_path;
    j["offset"] = r.location.offset;
    j["merkle_root"] = RootHex(r.location.root);
  }
  if (!r.ok) {
    j["error"] = r.status.message();
    j["error_code"] = StatusCodeName(r.status);
  }
  return j;
}

const char* StatusCodeName(const Status& s) {
  switch (s.code()) {
    case Status::Code::kOk:
      return "ok";
    case Status::Code::kInvalidArgument:
      return "invalid_argument";
    case Status::Code::kCorruption:
      return "integrity";
    case Status::Code::kNotFound:
      return "not_found";
    case Status::Code::kNoSpace:
      return "no_space";
    case Status::Code::kBusy:
      return "busy";
    case Status::Code::kIOError:
      return "io_error";
    case Status::Code::kInternal:
      return "internal";
    case Status::Code::kRefused:
      return "refused";
    case Status::Code::kUnavailable:
      return "unavailable";
  }
  return "internal";
}

json ErrorJson(const Status& s) {
  return {{"error",
           {{"code", StatusCodeName(s)},
            {"exit_code", core::ExitCodeFor(s)},
            {"message", s.message()}}}};
}

Status StatusFromErrorJson(const json& j, const std::string& fallback) {
  if (!j.is_object() || !j.contains("error") || !j["error"].is_object())
    return Status::IOError(fallback);
  const json& e = j["error"];
  // A peer's answer: fields of the wrong type are treated as absent (value() would throw).
  std::string msg = e.contains("message") && e["message"].is_string()
                        ? e["message"].get<std::string>()
                        : fallback;
  std::string code =
      e.contains("code") && e["code"].is_string() ? e["code"].get<std::string>() : "";
  if (code == "invalid_argument" || code == "unauthorized" || code == "bad_request")
    return Status::InvalidArgument(msg);
  if (code == "integrity") return Status::Corruption(msg);
  if (code == "not_found") return Status::NotFound(msg);
  if (code == "no_space") return Status::NoSpace(msg);
  if (code == "busy") return Status::Busy(msg);
  if (code == "internal") return Status::Internal(msg);
  if (code == "refused") return Status::Refused(msg);
  if (code == "unavailable") return Status::Unavailable(msg);
  return Status::IOError(msg);
}

}  // namespace dfrp::node

namespace dfrp::node {

Status CheckLeafSize(uint64_t leaf_size, const std::string& what) {
  if (leaf_size < 512 || leaf_size > (1u << 20) || (leaf_size & (leaf_size - 1)) != 0)
    return Status::InvalidArgument(fmt::format(
        "{} {} is not a power of two between 512 and 1048576 (such as 4096)", what, leaf_size));
  return Status::OK();
}

namespace {
// A float as the double with the same shortest decimal form (0.1f prints 0.1, not
// 0.10000000149011612).
double Shortest(float f) { return std::strtod(fmt::format("{}", f).c_str(), nullptr); }
}  // namespace

Result<json> SearchShardsJson(
    const vector::ShardVectors& index, const SearchQuery& q,
    const std::function<Result<storage::ShardInfo>(const core::Uuid&)>& stat, core::Clock* clock) {
  if (q.k == 0 || q.k > 1000)
    return Err(Status::InvalidArgument(
        fmt::format("k = {} is not between 1 and 1000: ask for fewer shards", q.k)));
  if (q.ef > 100000)
    return Err(Status::InvalidArgument(fmt::format("ef = {} is over 100000", q.ef)));
  const vector::ShardVectorsOptions& o = index.options();
  DFRP_ASSIGN_OR_RETURN(std::vector<float> near,
                        vector::ParseVector(q.near, o.dim, o.metric, "--near"));
  const int64_t start = clock->NowMonotonicNanos();
  DFRP_ASSIGN_OR_RETURN(std::vector<vector::Hit> hits,
                        index.Search(near, {.k = q.k, .ef = q.ef, .exact = q.exact}));
  const int64_t searched = clock->NowMonotonicNanos();
  json shards = json::array();
  uint64_t unavailable = 0;
  for (const vector::Hit& h : hits) {
    auto info = stat(h.id);
    if (!info) {
      ++unavailable;
      continue;
    }
    json j = ShardInfoJson(h.id, *info);
    j["distance"] = Shortest(h.distance);
    shards.push_back(std::move(j));
  }
  json near_json = json::array();
  for (float f : near) near_json.push_back(Shortest(f));
  return json{{"near", near_json},
              {"metric", vector::MetricName(o.metric)},
              {"k", q.k},
              {"ef", q.exact ? 0 : std::max<uint64_t>(q.ef ? q.ef : o.ef_search, q.k)},
              {"exact", q.exact},
              {"indexed", index.size()},
              {"search_ms", static_cast<double>(searched - start) / 1e6},
              {"unavailable", unavailable},
              {"shards", shards}};
}

}  // namespace dfrp::node
