#include "dfrp/cli/node_json.h"

#include <fmt/format.h>

#include "dfrp/ledger/client.h"

namespace dfrp::cli {

using core::Err;
using core::Result;
using core::Status;
using nlohmann::json;

node::DaemonInfo InfoOfUrl(const std::string& url) {
  node::DaemonInfo info;
  info.url = url;
  auto hp = ledger::HostPortOfUrl(url);
  info.api_addr = hp ? *hp : url;
  return info;
}

Result<json> CallNodeJson(const node::DaemonInfo& info, const char* method,
                          const std::string& target, const std::string& body, int timeout_ms) {
  node::Client client(info, {.connect_timeout_ms = 3000, .request_timeout_ms = timeout_ms});
  DFRP_ASSIGN_OR_RETURN(
      node::HttpResponse r,
      client.Request(method, target, {{"Content-Type", "application/json"}}, body));
  json j = json::parse(r.body, nullptr, false);
  if (r.status / 100 == 2 && !j.is_discarded()) return j;
  if (r.status / 100 == 2)
    return Err(
        Status::IOError(fmt::format("{} answered {} {} with no JSON", info.url, method, target)));
  return Err(node::StatusFromResponse(info, r));
}

}  // namespace dfrp::cli
