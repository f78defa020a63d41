// RequestContext: who asked for a piece of work and under which request id, carried from the
// edge (an API request, a CLI command) down to what observes the work (usage counting and the
// logs). `who` is "local" for the operator's own tools and unauthenticated API clients,
// "admin" for a request with the admin token; the market adds wallet addresses.
#pragma once

#include <string>

namespace dfrp::core {

struct RequestContext {
  std::string who = "local";
  std::string request_id;  // the API's X-Request-Id; empty for the CLI
};

}  // namespace dfrp::core
