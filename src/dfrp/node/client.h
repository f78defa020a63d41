// A small synchronous HTTP/1.1 client for dfrpd's API (docs/API.md), and how a CLI finds a
// running daemon. Boost.Beast stays inside client.cc: this header shows only std types, so the
// CLI never includes Beast.
//
// Each request opens its own connection to the daemon (loopback; a few per command), so a
// Client holds no socket between calls. Only the connect has a timeout: a shard read or a
// verification of a large shard may take as long as the daemon needs.
//
// Thread-safety: a Client is not safe to share between threads; FindDaemon is.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dfrp/core/file_system.h"
#include "dfrp/core/status.h"

namespace dfrp::node {

// What STATE_DIR says of the daemon that serves it.
struct DaemonInfo {
  std::string state_dir;
  std::string url;       // "http://127.0.0.1:7480"
  std::string api_addr;  // "127.0.0.1:7480" (host:port; [v6]:port)
  int64_t pid = 0;
  std::string token;        // STATE_DIR/api-token's first line; empty when unreadable
  std::string token_error;  // why the token could not be read (empty when it was)
};

// The daemon serving `state_dir`, or nullopt when none runs: a daemon runs iff someone holds
// an flock on STATE_DIR/dfrpd.lock (a leftover dfrpd.json means nothing once the lock is
// free). Fails (IOError) only when the lock is held but STATE_DIR/dfrpd.json stays
// unreadable for about two seconds (a daemon that is starting writes it once it listens).
// Differs from "std::optional<DaemonInfo>" by that Result: a held lock with no address must
// not fall back to opening the store directly. Reads STATE_DIR through `fs`; never creates
// anything there.
core::Result<std::optional<DaemonInfo>> FindDaemon(core::FileSystem* fs,
                                                   const std::string& state_dir);

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpResponse {
  int status = 0;
  HttpHeaders headers;
  std::string body;  // empty for a streamed body that went to a sink
  // The first header of that name (case-insensitive), or "".
  std::string Header(std::string_view name) const;
};

// Receives a streamed body in pieces; an error stops the transfer and is returned.
using BodySink = std::function<core::Status(std::string_view)>;
// Reports bytes sent of a streamed upload (done, total).
using UploadProgress = std::function<void(uint64_t, uint64_t)>;

struct ClientOptions {
  int connect_timeout_ms = 5000;
  // For Request: the whole exchange (send the request, read the answer) must end within this
  // (Busy "... not answering ... no answer within N ms" otherwise); 0: no limit, as for the
  // CLI's calls of its own daemon, which may verify a large shard.
  int request_timeout_ms = 0;
  uint64_t max_body_bytes = 512ull << 20;  // for Request's in-memory answers (proofs, JSON)
  // For Download: each read must bring bytes within this (Busy "... no bytes within N ms"
  // otherwise), so a peer that stalls mid-body cannot hold the caller; 0: no limit, as for the
  // CLI's reads of its own daemon.
  int idle_timeout_ms = 0;
};

class Client {
 public:
  explicit Client(DaemonInfo info, ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const DaemonInfo& info() const { return info_; }

  // Sends one request (the token is added when known) and returns the answer whatever its
  // status. Fails only when no answer came: Busy "dfrpd at URL is not answering ..." when
  // the connection is refused or times out, IOError for a broken exchange.
  core::Result<HttpResponse> Request(std::string_view method, std::string_view target,
                                     const HttpHeaders& headers = {}, std::string_view body = "");

  // GET whose body, when the status is 2xx, goes to `sink` piece by piece (never held whole);
  // any other status's body is returned in HttpResponse::body. A body cut short is
  // Corruption when the daemon then says the shard does not verify (it stops sending a
  // payload whose next bytes do not), else IOError (the daemon died, the connection broke).
  core::Result<HttpResponse> Download(std::string_view target, const HttpHeaders& headers,
                                      const BodySink& sink);

  // PUT of `length` bytes read from `body` (from where it stands) with that Content-Length,
  // streamed in pieces. If the daemon answers before taking the whole body (507, 400), that
  // answer is returned. InvalidArgument when `body` ends before `length` bytes.
  core::Result<HttpResponse> Upload(std::string_view target, const HttpHeaders& headers,
                                    core::SequentialFile& body, uint64_t length,
                                    const UploadProgress& progress = nullptr);

 private:
  core::Status CutShort(std::string_view target, uint64_t received, const std::string& why);
  DaemonInfo info_;
  ClientOptions options_;
};

// The Status an error answer stands for, so exit codes match the direct path: the API's
// {"error": {...}} document through StatusFromErrorJson; a 401 says to read the token as the
// daemon's user; anything unreadable is IOError naming the status.
core::Status StatusFromResponse(const DaemonInfo& info, const HttpResponse& response);

// Percent-encodes a query parameter value (RFC 3986 unreserved characters stay).
std::string UrlEncode(std::string_view text);

}  // namespace dfrp::node
