// The daemon's API as data: route families are tables of RouteSpec (method, path pattern,
// the checks it needs, the thread lane it runs on, and its handler), matched by RouteTable
// and guarded by middleware that runs before any handler. Free of HTTP library types, so the
// fuzz target and unit tests drive matching and middleware directly, and a new route family
// (the market's /v1/market, /v1/ledger, /v1/mesh, /v1/jobs) is one table and its handlers.
//
// The server (server.cc) does, for each request: parse the head; match the route; run the
// middleware in order (the first answer wins); then by the route's body kind read a small
// JSON body, or hand a streamed body to its upload handler, and run the handler on its lane.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dfrp/core/request_context.h"
#include "dfrp/core/status.h"
#include "dfrp/core/uuid.h"

namespace dfrp::node {

// Where a handler runs. The HTTP threads never block on disk or hashing: anything that may
// is given a bounded pool, which answers 503 with Retry-After when its queue is full.
enum class Lane {
  kInline,  // cheap and non-blocking (snapshots, counters, assets): on the HTTP thread
  kRead,    // reads of shards: index lookups, preads, verification of what is sent
  kVerify,  // whole-shard verification, proofs and audits (heavy, unauthenticated)
  kAdmin,   // admin calls, which may wait for the writer: a lane verify traffic cannot starve
};
const char* LaneName(Lane lane);

enum class BodyKind {
  kNone,    // a request body is refused (413)
  kJson,    // a small body (up to kMaxJsonBody), read before the handler runs
  kStream,  // streamed to the route's upload handler (PUT /v1/shards)
};

inline constexpr uint64_t kMaxJsonBody = 64 << 10;

// What the middleware sees of a request: its line and the few headers the checks read.
// Views into the server's parser; valid while the request is handled.
struct RequestHead {
  std::string_view method;
  std::string_view target;
  int version = 11;  // 10 or 11
  std::string_view host;
  std::string_view origin;
  std::string_view sec_fetch_site;
  std::string_view authorization;
  std::string_view transfer_encoding;
  std::optional<uint64_t> content_length;
  bool chunked = false;
  bool has_body() const { return chunked || (content_length && *content_length > 0); }
};

struct ApiResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  bool close = false;  // the connection must close after it (a body left unread)

  static ApiResponse Json(int status, const nlohmann::json& j);
  // The JSON error document of docs/API.md for a Status (its HTTP status and exit code).
  static ApiResponse Error(const core::Status& s);
  // An HTTP-level refusal with no Status code of its own: {"error": {code, exit_code,
  // message}}.
  static ApiResponse Refusal(int status, const char* code, int exit_code, std::string message);
  ApiResponse& With(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
    return *this;
  }
};

// The HTTP status for a Status code (400, 404, 409, 507, 500).
int HttpStatusFor(const core::Status& s);

struct RouteSpec;

// A matched request: its route and the parameters taken from the path and the query.
struct RouteMatch {
  const RouteSpec* spec = nullptr;
  // The route's label ("GET /v1/shards/{id}") for metrics; "unmatched" when none matched.
  // Points into the route table (or a literal), which outlives every request.
  std::string_view name = "unmatched";
  core::Uuid id;                                  // a {shard} or {operation} parameter
  uint32_t volume = 0;                            // a {n} parameter
  std::map<std::string, std::string> params;      // the text ({name}) path parameters
  std::multimap<std::string, std::string> query;  // decoded query parameters
  // When spec is null: the HTTP status (400, 404, 405, 414), a message, and for 405 the
  // methods the path takes.
  int error_status = 0;
  std::string error;
  std::string allow;
};

// What a handler gets.
struct ApiRequest {
  const RouteMatch& route;
  const RequestHead& head;
  // Any header's value ("" when absent), case-insensitive name.
  std::function<std::string_view(std::string_view)> header = {};
  std::string body = {};  // BodyKind::kJson routes: the body as sent (may be empty)
  core::RequestContext ctx = {};
};

// A payload served in pieces (GET of a shard): the handler opens it on its lane; the server
// then sends the header and calls `read` for each piece (on the same lane), sending nothing
// that `read` did not return.
struct Download {
  int status = 200;
  // Header lines of its own, each "Name: value\r\n" (Server, Content-Type, Content-Length
  // and Connection are the server's).
  std::string header_lines;
  std::string content_type = "application/octet-stream";
  uint64_t length = 0;
  // Appends `n` verified bytes at `offset` (of the part served) to *out.
  std::function<core::Status(uint64_t offset, uint64_t n, std::string* out)> read;
  // Optional: the same from memory alone, on the HTTP thread: nullopt (and *out unchanged)
  // when a byte would have to come from the device.
  std::function<std::optional<core::Status>(uint64_t offset, uint64_t n, std::string* out)>
      read_cached;
  // Called once with the bytes sent, after the last piece went out.
  std::function<void(uint64_t bytes)> on_sent;
};

