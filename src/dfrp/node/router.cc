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

SplitTarget Fail(int status, std::string msg) {
  SplitTarget t;
  t.error_status = status;
  t.error = std::move(msg);
  return t;
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

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;
    for (size_t k = 1; k <= n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
      return false;
    i += n + 1;
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

SplitTarget Split(std::string_view target) {
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
    if (!IsValidUtf8(s)) return Fail(400, "the request path is not UTF-8 once %-decoded");
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
    if (!IsValidUtf8(k) || !IsValidUtf8(v))
      return Fail(400, "a query parameter is not UTF-8 once %-decoded");
    if (q.size() >= 64) return Fail(400, "the query string has more than 64 parameters");
    q.emplace(std::move(k), std::move(v));
  }

  SplitTarget out;
  out.segments = std::move(seg);
  out.path = std::string(path);
  out.query = std::move(q);
  return out;
}

// Parses one byte range of a payload of `size` bytes: "bytes=A-B", "bytes=A-", "bytes=-N".
// nullopt with *error empty: no usable range, serve the whole payload (several ranges);
// *error set: 416.
std::optional<std::pair<uint64_t, uint64_t>> ParseByteRange(std::string_view h, uint64_t size,
                                                            std::string* error) {
  // RFC 9110 14.2: a Range that is not a valid bytes range is ignored (the whole payload is
  // served); one that is valid but lies outside the payload is 416.
  if (!h.starts_with("bytes=")) return std::nullopt;
  h.remove_prefix(6);
  if (h.find(',') != std::string_view::npos) return std::nullopt;  // several: whole payload
  const size_t dash = h.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  auto all_digits = [](std::string_view t) {
    return !t.empty() && t.find_first_not_of("0123456789") == std::string_view::npos;
  };
  const std::string_view first = h.substr(0, dash), last = h.substr(dash + 1);
  const bool has_a = !first.empty(), has_b = !last.empty();
  if ((has_a && !all_digits(first)) || (has_b && !all_digits(last)) || (!has_a && !has_b))
    return std::nullopt;
  // Numbers past 2^64 - 1 are beyond any payload: read them as the largest value.
  uint64_t a = UINT64_MAX, b = UINT64_MAX;
  if (has_a && !core::ParseDecimal(first, &a)) a = UINT64_MAX;
  if (has_b && !core::ParseDecimal(last, &b)) b = UINT64_MAX;
  if (!has_a) {  // the last b bytes
    if (b == 0 || size == 0) {
      *error =
          fmt::format("Range asks for the last 0 bytes, or the payload is empty ({} bytes)", size);
      return std::nullopt;
    }
    b = std::min(b, size);
    return std::pair{size - b, b};
  }
  if (has_b && b < a) return std::nullopt;  // invalid: ignored
  if (a >= size) {
    *error = fmt::format("Range starts at byte {}, past the end of the {}-byte payload", a, size);
    return std::nullopt;
  }
  const uint64_t end = has_b ? std::min(b, size - 1) : size - 1;
  return std::pair{a, end - a + 1};
}

}  // namespace dfrp::node
