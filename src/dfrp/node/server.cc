#include "dfrp/node/server.h"

#include <fmt/format.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <list>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "dfrp/core/bytes.h"
#include "dfrp/core/file_system.h"
#include "dfrp/core/version.h"
#include "dfrp/node/api.h"
#include "dfrp/node/body_buffer.h"
#include "dfrp/node/memory_budget.h"
#include "dfrp/node/routes.h"
#include "dfrp/node/work_pool.h"

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
constexpr uint64_t kInlineRead = 64 << 10;     // read and verified on the HTTP thread if cached
constexpr uint64_t kSmallRead = 256 << 10;     // downloads read whole on the lane, then sent
constexpr uint64_t kStreamPiece = 1ull << 20;  // larger ones go out in pieces of this
constexpr size_t kSpoolPiece = 256 << 10;      // spooled bodies are written in pieces of this

std::string ServerHeader() { return fmt::format("dfrpd/{}", core::kVersion); }

// The head of a Beast request as the middleware sees it.
RequestHead HeadOf(const http::request_parser<http::empty_body>& p) {
  const auto& req = p.get();
  RequestHead h;
  h.method = req.method_string();
  h.target = req.target();
  h.version = static_cast<int>(req.version());
  auto get = [&](http::field f) -> std::string_view {
    auto it = req.find(f);
    return it == req.end() ? std::string_view() : std::string_view(it->value());
  };
  h.host = get(http::field::host);
  h.origin = get(http::field::origin);
  h.authorization = get(http::field::authorization);
  h.transfer_encoding = get(http::field::transfer_encoding);
  if (auto it = req.find("Sec-Fetch-Site"); it != req.end()) h.sec_fetch_site = it->value();
  if (p.content_length()) h.content_length = *p.content_length();
  h.chunked = p.chunked();
  return h;
}

}  // namespace

struct Server::Impl {
  Node& node;
  ServerOptions opt;
  std::string bound;
  RouteTable table;
  // Each route's metrics, and those of requests no route matched, looked up once here
  // rather than by their label per request.
  std::unordered_map<const RouteSpec*, RouteStats*> route_stats;
  RouteStats* unmatched_stats = nullptr;
  std::vector<Middleware> middleware;
  MemoryBudget budget;
  std::atomic<uint64_t> next_request_id{0};
  // Declared before the io_context: its destructor destroys pending sessions, which use them.
  std::atomic<bool> stopping{false};
  std::atomic<int64_t> connections{0};
  // The connections of one io_context, touched only by its thread: each is registered once
  // for its life, and marks itself idle while it waits between requests (no lock and no
  // allocation per request); Stop() closes the idle ones at once, on their own thread.
  struct Connection {
    beast::tcp_stream* stream = nullptr;
    bool idle = false;
  };
  using Connections = std::list<Connection>;
  std::vector<Connections> conns;  // conns[i]: of iocs[i], used on its thread only
  // Stop() wakes the drainer thread of Run().
  std::mutex stop_mu;
  std::condition_variable stop_cv;

  // One io_context per HTTP thread, each run by that thread alone: a connection stays on the
  // thread that accepted it, so its coroutine always resumes there (no strands, no hand-offs
  // between threads; and clang, which may keep a thread_local's address across a co_await,
  // never sees one resume on another thread). The acceptor lives on the first.
  std::vector<std::unique_ptr<asio::io_context>> iocs;
  size_t next_ioc = 0;  // the acceptor's coroutine alone uses it
  tcp::acceptor acceptor;
  // Declared after the io_context, so that they are joined first: a job still running posts
  // its answer to a connection of the io_context.
  WorkPool read_pool, verify_pool, admin_pool, spool_pool;

  static int Threads(int n) {
    return n > 0 ? n : std::max(2, static_cast<int>(std::thread::hardware_concurrency()));
  }

  static std::vector<std::unique_ptr<asio::io_context>> Contexts(int n) {
    std::vector<std::unique_ptr<asio::io_context>> v;
    for (int i = 0; i < n; ++i) v.push_back(std::make_unique<asio::io_context>(1));
    return v;
  }

