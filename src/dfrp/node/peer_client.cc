#include "dfrp/node/peer_client.h"

#include <fmt/format.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <chrono>
#include <deque>
#include <future>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

#include "dfrp/core/thread_annotations.h"

namespace dfrp::node {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using core::Err;
using core::Result;
using core::Status;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
using Strand = asio::strand<asio::io_context::executor_type>;
using Clock = std::chrono::steady_clock;
using Ms = std::chrono::milliseconds;

// Peers with nothing queued and no connection kept are forgotten past this many.
constexpr size_t kMaxIdlePeers = 1024;

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

Status BadUrl(std::string_view url, std::string_view why) {
  return Status::InvalidArgument(
      fmt::format("peer URL \"{}\": {} (give http://host:port)", url, why));
}

}  // namespace

Result<std::pair<std::string, std::string>> SplitPeerUrl(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (!url.starts_with(kScheme)) return Err(BadUrl(url, "only http:// is spoken between nodes"));
  std::string_view rest = url.substr(kScheme.size());
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find('/') != std::string_view::npos) return Err(BadUrl(url, "a peer's URL has no path"));
  std::string_view host, port = "80";
  if (rest.starts_with('[')) {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) return Err(BadUrl(url, "an IPv6 address without ']'"));
    host = rest.substr(1, close - 1);
    rest = rest.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return Err(BadUrl(url, "something after the IPv6 address"));
      port = rest.substr(1);
    }
  } else {
    const size_t colon = rest.rfind(':');
    host = rest.substr(0, colon);
    if (colon != std::string_view::npos) port = rest.substr(colon + 1);
  }
  if (host.empty()) return Err(BadUrl(url, "no host"));
  if (!AllDigits(port) || port.size() > 5 || std::stoul(std::string(port)) == 0 ||
      std::stoul(std::string(port)) > 65535)
    return Err(BadUrl(url, "the port is not a number from 1 to 65535"));
  return std::pair<std::string, std::string>(std::string(host), std::string(port));
}

struct PeerClient::Impl {
  struct Pending {
    PeerRequest req;
    Callback done;
    int tries = 0;               // exchanges begun so far
    bool stale_retried = false;  // its one free retry after a dead kept-alive connection
  };
  struct Conn {
    explicit Conn(const Strand& s) : stream(s) {}
    beast::tcp_stream stream;
    beast::flat_buffer buffer;
    Clock::time_point idle_since;
  };
  // Everything but `load` and `idle_count` is touched only on `strand`.
  struct Peer {
    Peer(Strand s, std::string u, std::string h, std::string p)
        : strand(std::move(s)), url(std::move(u)), host(std::move(h)), port(std::move(p)) {}
    Strand strand;
    const std::string url, host, port;
    std::deque<std::unique_ptr<Pending>> queue;
    std::vector<std::unique_ptr<Conn>> idle;
    std::set<Conn*> active;
    std::set<asio::steady_timer*> timers;
    size_t busy = 0;  // exchanges in progress (each on its own connection)
    bool closed = false;
    std::atomic<size_t> load{0};        // accepted and not yet finished
    std::atomic<size_t> idle_count{0};  // idle.size(), for the sweep
  };

  explicit Impl(PeerClientOptions o)
      : opt(o), work(asio::make_work_guard(io)), sweep_strand(asio::make_strand(io)) {
    opt.threads = std::max(1u, opt.threads);
    opt.max_connections_per_peer = std::max<size_t>(1, opt.max_connections_per_peer);
    asio::co_spawn(sweep_strand, Sweep(), asio::detached);
    for (unsigned i = 0; i < opt.threads; ++i) threads.emplace_back([this] { io.run(); });
  }

