#include "dfrp/node/router.h"

#include <fmt/format.h>

#include <vector>

#include "dfrp/core/bytes.h"

namespace dfrp::node {

namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

RouteMatch Fail(int status, std::string msg, std::string allow = "") {
  RouteMatch m;
  m.error_status = status;
  m.error = std::move(msg);
  m.allow = std::move(allow);
  return m;
}

RouteMatch Ok(Route r, std::string name, bool admin = false) {
  RouteMatch m;
  m.route = r;
  m.name = std::move(name);
  m.admin = admin;
  return m;
}

// The methods a path takes, for 405; `wanted` is the one the route serves.
RouteMatch Method(std::string_view method, std::string_view allow, Route r, std::string name,
                  bool admin = false) {
  size_t pos = 0;
  while (pos <= allow.size()) {
    size_t comma = allow.find(", ", pos);
    std::string_view m =
        allow.substr(pos, comma == std::string_view::npos ? allow.npos : comma - pos);
    if (m == method) return Ok(r, std::move(name), admin);
    if (comma == std::string_view::npos) break;
    pos = comma + 2;
  }
  return Fail(405,
              fmt::format("{} does not take {}: use {}", name.substr(name.find(' ') + 1),
                          std::string(method).substr(0, 16), allow),
              std::string(allow));
}

}  // namespace

bool PercentDecode(std::string_view in, bool plus_is_space, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      const int hi = HexDigit(in[i + 1]), lo = HexDigit(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    if (c == '\0') return false;
    out->push_back(c);
  }
  return true;
}

bool QueryValue(const std::multimap<std::string, std::string>& q, const std::string& key,
                std::string* value, std::string* error) {
  auto [lo, hi] = q.equal_range(key);
  if (lo == hi) return false;
  if (std::next(lo) != hi) {
    *error = fmt::format("query parameter {} is given twice; give it once", key);
    return false;
  }
  *value = lo->second;
  return true;
}

RouteMatch MatchRoute(std::string_view method, std::string_view target) {
  if (target.empty() || target[0] != '/')
    return Fail(400, "the request target must be a path starting with / (such as /v1/volumes)");
  if (target.size() > 4096) return Fail(414, "the request target is longer than 4096 bytes");
  std::string_view path = target, query;
  if (size_t q = target.find('?'); q != std::string_view::npos) {
    path = target.substr(0, q);
    query = target.substr(q + 1);
  }
  if (size_t h = path.find('#'); h != std::string_view::npos) path = path.substr(0, h);
  // Split into decoded segments; no segment may be "." or "..", hold a slash, a backslash or
  // a NUL once decoded (no path leads outside the routes below, but say so plainly).
  std::vector<std::string> seg;
  size_t pos = 1;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    std::string_view raw =
        path.substr(pos, slash == std::string_view::npos ? path.npos : slash - pos);
    std::string s;
    if (!PercentDecode(raw, false, &s))
      return Fail(400, "the request path has a malformed %-escape or an encoded NUL");
    if (s == "." || s == ".." || s.find('/') != std::string::npos ||
        s.find('\\') != std::string::npos)
      return Fail(400, "the request path may not hold '.', '..', or encoded slashes");
    seg.push_back(std::move(s));
    if (slash == std::string_view::npos) break;
    pos = slash + 1;
  }
  // A trailing slash ("/v1/volumes/") is the same path.
  if (seg.size() > 1 && seg.back().empty()) seg.pop_back();
  for (size_t i = 0; i + 1 < seg.size(); ++i)
    if (seg[i].empty()) return Fail(400, "the request path has an empty segment (//)");

  std::multimap<std::string, std::string> q;
  size_t qp = 0;
  while (qp < query.size()) {
    size_t amp = query.find('&', qp);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view item = query.substr(qp, amp - qp);
    qp = amp + 1;
    if (item.empty()) continue;
    size_t eq = item.find('=');
    std::string k, v;
    if (!PercentDecode(item.substr(0, eq), true, &k) ||
        (eq != std::string_view::npos && !PercentDecode(item.substr(eq + 1), true, &v)))
      return Fail(400, "the query string has a malformed %-escape or an encoded NUL");
    if (q.size() >= 64) return Fail(400, "the query string has more than 64 parameters");
    q.emplace(std::move(k), std::move(v));
  }

  auto with_query = [&](RouteMatch m) {
    if (m.route != Route::kNone) m.query = std::move(q);
    return m;
  };
  auto parse_id = [](const std::string& text, const char* what, core::Uuid* out) -> std::string {
    auto id = core::Uuid::Parse(text);
    if (!id)
      return fmt::format(
          "'{}' is not a {} id: ids are 36-character UUIDs such as "
          "01932c07-a35c-7a9b-8f1e-5c1d2b3a4f60",
          text.substr(0, 80), what);
    *out = *id;
    return "";
  };

  const size_t n = seg.size();
  if (n == 1) {
    const std::string& s = seg[0];
    if (s.empty() || s == "index.html" || s == "app.js" || s == "app.css" || s == "favicon.ico") {
      RouteMatch m = Method(method, "GET, HEAD", Route::kAsset, "GET /" + (s.empty() ? "" : s));
      if (m.route != Route::kNone) m.asset = s.empty() ? "index.html" : s;
      return with_query(std::move(m));
    }
    if (s == "healthz")
      return with_query(Method(method, "GET, HEAD", Route::kHealth, "GET /healthz"));
    if (s == "metrics") return with_query(Method(method, "GET", Route::kMetrics, "GET /metrics"));
  }
  if (n >= 2 && seg[0] == "v1") {
    const std::string& area = seg[1];
    if (area == "status" && n == 2)
      return with_query(Method(method, "GET", Route::kStatus, "GET /v1/status"));
    if (area == "shards") {
      if (n == 2) return with_query(Method(method, "PUT", Route::kPutShard, "PUT /v1/shards"));
      core::Uuid id;
      if (std::string e = parse_id(seg[2], "shard", &id); !e.empty()) return Fail(400, e);
      RouteMatch m;
      if (n == 3) {
        m = Method(method, "GET, HEAD", Route::kGetShard, "GET /v1/shards/{id}");
      } else if (n == 4 && seg[3] == "meta") {
        m = Method(method, "GET", Route::kShardMeta, "GET /v1/shards/{id}/meta");
      } else if (n == 4 && seg[3] == "verify") {
        m = Method(method, "POST", Route::kVerifyShard, "POST /v1/shards/{id}/verify");
      } else if (n == 4 && seg[3] == "proof") {
        m = Method(method, "GET", Route::kProveShard, "GET /v1/shards/{id}/proof");
      } else if (n == 4 && seg[3] == "audit") {
        m = Method(method, "GET", Route::kAuditShard, "GET /v1/shards/{id}/audit");
      } else {
        return Fail(404,
                    "no such route under /v1/shards/{id}: use /meta, /verify, /proof or /audit");
      }
      m.id = id;
      return with_query(std::move(m));
    }
    if (area == "volumes") {
      if (n == 2) return with_query(Method(method, "GET", Route::kListVolumes, "GET /v1/volumes"));
      uint64_t v = 0;
      if (!core::ParseDecimal(seg[2], &v) || v > 9999)
        return Fail(
            400, fmt::format("'{}' is not a volume number (0, 1, 2, ...)", seg[2].substr(0, 80)));
      if (n != 4)
        return Fail(404,
                    "no such route under /v1/volumes/{n}: use /pause, /resume, /migrate or "
                    "/retire-source");
      RouteMatch m;
      const std::string& act = seg[3];
      if (act == "pause")
        m = Method(method, "POST", Route::kPauseVolume, "POST /v1/volumes/{n}/pause", true);
      else if (act == "resume")
        m = Method(method, "POST", Route::kResumeVolume, "POST /v1/volumes/{n}/resume", true);
      else if (act == "migrate")
        m = Method(method, "POST", Route::kMigrateVolume, "POST /v1/volumes/{n}/migrate", true);
      else if (act == "retire-source")
        m = Method(method, "POST", Route::kRetireSource, "POST /v1/volumes/{n}/retire-source",
                   true);
      else
        return Fail(404,
                    "no such route under /v1/volumes/{n}: use /pause, /resume, /migrate or "
                    "/retire-source");
      m.volume = static_cast<uint32_t>(v);
      return with_query(std::move(m));
    }
    if (area == "operations") {
      if (n == 2)
        return with_query(Method(method, "GET", Route::kListOperations, "GET /v1/operations"));
      if (n != 3) return Fail(404, "no such route under /v1/operations");
      core::Uuid id;
      if (std::string e = parse_id(seg[2], "operation", &id); !e.empty()) return Fail(400, e);
      RouteMatch m;
      if (method == "DELETE")
        m = Ok(Route::kCancelOperation, "DELETE /v1/operations/{id}", true);
      else
        m = Method(method, "GET, DELETE", Route::kGetOperation, "GET /v1/operations/{id}");
      m.id = id;
      return with_query(std::move(m));
    }
  }
  return Fail(404, fmt::format("no route {}: see docs/API.md (GET /v1/volumes, /v1/shards/{{id}}, "
                               "/healthz, /metrics)",
                               std::string(path.substr(0, 200))));
}