  Impl(Node& n, ServerOptions o)
      : node(n),
        opt(std::move(o)),
        budget(opt.body_memory_budget),
        conns(static_cast<size_t>(Threads(opt.threads))),
        iocs(Contexts(Threads(opt.threads))),
        acceptor(*iocs[0]),
        read_pool("read", Threads(opt.read_threads), opt.lane_queue),
        verify_pool("verify", Threads(opt.verify_threads), opt.lane_queue / 8 + 1),
        admin_pool("admin", Threads(opt.admin_threads), 64),
        spool_pool("spool", Threads(opt.spool_threads), opt.lane_queue) {
    ServerView view;
    view.api_addr = [this] { return bound; };
    view.figures = [this] {
      ServerFigures f;
      f.body_bytes_reserved = budget.used();
      f.body_budget = budget.capacity();
      return f;
    };
    AddDaemonRoutes(&table, &node, view);
    for (const auto& spec : table.routes())
      route_stats[spec.get()] = node.metrics().Route(spec->name);
    unmatched_stats = node.metrics().Route(RouteMatch().name);
    middleware.push_back(HostCheck(opt.addr, opt.api_hosts));
    middleware.push_back(BodyRules());
    middleware.push_back(OriginCheck());
    middleware.push_back(AdminAuth(
        node.token(), core::JoinPath(node.config().state_dir, std::string(kTokenFileName))));
  }

  // Cancels the reads of connections waiting for a request, on each connection's thread, and
  // only those still waiting when that runs (the others see `stopping` after their request).
  void CancelIdle() {
    for (size_t i = 0; i < iocs.size(); ++i)
      asio::post(*iocs[i], [this, i] {
        for (Connection& c : conns[i]) {
          if (!c.idle) continue;
          beast::error_code ec;
          c.stream->socket().cancel(ec);
        }
      });
  }

  WorkPool* PoolFor(Lane lane) {
    switch (lane) {
      case Lane::kInline:
        return nullptr;
      case Lane::kRead:
        return &read_pool;
      case Lane::kVerify:
        return &verify_pool;
      case Lane::kAdmin:
        return &admin_pool;
    }
    return nullptr;
  }

  int64_t NowNanos() const { return node.clock()->NowMonotonicNanos(); }

  using Response = http::response<http::string_body>;

  struct Exchange {
    beast::tcp_stream& stream;
    beast::flat_buffer& buffer;
    http::request_parser<http::empty_body>& parser;
    const http::request<http::empty_body>& req;
    RequestHead head;
    RouteMatch route;
    bool keep_alive = true;
    int status = 0;  // what was answered, for the metrics
    bool head_only() const { return req.method() == http::verb::head; }
  };

  // --- Sending.

  template <typename Body>
  awaitable<void> Write(Exchange& ex, http::response<Body>& res) {
    ex.status = res.result_int();
    if (!res.keep_alive()) ex.keep_alive = false;
    ex.stream.expires_after(opt.body_timeout);
    auto [ec, n] = co_await http::async_write(ex.stream, res, kTuple);
    if (ec) ex.keep_alive = false;
  }

  Response ToBeast(const Exchange& ex, ApiResponse a) {
    Response res{static_cast<http::status>(a.status), ex.req.version()};
    res.set(http::field::server, ServerHeader());
    res.set(http::field::content_type, a.content_type);
    res.set(http::field::cache_control, "no-store");
    for (auto& [k, v] : a.headers) res.set(k, v);
    if (a.status == 503) res.set(http::field::retry_after, "1");
    res.body() = std::move(a.body);
    res.keep_alive(ex.keep_alive && !a.close && !stopping);
    res.prepare_payload();
    return res;
  }

  awaitable<void> Send(Exchange& ex, ApiResponse a) {
    Response res = ToBeast(ex, std::move(a));
    if (ex.head_only()) {
      // HEAD: the header of the GET, no body.
      http::response<http::empty_body> head{res.result(), res.version()};
      for (const auto& f : res) head.set(f.name_string(), f.value());
      head.keep_alive(res.keep_alive());
      co_await Write(ex, head);
      co_return;
    }
    co_await Write(ex, res);
  }

