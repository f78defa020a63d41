#include "dfrp/node/client.h"

#include <fmt/format.h>
#include <strings.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <nlohmann/json.hpp>
#include <thread>

#include "dfrp/core/file_system.h"
#include "dfrp/node/token.h"
#include "dfrp/node/views.h"

namespace dfrp::node {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using core::Err;
using core::Result;
using core::Status;
using nlohmann::json;

namespace {

// Reads dfrpd.json; empty optional while it is missing or half-written.
std::optional<json> ReadInfoFile(core::FileSystem* fs, const std::string& path) {
  auto text = core::ReadWholeFile(fs, path);
  if (!text) return std::nullopt;
  json j = json::parse(*text, nullptr, false);
  if (!j.is_object() || !j.contains("api_addr") || !j["api_addr"].is_string()) return std::nullopt;
  return j;
}

// True when a process with this pid exists (ours to signal or not).
bool PidAlive(int64_t pid) {
  return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
}

// 1: someone holds the lock; 0: nobody does (or no lock file); -1: cannot tell (unreadable).
// FileSystem::IsLocked, not TryLock: that one opens read-write and creates the file, and a
// client must never create the daemon's lock or need write access to STATE_DIR.
int LockHeld(core::FileSystem* fs, const std::string& path) {
  auto held = fs->IsLocked(path);
  if (!held) return -1;
  return *held ? 1 : 0;
}

void ReadToken(core::FileSystem* fs, DaemonInfo* d) {
  const std::string path = core::JoinPath(d->state_dir, std::string(kTokenFileName));
  auto text = core::ReadWholeFile(fs, path);
  if (!text) {
    d->token_error = text.error().message();
    return;
  }
  std::string t = text->substr(0, text->find('\n'));
  while (!t.empty() && (t.back() == '\r' || t.back() == ' ')) t.pop_back();
  d->token = t;
}

// "host:port" or "[v6]:port" -> (host, port).
std::pair<std::string, std::string> SplitAddr(const std::string& addr) {
  if (!addr.empty() && addr.front() == '[') {
    const size_t close = addr.find(']');
    if (close != std::string::npos && close + 1 < addr.size() && addr[close + 1] == ':')
      return {addr.substr(1, close - 1), addr.substr(close + 2)};
  }
  const size_t colon = addr.rfind(':');
  if (colon == std::string::npos) return {addr, "80"};
  return {addr.substr(0, colon), addr.substr(colon + 1)};
}

HttpResponse FromBeast(const http::response_header<>& h) {
  HttpResponse r;
  r.status = static_cast<int>(h.result_int());
  for (const auto& f : h)
    r.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  return r;
}

}  // namespace

Result<std::optional<DaemonInfo>> FindDaemon(core::FileSystem* fs, const std::string& state_dir) {
  const std::string lock = core::JoinPath(state_dir, std::string(kDaemonLockFileName));
  const std::string info_path = core::JoinPath(state_dir, std::string(kDaemonInfoFileName));
  const int held = LockHeld(fs, lock);
  if (held == 0) return std::optional<DaemonInfo>();
  // A daemon that is starting holds the lock before it listens: give it a moment.
  // A dfrpd.json whose process is gone was left by a daemon that died: never send the token
  // to the address it names (something else may listen there now).
  auto live = [](const std::optional<json>& info) {
    return info && PidAlive(info->value("pid", int64_t{0}));
  };
  std::optional<json> j = ReadInfoFile(fs, info_path);
  for (int i = 0; i < 20 && held == 1 && !live(j); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    j = ReadInfoFile(fs, info_path);
  }
  if (held == 1 && !live(j)) j.reset();
  if (held < 0) {
    // The lock file is there but not ours to read (the daemon runs as another user): trust
    // dfrpd.json when the process it names is alive.
    if (!j || !PidAlive(j->value("pid", int64_t{0}))) return std::optional<DaemonInfo>();
  } else if (!j) {
    return Err(Status::IOError(fmt::format(
        "a dfrpd holds {} but {} is missing or unreadable: wait for it to start, or stop it "
        "(systemctl stop dfrpd) and run the command again",
        lock, info_path)));
  }
  DaemonInfo d;
  d.state_dir = state_dir;
  d.api_addr = (*j)["api_addr"].get<std::string>();
  d.url = j->value("url", "http://" + d.api_addr);
  d.pid = j->value("pid", int64_t{0});
  ReadToken(fs, &d);
  return std::optional<DaemonInfo>(std::move(d));
}

std::string HttpResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k.size() == name.size() && ::strncasecmp(k.data(), name.data(), k.size()) == 0) return v;
  return "";
}

