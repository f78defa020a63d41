#include "dfrp/node/api.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "dfrp/core/bytes.h"
#include "dfrp/node/router.h"
#include "dfrp/node/views.h"

namespace dfrp::node {

using core::Status;
using nlohmann::json;

const char* LaneName(Lane lane) {
  switch (lane) {
    case Lane::kInline:
      return "inline";
    case Lane::kRead:
      return "read";
    case Lane::kVerify:
      return "verify";
    case Lane::kAdmin:
      return "admin";
  }
  return "?";
}

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
    case Status::Code::kUnavailable:
      return 503;  // a peer this node needed did not answer: try again
    case Status::Code::kNoSpace:
      return 507;
    case Status::Code::kRefused:
      return 402;  // Payment Required: the offer does not pay what the market asks
    case Status::Code::kCorruption:
    case Status::Code::kIOError:
    case Status::Code::kInternal:
      return 500;
  }
  return 500;
}

ApiResponse ApiResponse::Json(int status, const json& j) {
  ApiResponse r;
  r.status = status;
  // Bytes that are not UTF-8 (from a client, or a file name) are replaced, never thrown on.
  r.body = j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  return r;
}

ApiResponse ApiResponse::Error(const Status& s) { return Json(HttpStatusFor(s), ErrorJson(s)); }

ApiResponse ApiResponse::Refusal(int status, const char* code, int exit_code, std::string message) {
  return Json(status,
              {{"error", {{"code", code}, {"exit_code", exit_code}, {"message", message}}}});
}

// --- The route table.

namespace {

enum class ParamKind { kUuid, kVolume, kText };

bool IsParam(const std::string& seg) {
  return seg.size() > 2 && seg.front() == '{' && seg.back() == '}';
}

ParamKind KindOf(const std::string& seg) {
  if (seg == "{shard}" || seg == "{operation}") return ParamKind::kUuid;
  if (seg == "{n}") return ParamKind::kVolume;
  return ParamKind::kText;
}

std::vector<std::string> SplitPattern(const std::string& pattern) {
  std::vector<std::string> out;
  if (pattern.empty() || pattern[0] != '/') std::abort();
  size_t pos = 1;
  for (;;) {
    size_t slash = pattern.find('/', pos);
    out.push_back(pattern.substr(pos, slash == std::string::npos ? slash : slash - pos));
    if (slash == std::string::npos) break;
    pos = slash + 1;
  }
  return out;
}

bool HasMethod(std::string_view list, std::string_view method) {
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t comma = list.find(", ", pos);
    if (list.substr(pos, comma == std::string_view::npos ? list.npos : comma - pos) == method)
      return true;
    if (comma == std::string_view::npos) break;
    pos = comma + 2;
  }
  return false;
}

// The pattern with parameters written as the API docs write them ("/v1/shards/{id}").
std::string DocPath(const std::vector<std::string>& segs, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i)
    out += "/" + (segs[i] == "{shard}" || segs[i] == "{operation}" ? std::string("{id}") : segs[i]);
  return out;
}

RouteMatch Error(int status, std::string msg, std::string allow = "") {
  RouteMatch m;
  m.error_status = status;
  m.error = std::move(msg);
  m.allow = std::move(allow);
  return m;
}

// Checks a parameter's text and stores it in the match; the error message, or "".
std::string TakeParam(const std::string& pattern_seg, const std::string& text, RouteMatch* m) {
  const std::string key = pattern_seg.substr(1, pattern_seg.size() - 2);
  switch (KindOf(pattern_seg)) {
    case ParamKind::kUuid: {
      auto id = core::Uuid::Parse(text);
      if (!id)
        return fmt::format(
            "'{}' is not a {} id: ids are 36-character UUIDs such as "
            "01932c07-a35c-7a9b-8f1e-5c1d2b3a4f60",
            text.substr(0, 80), key);
      m->id = *id;
      break;
    }
    case ParamKind::kVolume: {
      uint64_t v = 0;
      if (!core::ParseDecimal(text, &v) || v > 9999)
        return fmt::format("'{}' is not a volume number (0, 1, 2, ...)", text.substr(0, 80));
      m->volume = static_cast<uint32_t>(v);
      break;
    }
    case ParamKind::kText:
      m->params[key] = text;
      break;
  }
  return "";
}

}  // namespace

void RouteTable::Add(std::vector<RouteSpec> family) {
  for (auto& spec : family) {
    const int handlers = (spec.handler ? 1 : 0) + (spec.download ? 1 : 0) + (spec.upload ? 1 : 0);
    if (handlers != 1 || spec.methods.empty() || (spec.upload && spec.body != BodyKind::kStream))
      std::abort();  // a route table bug, found at start
    if (spec.name.empty())
      spec.name =
          fmt::format("{} {}", spec.methods.substr(0, spec.methods.find(',')),
                      DocPath(SplitPattern(spec.pattern), SplitPattern(spec.pattern).size()));
    routes_.push_back(std::make_unique<RouteSpec>(std::move(spec)));
    compiled_.push_back({routes_.back().get(), SplitPattern(routes_.back()->pattern)});
  }
}