  ~Impl() {
    {
      core::MutexLock lock(&mu);
      stopping = true;
    }
    stop_flag = true;
    for (auto& peer : AllPeers()) asio::post(peer->strand, [this, peer] { Close(peer); });
    asio::post(sweep_strand, [this] {
      if (sweep_timer) sweep_timer->cancel();
    });
    {
      core::MutexLock lock(&mu);
      while (outstanding > 0) cv.Wait(&mu);
    }
    work.reset();
    io.stop();
    for (auto& t : threads) t.join();
  }

  std::vector<std::shared_ptr<Peer>> AllPeers() EXCLUDES(mu) {
    core::MutexLock lock(&mu);
    std::vector<std::shared_ptr<Peer>> out;
    for (auto& [key, p] : peers) out.push_back(p);
    return out;
  }

  // On the peer's strand: no more exchanges; what waits fails, what runs is cancelled (and
  // fails when its operation returns).
  void Close(const std::shared_ptr<Peer>& peer) {
    peer->closed = true;
    beast::error_code ec;
    for (auto& c : peer->idle) c->stream.socket().close(ec);
    peer->idle.clear();
    peer->idle_count = 0;
    for (Conn* c : peer->active) c->stream.socket().close(ec);
    for (asio::steady_timer* t : peer->timers) t->cancel();
    while (!peer->queue.empty()) {
      auto p = std::move(peer->queue.front());
      peer->queue.pop_front();
      const Status s = Unavailable(*p, "the client is stopping");
      Finish(peer, std::move(p), Err(s));
    }
  }

  Status Unavailable(const Pending& p, std::string_view what) const {
    return Status::Unavailable(fmt::format("peer {}: {} {}: {} ({} {})", p.req.url, p.req.method,
                                           p.req.target, what, p.tries,
                                           p.tries == 1 ? "try" : "tries"));
  }

  void Finish(const std::shared_ptr<Peer>& peer, std::unique_ptr<Pending> p,
              Result<HttpResponse> r) {
    Callback done = std::move(p->done);
    p.reset();
    (r ? answered : failed).fetch_add(1, std::memory_order_relaxed);
    try {
      done(std::move(r));
    } catch (...) {
      // A callback's exception must not end an I/O thread.
    }
    peer->load.fetch_sub(1);
    core::MutexLock lock(&mu);
    if (--outstanding == 0) cv.SignalAll();
  }

  void Enqueue(const std::shared_ptr<Peer>& peer, std::unique_ptr<Pending> p, bool front) {
    if (peer->closed || stop_flag) {
      const Status s = Unavailable(*p, "the client is stopping");
      Finish(peer, std::move(p), Err(s));
      return;
    }
    if (!front && peer->queue.size() >= opt.max_queue_per_peer) {
      queue_full.fetch_add(1, std::memory_order_relaxed);
      const Status s = Unavailable(
          *p, fmt::format("{} requests wait for this peer already (its queue is full): try later",
                          peer->queue.size()));
      Finish(peer, std::move(p), Err(s));
      return;
    }
    if (front)
      peer->queue.push_front(std::move(p));
    else
      peer->queue.push_back(std::move(p));
    Pump(peer);
  }