  ApiResponse LaneFull(const char* lane) {
    node.metrics().rejected_overloaded.fetch_add(1);
    return ApiResponse::Refusal(
        503, "overloaded", 6,
        fmt::format("dfrpd's {} lane is full: try again shortly (Retry-After)", lane));
  }

  // Runs f() on `pool` and resumes on the connection's strand with its result; nullopt when
  // the pool's queue is full (the caller answers 503). With no pool, runs f() here.
  template <typename R, typename F>
  awaitable<std::optional<R>> OnPool(WorkPool* pool, F f) {
    if (!pool) co_return std::optional<R>(f());
    co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(std::optional<R>)>(
        [pool, f = std::move(f)](auto handler) mutable {
          auto h = std::make_shared<decltype(handler)>(std::move(handler));
          auto back = [h](std::optional<R> r) {
            auto ex = asio::get_associated_executor(*h);
            asio::post(ex, [h, r = std::move(r)]() mutable { (*h)(std::move(r)); });
          };
          if (!pool->TrySubmit([back, f = std::move(f)]() mutable { back(std::optional<R>(f())); }))
            back(std::nullopt);
        },
        asio::use_awaitable);
  }

  // --- Bodies.

  // Answers "Expect: 100-continue" before a body is read.
  awaitable<void> MaybeContinue(Exchange& ex) {
    auto it = ex.req.find(http::field::expect);
    if (it == ex.req.end() || !beast::iequals(it->value(), "100-continue")) co_return;
    http::response<http::empty_body> cont{http::status::continue_, ex.req.version()};
    ex.stream.expires_after(opt.body_timeout);
    co_await http::async_write(ex.stream, cont, kTuple);
  }

  // The deadline of a whole body of `size` bytes: body_timeout plus its size at the slowest
  // rate allowed.
  int64_t BodyDeadline(uint64_t size) const {
    const uint64_t rate = std::max<uint64_t>(1, opt.min_body_rate);
    const double secs = static_cast<double>(size) / static_cast<double>(rate);
    return NowNanos() + std::chrono::nanoseconds(opt.body_timeout).count() +
           static_cast<int64_t>(std::min(secs, 1e9) * 1e9);
  }

  // A deadline for one read: a timer that cancels the read, not the stream's own expiry
  // (which closes the socket), so that a slow client still gets its 408. It runs on the
  // connection's strand, like the read; `done` tells a timer that fired just as the read
  // completed to do nothing, and the handler shares ownership, since it may run after the
  // read's coroutine moved on.
  struct ReadDeadline {
    explicit ReadDeadline(const asio::any_io_executor& ex) : timer(ex) {}
    asio::steady_timer timer;
    bool done = false;
    bool fired = false;
  };

  static std::shared_ptr<ReadDeadline> Arm(beast::tcp_stream& stream,
                                           std::chrono::nanoseconds wait) {
    stream.expires_never();
    auto d = std::make_shared<ReadDeadline>(stream.get_executor());
    d->timer.expires_after(wait);
    d->timer.async_wait([d, s = &stream](const beast::error_code& ec) {
      if (ec || d->done) return;
      d->fired = true;
      beast::error_code ignored;
      s->socket().cancel(ignored);
    });
    return d;
  }

  static void Disarm(ReadDeadline& d) {
    d.done = true;
    d.timer.cancel();
  }

  // Reads the next bytes of a body into dst (up to n): first what came with the header, then
  // from the socket in reads as large as the space; each read has the body deadline and never
  // outlives `deadline`. 0 with a timeout or I/O error Status.
  awaitable<Result<size_t>> ReadSome(Exchange& ex, char* dst, size_t n, int64_t deadline) {
    if (ex.buffer.size() > 0) {
      const size_t k = std::min(n, ex.buffer.size());
      asio::buffer_copy(asio::buffer(dst, k), ex.buffer.data());
      ex.buffer.consume(k);
      co_return k;
    }
    const int64_t left = deadline - NowNanos();
    if (left <= 0)
      co_return Err(Status::Busy("timeout: the body did not arrive at the required rate"));
    auto timer = Arm(ex.stream, std::min<std::chrono::nanoseconds>(opt.body_timeout,
                                                                   std::chrono::nanoseconds(left)));
    auto [ec, got] = co_await ex.stream.async_read_some(asio::buffer(dst, n), kTuple);
    Disarm(*timer);
    if (timer->fired) co_return Err(Status::Busy("timeout: the body did not arrive in time"));
    if (ec) co_return Err(Status::IOError(fmt::format("reading the body: {}", ec.message())));
    co_return got;
  }

