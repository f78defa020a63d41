#include "dfrp/node/server.h"

#include <fmt/format.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "dfrp/core/bytes.h"
#include "dfrp/core/file_system.h"
#include "dfrp/node/dashboard_assets.h"
#include "dfrp/node/router.h"
#include "dfrp/node/views.h"

namespace dfrp::node {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using asio::awaitable;
using asio::ip::tcp;
using core::Err;
using core::Result;
using core::Status;
using nlohmann::json;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr uint64_t kSmallReadBytes = 4ull << 20;  // payloads read whole, then sent
constexpr uint64_t kStreamPiece = 4ull << 20;     // larger ones go out in pieces of this
constexpr uint64_t kMaxJsonBody = 64 << 10;

int HttpStatusFor(const Status& s) {
  switch (s.code()) {
    case Status::Code::kOk:
      return 200;
    case Status::Code::kInvalidArgument:
      return 400;
    case Status::Code::kNotFound:
      return 404;
    case Status::Code::kBusy:
      return 409;
    case Status::Code::kNoSpace:
      return 507;
    case Status::Code::kCorruption:
    case Status::Code::kIOError:
    case Status::Code::kInternal:
      return 500;
  }
  return 500;
}

// An HTTP-level refusal that has no Status code of its own.
json HttpError(const char* code, int exit_code, const std::string& msg) {
  return {{"error", {{"code", code}, {"exit_code", exit_code}, {"message", msg}}}};
}

bool ConstantTimeEqual(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

struct Server::Impl {
  Node& node;
  ServerOptions opt;
  std::string bound;
  // Declared before the io_context: its destructor destroys pending sessions, which use them.
  std::atomic<bool> stopping{false};
  std::atomic<int64_t> connections{0};
  // Connections waiting between requests, closed at once by Stop().
  std::mutex idle_mu;
  std::set<beast::tcp_stream*> idle;
  // Stop() wakes the drainer thread of Run().
  std::mutex stop_mu;
  std::condition_variable stop_cv;

  // Cancels the reads of connections waiting for a request, each on its own strand, and only
  // if it is still waiting when that runs (it may have moved on, or gone).
  void CancelIdle() {
    std::lock_guard lock(idle_mu);
    for (auto* s : idle)
      asio::post(s->get_executor(), [this, s] {
        std::lock_guard inner(idle_mu);
        if (!idle.count(s)) return;
        beast::error_code ec;
        s->socket().cancel(ec);
      });
  }

  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  // Declared after the io_context, so that it is joined first: a job still running posts its
  // answer to a connection of the io_context.
  // Blocking work that may take long (verifying a whole shard, proofs, admin calls that wait
  // for the writer lock) runs here, so that the HTTP threads keep serving.
  asio::thread_pool slow{2};

  Impl(Node& n, ServerOptions o) : node(n), opt(std::move(o)) {}

  using Response = http::response<http::string_body>;

  struct Exchange {
    beast::tcp_stream& stream;
    beast::flat_buffer& buffer;
    http::request_parser<http::empty_body>& parser;
    const http::request<http::empty_body>& req;
    RouteMatch route;
    bool keep_alive = true;
    int status = 0;  // what was answered, for the metrics
  };

  Response Make(const Exchange& ex, int status, std::string body, const char* type) {
    Response res{static_cast<http::status>(status), ex.req.version()};
    res.set(http::field::server, fmt::format("dfrpd/{}", kVersion));
    res.set(http::field::content_type, type);
    res.set(http::field::cache_control, "no-store");
    res.body() = std::move(body);
    res.keep_alive(ex.keep_alive && !stopping);
    res.prepare_payload();
    return res;
  }

  Response JsonResponse(const Exchange& ex, int status, const json& j) {
    // Bytes that are not UTF-8 (from a client, or a file name) are replaced, never thrown on.
    return Make(ex, status, j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n",
                "application/json");
  }

  Response ErrorResponse(const Exchange& ex, const Status& s) {
    return JsonResponse(ex, HttpStatusFor(s), ErrorJson(s));
  }

  awaitable<void> Send(Exchange& ex, Response& res) {
    ex.status = res.result_int();
    if (!res.keep_alive()) ex.keep_alive = false;
    if (ex.req.method() == http::verb::head) {
      // HEAD: the header of the GET, no body.
      http::response<http::empty_body> head{res.result(), res.version()};
      for (const auto& f : res) head.set(f.name_string(), f.value());
      head.keep_alive(res.keep_alive());
      ex.stream.expires_after(opt.body_timeout);
      auto [ec, n] = co_await http::async_write(ex.stream, head, kTuple);
      if (ec) ex.keep_alive = false;
      co_return;
    }
    ex.stream.expires_after(opt.body_timeout);
    auto [ec, n] = co_await http::async_write(ex.stream, res, kTuple);
    if (ec) ex.keep_alive = false;
  }

  // A request whose body we will not read: the connection cannot be reused.
  bool HasBody(const Exchange& ex) const {
    return ex.parser.chunked() || (ex.parser.content_length() && *ex.parser.content_length() > 0);
  }

  awaitable<Result<std::string>> ReadSmallBody(Exchange& ex, uint64_t limit) {
    if (!HasBody(ex)) co_return std::string();
    if (ex.parser.content_length() && *ex.parser.content_length() > limit) {
      ex.keep_alive = false;  // the body stays unread: the connection cannot be reused
      co_return Err(
          Status::InvalidArgument(fmt::format("the request body is over {} bytes", limit)));
    }
    co_await MaybeContinue(ex);
    http::request_parser<http::string_body> sp(std::move(ex.parser));
    sp.body_limit(limit);
    ex.stream.expires_after(opt.body_timeout);
    auto [ec, n] = co_await http::async_read(ex.stream, ex.buffer, sp, kTuple);
    if (ec) {
      ex.keep_alive = false;
      co_return Err(Status::InvalidArgument(
          fmt::format("the request body could not be read: {}", ec.message())));
    }
    co_return std::move(sp.get().body());
  }

  // Answers "Expect: 100-continue" before a body is read.
  awaitable<void> MaybeContinue(Exchange& ex) {
    auto it = ex.req.find(http::field::expect);
    if (it == ex.req.end() || !beast::iequals(it->value(), "100-continue")) co_return;
    http::response<http::empty_body> cont{http::status::continue_, ex.req.version()};
    ex.stream.expires_after(opt.body_timeout);
    co_await http::async_write(ex.stream, cont, kTuple);
  }

  bool Authorized(const Exchange& ex) const {
    auto it = ex.req.find(http::field::authorization);
    if (it == ex.req.end()) return false;
    std::string_view v = it->value();
    if (v.size() < 7 || !beast::iequals(v.substr(0, 7), "Bearer ")) return false;
    return ConstantTimeEqual(v.substr(7), node.token());
  }

  // --- Handlers.

  // Runs f() (which returns a Response) on the slow pool and resumes on the connection's
  // strand with its result.
  template <typename F>
  awaitable<Response> Offload(F f) {
    co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(Response)>(
        [this, f = std::move(f)](auto handler) mutable {
          auto h = std::make_shared<decltype(handler)>(std::move(handler));
          asio::post(slow, [h, f = std::move(f)]() mutable {
            Response r = f();
            auto ex = asio::get_associated_executor(*h);
            asio::post(ex, [h, r = std::move(r)]() mutable { (*h)(std::move(r)); });
          });
        },
        asio::use_awaitable);
  }

  static bool IsSlow(Route r) {
    return r == Route::kVerifyShard || r == Route::kProveShard || r == Route::kAuditShard ||
           r == Route::kRetireSource;
  }

  awaitable<void> Handle(Exchange& ex) {
    if (IsSlow(ex.route.route) && (!ex.route.admin || Authorized(ex)) && !HasBody(ex)) {
      Response answer = co_await Offload([this, &ex] { return *Immediate(ex); });
      co_await Send(ex, answer);
      co_return;
    }
    std::optional<Response> res = Immediate(ex);
    if (res) {
      co_await Send(ex, *res);
      co_return;
    }
    switch (ex.route.route) {
      case Route::kPutShard:
        co_return co_await PutShardRoute(ex);
      case Route::kGetShard:
        co_return co_await GetShard(ex);
      default: {  // the volume actions: a small JSON body first
        auto body = co_await ReadSmallBody(ex, kMaxJsonBody);
        if (!body) {
          Response answer = ErrorResponse(ex, body.error());
          co_await Send(ex, answer);
          co_return;
        }
        std::string text = std::move(*body);
        Response answer = co_await Offload([this, &ex, &text] { return VolumeAction(ex, text); });
        co_await Send(ex, answer);
        co_return;
      }
    }
  }

  // The answer of every request that needs no body read and no streaming (errors, refusals,
  // small JSON documents); nullopt for the routes Handle serves itself. Not a coroutine: GCC 12
  // mishandles braced initializer lists inside coroutines.
  std::optional<Response> Immediate(Exchange& ex) {
    const RouteMatch& r = ex.route;
    if (r.route == Route::kNone) {
      Response res;
      if (r.error_status == 405) {
        res = JsonResponse(ex, 405, HttpError("method_not_allowed", 2, r.error));
        res.set(http::field::allow, r.allow);
      } else if (r.error_status == 404) {
        res = JsonResponse(ex, 404, HttpError("not_found", 4, r.error));
      } else {
        res = JsonResponse(ex, r.error_status, HttpError("invalid_argument", 2, r.error));
      }
      if (HasBody(ex)) res.keep_alive(false);
      return res;
    }
    if (r.admin && !Authorized(ex)) {
      Response res = JsonResponse(
          ex, 401,
          HttpError("unauthorized", 2,
                    fmt::format("{} needs the admin token: send 'Authorization: Bearer <token>' "
                                "with the token in {}/{} (readable by the daemon's user only)",
                                r.name, node.config().state_dir, kTokenFileName)));
      res.set(http::field::www_authenticate, "Bearer");
      if (HasBody(ex)) res.keep_alive(false);
      return res;
    }
    const bool takes_body = r.route == Route::kPutShard || r.route == Route::kPauseVolume ||
                            r.route == Route::kResumeVolume || r.route == Route::kMigrateVolume;
    if (!takes_body && HasBody(ex)) {
      Response res = JsonResponse(
          ex, 413, HttpError("too_large", 2, fmt::format("{} takes no request body", r.name)));
      res.keep_alive(false);
      return res;
    }
    switch (r.route) {
      case Route::kAsset:
        return Asset(ex);
      case Route::kHealth:
        // Polled by monitors: no more than it says (not the whole status document).
        return JsonResponse(ex, 200,
                            {{"status", "ok"},
                             {"version", kVersion},
                             {"store_id", node.store_id().ToString()},
                             {"uptime_seconds", node.UptimeSeconds()}});
      case Route::kMetrics:
        return Make(ex, 200, node.MetricsText(), "text/plain; version=0.0.4; charset=utf-8");
      case Route::kStatus:
        return JsonResponse(ex, 200, node.StatusJson(bound));
      case Route::kShardMeta: {
        auto info = node.Stat(r.id);
        return info ? JsonResponse(ex, 200, ShardInfoJson(r.id, *info))
                    : ErrorResponse(ex, info.error());
      }
      case Route::kVerifyShard: {
        storage::VerifyResult v = node.Verify(r.id);
        if (!v.ok && v.segment_path.empty())  // never located: unknown shard or volume
          return ErrorResponse(ex, v.status);
        return JsonResponse(ex, 200, VerifyJson(v));
      }
      case Route::kProveShard:
        return Prove(ex);
      case Route::kAuditShard:
        return Audit(ex);
      case Route::kListVolumes: {
        json arr = json::array();
        for (const auto& v : node.Volumes()) arr.push_back(VolumeJson(v));
        return JsonResponse(ex, 200, {{"volumes", arr}});
      }
      case Route::kRetireSource: {
        auto freed = node.RetireSource(r.volume);
        return freed ? JsonResponse(ex, 200, {{"volume", r.volume}, {"bytes_deleted", *freed}})
                     : ErrorResponse(ex, freed.error());
      }
      case Route::kListOperations:
        return JsonResponse(ex, 200, {{"operations", node.Operations()}});
      case Route::kGetOperation: {
        auto op = node.Operation(r.id);
        return op ? JsonResponse(ex, 200, *op) : ErrorResponse(ex, op.error());
      }
      case Route::kCancelOperation: {
        auto op = node.Cancel(r.id);
        return op ? JsonResponse(ex, 202, *op) : ErrorResponse(ex, op.error());
      }
      default:
        return std::nullopt;
    }
  }

  Response Asset(const Exchange& ex) {
    std::string_view type;
    std::optional<std::string_view> body = DashboardAsset(ex.route.asset, &type);
    if (!body)
      return JsonResponse(ex, 404, HttpError("not_found", 4, ex.route.asset + " is not served"));
    Response res = Make(ex, 200, std::string(*body), std::string(type).c_str());
    res.set(http::field::cache_control, "no-cache");
    res.set("Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "connect-src 'self'; frame-ancestors 'none'");
    res.set("X-Content-Type-Options", "nosniff");
    return res;
  }

  Response Prove(const Exchange& ex) {
    std::string text, err;
    if (!QueryValue(ex.route.query, "leaf", &text, &err))
      return ErrorResponse(
          ex,
          Status::InvalidArgument(err.empty() ? "proof needs ?leaf=N (a leaf index from 0)" : err));
    uint64_t leaf = 0;
    if (!core::ParseDecimal(text, &leaf))
      return ErrorResponse(
          ex, Status::InvalidArgument(
                  fmt::format("leaf={} is not a leaf index (0, 1, 2, ...)", text.substr(0, 40))));
    auto p = node.Prove(ex.route.id, leaf);
    if (!p) return ErrorResponse(ex, p.error());
    return Make(ex, 200, storage::EncodeProofJson(*p) + "\n", "application/json");
  }

  Response Audit(const Exchange& ex) {
    std::string seed_hex, k_text, err;
    if (!QueryValue(ex.route.query, "seed", &seed_hex, &err) ||
        !QueryValue(ex.route.query, "challenges", &k_text, &err))
      return ErrorResponse(
          ex, Status::InvalidArgument(err.empty() ? "audit needs ?seed=HEX&challenges=K" : err));
    auto seed = core::FromHex(seed_hex);
    if (!seed || seed->empty())
      return ErrorResponse(ex, Status::InvalidArgument(fmt::format(
                                   "seed '{}' is not hex: give an even number of hex digits",
                                   seed_hex.substr(0, 80))));
    uint64_t k = 0;
    if (!core::ParseDecimal(k_text, &k) || k > UINT32_MAX)
      return ErrorResponse(ex, Status::InvalidArgument(fmt::format("challenges={} is not a count",
                                                                   k_text.substr(0, 40))));
    auto p = node.Audit(ex.route.id, *seed, static_cast<uint32_t>(k));
    if (!p) return ErrorResponse(ex, p.error());
    return Make(ex, 200, storage::EncodeProofJson(*p) + "\n", "application/json");
  }

  Response VolumeAction(const Exchange& ex, const std::string& body) {
    const RouteMatch& r = ex.route;
    json args = json::object();
    if (!body.empty()) {
      args = json::parse(body, nullptr, false);
      if (args.is_discarded() || !args.is_object())
        return ErrorResponse(
            ex, Status::InvalidArgument("the request body must be a JSON object (or empty)"));
    }
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
    std::string reason, path, to;
    bool resume = true, delete_source = false;
    Status s = str("reason", &reason);
    if (s.ok()) s = str("path", &path);
    if (s.ok()) s = str("to", &to);
    if (s.ok()) s = flag("resume", &resume);
    if (s.ok()) s = flag("delete_source", &delete_source);
    if (!s.ok()) return ErrorResponse(ex, s);
    switch (r.route) {
      case Route::kPauseVolume: {
        auto v = node.Pause(r.volume, reason);
        return v ? JsonResponse(ex, 200, VolumeJson(*v)) : ErrorResponse(ex, v.error());
      }
      case Route::kResumeVolume: {
        if (path.empty()) {
          auto v = node.Resume(r.volume);
          return v ? JsonResponse(ex, 200, VolumeJson(*v)) : ErrorResponse(ex, v.error());
        }
        auto op = node.StartResumeAt(r.volume, path);
        if (!op) return ErrorResponse(ex, op.error());
        Response res = JsonResponse(ex, 202, *op);
        res.set(http::field::location, "/v1/operations/" + (*op)["id"].get<std::string>());
        return res;
      }
      case Route::kMigrateVolume: {
        if (to.empty())
          return ErrorResponse(ex, Status::InvalidArgument(
                                       "migrate needs a JSON body such as {\"to\": \"/mnt/new\"}"));
        auto op = node.StartMigrate(r.volume, to, resume, delete_source);
        if (!op) return ErrorResponse(ex, op.error());
        Response res = JsonResponse(ex, 202, *op);
        res.set(http::field::location, "/v1/operations/" + (*op)["id"].get<std::string>());
        return res;
      }
      default:
        break;
    }
    return JsonResponse(ex, 500, HttpError("internal", 1, "unrouted volume action"));
  }

  Result<node::PutShard> PutParams(const Exchange& ex, uint64_t size) {
    node::PutShard put;
    put.size = size;
    const auto& q = ex.route.query;
    std::string err, v;
    put.meta.content_type = "application/octet-stream";
    // curl sends application/x-www-form-urlencoded for --data-binary unless told otherwise:
    // that says nothing about the payload.
    if (auto it = ex.req.find(http::field::content_type);
        it != ex.req.end() && !it->value().empty() &&
        !beast::iequals(it->value(), "application/x-www-form-urlencoded"))
      put.meta.content_type = std::string(it->value());
    if (!IsValidUtf8(put.meta.content_type))
      return Err(Status::InvalidArgument("the Content-Type header is not UTF-8"));
    if (QueryValue(q, "content_type", &v, &err)) put.meta.content_type = v;
    if (QueryValue(q, "owner", &v, &err)) put.meta.owner = v;
    if (QueryValue(q, "name", &v, &err)) put.name = v;
    if (QueryValue(q, "vector", &v, &err)) {
      DFRP_ASSIGN_OR_RETURN(put.meta.vector, ParseVectorText(v, "vector"));
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

  awaitable<void> PutShardRoute(Exchange& ex) {
    if (ex.parser.chunked() || !ex.parser.content_length()) {
      Response res = JsonResponse(
          ex, 411,
          HttpError("length_required", 2,
                    "PUT /v1/shards needs a Content-Length header (the store checks the size "
                    "against its free space before the body is read)"));
      res.keep_alive(false);
      co_await Send(ex, res);
      co_return;
    }
    const uint64_t size = *ex.parser.content_length();
    auto params = PutParams(ex, size);
    if (!params) {
      Response res = ErrorResponse(ex, params.error());
      if (size > 0) res.keep_alive(false);
      co_await Send(ex, res);
      co_return;
    }
    const uint64_t room = node.WritableBytes();
    // A record needs a little more than its payload (prefix, metadata, tree): keep a margin.
    if (size > room || room - size < size / 64 + 65536) {
      Response res = ErrorResponse(
          ex, Status::NoSpace(fmt::format(
                  "a {}-byte shard does not fit: the most any volume taking writes has free is {} "
                  "bytes; add a drive (dfrp-storage add-drive) or resume a paused volume",
                  size, room)));
      res.keep_alive(false);  // the body stays unread
      co_await Send(ex, res);
      co_return;
    }
    node::PutShard put = std::move(*params);
    co_await MaybeContinue(ex);
    if (size <= opt.memory_body_limit) {
      put.body.resize(size);
      Status s = co_await ReadBodyBytes(ex, put.body.data(), size);
      if (!s.ok()) {
        ex.keep_alive = false;
        ex.status = 408;
        co_return;  // the client went away or stalled: nothing was stored
      }
    } else {
      put.spool_path = node.SpoolPath();
      Status s = co_await SpoolBody(ex, put.spool_path, size);
      if (!s.ok()) {
        (void)core::DefaultFileSystem()->RemoveFile(put.spool_path);
        ex.keep_alive = false;
        ex.status = 408;
        co_return;
      }
    }
    auto outcome = co_await asio::async_initiate<decltype(asio::use_awaitable), void(WriteOutcome)>(
        [this, &put](auto handler) {
          auto h = std::make_shared<decltype(handler)>(std::move(handler));
          node.SubmitWrite(std::move(put), [h](WriteOutcome o) {
            auto ex = asio::get_associated_executor(*h);
            asio::post(ex, [h, o = std::move(o)]() mutable { (*h)(std::move(o)); });
          });
        },
        asio::use_awaitable);
    if (!outcome.status.ok()) {
      Response answer = ErrorResponse(ex, outcome.status);
      co_await Send(ex, answer);
      co_return;
    }
    Response res = JsonResponse(ex, 201, WrittenJson(outcome.shard));
    res.set(http::field::location, "/v1/shards/" + outcome.shard.id.ToString());
    co_await Send(ex, res);
    co_return;
  }

  // Reads the next n bytes of a body with a known length straight into dst: first what
  // came in with the header, then from the socket in reads as large as what is left (a body
  // parser would read it in pieces as small as its buffer). Each read has the body deadline.
  awaitable<Status> ReadBodyBytes(Exchange& ex, char* dst, size_t n) {
    size_t have = std::min(n, ex.buffer.size());
    asio::buffer_copy(asio::buffer(dst, have), ex.buffer.data());
    ex.buffer.consume(have);
    while (have < n) {
      ex.stream.expires_after(opt.body_timeout);
      auto [ec, got] =
          co_await ex.stream.async_read_some(asio::buffer(dst + have, n - have), kTuple);
      if (ec) co_return Status::IOError(fmt::format("reading the body: {}", ec.message()));
      have += got;
    }
    co_return Status::OK();
  }

  awaitable<Status> SpoolBody(Exchange& ex, const std::string& path, uint64_t size) {
    auto file = core::DefaultFileSystem()->CreateNew(path);
    if (!file) co_return file.error();
    std::string chunk(4 << 20, '\0');
    uint64_t at = 0;
    while (at < size) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(chunk.size(), size - at));
      if (Status r = co_await ReadBodyBytes(ex, chunk.data(), n); !r.ok()) co_return r;
      if (Status w = (*file)->WriteAt(at, std::string_view(chunk.data(), n)); !w.ok()) co_return w;
      at += n;
    }
    co_return (*file)->Close();
  }

  awaitable<void> GetShard(Exchange& ex) {
    auto opened = node.OpenShard(ex.route.id);
    if (!opened) {
      if (opened.error().IsCorruption()) node.metrics().verification_failures.fetch_add(1);
      {
        Response answer = ErrorResponse(ex, opened.error());
        co_await Send(ex, answer);
        co_return;
      }
    }
    const storage::ShardReader& reader = *opened->reader;
    const uint64_t size = reader.size();
    uint64_t offset = 0, length = size;
    bool partial = false;
    if (auto it = ex.req.find(http::field::range); it != ex.req.end()) {
      std::string err;
      auto range = ParseByteRange(it->value(), size, &err);
      if (!err.empty()) {
        Response res = JsonResponse(ex, 416, HttpError("range_not_satisfiable", 2, err));
        res.set(http::field::content_range, fmt::format("bytes */{}", size));
        co_await Send(ex, res);
        co_return;
      }
      if (range) {
        std::tie(offset, length) = *range;
        partial = true;
      }
    }
    const std::string root = RootHex(reader.root());
    auto headers = [&](auto& res) {
      res.set(http::field::server, fmt::format("dfrpd/{}", kVersion));
      res.set(http::field::content_type, "application/octet-stream");
      res.set(http::field::etag, "\"" + root + "\"");
      res.set("X-Dfrp-Merkle-Root", root);
      res.set(http::field::accept_ranges, "bytes");
      if (partial)
        res.set(http::field::content_range,
                fmt::format("bytes {}-{}/{}", offset, offset + length - 1, size));
      res.keep_alive(ex.keep_alive && !stopping);
    };
    const http::status status = partial ? http::status::partial_content : http::status::ok;
    if (ex.req.method() == http::verb::head) {
      http::response<http::empty_body> res{status, ex.req.version()};
      headers(res);
      res.content_length(length);
      ex.status = res.result_int();
      ex.stream.expires_after(opt.body_timeout);
      auto [ec, n] = co_await http::async_write(ex.stream, res, kTuple);
      if (ec) ex.keep_alive = false;
      co_return;
    }
    auto read_piece = [&](uint64_t at, uint64_t n, std::string* out) {
      out->clear();
      out->reserve(n);
      Status s = reader.ReadRange(at, n, [&](std::string_view piece) {
        out->append(piece);
        return Status::OK();
      });
      if (s.IsCorruption()) node.metrics().verification_failures.fetch_add(1);
      return s;
    };
    if (length <= kSmallReadBytes) {
      std::string body;
      Status s = read_piece(offset, length, &body);
      if (!s.ok()) {
        Response answer = ErrorResponse(ex, s);
        co_await Send(ex, answer);
        co_return;
      }
      http::response<http::string_body> res{status, ex.req.version()};
      headers(res);
      res.body() = std::move(body);
      res.prepare_payload();
      ex.status = res.result_int();
      ex.stream.expires_after(opt.body_timeout);
      auto [ec, n] = co_await http::async_write(ex.stream, res, kTuple);
      if (ec) ex.keep_alive = false;
      node.metrics().AddRead(node.NowMs(), length);
      co_return;
    }
    // Large: the first piece is verified before the header goes out (so an early bad leaf is
    // still a clean 500); a later bad piece ends the connection before any of its bytes.
    std::string piece;
    Status s = read_piece(offset, std::min(length, kStreamPiece), &piece);
    if (!s.ok()) {
      Response answer = ErrorResponse(ex, s);
      co_await Send(ex, answer);
      co_return;
    }
    http::response<http::buffer_body> res{status, ex.req.version()};
    headers(res);
    res.content_length(length);
    http::response_serializer<http::buffer_body> sr{res};
    ex.status = res.result_int();
    ex.stream.expires_after(opt.body_timeout);
    {
      auto [ec, n] = co_await http::async_write_header(ex.stream, sr, kTuple);
      if (ec) {
        ex.keep_alive = false;
        co_return;
      }
    }
    uint64_t sent = 0;
    for (;;) {
      res.body().data = piece.data();
      res.body().size = piece.size();
      res.body().more = sent + piece.size() < length;
      ex.stream.expires_after(opt.body_timeout);
      auto [ec, n] = co_await http::async_write(ex.stream, sr, kTuple);
      if (ec == http::error::need_buffer) ec = {};
      if (ec) {
        ex.keep_alive = false;
        co_return;
      }
      sent += piece.size();
      if (sent >= length) break;
      s = read_piece(offset + sent, std::min(length - sent, kStreamPiece), &piece);
      if (!s.ok()) {
        // Never send an unverified byte: the client sees a body shorter than promised.
        ex.keep_alive = false;
        ex.status = 500;
        co_return;
      }
    }
    if (!sr.is_done()) {
      res.body().data = nullptr;
      res.body().size = 0;
      res.body().more = false;
      auto [ec, n] = co_await http::async_write(ex.stream, sr, kTuple);
      if (ec && ec != http::error::need_buffer) ex.keep_alive = false;
    }
    node.metrics().AddRead(node.NowMs(), length);
  }

  // --- Connections.

  awaitable<void> Refuse(tcp::socket socket, int status, const char* code, std::string msg) {
    beast::tcp_stream stream(std::move(socket));
    http::response<http::string_body> res{static_cast<http::status>(status), 11};
    res.set(http::field::server, fmt::format("dfrpd/{}", kVersion));
    res.set(http::field::content_type, "application/json");
    res.set(http::field::retry_after, "1");
    res.body() = HttpError(code, 6, msg).dump() + "\n";
    res.keep_alive(false);
    res.prepare_payload();
    stream.expires_after(std::chrono::seconds(2));
    co_await http::async_write(stream, res, kTuple);
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  // Runs on the connection's strand, like the read it bounds; `done` tells a timer that fired
  // just as the read completed to do nothing.
  struct HeaderDeadline {
    explicit HeaderDeadline(const asio::any_io_executor& ex) : timer(ex) {}
    asio::steady_timer timer;
    bool done = false;
    bool fired = false;
  };

  awaitable<void> Session(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    struct Count {
      Impl* impl;
      explicit Count(Impl* i) : impl(i) { impl->node.metrics().connections_open.fetch_add(1); }
      ~Count() {
        impl->node.metrics().connections_open.fetch_sub(1);
        impl->connections.fetch_sub(1);
      }
    } count(this);
    bool first = true;
    for (;;) {
      if (stopping) break;
      http::request_parser<http::empty_body> parser;
      parser.header_limit(opt.max_header_bytes);
      parser.body_limit(boost::none);
      // The deadline for the header is a timer that cancels the read, not the stream's own
      // expiry (which closes the socket), so that a slow client still gets its 408.
      stream.expires_never();
      auto deadline = std::make_shared<HeaderDeadline>(stream.get_executor());
      deadline->timer.expires_after(first ? opt.header_timeout : opt.idle_timeout);
      deadline->timer.async_wait([deadline, s = &stream](const beast::error_code& ec) {
        if (ec || deadline->done) return;
        deadline->fired = true;
        beast::error_code ignored;
        s->socket().cancel(ignored);
      });
      {
        std::lock_guard lock(idle_mu);
        idle.insert(&stream);
      }
      // Waiting for the next request: Stop() may cancel the read under us.
      auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, kTuple);
      deadline->done = true;
      deadline->timer.cancel();
      {
        std::lock_guard lock(idle_mu);
        idle.erase(&stream);
      }
      first = false;
      if (ec) {
        const bool partial = buffer.size() > 0 || parser.got_some();
        if (deadline->fired) {
          node.metrics().rejected_timeout.fetch_add(1);
          if (partial)
            co_await Reject(stream, 408, "timeout", "the request header did not arrive in time");
        } else if (ec == http::error::header_limit) {
          node.metrics().rejected_header.fetch_add(1);
          co_await Reject(
              stream, 431, "header_too_large",
              fmt::format("the request line and headers are over {} bytes", opt.max_header_bytes));
        } else if (ec != http::error::end_of_stream && ec != asio::error::eof &&
                   ec != asio::error::operation_aborted && ec != asio::error::connection_reset &&
                   partial) {
          co_await Reject(stream, 400, "invalid_argument",
                          fmt::format("malformed HTTP request: {}", ec.message()));
        }
        break;
      }
      const auto start = std::chrono::steady_clock::now();
      const auto& req = parser.get();
      Exchange ex{
          stream,          buffer, parser, req, MatchRoute(req.method_string(), req.target()),
          req.keep_alive()};
      std::string failure;
      try {
        co_await Handle(ex);
      } catch (const std::exception& e) {
        // A bug, not the client's fault: answer 500 if nothing was sent yet, and close.
        failure = e.what();
        ex.keep_alive = false;
      }
      if (!failure.empty() && ex.status == 0) {
        ex.status = 500;
        co_await Reject(stream, 500, "internal", fmt::format("internal error: {}", failure));
      }
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      node.metrics().ObserveRequest(ex.route.name, ex.status, secs);
      if (!ex.keep_alive || stopping) break;
    }
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  awaitable<void> Reject(beast::tcp_stream& stream, int status, const char* code, std::string msg) {
    http::response<http::string_body> res{static_cast<http::status>(status), 11};
    res.set(http::field::server, fmt::format("dfrpd/{}", kVersion));
    res.set(http::field::content_type, "application/json");
    res.body() = HttpError(code, status == 408 ? 1 : 2, msg).dump() + "\n";
    res.keep_alive(false);
    res.prepare_payload();
    stream.expires_after(std::chrono::seconds(2));
    co_await http::async_write(stream, res, kTuple);
  }

  awaitable<void> Accept() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(asio::make_strand(ioc), kTuple);
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
        // EMFILE and friends: wait a little rather than spin.
        asio::steady_timer t(ioc, std::chrono::milliseconds(50));
        co_await t.async_wait(kTuple);
        continue;
      }
      socket.set_option(tcp::no_delay(true), ec);
      auto ex = socket.get_executor();
      if (stopping) {
        node.metrics().rejected_overloaded.fetch_add(1);
        asio::co_spawn(ex, Refuse(std::move(socket), 503, "overloaded", "dfrpd is shutting down"),
                       asio::detached);
        continue;
      }
      if (connections.fetch_add(1) >= static_cast<int64_t>(opt.max_connections)) {
        connections.fetch_sub(1);
        node.metrics().rejected_overloaded.fetch_add(1);
        asio::co_spawn(ex,
                       Refuse(std::move(socket), 503, "overloaded",
                              fmt::format("dfrpd serves at most {} connections (MAX_CONNECTIONS); "
                                          "try again shortly",
                                          opt.max_connections)),
                       asio::detached);
        continue;
      }
      asio::co_spawn(ex, Session(std::move(socket)), asio::detached);
    }
  }
};

Server::Server(Node& node, ServerOptions opt)
    : impl_(std::make_unique<Impl>(node, std::move(opt))) {}
Server::~Server() = default;

Result<std::string> Server::Listen() {
  const std::string& a = impl_->opt.addr;
  const size_t colon = a.rfind(':');
  std::string host = a.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  uint64_t port = 0;
  if (colon == std::string::npos || !core::ParseDecimal(a.substr(colon + 1), &port) || port > 65535)
    return Err(Status::InvalidArgument(fmt::format("API_ADDR '{}' is not HOST:PORT", a)));
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(host, ec);
  if (ec)
    return Err(Status::InvalidArgument(fmt::format(
        "API_ADDR '{}': '{}' is not an IP address (such as 127.0.0.1 or ::1)", a, host)));
  tcp::endpoint ep(ip, static_cast<uint16_t>(port));
  auto& acc = impl_->acceptor;
  acc.open(ep.protocol(), ec);
  if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(ep, ec);
  if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return Err(Status::IOError(fmt::format(
        "cannot listen on {}: {} (another dfrpd or program may use the port; set API_ADDR)", a,
        ec.message())));
  auto local = acc.local_endpoint();
  impl_->bound = local.address().is_v6()
                     ? fmt::format("[{}]:{}", local.address().to_string(), local.port())
                     : fmt::format("{}:{}", local.address().to_string(), local.port());
  return impl_->bound;
}

void Server::Run() {
  Impl& im = *impl_;
  asio::co_spawn(im.acceptor.get_executor(), im.Accept(), asio::detached);
  // Waits for Stop(), lets the connections drain (busy ones end after their current answer,
  // which says Connection: close), then ends the loop, or when the grace period runs out. It
  // is joined below, before anything it uses can go away.
  std::thread drainer([&im] {
    {
      std::unique_lock lock(im.stop_mu);
      im.stop_cv.wait(lock, [&im] { return im.stopping.load(); });
    }
    const auto deadline = std::chrono::steady_clock::now() + im.opt.grace;
    while (im.connections.load() > 0 && std::chrono::steady_clock::now() < deadline) {
      im.CancelIdle();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    im.ioc.stop();
  });
  const int n = im.opt.threads > 0
                    ? im.opt.threads
                    : std::max(2, static_cast<int>(std::thread::hardware_concurrency()));
  {
    std::vector<std::jthread> threads;
    for (int i = 1; i < n; ++i) threads.emplace_back([&im] { im.ioc.run(); });
    im.ioc.run();
  }  // joins the other loop threads
  drainer.join();
}

void Server::Stop() {
  Impl& im = *impl_;
  {
    std::lock_guard lock(im.stop_mu);
    if (im.stopping.exchange(true)) return;
  }
  im.stop_cv.notify_all();
  asio::post(im.acceptor.get_executor(), [&im] {
    beast::error_code ec;
    im.acceptor.close(ec);
    im.CancelIdle();
  });
}

}  // namespace dfrp::node
