// Fuzzes what dfrpd does with a request's bytes before any handler runs: Beast's request
// parser under the daemon's limits, then the route table (method and target), the query
// decoding, the middleware (Host, Transfer-Encoding, Origin, admin token, body rules) and the
// Range header. Checks: nothing crashes; a matched route has no error and a parameter taken
// from the path prints back as it came; a refusal has a 4xx or 5xx status and a message; a
// served range lies inside the payload.
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "dfrp/node/api.h"
#include "dfrp/node/router.h"
#include "dfrp/node/routes.h"
#include "fuzz_util.h"

namespace http = boost::beast::http;
using namespace dfrp::node;

namespace {

const RouteTable& Table() {
  static const RouteTable* table = [] {
    auto* t = new RouteTable();
    AddDaemonRoutes(t, nullptr, ServerView{});
    return t;
  }();
  return *table;
}

const std::vector<Middleware>& Checks() {
  static const auto* checks =
      new std::vector<Middleware>{HostCheck("127.0.0.1:7480", {"node.example.net"}), BodyRules(),
                                  OriginCheck(), AdminAuth(std::string(64, 'a'), "api-token")};
  return *checks;
}

std::string_view Field(const http::request<http::string_body>& req, http::field f) {
  auto it = req.find(f);
  return it == req.end() ? std::string_view() : std::string_view(it->value());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  http::request_parser<http::string_body> parser;
  parser.header_limit(16384);
  parser.body_limit(1 << 16);
  parser.eager(true);
  boost::beast::error_code ec;
  size_t used = 0;
  while (used < in.size() && !parser.is_done()) {
    const size_t n = parser.put(boost::asio::buffer(in.data() + used, in.size() - used), ec);
    if (ec || n == 0) break;
    used += n;
  }
  if (!parser.is_header_done()) {
    // Not a request the daemon would route; still drive the router with the raw bytes.
    Table().Match("GET", in.substr(0, 8192));
    return 0;
  }
  const auto& req = parser.get();
  const std::string target(req.target());
  RouteMatch m = Table().Match(req.method_string(), target);
  if (m.spec) {
    if (m.error_status != 0 || !m.error.empty()) dfrp::fuzz::Fail("a routed request has an error");
    if (m.name == "unmatched") dfrp::fuzz::Fail("a routed request has no route name");
    for (const auto& [k, v] : m.params)
      if (target.find(v) == std::string::npos && v.find('%') == std::string::npos &&
          target.find('%') == std::string::npos)
        dfrp::fuzz::Fail("a path parameter is not in the target");
  } else if (m.error_status < 400 || m.error_status > 499 || m.error.empty()) {
    dfrp::fuzz::Fail("a refused request has no 4xx status or no message");
  }
  RequestHead head;
  head.method = req.method_string();
  head.target = req.target();
  head.version = static_cast<int>(req.version());
  head.host = Field(req, http::field::host);
  head.origin = Field(req, http::field::origin);
  head.authorization = Field(req, http::field::authorization);
  head.transfer_encoding = Field(req, http::field::transfer_encoding);
  if (parser.content_length()) head.content_length = *parser.content_length();
  head.chunked = parser.chunked();
  for (const Middleware& check : Checks())
    if (auto r = check(head, m))
      if (r->status < 400 || r->status > 599 || r->body.empty())
        dfrp::fuzz::Fail("a middleware refusal has no error status or no message");
  if (auto it = req.find(http::field::range); it != req.end()) {
    for (uint64_t payload : {uint64_t{0}, uint64_t{1}, uint64_t{4096}, uint64_t{1} << 40}) {
      std::string error;
      auto r = ParseByteRange(it->value(), payload, &error);
      if (r && (!error.empty() || r->second == 0 || r->first >= payload ||
                r->second > payload - r->first))
        dfrp::fuzz::Fail("a served range is empty or outside the payload");
    }
  }
  return 0;
}