// A streamed request body, received whole: in memory (pieces) or spooled to a file.
class BodyBuffer;
struct ReceivedBody {
  uint64_t size = 0;
  std::unique_ptr<BodyBuffer> memory;  // set when the body is held in memory
  std::string spool_path;              // else: the file that holds it (the handler owns it)
  std::shared_ptr<void> hold;          // keep alive as long as the body (the memory budget)
};

struct UploadHandler {
  // Runs before any byte of the body is read: an answer refuses it (bad parameters, no
  // room: 507); nullopt lets the body be read. Inline; must not block.
  std::function<std::optional<ApiResponse>(const ApiRequest&, uint64_t size)> check;
  // Takes the whole body and answers once, through `reply`, from any thread.
  std::function<void(const ApiRequest&, ReceivedBody body, std::function<void(ApiResponse)> reply)>
      take;
};

struct RouteSpec {
  std::string methods = {};  // "GET", "GET, HEAD", "POST", ...
  // Literal segments and parameters: {shard} and {operation} (UUIDs), {n} (a volume number,
  // 0..9999), or any other {name} (UTF-8 text).
  std::string pattern = {};
  std::string name = {};  // the metrics label; "METHOD pattern" when empty
  bool admin = false;
  BodyKind body = BodyKind::kNone;
  // kJson: the largest body taken (413 past it); a few routes carry proofs and take more.
  uint64_t max_json_body = kMaxJsonBody;
  Lane lane = Lane::kInline;
  // Exactly one of these is set: a whole answer, a payload served in pieces, or an upload.
  std::function<ApiResponse(const ApiRequest&)> handler = {};
  std::function<core::Result<Download>(const ApiRequest&)> download = {};
  // Optional, beside `download`: opens it from memory alone (no index lookup, no read), on
  // the HTTP thread; nullopt when that cannot be done (then `download` runs on the lane).
  std::function<std::optional<core::Result<Download>>(const ApiRequest&)> download_cached = {};
  std::optional<UploadHandler> upload = {};
};

class RouteTable {
 public:
  // Adds a family of routes. A malformed pattern or a route with no handler is a bug of
  // ours: it aborts (a table is built once, at start).
  void Add(std::vector<RouteSpec> family);
  // The route for a request line, with its parameters; else the error to answer.
  RouteMatch Match(std::string_view method, std::string_view target) const;
  const std::vector<std::unique_ptr<RouteSpec>>& routes() const { return routes_; }

 private:
  struct Compiled {
    const RouteSpec* spec;
    std::vector<std::string> segments;  // "{n}" etc. for parameters
  };
  std::vector<std::unique_ptr<RouteSpec>> routes_;
  std::vector<Compiled> compiled_;
};

// A check that runs before a route's handler: an answer refuses the request.
using Middleware = std::function<std::optional<ApiResponse>(const RequestHead&, const RouteMatch&)>;

// The allowed Host names: the listen address, loopback names (localhost, 127.0.0.1, [::1])
// and the names of API_HOSTS. A request naming another host is refused with 421, so that a
// web page whose DNS name was rebound to 127.0.0.1 cannot reach the node (RFC 9110 7.4).
// HTTP/1.0 requests without a Host pass; an HTTP/1.1 request without one is refused (400).
Middleware HostCheck(std::string listen_addr, std::vector<std::string> extra_hosts);
// A state-changing request (PUT, POST, DELETE, PATCH) sent by a browser from another site
// (an Origin that is not this node's, "null", or Sec-Fetch-Site: cross-site) is refused with
// 403. Same-origin requests (the dashboard) and clients that send no Origin (curl, the CLI)
// pass.
Middleware OriginCheck();
// Admin routes need "Authorization: Bearer <token>" (constant-time compare); 401 with
// WWW-Authenticate otherwise. `where` names the token file in the message.
Middleware AdminAuth(std::string token, std::string where);
// Body rules: Transfer-Encoding other than chunked (501), a body on a route that takes none
// (413), a JSON body over kMaxJsonBody (413), a streamed body without Content-Length (411).
Middleware BodyRules();

// The host part of a Host header or an Origin's authority, lowercased, without the port or
// the brackets of an IPv6 literal; empty when malformed.
std::string HostName(std::string_view authority);

}  // namespace dfrp::node
