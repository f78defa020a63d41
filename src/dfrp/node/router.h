// The daemon's routes: a request line's method and target to one endpoint with its
// parameters, or the error the client gets (400 for a malformed id or target, 404 for an
// unknown path, 405 for a known path with another method). Free of HTTP library types, so the
// fuzz target and the tests drive it directly.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "dfrp/core/uuid.h"

namespace dfrp::node {

enum class Route {
  kNone,
  kAsset,            // GET / and the dashboard's files
  kHealth,           // GET /healthz
  kMetrics,          // GET /metrics
  kStatus,           // GET /v1/status
  kPutShard,         // PUT /v1/shards
  kGetShard,         // GET, HEAD /v1/shards/{id}
  kShardMeta,        // GET /v1/shards/{id}/meta
  kVerifyShard,      // POST /v1/shards/{id}/verify
  kProveShard,       // GET /v1/shards/{id}/proof?leaf=N
  kAuditShard,       // GET /v1/shards/{id}/audit?seed=HEX&challenges=K
  kListVolumes,      // GET /v1/volumes
  kPauseVolume,      // POST /v1/volumes/{n}/pause
  kResumeVolume,     // POST /v1/volumes/{n}/resume
  kMigrateVolume,    // POST /v1/volumes/{n}/migrate
  kRetireSource,     // POST /v1/volumes/{n}/retire-source
  kListOperations,   // GET /v1/operations
  kGetOperation,     // GET /v1/operations/{id}
  kCancelOperation,  // DELETE /v1/operations/{id}
};

struct RouteMatch {
  Route route = Route::kNone;
  // The route's pattern ("GET /v1/shards/{id}"), for metrics labels; "unmatched" otherwise.
  std::string name = "unmatched";
  core::Uuid id;                                  // shard or operation id
  uint32_t volume = 0;                            // {n}
  std::string asset;                              // kAsset: "index.html", "app.js", ...
  std::multimap<std::string, std::string> query;  // decoded query parameters
  bool admin = false;                             // needs the bearer token
  // When route is kNone: the HTTP status (400, 404, 405), a message, and for 405 the methods
  // the path takes.
  int error_status = 0;
  std::string error;
  std::string allow;
};

// `method` is the request line's method as sent ("GET"); `target` its request-target.
RouteMatch MatchRoute(std::string_view method, std::string_view target);

// Decodes %XX escapes (and '+' as a space when `plus_is_space`). False on a bad escape or a
// decoded NUL.
bool PercentDecode(std::string_view in, bool plus_is_space, std::string* out);

// The one value of a query parameter: nullopt-like false when absent; InvalidArgument-style
// message in *error when it is given twice.
bool QueryValue(const std::multimap<std::string, std::string>& q, const std::string& key,
                std::string* value, std::string* error);

// Parses a Range header for a payload of `size` bytes: one range ("bytes=A-B", "bytes=A-",
// "bytes=-N") gives (offset, length), inside the payload. nullopt with *error empty: serve the
// whole payload (several ranges); *error set: the range cannot be served (416).
std::optional<std::pair<uint64_t, uint64_t>> ParseByteRange(std::string_view h, uint64_t size,
                                                            std::string* error);

}  // namespace dfrp::node