// Parses one byte range of a payload of `size` bytes: "bytes=A-B", "bytes=A-", "bytes=-N".
// nullopt with *error empty: no usable range, serve the whole payload (several ranges);
// *error set: 416.
std::optional<std::pair<uint64_t, uint64_t>> ParseByteRange(std::string_view h, uint64_t size,
                                                            std::string* error) {
  if (!h.starts_with("bytes=")) {
    *error = "Range must be in bytes: bytes=START-END, bytes=START- or bytes=-LENGTH";
    return std::nullopt;
  }
  h.remove_prefix(6);
  if (h.find(',') != std::string_view::npos) return std::nullopt;  // several: whole payload
  const size_t dash = h.find('-');
  if (dash == std::string_view::npos) {
    *error = "Range has no '-': write bytes=START-END, bytes=START- or bytes=-LENGTH";
    return std::nullopt;
  }
  uint64_t a = 0, b = 0;
  const std::string_view first = h.substr(0, dash), last = h.substr(dash + 1);
  const bool has_a = !first.empty(), has_b = !last.empty();
  if ((has_a && !core::ParseDecimal(first, &a)) || (has_b && !core::ParseDecimal(last, &b)) ||
      (!has_a && !has_b)) {
    *error = "Range is not bytes=START-END, bytes=START- or bytes=-LENGTH with decimal numbers";
    return std::nullopt;
  }
  if (!has_a) {  // the last b bytes
    if (b == 0 || size == 0) {
      *error = fmt::format("Range asks for no bytes of a {}-byte payload", size);
      return std::nullopt;
    }
    b = std::min(b, size);
    return std::pair{size - b, b};
  }
  if (a >= size || (has_b && b < a)) {
    *error = fmt::format("Range starts past the end of the {}-byte payload", size);
    return std::nullopt;
  }
  const uint64_t end = has_b ? std::min(b, size - 1) : size - 1;
  return std::pair{a, end - a + 1};
}

}  // namespace dfrp::node
