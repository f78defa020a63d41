#include "dfrp/node/routes.h"

#include <fmt/format.h>

#include <mutex>

#include "dfrp/core/bytes.h"
#include "dfrp/core/version.h"
#include "dfrp/node/body_buffer.h"
#include "dfrp/node/dashboard_assets.h"
#include "dfrp/node/router.h"
#include "dfrp/node/views.h"

namespace dfrp::node {

using core::Err;
using core::Result;
using core::Status;
using nlohmann::json;

namespace {

// --- The node's own routes.

ApiResponse Asset(const ApiRequest& r) {
  std::string name = r.route.spec->pattern.substr(1);
  if (name.empty()) name = "index.html";
  std::string_view type;
  std::optional<std::string_view> body = DashboardAsset(name, &type);
  if (!body) return ApiResponse::Refusal(404, "not_found", 4, name + " is not served");
  ApiResponse res;
  res.content_type = std::string(type);
  res.body = std::string(*body);
  res.With("Cache-Control", "no-cache")
      .With("Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "connect-src 'self'; frame-ancestors 'none'")
      .With("X-Content-Type-Options", "nosniff");
  return res;
}

}  // namespace

std::vector<RouteSpec> NodeRoutes(Node* node, ServerView server) {
  std::vector<RouteSpec> t;
  for (const char* path : {"/", "/index.html", "/app.js", "/app.css", "/favicon.ico"})
    t.push_back({.methods = "GET, HEAD", .pattern = path, .handler = Asset});
  t.push_back({.methods = "GET, HEAD", .pattern = "/healthz", .handler = [node](const ApiRequest&) {
                 // Polled by monitors: no more than it says (not the whole status document).
                 return ApiResponse::Json(200, {{"status", "ok"},
                                                {"version", core::kVersion},
                                                {"store_id", node->store_id().ToString()},
                                                {"uptime_seconds", node->UptimeSeconds()}});
               }});
  t.push_back(
      {.methods = "GET", .pattern = "/metrics", .handler = [node, server](const ApiRequest&) {
         ApiResponse res;
         res.content_type = "text/plain; version=0.0.4; charset=utf-8";
         res.body = MetricsText(*node, server.figures());
         return res;
       }});
  t.push_back(
      {.methods = "GET", .pattern = "/v1/status", .handler = [node, server](const ApiRequest&) {
         return ApiResponse::Json(200, StatusJson(*node, server.api_addr(), server.figures()));
       }});
  return t;
}

// --- Storage.

namespace {

// The metadata and name of a PUT, from its query and Content-Type.
Result<PutShard> PutParams(const ApiRequest& r, uint64_t size) {
  PutShard put;
  put.size = size;
  const auto& q = r.route.query;
  std::string err, v;
  put.meta.content_type = "application/octet-stream";
  // curl sends application/x-www-form-urlencoded for --data-binary unless told otherwise:
  // that says nothing about the payload.
  if (std::string_view ct = r.header("Content-Type");
      !ct.empty() && ct != "application/x-www-form-urlencoded")
    put.meta.content_type = std::string(ct);
  if (!IsValidUtf8(put.meta.content_type))
    return Err(Status::InvalidArgument("the Content-Type header is not UTF-8"));
  if (QueryValue(q, "content_type", &v, &err)) put.meta.content_type = v;
  if (QueryValue(q, "owner", &v, &err)) put.meta.owner = v;
  if (QueryValue(q, "name", &v, &err)) put.name = v;
  if (QueryValue(q, "vector", &v, &err)) {
    DFRP_ASSIGN_OR_RETURN(put.meta.vector, vector::ParseNumbers(v, "vector"));
  }
  if (QueryValue(q, "leaf_size", &v, &err)) {
    uint64_t ls = 0;
    if (!core::ParseDecimal(v, &ls))
      return Err(Status::InvalidArgument(
          fmt::format("leaf_size={} is not a number such as 4096", v.substr(0, 40))));
    DFRP_RETURN_IF_ERROR(CheckLeafSize(ls, "leaf_size"));
    put.meta.leaf_size = static_cast<uint32_t>(ls);
  }
  if (!err.empty()) return Err(Status::InvalidArgument(err));
  auto [lo, hi] = q.equal_range("meta");
  for (auto it = lo; it != hi; ++it) {
    const size_t eq = it->second.find('=');
    if (eq == std::string::npos || eq == 0)
      return Err(Status::InvalidArgument(
          fmt::format("meta={} is not key=value: write it like meta=project%3Dalpha",
                      it->second.substr(0, 80))));
    std::string key = it->second.substr(0, eq);
    if (put.meta.tags.count(key))
      return Err(Status::InvalidArgument(fmt::format("meta {} is given twice; keep one", key)));
    put.meta.tags[key] = it->second.substr(eq + 1);
  }
  for (const auto& [k, unused] : q)
    if (k != "content_type" && k != "owner" && k != "name" && k != "vector" && k != "leaf_size" &&
        k != "meta")
      return Err(Status::InvalidArgument(fmt::format(
          "unknown query parameter '{}' for PUT /v1/shards (known: content_type, owner, name, "
          "vector, leaf_size, meta)",
          k.substr(0, 40))));
  if (put.name.empty()) put.name = "-";
  return put;
}

UploadHandler PutShardUpload(Node* node) {
  UploadHandler h;
  h.check = [node](const ApiRequest& r, uint64_t size) -> std::optional<ApiResponse> {
    auto params = PutParams(r, size);
    if (!params) return ApiResponse::Error(params.error());
    const uint64_t room = node->WritableBytes();
    // A record needs a little more than its payload (prefix, metadata, tree): keep a margin.
    if (size > room || room - size < size / 64 + 65536)
      return ApiResponse::Error(Status::NoSpace(fmt::format(
          "a {}-byte shard does not fit: the most any volume taking writes has free is {} bytes; "
          "add a drive (dfrp-storage add-drive) or resume a paused volume",
          size, room)));
    return std::nullopt;
  };
  h.take = [node](const ApiRequest& r, ReceivedBody body, std::function<void(ApiResponse)> reply) {
    auto params = PutParams(r, body.size);
    if (!params) {  // checked before the body was read: only a bug of ours gets here
      if (!body.spool_path.empty()) (void)node->fs()->RemoveFile(body.spool_path);
      return reply(ApiResponse::Error(params.error()));
    }
    PutShard put = std::move(*params);
    put.body = std::move(body.memory);
    put.spool_path = std::move(body.spool_path);
    put.hold = std::move(body.hold);
    put.ctx = r.ctx;
    node->writes().Submit(std::move(put), [reply = std::move(reply)](WriteOutcome o) {
      if (!o.status.ok()) return reply(ApiResponse::Error(o.status));
      ApiResponse res = ApiResponse::Json(201, WrittenJson(o.shard));
      res.With("Location", "/v1/shards/" + o.shard.id.ToString());
      reply(std::move(res));
    });
  };
  return h;
}

// A paid read's admission (node/read_desk.h), done once, by the download's first read.
class PaidRead {
 public:
  PaidRead(ReadDesk* desk, std::string receipt, uint64_t length)
      : desk_(desk), receipt_(std::move(receipt)), length_(length) {}
  Status Admit() {
    std::call_once(once_, [this] {
      Status s = desk_->Admit(receipt_, length_);
      // A receipt that does not verify is the request's fault, not the store's (no 500).
      result_ = s.IsCorruption() ? Status::InvalidArgument(s.message()) : s;
    });
    return result_;
  }