RouteMatch RouteTable::Match(std::string_view method, std::string_view target) const {
  SplitTarget t = Split(target);
  if (t.error_status) return Error(t.error_status, t.error);
  const std::vector<std::string>& seg = t.segments;
  // Routes whose shape fits: same length, every literal equal. A literal beats a parameter
  // at the same place ("/v1/shards/x" never reaches a "{name}" of a sibling family).
  std::vector<const Compiled*> fits;
  size_t best_literals = 0;
  for (const auto& c : compiled_) {
    if (c.segments.size() != seg.size()) continue;
    size_t literals = 0;
    bool ok = true;
    for (size_t i = 0; ok && i < seg.size(); ++i) {
      if (IsParam(c.segments[i])) continue;
      ok = c.segments[i] == seg[i];
      ++literals;
    }
    if (!ok) continue;
    if (literals > best_literals) fits.clear();
    if (literals >= best_literals) {
      best_literals = literals;
      fits.push_back(&c);
    }
  }
  if (fits.empty()) {
    // The deepest prefix some route shares, to say what may follow it.
    size_t depth = 0;
    std::set<std::string> next;
    const Compiled* at = nullptr;
    for (const auto& c : compiled_) {
      size_t d = 0;
      while (d < seg.size() && d < c.segments.size() &&
             (IsParam(c.segments[d]) || c.segments[d] == seg[d]))
        ++d;
      if (d > depth) {
        depth = d;
        next.clear();
        at = &c;
      }
      if (d == depth && d > 0 && d < c.segments.size() && !IsParam(c.segments[d]))
        next.insert("/" + c.segments[d]);
    }
    if (depth >= 2 && at && !next.empty()) {
      // A bad parameter on the way is the more useful answer.
      RouteMatch probe;
      for (size_t i = 0; i < depth; ++i)
        if (IsParam(at->segments[i]))
          if (std::string e = TakeParam(at->segments[i], seg[i], &probe); !e.empty())
            return Error(400, e);
      std::vector<std::string> names(next.begin(), next.end());
      std::string list = names.back();
      if (names.size() > 1) {
        list = names[0];
        for (size_t i = 1; i + 1 < names.size(); ++i) list += ", " + names[i];
        list += " or " + names.back();
      }
      return Error(
          404, fmt::format("no such route under {}: use {}", DocPath(at->segments, depth), list));
    }
    return Error(404, fmt::format("no route {}: see docs/API.md (GET /v1/volumes, "
                                  "/v1/shards/{{id}}, /healthz, /metrics)",
                                  t.path.substr(0, 200)));
  }
  RouteMatch m;
  for (size_t i = 0; i < seg.size(); ++i)
    if (IsParam(fits[0]->segments[i]))
      if (std::string e = TakeParam(fits[0]->segments[i], seg[i], &m); !e.empty())
        return Error(400, e);
  for (const Compiled* c : fits) {
    if (!HasMethod(c->spec->methods, method)) continue;
    m.spec = c->spec;
    m.name = c->spec->name;
    m.query = std::move(t.query);
    return m;
  }
  std::string allow;
  for (const Compiled* c : fits) allow += (allow.empty() ? "" : ", ") + c->spec->methods;
  return Error(405,
               fmt::format("{} does not take {}: use {}", DocPath(fits[0]->segments, seg.size()),
                           std::string(method).substr(0, 16), allow),
               allow);
}

// --- Middleware.

std::string HostName(std::string_view a) {
  std::string out;
  if (a.empty()) return out;
  if (a.front() == '[') {  // [v6]:port
    const size_t close = a.find(']');
    if (close == std::string_view::npos) return out;
    const std::string_view rest = a.substr(close + 1);
    if (!rest.empty() && (rest[0] != ':' || rest.size() == 1)) return out;
    out = std::string(a.substr(0, close + 1));
  } else {
    const size_t colon = a.find(':');
    if (colon != std::string_view::npos) {
      const std::string_view port = a.substr(colon + 1);
      if (port.empty() || port.find_first_not_of("0123456789") != std::string_view::npos)
        return out;
    }
    out = std::string(a.substr(0, colon));
  }
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (static_cast<unsigned char>(c) <= ' ' || c == '/' || c == '@' || c == '\\') return "";
  }
  return out;
}

namespace {

bool IsIpLiteral(const std::string& name) {
  if (name.size() > 2 && name.front() == '[') return true;  // HostName checked the brackets
  int dots = 0, digits = 0;
  for (char c : name) {
    if (c == '.') {
      if (digits == 0) return false;
      ++dots;
      digits = 0;
    } else if (c >= '0' && c <= '9' && ++digits <= 3) {
    } else {
      return false;
    }
  }
  return dots == 3 && digits > 0;
}

}  // namespace

