// The node's state as the API shows it: the document of GET /v1/status (docs/API.md) and the
// Prometheus text of GET /metrics, read from the node's parts without waiting for the writer.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "dfrp/node/node.h"

namespace dfrp::node {

// Extra figures the HTTP server owns (connections, memory budget), added to both views.
struct ServerFigures {
  uint64_t body_bytes_reserved = 0;
  uint64_t body_budget = 0;
};

nlohmann::json StatusJson(Node& node, const std::string& api_addr, const ServerFigures& server);
std::string MetricsText(Node& node, const ServerFigures& server);

}  // namespace dfrp::node
