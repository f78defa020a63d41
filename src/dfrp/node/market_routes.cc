// The market's routes (issue 12; docs/API.md, "Market"):
//
//   GET  /v1/market/prices[?history=N]   the price vector, epoch, utilisation, floors, ceilings
//   POST /v1/market/quote                a request's JSON (the seed's context) matched against
//                                        the prices: 200 with "accepted" true or false and the
//                                        reason; 400 for a request that does not parse
//   GET  /v1/market/usage[?wallet=ADDR]  usage.db's totals, wallets, epochs, shards, top wallets
//   GET  /v1/market/capacity             the measured capacity (capacity.json), or null and why
//
// The same JSON as `dfrp-market` prints with --json (economy/market.h builds both).
#include <fmt/format.h>

#include "dfrp/node/routes.h"

namespace dfrp::node {

using core::Status;

std::vector<RouteSpec> MarketRoutes(Node* node) {
  std::vector<RouteSpec> t;
  t.push_back({.methods = "GET",
               .pattern = "/v1/market/prices",
               .lane = Lane::kRead,
               .handler = [node](const ApiRequest& r) {
                 size_t history = 0;
                 if (auto it = r.route.query.find("history"); it != r.route.query.end()) {
                   const std::string& v = it->second;
                   if (v.empty() || v.size() > 7 ||
                       v.find_first_not_of("0123456789") != std::string::npos)
                     return ApiResponse::Error(Status::InvalidArgument(fmt::format(
                         "history={:?} is not a count of epochs (0 to 9999999)", v.substr(0, 32))));
                   history = std::stoul(v);
                 }
                 return ApiResponse::Json(200, node->market().PricesJson(history));
               }});
  t.push_back({.methods = "POST",
               .pattern = "/v1/market/quote",
               .body = BodyKind::kJson,
               .lane = Lane::kRead,
               .handler = [node](const ApiRequest& r) {
                 bool accepted = false;
                 auto j = node->market().QuoteJson(r.body, &accepted);
                 if (!j) return ApiResponse::Error(j.error());
                 return ApiResponse::Json(200, *j);
               }});
  t.push_back({.methods = "GET",
               .pattern = "/v1/market/usage",
               .lane = Lane::kRead,
               .handler = [node](const ApiRequest& r) {
                 economy::UsageQuery q;
                 if (auto it = r.route.query.find("wallet"); it != r.route.query.end())
                   q.wallet = it->second;
                 auto j = node->market().UsageJson(q);
                 if (!j) return ApiResponse::Error(j.error());
                 return ApiResponse::Json(200, *j);
               }});
  t.push_back({.methods = "GET",
               .pattern = "/v1/market/capacity",
               .lane = Lane::kInline,
               .handler = [node](const ApiRequest&) {
                 return ApiResponse::Json(200, node->market().CapacityJson());
               }});
  return t;
}

}  // namespace dfrp::node