 private:
  ReadDesk* const desk_;
  const std::string receipt_;
  const uint64_t length_;
  std::once_flag once_;
  Status result_;  // written once under once_, read after it
};

// What a shard's download reads from: the opened shard and where the part served begins.
// One object shared by the download's functions (each then fits std::function's own
// storage: a GET allocates little).
struct ShardSource {
  Node* node;
  OpenedShard shard;
  uint64_t offset;

  Status Read(uint64_t at, uint64_t n, std::string* out, storage::IoMode mode) const {
    Status s = shard.reader->ReadRange(
        offset + at, n,
        [&](std::string_view piece) {
          out->append(piece);
          return Status::OK();
        },
        1, mode);
    if (s.IsCorruption()) node->metrics().verification_failures.fetch_add(1);
    return s;
  }
};

// The download of an opened shard (whole, or the request's Range).
Result<Download> ShardDownload(Node* node, const ApiRequest& r, const OpenedShard& opened) {
  const uint64_t size = opened.reader->size();
  uint64_t offset = 0, length = size;
  Download d;
  if (std::string_view range = r.header("Range"); !range.empty()) {
    std::string err;
    auto parsed = ParseByteRange(range, size, &err);
    if (!err.empty()) {
      d.status = 416;
      d.header_lines = fmt::format("Content-Range: bytes */{}\r\n", size);
      ApiResponse e = ApiResponse::Refusal(416, "range_not_satisfiable", 2, err);
      d.content_type = e.content_type;
      d.length = e.body.size();
      d.read = [body = std::move(e.body)](uint64_t at, uint64_t n, std::string* out) {
        out->append(body, at, n);
        return Status::OK();
      };
      return d;
    }
    if (parsed) {
      std::tie(offset, length) = *parsed;
      d.status = 206;
      d.header_lines =
          fmt::format("Content-Range: bytes {}-{}/{}\r\n", offset, offset + length - 1, size);
    }
  }
  // A paid read (node/read_desk.h): admitted on its receipt by the first read of the lane,
  // just before the first byte is read, so a read refused for a full lane or never started
  // is not charged.
  std::shared_ptr<PaidRead> paid;
  if (std::string_view receipt = r.header("X-Dfrp-Read-Receipt"); !receipt.empty()) {
    ReadDesk* desk = node->read_desk();
    if (!desk)
      return Err(Status::NotFound(
          "this node takes no paid reads: it has no WALLET or no committee in its economic.toml "
          "(send the read without X-Dfrp-Read-Receipt)"));
    if (r.head.method == "HEAD")
      return Err(Status::InvalidArgument(
          "a paid read is a GET: a HEAD sends no bytes, so it carries no X-Dfrp-Read-Receipt"));
    auto bytes = core::FromHex(receipt);
    if (!bytes)
      return Err(Status::InvalidArgument("X-Dfrp-Read-Receipt must be the receipt in hex"));
    paid = std::make_shared<PaidRead>(desk, std::move(*bytes), length);
  }
  const std::string root = RootHex(opened.reader->root());
  fmt::format_to(std::back_inserter(d.header_lines),
                 "ETag: \"{}\"\r\nX-Dfrp-Merkle-Root: {}\r\nAccept-Ranges: bytes\r\n", root, root);
  d.length = length;
  auto src = std::make_shared<const ShardSource>(ShardSource{node, opened, offset});
  d.read = [src, paid](uint64_t at, uint64_t n, std::string* out) -> Status {
    if (paid)
      if (Status admitted = paid->Admit(); !admitted.ok()) return admitted;
    return src->Read(at, n, out, storage::IoMode::kWait);
  };
  // A paid read never runs on the HTTP thread (its admission verifies and syncs).
  if (!paid)
    d.read_cached = [src](uint64_t at, uint64_t n, std::string* out) -> std::optional<Status> {
      Status s = src->Read(at, n, out, storage::IoMode::kCachedOnly);
      if (s.IsBusy()) return std::nullopt;  // a byte is not in memory: the lane reads it
      return s;
    };
  d.on_sent = [node, ctx = r.ctx, id = r.route.id](uint64_t bytes) {
    node->metrics().AddRead(node->NowMs(), bytes);
    node->usage().OnRead(ctx, id, bytes);  // once, after the last piece went out
  };
  return d;
}

Result<Download> GetShard(Node* node, const ApiRequest& r) {
  auto opened = node->OpenShard(r.route.id);
  if (!opened) {
    if (opened.error().IsCorruption()) node->metrics().verification_failures.fetch_add(1);
    return Err(opened.error());
  }
  return ShardDownload(node, r, *opened);
}

ApiResponse ProofAnswer(Node* node, const Result<storage::ProofSet>& p) {
  if (!p) return ApiResponse::Error(p.error());
  ApiResponse res;
  res.body = storage::EncodeProofJson(*p) + "\n";
  return res;
}

ApiResponse Prove(Node* node, const ApiRequest& r) {
  std::string text, err;
  if (!QueryValue(r.route.query, "leaf", &text, &err))
    return ApiResponse::Error(
        Status::InvalidArgument(err.empty() ? "proof needs ?leaf=N (a leaf index from 0)" : err));
  uint64_t leaf = 0;
  if (!core::ParseDecimal(text, &leaf))
    return ApiResponse::Error(Status::InvalidArgument(
        fmt::format("leaf={} is not a leaf index (0, 1, 2, ...)", text.substr(0, 40))));
  return ProofAnswer(node, node->Prove(r.route.id, leaf, r.ctx));
}

ApiResponse Audit(Node* node, const ApiRequest& r) {
  std::string seed_hex, k_text, err;
  if (!QueryValue(r.route.query, "seed", &seed_hex, &err) ||
      !QueryValue(r.route.query, "challenges", &k_text, &err))
    return ApiResponse::Error(
        Status::InvalidArgument(err.empty() ? "audit needs ?seed=HEX&challenges=K" : err));
  auto seed = core::FromHex(seed_hex);
  if (!seed || seed->empty())
    return ApiResponse::Error(Status::InvalidArgument(fmt::format(
        "seed '{}' is not hex: give an even number of hex digits", seed_hex.substr(0, 80))));
  uint64_t k = 0;
  if (!core::ParseDecimal(k_text, &k) || k > UINT32_MAX)
    return ApiResponse::Error(
        Status::InvalidArgument(fmt::format("challenges={} is not a count", k_text.substr(0, 40))));
  return ProofAnswer(node, node->Audit(r.route.id, *seed, static_cast<uint32_t>(k), r.ctx));
}

// GET /v1/shards?near=F1,F2,...&k=10&ef=N&exact=1: the shards nearest a vector.
ApiResponse SearchShards(Node* node, const ApiRequest& r) {
  SearchQuery q;
  std::string err, text;
  if (!QueryValue(r.route.query, "near", &q.near, &err))
    return ApiResponse::Error(Status::InvalidArgument(
        err.empty() ? "GET /v1/shards needs ?near=F1,F2,... (a vector of VECTOR_DIM numbers)"
                    : err));
  for (auto [key, out] : {std::pair<const char*, uint64_t*>{"k", &q.k}, {"ef", &q.ef}}) {
    if (!QueryValue(r.route.query, key, &text, &err)) {
      if (!err.empty()) return ApiResponse::Error(Status::InvalidArgument(err));
      continue;
    }
    if (!core::ParseDecimal(text, out))
      return ApiResponse::Error(
          Status::InvalidArgument(fmt::format("{}={} is not a count", key, text.substr(0, 40))));
  }
  if (QueryValue(r.route.query, "exact", &text, &err)) {
    if (text != "0" && text != "1" && text != "true" && text != "false")
      return ApiResponse::Error(
          Status::InvalidArgument(fmt::format("exact={} is not 1 or 0", text.substr(0, 40))));
    q.exact = text == "1" || text == "true";
  } else if (!err.empty()) {
    return ApiResponse::Error(Status::InvalidArgument(err));
  }
  auto found = SearchShardsJson(
      node->vectors(), q, [node](const core::Uuid& id) { return node->Stat(id); }, node->clock());
  return found ? ApiResponse::Json(200, *found) : ApiResponse::Error(found.error());
}

// The JSON body of a volume action: an object (or nothing) with these optional fields.
struct VolumeArgs {
  std::string reason, path, to;
  bool resume = true, delete_source = false;
};

Result<VolumeArgs> ParseVolumeArgs(const std::string& body) {
  VolumeArgs a;
  if (body.empty()) return a;
  json args = json::parse(body, nullptr, false);
  if (args.is_discarded() || !args.is_object())
    return Err(Status::InvalidArgument("the request body must be a JSON object (or empty)"));
  auto str = [&](const char* key, std::string* out) -> Status {
    if (!args.contains(key)) return Status::OK();
    if (!args[key].is_string())
      return Status::InvalidArgument(fmt::format("\"{}\" must be a string", key));
    *out = args[key].get<std::string>();
    return Status::OK();
  };
  auto flag = [&](const char* key, bool* out) -> Status {
    if (!args.contains(key)) return Status::OK();
    if (!args[key].is_boolean())
      return Status::InvalidArgument(fmt::format("\"{}\" must be true or false", key));
    *out = args[key].get<bool>();
    return Status::OK();
  };
  DFRP_RETURN_IF_ERROR(str("reason", &a.reason));
  DFRP_RETURN_IF_ERROR(str("path", &a.path));
  DFRP_RETURN_IF_ERROR(str("to", &a.to));
  DFRP_RETURN_IF_ERROR(flag("resume", &a.resume));
  DFRP_RETURN_IF_ERROR(flag("delete_source", &a.delete_source));
  return a;
}

ApiResponse VolumeOr(const Result<storage::VolumeInfo>& v) {
  return v ? ApiResponse::Json(200, VolumeJson(*v)) : ApiResponse::Error(v.error());
}

// 202 with the operation and its Location.
ApiResponse Started(const Result<json>& op) {
  if (!op) return ApiResponse::Error(op.error());
  ApiResponse res = ApiResponse::Json(202, *op);
  res.With("Location", "/v1/operations/" + (*op)["id"].get<std::string>());
  return res;
}

template <typename F>
std::function<ApiResponse(const ApiRequest&)> WithArgs(F f) {
  return [f](const ApiRequest& r) {
    auto a = ParseVolumeArgs(r.body);
    return a ? f(r, *a) : ApiResponse::Error(a.error());
  };
}

}  // namespace

std::vector<RouteSpec> StorageRoutes(Node* node) {
  std::vector<RouteSpec> t;
  t.push_back({.methods = "PUT",
               .pattern = "/v1/shards",
               .body = BodyKind::kStream,
               .upload = PutShardUpload(node)});
  t.push_back({.methods = "GET",
               .pattern = "/v1/shards",
               .lane = Lane::kRead,
               .handler = [node](const ApiRequest& r) { return SearchShards(node, r); }});
  t.push_back({.methods = "GET, HEAD",
               .pattern = "/v1/shards/{shard}",
               .lane = Lane::kRead,
               .download = [node](const ApiRequest& r) { return GetShard(node, r); },
               // A kept reader: no index lookup, so the HTTP thread may try it.
               .download_cached = [node](const ApiRequest& r) -> std::optional<Result<Download>> {
                 // A paid read is admitted on the lane (node/read_desk.h), never here.
                 if (!r.header("X-Dfrp-Read-Receipt").empty()) return std::nullopt;
                 auto kept = node->readers().Cached(r.route.id);
                 if (!kept) return std::nullopt;
                 return ShardDownload(node, r, *kept);
               }});
  t.push_back({.methods = "GET",
               .pattern = "/v1/shards/{shard}/meta",
               .lane = Lane::kRead,
               .handler = [node](const ApiRequest& r) {
                 auto info = node->Stat(r.route.id);
                 return info ? ApiResponse::Json(200, ShardInfoJson(r.route.id, *info))
                             : ApiResponse::Error(info.error());
               }});
  t.push_back({.methods = "POST",
               .pattern = "/v1/shards/{shard}/verify",
               .lane = Lane::kVerify,
               .handler = [node](const ApiRequest& r) {
                 storage::VerifyResult v = node->Verify(r.route.id);
                 if (!v.ok && v.segment_path.empty())  // never located: unknown shard or volume
                   return ApiResponse::Error(v.status);
                 return ApiResponse::Json(200, VerifyJson(v));
               }});
  t.push_back({.methods = "GET",
               .pattern = "/v1/shards/{shard}/proof",
               .lane = Lane::kVerify,
               .handler = [node](const ApiRequest& r) { return Prove(node, r); }});
  t.push_back({.methods = "GET",
               .pattern = "/v1/shards/{shard}/audit",
               .lane = Lane::kVerify,
               .handler = [node](const ApiRequest& r) { return Audit(node, r); }});
  t.push_back({.methods = "GET", .pattern = "/v1/volumes", .handler = [node](const ApiRequest&) {
                 json arr = json::array();
                 for (const auto& v : node->writer().Snapshot()) arr.push_back(VolumeJson(v));
                 return ApiResponse::Json(200, {{"volumes", arr}});
               }});
  t.push_back({.methods = "POST",
               .pattern = "/v1/volumes/{n}/pause",
               .admin = true,
               .body = BodyKind::kJson,
               .lane = Lane::kAdmin,
               .handler = WithArgs([node](const ApiRequest& r, const VolumeArgs& a) {
                 return VolumeOr(node->Pause(r.route.volume, a.reason));
               })});
  t.push_back({.methods = "POST",
               .pattern = "/v1/volumes/{n}/resume",
               .admin = true,
               .body = BodyKind::kJson,
               .lane = Lane::kAdmin,
               .handler = WithArgs([node](const ApiRequest& r, const VolumeArgs& a) {
                 if (a.path.empty()) return VolumeOr(node->Resume(r.route.volume));
                 return Started(node->operations().StartResumeAt(r.route.volume, a.path));
               })});
  t.push_back({.methods = "POST",
               .pattern = "/v1/volumes/{n}/migrate",
               .admin = true,
               .body = BodyKind::kJson,
               .lane = Lane::kAdmin,
               .handler = WithArgs([node](const ApiRequest& r, const VolumeArgs& a) {
                 if (a.to.empty())
                   return ApiResponse::Error(Status::InvalidArgument(
                       "migrate needs a JSON body such as {\"to\": \"/mnt/new\"}"));
                 return Started(node->operations().StartMigrate(r.route.volume, a.to, a.resume,
                                                                a.delete_source));
               })});
  t.push_back({.methods = "POST",
               .pattern = "/v1/volumes/{n}/retire-source",
               .admin = true,
               .lane = Lane::kAdmin,
               .handler = [node](const ApiRequest& r) {
                 auto freed = node->RetireSource(r.route.volume);
                 return freed ? ApiResponse::Json(
                                    200, {{"volume", r.route.volume}, {"bytes_deleted", *freed}})
                              : ApiResponse::Error(freed.error());
               }});
  t.push_back({.methods = "GET", .pattern = "/v1/operations", .handler = [node](const ApiRequest&) {
                 return ApiResponse::Json(200, {{"operations", node->operations().List()}});
               }});
  t.push_back({.methods = "GET",
               .pattern = "/v1/operations/{operation}",
               .handler = [node](const ApiRequest& r) {
                 auto op = node->operations().Get(r.route.id);
                 return op ? ApiResponse::Json(200, *op) : ApiResponse::Error(op.error());
               }});
  t.push_back({.methods = "DELETE",
               .pattern = "/v1/operations/{operation}",
               .admin = true,
               .handler = [node](const ApiRequest& r) {
                 auto op = node->operations().Cancel(r.route.id);
                 return op ? ApiResponse::Json(202, *op) : ApiResponse::Error(op.error());
               }});
  return t;
}

void AddDaemonRoutes(RouteTable* table, Node* node, ServerView server) {
  table->Add(NodeRoutes(node, std::move(server)));
  table->Add(StorageRoutes(node));
  table->Add(MarketRoutes(node));
  table->Add(LedgerRoutes(node));
  table->Add(EscrowRoutes(node));
  table->Add(MeshRoutes(node));
  table->Add(ComputeRoutes(node));
}

}  // namespace dfrp::node
