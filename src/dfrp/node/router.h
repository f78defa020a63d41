// Request-target parsing for the daemon's router (api.h): path segments, %-decoding, query
// parameters, UTF-8, and Range headers. Free of HTTP library types, so the fuzz target and
// the tests drive it directly.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dfrp::node {

// A request target split into %-decoded path segments and query parameters, or why it is
// refused (400, 414): a target that is not a path, a segment "." or "..", an encoded slash,
// backslash or NUL, text that is not UTF-8, an empty segment, more than 64 parameters. A
// trailing slash is dropped ("/v1/volumes/" is "/v1/volumes").
struct SplitTarget {
  std::vector<std::string> segments;
  std::string path;  // as sent, without the query (for messages)
  std::multimap<std::string, std::string> query;
  int error_status = 0;
  std::string error;
};
SplitTarget Split(std::string_view target);

// Decodes %XX escapes (and '+' as a space when `plus_is_space`). False on a bad escape or a
// decoded NUL.
bool PercentDecode(std::string_view in, bool plus_is_space, std::string* out);

// The one value of a query parameter: nullopt-like false when absent; InvalidArgument-style
// message in *error when it is given twice.
bool QueryValue(const std::multimap<std::string, std::string>& q, const std::string& key,
                std::string* value, std::string* error);

// Parses a Range header for a payload of `size` bytes: one range ("bytes=A-B", "bytes=A-",
// "bytes=-N") gives (offset, length), inside the payload. nullopt with *error empty: serve the
// whole payload (several ranges, or a Range that is not a valid bytes range, which RFC 9110
// says to ignore); *error set: the range lies outside the payload (416).

// True when `s` is well-formed UTF-8 (what the API's JSON can carry).
bool IsValidUtf8(std::string_view s);
std::optional<std::pair<uint64_t, uint64_t>> ParseByteRange(std::string_view h, uint64_t size,
                                                            std::string* error);

}  // namespace dfrp::node