std::string UrlEncode(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
      out += static_cast<char>(c);
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

Status StatusFromResponse(const DaemonInfo& info, const HttpResponse& r) {
  const json j = json::parse(r.body, nullptr, false);
  const std::string fallback =
      fmt::format("dfrpd at {} answered HTTP {}: {}", info.url, r.status, r.body.substr(0, 200));
  if (r.status == 401) {
    std::string why = j.is_object() && j.contains("error") && j["error"].is_object()
                          ? j["error"].value("message", "unauthorized")
                          : "unauthorized";
    return Status::InvalidArgument(fmt::format(
        "dfrpd refused: {} ({}): read {}/api-token as the daemon's user (sudo -u, or a group "
        "that can read it) and run the command again",
        why,
        info.token_error.empty() ? "the token was not accepted" : "no token: " + info.token_error,
        info.state_dir));
  }
  return StatusFromErrorJson(j, fallback);
}

// One connection: connect (with a timeout), then synchronous reads and writes.
struct Connection {
  asio::io_context ioc;
  tcp::socket socket{ioc};
  beast::flat_buffer buffer;
  const DaemonInfo& info;

  explicit Connection(const DaemonInfo& i) : info(i) {}

  Status NotAnswering(const std::string& why) const {
    if (info.state_dir.empty())  // a peer reached by its URL, not the daemon of a STATE_DIR
      return Status::Busy(fmt::format("dfrpd at {} is not answering ({})", info.url, why));
    return Status::Busy(fmt::format(
        "dfrpd at {} is not answering ({}), yet it holds {}/dfrpd.lock (pid {}): wait for it, "
        "or restart it (systemctl restart dfrpd)",
        info.url, why, info.state_dir, info.pid));
  }

  Status Connect(int timeout_ms) {
    auto [host, port] = SplitAddr(info.api_addr);
    tcp::resolver resolver(ioc);
    boost::system::error_code ec;
    auto endpoints = resolver.resolve(host, port, ec);
    if (ec) return NotAnswering("cannot resolve " + info.api_addr + ": " + ec.message());
    bool done = false;
    boost::system::error_code cec;
    asio::async_connect(socket, endpoints,
                        [&](const boost::system::error_code& e, const tcp::endpoint&) {
                          cec = e;
                          done = true;
                        });
    ioc.run_for(std::chrono::milliseconds(timeout_ms));
    if (!done) {
      socket.close(ec);
      ioc.restart();
      ioc.run();
      return NotAnswering(fmt::format("no connection within {} ms", timeout_ms));
    }
    if (cec) return NotAnswering(cec.message());
    return Status::OK();
  }

  template <class Msg>
  void SetCommon(Msg& req, const HttpHeaders& headers) {
    req.set(http::field::host, info.api_addr);
    req.set(http::field::user_agent, "dfrp-storage/0.1.0");
    if (!info.token.empty()) req.set(http::field::authorization, "Bearer " + info.token);
    for (const auto& [k, v] : headers) req.set(k, v);
  }

  Status Broken(std::string_view what, const boost::system::error_code& ec) const {
    return Status::IOError(fmt::format("dfrpd at {}: {} failed: {} (see the daemon's log)",
                                       info.url, what, ec.message()));
  }

  Result<HttpResponse> ReadStringResponse(uint64_t limit) {
    http::response_parser<http::string_body> p;
    p.body_limit(limit);
    boost::system::error_code ec;
    http::read(socket, buffer, p, ec);
    if (ec) return Err(Broken("reading the answer", ec));
    HttpResponse r = FromBeast(p.get().base());
    r.body = std::move(p.get().body());
    return r;
  }
};

// One read of a response (its header when `header`, else the next piece of its body) on
// `c`: synchronous without a limit, else asynchronous within `idle_ms` (the connection is
// closed and *timed_out set when no bytes came in time).
template <class Parser>
boost::system::error_code ReadWithin(Connection& c, Parser& p, bool header, int idle_ms,
                                     bool* timed_out) {
  boost::system::error_code ec;
  if (idle_ms <= 0) {
    if (header)
      http::read_header(c.socket, c.buffer, p, ec);
    else
      http::read(c.socket, c.buffer, p, ec);
    return ec;
  }
  bool done = false;
  auto on_read = [&](const boost::system::error_code& e, size_t) {
    ec = e;
    done = true;
  };
  if (header)
    http::async_read_header(c.socket, c.buffer, p, on_read);
  else
    http::async_read(c.socket, c.buffer, p, on_read);
  c.ioc.restart();
  c.ioc.run_for(std::chrono::milliseconds(idle_ms));
  if (!done) {
    boost::system::error_code ignored;
    c.socket.close(ignored);
    c.ioc.restart();
    c.ioc.run();  // the read ends, cancelled
    *timed_out = true;
  }
  return ec;
}

Client::Client(DaemonInfo info, ClientOptions options) : info_(std::move(info)), options_(options) {
  // A daemon that closes the connection mid-upload must not kill us with SIGPIPE (asio sends
  // with MSG_NOSIGNAL, but be sure).
  std::signal(SIGPIPE, SIG_IGN);
}

Client::~Client() = default;

Result<HttpResponse> Client::Request(std::string_view method, std::string_view target,
                                     const HttpHeaders& headers, std::string_view body) {
  Connection c(info_);
  DFRP_RETURN_IF_ERROR(c.Connect(options_.connect_timeout_ms));
  http::request<http::string_body> req{http::string_to_verb(method), std::string(target), 11};
  c.SetCommon(req, headers);
  if (!body.empty() && req[http::field::content_type].empty())
    req.set(http::field::content_type, "application/json");
  req.body() = std::string(body);
  req.prepare_payload();
  boost::system::error_code ec;
  if (options_.request_timeout_ms > 0) {
    // The same exchange, asynchronously, on this thread's io_context, given a deadline.
    http::response_parser<http::string_body> p;
    p.body_limit(options_.max_body_bytes);
    bool done = false;
    http::async_write(c.socket, req, [&](const boost::system::error_code& e, size_t) {
      if (e) {
        ec = e;
        done = true;
        return;
      }
      http::async_read(c.socket, c.buffer, p, [&](const boost::system::error_code& e2, size_t) {
        ec = e2;
        done = true;
      });
    });
    c.ioc.restart();
    c.ioc.run_for(std::chrono::milliseconds(options_.request_timeout_ms));
    if (!done) {
      boost::system::error_code ignored;
      c.socket.close(ignored);
      c.ioc.restart();
      c.ioc.run();  // lets the cancelled handlers run before the locals they use go
      return Err(
          c.NotAnswering(fmt::format("no answer within {} ms", options_.request_timeout_ms)));
    }
    if (ec) return Err(c.Broken("the exchange", ec));
    HttpResponse r = FromBeast(p.get().base());
    r.body = std::move(p.get().body());
    return r;
  }
  http::write(c.socket, req, ec);
  if (ec) return Err(c.Broken("sending the request", ec));
  return c.ReadStringResponse(options_.max_body_bytes);
}

Result<HttpResponse> Client::Download(std::string_view target, const HttpHeaders& headers,
                                      const BodySink& sink) {
  Connection c(info_);
  DFRP_RETURN_IF_ERROR(c.Connect(options_.connect_timeout_ms));
  http::request<http::empty_body> req{http::verb::get, std::string(target), 11};
  c.SetCommon(req, headers);
  boost::system::error_code ec;
  http::write(c.socket, req, ec);
  if (ec) return Err(c.Broken("sending the request", ec));
  http::response_parser<http::buffer_body> p;
  p.body_limit(boost::none);
  bool timed_out = false;
  const int idle = options_.idle_timeout_ms;
  auto stalled = [&] { return c.NotAnswering(fmt::format("no bytes within {} ms", idle)); };
  ec = ReadWithin(c, p, true, idle, &timed_out);
  if (timed_out) return Err(stalled());
  if (ec) return Err(c.Broken("reading the answer", ec));
  HttpResponse r = FromBeast(p.get().base());
  const bool ok = r.status >= 200 && r.status < 300;
  std::vector<char> chunk(1 << 20);
  uint64_t received = 0;
  while (!p.is_done()) {
    p.get().body().data = chunk.data();
    p.get().body().size = chunk.size();
    ec = ReadWithin(c, p, false, idle, &timed_out);
    if (ec == http::error::need_buffer) ec = {};
    const size_t n = chunk.size() - p.get().body().size;
    if (n > 0) {
      received += n;
      if (ok) {
        DFRP_RETURN_IF_ERROR(sink(std::string_view(chunk.data(), n)));
      } else if (r.body.size() < options_.max_body_bytes) {
        r.body.append(chunk.data(), n);
      }
    }
    if (timed_out) return Err(stalled());
    if (ec) {
      if (!ok) break;
      return Err(CutShort(target, received, ec.message()));
    }
  }
  // A 2xx body must be as long as the daemon said (it always sends Content-Length).
  if (ok && (!p.content_length() || received != *p.content_length()))
    return Err(CutShort(target, received, "the body's length does not match Content-Length"));
  return r;
}

Status Client::CutShort(std::string_view target, uint64_t received, const std::string& why) {
  // The daemon ends a payload early when its next bytes do not verify; a daemon that died or
  // a broken connection looks the same. Ask it which.
  const std::string prefix = "/v1/shards/";
  if (target.starts_with(prefix) && target.size() >= prefix.size() + 36) {
    const std::string id(target.substr(prefix.size(), 36));
    auto v = Request("POST", prefix + id + "/verify");
    if (v && v->status == 200) {
      json j = json::parse(v->body, nullptr, false);
      if (j.is_object() && j.value("ok", true) == false && j.value("error_code", "") == "integrity")
        return Status::Corruption(
            fmt::format("shard {}: {}", id, j.value("error", "does not verify")));
    }
  }
  return Status::IOError(fmt::format(
      "dfrpd at {} stopped sending {} after {} byte(s) ({}); the shard itself verifies or the "
      "daemon cannot say: run the command again (nothing was written)",
      info_.url, target, received, why));
}

Result<HttpResponse> Client::Upload(std::string_view target, const HttpHeaders& headers,
                                    core::SequentialFile& body, uint64_t length,
                                    const UploadProgress& progress) {
  Connection c(info_);
  DFRP_RETURN_IF_ERROR(c.Connect(options_.connect_timeout_ms));
  http::request<http::buffer_body> req{http::verb::put, std::string(target), 11};
  c.SetCommon(req, headers);
  req.content_length(length);
  req.body().data = nullptr;
  req.body().more = length > 0;
  http::request_serializer<http::buffer_body> sr{req};
  boost::system::error_code ec;
  http::write_header(c.socket, sr, ec);
  bool cut = static_cast<bool>(ec);  // the daemon stopped reading (it may have answered)
  std::vector<char> chunk(1 << 20);
  uint64_t sent = 0;
  while (!cut && sent < length) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(chunk.size(), length - sent));
    DFRP_ASSIGN_OR_RETURN(const size_t n, body.Read(want, chunk.data()));
    if (n == 0)
      return Err(Status::InvalidArgument(fmt::format(
          "the input shrank while it was sent ({} bytes expected, {} found): store it again "
          "once nothing is writing to it",
          length, sent)));
    req.body().data = chunk.data();
    req.body().size = n;
    req.body().more = sent + n < length;
    http::write(c.socket, sr, ec);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) cut = true;
    sent += n;
    if (progress) progress(sent, length);
  }
  if (!cut && !sr.is_done()) {
    req.body().data = nullptr;
    req.body().size = 0;
    req.body().more = false;
    http::write(c.socket, sr, ec);
    if (ec == http::error::need_buffer) ec = {};
  }
  auto r = c.ReadStringResponse(options_.max_body_bytes);
  if (!r && cut)
    return Err(Status::IOError(fmt::format(
        "dfrpd at {} closed the connection after {} of {} byte(s) of the upload, without an "
        "answer (see the daemon's log)",
        info_.url, sent, length)));
  return r;
}

}  // namespace dfrp::node