  // A kept-alive connection is reused only when the peer has not closed it and sent nothing
  // since its last answer (bytes left over would be read as the next request's answer): a
  // look at the socket that neither waits nor consumes.
  static bool StillOpen(Conn& c) {
    if (c.buffer.size() != 0) return false;
    char byte;
    const ssize_t n = ::recv(c.stream.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  // Starts exchanges for what waits, on kept-alive connections first, new ones up to the cap.
  void Pump(const std::shared_ptr<Peer>& peer) {
    while (!peer->queue.empty() && !peer->closed) {
      std::unique_ptr<Conn> conn;
      while (!peer->idle.empty()) {
        auto c = std::move(peer->idle.back());
        peer->idle.pop_back();
        if (Clock::now() - c->idle_since < Ms(opt.idle_ms) && StillOpen(*c)) {
          conn = std::move(c);
          break;
        }
        beast::error_code ec;
        c->stream.socket().close(ec);
      }
      peer->idle_count = peer->idle.size();
      if (!conn && peer->busy >= opt.max_connections_per_peer) break;
      auto p = std::move(peer->queue.front());
      peer->queue.pop_front();
      ++peer->busy;
      asio::co_spawn(peer->strand, Exchange(peer, std::move(conn), std::move(p)), asio::detached);
    }
  }

  int Backoff(int tries) {
    const int64_t base = std::min<int64_t>(opt.backoff_max_ms, static_cast<int64_t>(opt.backoff_ms)
                                                                   << std::min(tries - 1, 20));
    core::MutexLock lock(&mu);
    std::uniform_real_distribution<double> jitter(0.5, 1.5);
    return static_cast<int>(static_cast<double>(base) * jitter(rng));
  }

  asio::awaitable<void> Exchange(std::shared_ptr<Peer> peer, std::unique_ptr<Conn> conn,
                                 std::unique_ptr<Pending> p) {
    ++p->tries;
    const bool reused = conn != nullptr;
    std::string failure;   // empty: answered
    bool sent = false;     // the request (some of it) left
    bool stale = false;    // a kept-alive connection the peer had closed
    bool garbage = false;  // an answer that is not HTTP or over the limits
    bool keep = false;
    HttpResponse out;
    if (reused) {
      reused_count.fetch_add(1, std::memory_order_relaxed);
    } else {
      connects.fetch_add(1, std::memory_order_relaxed);
      conn = std::make_unique<Conn>(peer->strand);
    }
    peer->active.insert(conn.get());
    if (!reused) {
      tcp::resolver resolver(peer->strand);
      auto [rec, endpoints] = co_await resolver.async_resolve(
          peer->host, peer->port,
          p->req.numeric_host ? tcp::resolver::numeric_host | tcp::resolver::numeric_service
                              : tcp::resolver::flags(),
          kTuple);
      if (rec) {
        failure = "resolving the host: " + rec.message();
      } else {
        conn->stream.expires_after(Ms(opt.connect_timeout_ms));
        auto [cec, ep] = co_await conn->stream.async_connect(endpoints, kTuple);
        if (cec == beast::error::timeout)
          failure = fmt::format("no connection within {} ms", opt.connect_timeout_ms);
        else if (cec)
          failure = "connecting: " + cec.message();
      }
    }
    if (failure.empty()) {
      http::request<http::string_body> req;
      const bool head = p->req.method == "HEAD";
      req.method(http::string_to_verb(p->req.method));
      req.target(p->req.target);
      req.version(11);
      req.set(http::field::host, peer->host.find(':') == std::string::npos
                                     ? peer->host + ":" + peer->port
                                     : "[" + peer->host + "]:" + peer->port);
      for (const auto& [k, v] : p->req.headers) req.set(k, v);
      req.keep_alive(true);
      req.body() = p->req.body;
      req.prepare_payload();
      conn->stream.expires_after(Ms(opt.request_timeout_ms));
      auto [wec, wn] = co_await http::async_write(conn->stream, req, kTuple);
      if (wec == beast::error::timeout) {
        sent = wn > 0;
        failure = fmt::format("the request was not taken within {} ms", opt.request_timeout_ms);
      } else if (wec) {
        // The peer cannot have taken a request it did not receive whole.
        sent = wn > 0;
        stale = reused;
        failure = "sending: " + wec.message();
      } else {
        sent = true;
        http::response_parser<http::string_body> parser;
        parser.header_limit(static_cast<uint32_t>(opt.max_header_bytes));
        parser.body_limit(opt.max_body_bytes);
        parser.skip(head);  // a HEAD's answer has a Content-Length but no body
        auto [rec, rn] = co_await http::async_read(conn->stream, conn->buffer, parser, kTuple);
        if (!rec) {
          auto& res = parser.get();
          out.status = static_cast<int>(res.result_int());
          for (const auto& f : res) out.headers.emplace_back(f.name_string(), f.value());
          out.body = std::move(res.body());
          keep = res.keep_alive();
        } else if (rec == beast::error::timeout) {
          failure = fmt::format("no answer within {} ms", opt.request_timeout_ms);
        } else if (rec == http::error::body_limit) {
          garbage = true;
          failure = fmt::format("an answer's body over {} bytes", opt.max_body_bytes);
        } else if (rec == http::error::header_limit) {
          garbage = true;
          failure = fmt::format("an answer's header over {} bytes", opt.max_header_bytes);
        } else if (rec == http::error::end_of_stream || rec == asio::error::eof ||
                   rec == asio::error::connection_reset || rec == http::error::partial_message ||
                   rec == http::error::short_read) {
          // The request left whole: the peer may have acted on it, so only an idempotent one
          // goes again (below), even on a kept-alive connection that looked open.
          failure = rn == 0 ? "the connection closed before the answer"
                            : "the connection closed in the middle of the answer";
        } else if (rec.category() == http::make_error_code(http::error::bad_version).category()) {
          garbage = true;
          failure = "a malformed answer: " + rec.message();
        } else {
          failure = "reading the answer: " + rec.message();
        }
      }
    }
    peer->active.erase(conn.get());
    --peer->busy;
    if (failure.empty() && keep && !peer->closed && !stop_flag) {
      conn->stream.expires_never();
      conn->idle_since = Clock::now();
      peer->idle.push_back(std::move(conn));
      peer->idle_count = peer->idle.size();
    } else {
      beast::error_code ec;
      conn->stream.socket().close(ec);
      conn.reset();
    }

    if (failure.empty() &&
        !(out.status == 503 && p->req.idempotent && p->tries <= opt.retries && !stop_flag)) {
      Finish(peer, std::move(p), std::move(out));
      Pump(peer);
      co_return;
    }
    if (garbage) {
      const Status s = Status::IOError(
          fmt::format("peer {}: {} {}: {}", p->req.url, p->req.method, p->req.target, failure));
      Finish(peer, std::move(p), Err(s));
      Pump(peer);
      co_return;
    }
    if (stale && !p->stale_retried && !stop_flag) {
      // The peer closed a kept-alive connection while it was idle: not this request's fault.
      p->stale_retried = true;
      --p->tries;
      retries.fetch_add(1, std::memory_order_relaxed);
      Enqueue(peer, std::move(p), true);
      co_return;
    }
    const bool may_retry = failure.empty() /* a 503 */ || !sent || p->req.idempotent;
    if (!may_retry || p->tries > opt.retries || stop_flag) {
      const Status s = Unavailable(*p, failure.empty() ? "it answered 503 (overloaded)" : failure);
      Finish(peer, std::move(p), Err(s));
      Pump(peer);
      co_return;
    }
    retries.fetch_add(1, std::memory_order_relaxed);
    asio::steady_timer timer(peer->strand, Ms(Backoff(p->tries)));
    peer->timers.insert(&timer);
    Pump(peer);  // others may use the connections meanwhile
    co_await timer.async_wait(kTuple);
    peer->timers.erase(&timer);
    Enqueue(peer, std::move(p), true);
  }

  // Closes kept-alive connections idle too long and forgets peers nobody uses.
  asio::awaitable<void> Sweep() {
    asio::steady_timer timer(sweep_strand);
    sweep_timer = &timer;
    const Ms every(std::clamp(opt.idle_ms / 2, 250, 5000));
    while (!stop_flag) {
      timer.expires_after(every);
      auto [ec] = co_await timer.async_wait(kTuple);
      if (ec || stop_flag) break;
      for (auto& peer : AllPeers())
        asio::post(peer->strand, [this, peer] {
          const auto now = Clock::now();
          std::erase_if(peer->idle, [&](const std::unique_ptr<Conn>& c) {
            if (now - c->idle_since < Ms(opt.idle_ms)) return false;
            beast::error_code e;
            c->stream.socket().close(e);
            return true;
          });
          peer->idle_count = peer->idle.size();
        });
      core::MutexLock lock(&mu);
      if (peers.size() > kMaxIdlePeers)
        std::erase_if(peers, [](const auto& kv) {
          return kv.second->load == 0 && kv.second->idle_count == 0;
        });
    }
    sweep_timer = nullptr;
  }

  PeerClientOptions opt;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  Strand sweep_strand;
  asio::steady_timer* sweep_timer = nullptr;  // on sweep_strand
  std::vector<std::thread> threads;

  core::Mutex mu;
  core::CondVar cv;
  std::unordered_map<std::string, std::shared_ptr<Peer>> peers GUARDED_BY(mu);
  size_t outstanding GUARDED_BY(mu) = 0;
  bool stopping GUARDED_BY(mu) = false;
  std::mt19937_64 rng GUARDED_BY(mu){std::random_device{}()};
  std::atomic<bool> stop_flag{false};

  std::atomic<uint64_t> requests{0}, answered{0}, failed{0}, retries{0}, connects{0},
      reused_count{0}, queue_full{0};
};

PeerClient::PeerClient(PeerClientOptions options) : impl_(std::make_unique<Impl>(options)) {}
PeerClient::~PeerClient() = default;

void PeerClient::Send(PeerRequest request, Callback done) {
  Impl& im = *impl_;
  auto split = SplitPeerUrl(request.url);
  if (!split) {
    im.failed.fetch_add(1, std::memory_order_relaxed);
    done(Err(split.error()));
    return;
  }
  if (http::string_to_verb(request.method) == http::verb::unknown) {
    im.failed.fetch_add(1, std::memory_order_relaxed);
    done(Err(Status::InvalidArgument(
        fmt::format("peer {}: \"{}\" is not an HTTP method", request.url, request.method))));
    return;
  }
  if (request.target.empty() || request.target[0] != '/') {
    im.failed.fetch_add(1, std::memory_order_relaxed);
    done(Err(Status::InvalidArgument(fmt::format(
        "peer {}: the target \"{}\" does not begin with '/'", request.url, request.target))));
    return;
  }
  if (request.method == "GET" || request.method == "HEAD") request.idempotent = true;
  const auto& [host, port] = *split;
  const std::string key = host + "|" + port;
  std::shared_ptr<Impl::Peer> peer;
  {
    core::MutexLock lock(&im.mu);
    if (!im.stopping) {
      auto& slot = im.peers[key];
      if (!slot)
        slot = std::make_shared<Impl::Peer>(asio::make_strand(im.io), request.url, host, port);
      peer = slot;
      peer->load.fetch_add(1);
      ++im.outstanding;
    }
  }
  if (!peer) {
    im.failed.fetch_add(1, std::memory_order_relaxed);
    done(Err(Status::Unavailable(fmt::format("peer {}: {} {}: the client is stopping", request.url,
                                             request.method, request.target))));
    return;
  }
  im.requests.fetch_add(1, std::memory_order_relaxed);
  auto p = std::make_unique<Impl::Pending>();
  p->req = std::move(request);
  p->done = std::move(done);
  asio::post(peer->strand,
             [&im, peer, p = std::move(p)]() mutable { im.Enqueue(peer, std::move(p), false); });
}

Result<HttpResponse> PeerClient::Call(PeerRequest request) {
  std::promise<Result<HttpResponse>> promise;
  auto future = promise.get_future();
  Send(std::move(request), [&promise](Result<HttpResponse> r) { promise.set_value(std::move(r)); });
  return future.get();
}

PeerClientStats PeerClient::stats() const {
  const Impl& im = *impl_;
  PeerClientStats s;
  s.requests = im.requests.load();
  s.answered = im.answered.load();
  s.failed = im.failed.load();
  s.retries = im.retries.load();
  s.connects = im.connects.load();
  s.reused = im.reused_count.load();
  s.queue_full = im.queue_full.load();
  return s;
}

}  // namespace dfrp::node
