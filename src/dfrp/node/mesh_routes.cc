// The mesh's routes (issue 15; docs/API.md, "Mesh"), served by a node with a WALLET:
//
//   POST /v1/mesh/exchange   {"network": HEX, "envelope": HEX}: this node takes the records
//                            in a peer's signed envelope and answers with its own (the same
//                            shape); 400 for another network (named), a bad, expired or
//                            replayed envelope; 422 for a forged one
//   POST /v1/mesh/probe      {"network", "envelope"} of kind DFRP-MESH-PROBE-V1 naming a peer:
//                            this node calls it and answers with the peer's own signed answer
//                            (SWIM's indirect probe); 503 when it did not answer or a probe is
//                            already running here
//   POST /v1/mesh/leave      (admin) {"leaving": true|false}: this node leaves the mesh (its
//                            record says so; offers refuse it) or stays; answers as
//                            /v1/mesh/node
//   GET  /v1/mesh/peers      the peers this node knows: state, URL, roles, prices, vector
//   GET  /v1/mesh/node       this node's mesh identity and counters (as /v1/status's "mesh")
//
// An exchange checks BLS signatures: the verify lane.
#include <fmt/format.h>

#include <cstdlib>

#include "dfrp/node/router.h"
#include "dfrp/node/routes.h"
#include "dfrp/node/views.h"

namespace dfrp::node {

using core::Status;
using nlohmann::json;

namespace {

core::Result<MeshService*> Mesh(Node* node) {
  if (!node->mesh())
    return core::Err(Status::NotFound(
        "this node is not in a mesh: it needs a WALLET (its node key is delegated by it); set "
        "WALLET and PEERS in its config"));
  return node->mesh();
}

}  // namespace

std::vector<RouteSpec> MeshRoutes(Node* node) {
  std::vector<RouteSpec> t;
  t.push_back({.methods = "POST",
               .pattern = "/v1/mesh/exchange",
               .body = BodyKind::kJson,
               .lane = Lane::kVerify,
               .handler = [node](const ApiRequest& r) {
                 auto m = Mesh(node);
                 if (!m) return ApiResponse::Error(m.error());
                 auto answer = (*m)->HandleExchange(r.body);
                 if (!answer) {
                   if (answer.error().IsCorruption())
                     return ApiResponse::Json(422, ErrorJson(answer.error()));
                   return ApiResponse::Error(answer.error());
                 }
                 return ApiResponse::Json(200, *answer);
               }});
  t.push_back({.methods = "POST",
               .pattern = "/v1/mesh/leave",
               .admin = true,
               .body = BodyKind::kJson,
               .lane = Lane::kAdmin,
               .handler = [node](const ApiRequest& r) {
                 auto m = Mesh(node);
                 if (!m) return ApiResponse::Error(m.error());
                 const json j =
                     r.body.empty() ? json::object() : json::parse(r.body, nullptr, false);
                 if (!j.is_object() || (j.contains("leaving") && !j["leaving"].is_boolean()))
                   return ApiResponse::Error(core::Status::InvalidArgument(
                       "/v1/mesh/leave takes {\"leaving\": true|false} (default true)"));
                 if (auto s = (*m)->SetLeaving(j.value("leaving", true)); !s.ok())
                   return ApiResponse::Error(s);
                 return ApiResponse::Json(200, (*m)->Json());
               }});
  t.push_back({.methods = "POST",
               .pattern = "/v1/mesh/probe",
               .body = BodyKind::kJson,
               .lane = Lane::kVerify,
               .handler = [node](const ApiRequest& r) {
                 auto m = Mesh(node);
                 if (!m) return ApiResponse::Error(m.error());
                 auto answer = (*m)->HandleProbe(r.body);
                 if (!answer) {
                   if (answer.error().IsCorruption())
                     return ApiResponse::Json(422, ErrorJson(answer.error()));
                   return ApiResponse::Error(answer.error());
                 }
                 return ApiResponse::Json(200, *answer);
               }});
  t.push_back({.methods = "POST",
               .pattern = "/v1/mesh/offers",
               .body = BodyKind::kJson,
               .lane = Lane::kRead,
               .handler = [node](const ApiRequest& r) {
                 auto m = Mesh(node);
                 if (!m) return ApiResponse::Error(m.error());
                 size_t k = 3;
                 std::string value, error;
                 if (QueryValue(r.route.query, "k", &value, &error)) {
                   char* end = nullptr;
                   const unsigned long n = std::strtoul(value.c_str(), &end, 10);
                   if (value.empty() || *end != '\0' || n == 0 || n > 1000)
                     return ApiResponse::Error(Status::InvalidArgument(
                         "?k= must be a whole number from 1 to 1000 (the offers wanted)"));
                   k = n;
                 } else if (!error.empty()) {
                   return ApiResponse::Error(Status::InvalidArgument(error));
                 }
                 auto offers = (*m)->OffersJson(r.body, k);
                 if (!offers) return ApiResponse::Error(offers.error());
                 return ApiResponse::Json(200, *offers);
               }});
  t.push_back({.methods = "GET",
               .pattern = "/v1/mesh/peers",
               .lane = Lane::kRead,
               .handler = [node](const ApiRequest&) {
                 auto m = Mesh(node);
                 if (!m) return ApiResponse::Error(m.error());
                 return ApiResponse::Json(200, (*m)->PeersJson());
               }});
  t.push_back({.methods = "GET",
               .pattern = "/v1/mesh/node",
               .lane = Lane::kRead,
               .handler = [node](const ApiRequest&) {
                 auto m = Mesh(node);
                 if (!m) return ApiResponse::Error(m.error());
                 return ApiResponse::Json(200, (*m)->Json());
               }});
  return t;
}

}  // namespace dfrp::node
