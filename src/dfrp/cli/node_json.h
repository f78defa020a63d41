// Calls of another node's API by URL whose answers are JSON, shared by the commands that talk
// to nodes other than their own dfrpd (dfrp-mesh's put and repair, dfrp-compute's jobs).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "dfrp/core/status.h"
#include "dfrp/node/client.h"

namespace dfrp::cli {

// The daemon at `url` ("http://host:port"), with no token (a peer's public routes).
node::DaemonInfo InfoOfUrl(const std::string& url);
// `method` `target` with `body` (JSON) at `info`; the answer's JSON on 2xx, else the Status
// its error document stands for (node::StatusFromResponse), IOError for a 2xx without JSON.
core::Result<nlohmann::json> CallNodeJson(const node::DaemonInfo& info, const char* method,
                                          const std::string& target, const std::string& body = "",
                                          int timeout_ms = 30'000);

}  // namespace dfrp::cli