Middleware HostCheck(std::string listen_addr, std::vector<std::string> extra_hosts) {
  std::set<std::string> allowed = {"localhost", "127.0.0.1", "[::1]"};
  const std::string own = HostName(listen_addr);
  // A wildcard listener is reached at any of the machine's addresses: any IP literal passes
  // (a DNS rebinding needs a name, and names must still be listed).
  const bool wildcard = own == "0.0.0.0" || own == "[::]";
  if (!own.empty() && !wildcard) allowed.insert(own);
  for (const auto& h : extra_hosts)
    if (std::string name = HostName(h); !name.empty()) allowed.insert(name);
  return [allowed = std::move(allowed), wildcard](const RequestHead& h,
                                                  const RouteMatch&) -> std::optional<ApiResponse> {
    if (h.host.empty()) {
      if (h.version < 11) return std::nullopt;
      return ApiResponse::Refusal(400, "invalid_argument", 2,
                                  "an HTTP/1.1 request needs a Host header (RFC 9112 3.2)");
    }
    const std::string name = HostName(h.host);
    if (!name.empty() && allowed.count(name)) return std::nullopt;
    if (wildcard && IsIpLiteral(name)) return std::nullopt;
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    return ApiResponse::Refusal(
        421, "misdirected_request", 2,
        fmt::format("Host '{}' is not a name of this node ({}): reach it by one of those, or "
                    "add the name to API_HOSTS in the config",
                    std::string(h.host.substr(0, 100)), list));
  };
}

Middleware OriginCheck() {
  return [](const RequestHead& h, const RouteMatch&) -> std::optional<ApiResponse> {
    const bool changes =
        h.method == "PUT" || h.method == "POST" || h.method == "DELETE" || h.method == "PATCH";
    if (!changes) return std::nullopt;
    auto refuse = [](std::string why) {
      return ApiResponse::Refusal(
          403, "forbidden", 2,
          fmt::format("{}: a web page of another site may not change this node's state (the "
                      "dashboard, curl and dfrp-storage may)",
                      why));
    };
    if (h.sec_fetch_site == "cross-site")
      return refuse("the browser says the request is cross-site");
    if (h.origin.empty()) return std::nullopt;
    if (h.origin == "null") return refuse("the request comes from an opaque origin (Origin: null)");
    // Same origin: http://<the Host header>, exactly (case aside).
    auto lower = [](std::string_view v) {
      std::string out(v);
      for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return out;
    };
    std::string_view o = h.origin;
    if (!o.starts_with("http://") || lower(o.substr(7)) != lower(h.host))
      return refuse(fmt::format("Origin '{}' is not this node's", std::string(o.substr(0, 100))));
    return std::nullopt;
  };
}

namespace {

bool ConstantTimeEqual(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

Middleware AdminAuth(std::string token, std::string where) {
  return [token = std::move(token), where = std::move(where)](
             const RequestHead& h, const RouteMatch& m) -> std::optional<ApiResponse> {
    if (!m.spec || !m.spec->admin) return std::nullopt;
    std::string_view v = h.authorization;
    if (v.size() >= 7 && (v.substr(0, 7) == "Bearer " || v.substr(0, 7) == "bearer ") &&
        ConstantTimeEqual(v.substr(7), token))
      return std::nullopt;
    ApiResponse r = ApiResponse::Refusal(
        401, "unauthorized", 2,
        fmt::format("{} needs the admin token: send 'Authorization: Bearer <token>' with the "
                    "token in {} (readable by the daemon's user only)",
                    m.name, where));
    r.With("WWW-Authenticate", "Bearer");
    return r;
  };
}

Middleware BodyRules() {
  return [](const RequestHead& h, const RouteMatch& m) -> std::optional<ApiResponse> {
    if (!h.transfer_encoding.empty()) {
      std::string te(h.transfer_encoding);
      std::transform(te.begin(), te.end(), te.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (te != "chunked") {
        ApiResponse r = ApiResponse::Refusal(
            501, "not_implemented", 2,
            fmt::format("Transfer-Encoding '{}' is not supported: send the body with a "
                        "Content-Length (or, where a route allows it, chunked)",
                        std::string(h.transfer_encoding.substr(0, 60))));
        r.close = true;
        return r;
      }
    }
    if (!m.spec) return std::nullopt;
    if (m.spec->body == BodyKind::kNone && h.has_body()) {
      ApiResponse r = ApiResponse::Refusal(413, "too_large", 2,
                                           fmt::format("{} takes no request body", m.name));
      r.close = true;
      return r;
    }
    if (m.spec->body == BodyKind::kJson && h.content_length &&
        *h.content_length > m.spec->max_json_body) {
      ApiResponse r = ApiResponse::Refusal(
          413, "too_large", 2,
          fmt::format("the request body is over {} bytes ({} takes a small JSON object)",
                      m.spec->max_json_body, m.name));
      r.close = true;
      return r;
    }
    if (m.spec->body == BodyKind::kStream && (h.chunked || !h.content_length)) {
      ApiResponse r = ApiResponse::Refusal(
          411, "length_required", 2,
          fmt::format("{} needs a Content-Length header (the store checks the size against its "
                      "free space before the body is read)",
                      m.name));
      r.close = true;
      return r;
    }
    return std::nullopt;
  };
}

}  // namespace dfrp::node