  awaitable<Status> ReceiveToMemory(Exchange& ex, BodyBuffer& body, int64_t deadline) {
    while (!body.complete()) {
      std::span<char> space = body.Space();
      auto got = co_await ReadSome(ex, space.data(), space.size(), deadline);
      if (!got) co_return got.error();
      body.Commit(*got);
    }
    co_return Status::OK();
  }

  awaitable<Status> ReceiveToSpool(Exchange& ex, core::WritableFile& file, uint64_t size,
                                   int64_t deadline) {
    std::unique_ptr<char[]> piece = std::make_unique_for_overwrite<char[]>(kSpoolPiece);
    uint64_t at = 0;
    while (at < size) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(kSpoolPiece, size - at));
      size_t have = 0;
      while (have < want) {
        auto got = co_await ReadSome(ex, piece.get() + have, want - have, deadline);
        if (!got) co_return got.error();
        have += *got;
      }
      auto wrote = co_await OnPool<Status>(&spool_pool, [&file, &piece, at, have] {
        return file.WriteAt(at, std::string_view(piece.get(), have));
      });
      if (!wrote) co_return Status::Busy("the spool lane is full");
      if (!wrote->ok()) co_return *wrote;
      at += have;
    }
    co_return Status::OK();
  }

  // Creates the spool file of a body and reserves its room, on the spool lane: NoSpace
  // (507) when STATE_DIR's file system cannot take it and leave room for the index.
  Result<std::unique_ptr<core::WritableFile>> NewSpool(const std::string& path, uint64_t size) {
    core::FileSystem* fs = node.fs();
    const std::string dir = core::DirName(path);
    DFRP_RETURN_IF_ERROR(fs->CreateDirRecursive(dir));
    DFRP_ASSIGN_OR_RETURN(core::FsSpace space, fs->Space(dir));
    const uint64_t keep = std::max<uint64_t>(64ull << 20, space.total_bytes / 100);
    if (space.available_bytes < keep || space.available_bytes - keep < size)
      return Err(Status::NoSpace(fmt::format(
          "a {}-byte body does not fit in {} ({} free, and {} kept for the index): free room "
          "there, or move STATE_DIR to a larger file system",
          size, dir, space.available_bytes, keep)));
    DFRP_ASSIGN_OR_RETURN(auto file, fs->CreateNew(path));
    Status s = file->Allocate(0, size);
    if (!s.ok()) {
      (void)fs->RemoveFile(path);
      return Err(s.IsNoSpace() ? Status::NoSpace(fmt::format("{}: {}", dir, s.message())) : s);
    }
    return file;
  }

  std::string SpoolPath() {
    return core::JoinPath(node.SpoolDir(),
                          "put-" + core::DefaultUuidGenerator()->NewV7().ToString());
  }

  // The body did not arrive: a timeout gets its 408 (the client may still be sending), an I/O
  // error ends the connection. Nothing was stored.
  awaitable<void> BodyFailed(Exchange& ex, const Status& s) {
    ex.keep_alive = false;
    if (!s.IsBusy()) {
      ex.status = 400;
      co_return;
    }
    node.metrics().rejected_timeout.fetch_add(1);
    co_await Send(ex, ApiResponse::Refusal(
                          408, "timeout", 1,
                          fmt::format("the request body did not arrive in time: each piece must "
                                      "come within {} ms and the whole at {} bytes/s or faster",
                                      opt.body_timeout.count(), opt.min_body_rate)));
  }

  awaitable<void> Upload(Exchange& ex, ApiRequest& req) {
    const UploadHandler& up = *ex.route.spec->upload;
    const uint64_t size = *ex.head.content_length;
    if (auto refused = up.check(req, size)) {
      if (size > 0) refused->close = true;  // the body stays unread
      co_await Send(ex, std::move(*refused));
      co_return;
    }
    ReceivedBody body;
    body.size = size;
    std::unique_ptr<core::WritableFile> spool;
    body.hold = budget.TryReserve(size <= opt.memory_body_limit ? size : kSpoolPiece);
    if (!body.hold) {
      node.metrics().rejected_overloaded.fetch_add(1);
      ApiResponse r = ApiResponse::Refusal(
          503, "overloaded", 6,
          fmt::format("request bodies in flight hold dfrpd's whole body budget ({} bytes, "
                      "MAX_BODY_MEMORY): send the body again shortly (Retry-After)",
                      budget.capacity()));
      r.close = size > 0;
      co_await Send(ex, std::move(r));
      co_return;
    }
    if (size <= opt.memory_body_limit) {
      body.memory = std::make_unique<BodyBuffer>(size);
    } else {
      body.spool_path = SpoolPath();
      auto made = co_await OnPool<Result<std::unique_ptr<core::WritableFile>>>(
          // Only references and scalars in lambdas handed to co_awaited calls: GCC 12 destroys
          // a temporary's captured strings twice.
          &spool_pool, [this, &body, size] { return NewSpool(body.spool_path, size); });
      if (!made || !*made) {
        ApiResponse r;
        if (made)
          r = ApiResponse::Error(made->error());
        else
          r = LaneFull("spool");
        r.close = true;
        co_await Send(ex, std::move(r));
        co_return;
      }
      spool = std::move(**made);
    }
    co_await MaybeContinue(ex);
    const int64_t deadline = BodyDeadline(size);
    // (No ?: around co_await or temporaries in these coroutines: GCC 12 destroys such
    // temporaries twice.)
    Status got;
    if (body.memory)
      got = co_await ReceiveToMemory(ex, *body.memory, deadline);
    else
      got = co_await ReceiveToSpool(ex, *spool, size, deadline);
    if (got.ok() && spool) got = spool->Close();
    spool.reset();
    if (!got.ok()) {
      if (!body.spool_path.empty()) (void)node.fs()->RemoveFile(body.spool_path);
      co_await BodyFailed(ex, got);
      co_return;
    }
    ApiResponse answer =
        co_await asio::async_initiate<decltype(asio::use_awaitable), void(ApiResponse)>(
            [&up, &req, &body](auto handler) {
              auto h = std::make_shared<decltype(handler)>(std::move(handler));
              up.take(req, std::move(body), [h](ApiResponse r) {
                auto ex = asio::get_associated_executor(*h);
                asio::post(ex, [h, r = std::move(r)]() mutable { (*h)(std::move(r)); });
              });
            },
            asio::use_awaitable);
    co_await Send(ex, std::move(answer));
  }

  // --- Downloads.

  struct Opened {
    Result<Download> download = Err(Status::Internal("not opened"));
    std::string first;  // the whole payload of a small download
    Status read;
    bool have_first = false;
  };

  // The try on the HTTP thread (routes that offer it): open from memory alone and, for a
  // payload of at most kInlineRead bytes, read and verify it from the page cache alone; never
  // waits for the device. nullopt when it could not open so; an Opened without have_first
  // when the bytes are not all in memory (or too many to hash here).
  static std::optional<Opened> TryCached(const RouteSpec& spec, const ApiRequest& req,
                                         bool head_only) {
    if (!spec.download_cached) return std::nullopt;
    auto fast = spec.download_cached(req);
    if (!fast) return std::nullopt;
    Opened o;
    o.download = std::move(*fast);
    if (!o.download || head_only) {
      o.have_first = true;
      return o;
    }
    const Download& d = *o.download;
    if (d.length <= kInlineRead && d.read_cached) {
      if (auto r = d.read_cached(0, d.length, &o.first)) {
        o.read = *r;
        o.have_first = true;
      } else {
        o.first.clear();
      }
    }
    return o;
  }

  // The status line and header of a download, written by hand (no field container to fill
  // and serialize: a small GET is one writev of this and the payload).
  std::string DownloadHead(Exchange& ex, const Download& d) {
    const bool keep = ex.keep_alive && !stopping;
    if (!keep) ex.keep_alive = false;
    const bool http10 = ex.req.version() == 10;
    std::string head = fmt::format(
        "HTTP/1.{} {} {}\r\nServer: dfrpd/{}\r\nContent-Type: {}\r\n{}Content-Length: {}\r\n{}\r\n",
        http10 ? 0 : 1, d.status,
        std::string_view(http::obsolete_reason(static_cast<http::status>(d.status))),
        core::kVersion, d.content_type, d.header_lines, d.length,
        keep ? (http10 ? "Connection: keep-alive\r\n" : "") : "Connection: close\r\n");
    ex.status = d.status;
    return head;
  }

  // Writes the buffers with the body deadline; false (and the connection to close) on error.
  template <typename Buffers>
  awaitable<bool> WriteRaw(Exchange& ex, const Buffers& buffers) {
    ex.stream.expires_after(opt.body_timeout);
    auto [ec, n] = co_await asio::async_write(ex.stream, buffers, kTuple);
    if (ec) ex.keep_alive = false;
    co_return !ec;
  }

  awaitable<void> DownloadRoute(Exchange& ex, ApiRequest& req) {
    const RouteSpec& spec = *ex.route.spec;
    const bool head_only = ex.head_only();
    // First from memory on this thread; what needs the device takes one hop to the lane,
    // which opens (unless done here) and reads a small payload whole.
    std::optional<Opened> opened = TryCached(spec, req, head_only);
    if (!opened || !opened->have_first)
      opened = co_await OnPool<Opened>(PoolFor(spec.lane), [&spec, &req, head_only, &opened] {
        Opened o = opened ? std::move(*opened) : Opened();
        if (!opened) o.download = spec.download(req);
        if (o.download && !head_only && o.download->length <= kSmallRead)
          o.read = o.download->read(0, o.download->length, &o.first);
        return o;
      });
    if (!opened) {
      co_await Send(ex, LaneFull(LaneName(spec.lane)));
      co_return;
    }
    if (!opened->download) {
      co_await Send(ex, ApiResponse::Error(opened->download.error()));
      co_return;
    }
    Download& d = *opened->download;
    if (!opened->read.ok()) {
      co_await Send(ex, ApiResponse::Error(opened->read));
      co_return;
    }
    if (head_only) {
      const std::string head = DownloadHead(ex, d);
      co_await WriteRaw(ex, asio::buffer(head));
      co_return;
    }
    if (d.length <= kSmallRead) {
      const std::string head = DownloadHead(ex, d);
      const std::array<asio::const_buffer, 2> out = {asio::buffer(head),
                                                     asio::buffer(opened->first)};
      if (co_await WriteRaw(ex, out) && d.on_sent) d.on_sent(d.length);
      co_return;
    }
    co_await StreamDownload(ex, d, spec.lane);
  }

  // A large payload in verified pieces, each read on the lane and reserved from the memory
  // budget. The first piece is verified before the header goes out (an early bad leaf is
  // still a clean 500); a later bad piece ends the connection before any of its bytes.
  awaitable<void> StreamDownload(Exchange& ex, Download& d, Lane lane) {
    std::shared_ptr<void> hold = budget.TryReserve(kStreamPiece);
    if (!hold) {
      node.metrics().rejected_overloaded.fetch_add(1);
      co_await Send(ex, ApiResponse::Refusal(
                            503, "overloaded", 6,
                            "responses and bodies in flight hold dfrpd's whole memory budget "
                            "(MAX_BODY_MEMORY): ask again shortly (Retry-After)"));
      co_return;
    }
    auto read = [this, &d, lane](uint64_t at) {
      const uint64_t n = std::min(d.length - at, kStreamPiece);
      return OnPool<std::pair<Status, std::string>>(PoolFor(lane), [&d, at, n] {
        std::pair<Status, std::string> out;
        out.second.reserve(n);
        out.first = d.read(at, n, &out.second);
        return out;
      });
    };
    auto piece = co_await read(0);
    if (!piece || !piece->first.ok()) {
      ApiResponse refused;
      if (piece)
        refused = ApiResponse::Error(piece->first);
      else
        refused = LaneFull(LaneName(lane));
      co_await Send(ex, std::move(refused));
      co_return;
    }
    const std::string head = DownloadHead(ex, d);
    if (!co_await WriteRaw(ex, asio::buffer(head))) co_return;
    uint64_t sent = 0;
    for (;;) {
      if (!co_await WriteRaw(ex, asio::buffer(piece->second))) co_return;
      sent += piece->second.size();
      if (sent >= d.length) break;
      piece = co_await read(sent);
      if (!piece || !piece->first.ok()) {
        // Never send an unverified byte: the client sees a body shorter than promised.
        ex.keep_alive = false;
        ex.status = 500;
        co_return;
      }
    }
    if (d.on_sent) d.on_sent(d.length);
  }

  // --- One request.

  // The answer to a request no route took (400, 404, 405, 414).
  ApiResponse Unrouted(const RouteMatch& m) {
    if (m.error_status == 405) {
      ApiResponse r = ApiResponse::Refusal(405, "method_not_allowed", 2, m.error);
      r.With("Allow", m.allow);
      return r;
    }
    if (m.error_status == 404) return ApiResponse::Refusal(404, "not_found", 4, m.error);
    return ApiResponse::Refusal(m.error_status, "invalid_argument", 2, m.error);
  }

  awaitable<Result<std::string>> ReadJsonBody(Exchange& ex) {
    if (!ex.head.has_body()) co_return std::string();
    co_await MaybeContinue(ex);
    http::request_parser<http::string_body> sp(std::move(ex.parser));
    sp.body_limit(ex.route.spec ? ex.route.spec->max_json_body : kMaxJsonBody);
    ex.stream.expires_after(opt.body_timeout);
    auto [ec, n] = co_await http::async_read(ex.stream, ex.buffer, sp, kTuple);
    if (ec) {
      ex.keep_alive = false;
      co_return Err(Status::InvalidArgument(
          fmt::format("the request body could not be read: {}", ec.message())));
    }
    co_return std::move(sp.get().body());
  }

  // Not a coroutine: GCC 12 mishandles braced initializers inside coroutines.
  static ApiRequest RequestFor(Exchange& ex) {
    return ApiRequest{.route = ex.route,
                      .head = ex.head,
                      .header = [&ex](std::string_view name) -> std::string_view {
                        auto it = ex.req.find(name);
                        return it == ex.req.end() ? std::string_view()
                                                  : std::string_view(it->value());
                      }};
  }

  awaitable<void> Handle(Exchange& ex) {
    for (const Middleware& check : middleware) {
      if (auto refused = check(ex.head, ex.route)) {
        if (ex.head.has_body()) refused->close = true;
        co_await Send(ex, std::move(*refused));
        co_return;
      }
    }
    if (!ex.route.spec) {
      ApiResponse r = Unrouted(ex.route);
      if (ex.head.has_body()) r.close = true;
      co_await Send(ex, std::move(r));
      co_return;
    }
    const RouteSpec& spec = *ex.route.spec;
    ApiRequest req = RequestFor(ex);
    req.ctx.who = spec.admin ? "admin" : "local";
    req.ctx.request_id = fmt::format("{:x}", next_request_id.fetch_add(1));
    if (spec.upload) co_return co_await Upload(ex, req);
    if (spec.download) co_return co_await DownloadRoute(ex, req);
    if (spec.body == BodyKind::kJson) {
      auto body = co_await ReadJsonBody(ex);
      if (!body) {
        co_await Send(ex, ApiResponse::Error(body.error()));
        co_return;
      }
      req.body = std::move(*body);
    }
    auto answer = co_await OnPool<ApiResponse>(PoolFor(spec.lane),
                                               [&spec, &req] { return spec.handler(req); });
    ApiResponse out;
    if (answer)
      out = std::move(*answer);
    else
      out = LaneFull(LaneName(spec.lane));
    co_await Send(ex, std::move(out));
  }

  // --- Connections.

  awaitable<void> Refuse(tcp::socket socket, int status, const char* code, std::string msg) {
    beast::tcp_stream stream(std::move(socket));
    http::response<http::string_body> res{static_cast<http::status>(status), 11};
    res.set(http::field::server, ServerHeader());
    res.set(http::field::content_type, "application/json");
    res.set(http::field::retry_after, "1");
    res.body() = ApiResponse::Refusal(status, code, 6, std::move(msg)).body;
    res.keep_alive(false);
    res.prepare_payload();
    stream.expires_after(std::chrono::seconds(2));
    co_await http::async_write(stream, res, kTuple);
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  awaitable<void> Reject(beast::tcp_stream& stream, int status, const char* code, std::string msg) {
    http::response<http::string_body> res{static_cast<http::status>(status), 11};
    res.set(http::field::server, ServerHeader());
    res.set(http::field::content_type, "application/json");
    res.body() = ApiResponse::Refusal(status, code, status == 408 ? 1 : 2, std::move(msg)).body;
    res.keep_alive(false);
    res.prepare_payload();
    stream.expires_after(std::chrono::seconds(2));
    co_await http::async_write(stream, res, kTuple);
  }

  // Reads the next request's head under its deadline; false when the connection is to close
  // (having answered 408, 431 or 400 where that is due).
  awaitable<bool> ReadHead(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                           http::request_parser<http::empty_body>& parser, bool first,
                           Connection& self) {
    parser.header_limit(opt.max_header_bytes);
    parser.body_limit(boost::none);
    auto deadline = Arm(stream, first ? opt.header_timeout : opt.idle_timeout);
    // Waiting for the next request: Stop() may cancel the read under us.
    self.idle = true;
    auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, kTuple);
    self.idle = false;
    Disarm(*deadline);
    if (!ec) co_return true;
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
    co_return false;
  }

  // Serves one connection; runs on iocs[loop]'s thread only.
  awaitable<void> Session(tcp::socket socket, size_t loop) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    struct Count {
      Impl* impl;
      Connections& list;
      Connections::iterator self;
      Count(Impl* i, Connections& l, beast::tcp_stream* s)
          : impl(i), list(l), self(l.insert(l.end(), Connection{s, false})) {
        impl->node.metrics().connections_open.fetch_add(1);
      }
      ~Count() {
        list.erase(self);
        impl->node.metrics().connections_open.fetch_sub(1);
        impl->connections.fetch_sub(1);
      }
    } count(this, conns[loop], &stream);
    bool first = true;
    for (;;) {
      if (stopping) break;
      http::request_parser<http::empty_body> parser;
      if (!co_await ReadHead(stream, buffer, parser, first, *count.self)) break;
      first = false;
      const int64_t start = NowNanos();
      const auto& req = parser.get();
      Exchange ex{stream,          buffer,
                  parser,          req,
                  HeadOf(parser),  table.Match(req.method_string(), req.target()),
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
      RouteStats* stats = ex.route.spec ? route_stats.at(ex.route.spec) : unmatched_stats;
      node.metrics().ObserveRequest(stats, ex.status, NowNanos() - start);
      if (!ex.keep_alive || stopping) break;
    }
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  awaitable<void> Accept() {
    for (;;) {
      const size_t loop = next_ioc++ % iocs.size();
      asio::io_context& target = *iocs[loop];
      auto [ec, socket] = co_await acceptor.async_accept(target.get_executor(), kTuple);
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
        // EMFILE and friends: wait a little rather than spin.
        asio::steady_timer t(*iocs[0], std::chrono::milliseconds(50));
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
      asio::co_spawn(ex, Session(std::move(socket), loop), asio::detached);
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
    const int64_t deadline =
        im.NowNanos() + std::chrono::duration_cast<std::chrono::nanoseconds>(im.opt.grace).count();
    while (im.connections.load() > 0 && im.NowNanos() < deadline) {
      im.CancelIdle();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    for (auto& ioc : im.iocs) ioc->stop();
  });
  {
    // Each context runs until Stop() stops it, connections or not.
    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> busy;
    for (auto& ioc : im.iocs) busy.push_back(asio::make_work_guard(*ioc));
    std::vector<std::jthread> threads;
    for (size_t i = 1; i < im.iocs.size(); ++i)
      threads.emplace_back([&im, i] { im.iocs[i]->run(); });
    im.iocs[0]->run();
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
