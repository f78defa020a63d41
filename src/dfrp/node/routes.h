// dfrpd's route families (docs/API.md), each a table of RouteSpec with its handlers (api.h):
//
//   NodeRoutes     GET / and the dashboard's files, /healthz, /metrics, /v1/status
//   StorageRoutes  /v1/shards..., /v1/volumes..., /v1/operations...
//   MarketRoutes   /v1/market/... (prices, quote, usage, capacity)
//   LedgerRoutes   /v1/ledger/... (orders, certificates, accounts; an authority only)
//   EscrowRoutes   /v1/ledger/{settlements,beacon,escrows}/... and /v1/escrows/accept
//   MeshRoutes     /v1/mesh/... (record exchange, peers; a node with a WALLET)
//   ComputeRoutes  /v1/compute/... (jobs; a node with ROLES compute and a WALLET)
//
// The handlers call the Node; the server runs them on the lane each route names.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "dfrp/node/api.h"
#include "dfrp/node/node.h"
#include "dfrp/node/status_view.h"

namespace dfrp::node {

// What the node's own routes need from the server that runs them.
struct ServerView {
  std::function<std::string()> api_addr;   // HOST:PORT it listens on
  std::function<ServerFigures()> figures;  // its memory budget and such
};

// `node` may be null for a table that is only matched, never served (tests, fuzzing).
std::vector<RouteSpec> NodeRoutes(Node* node, ServerView server);
std::vector<RouteSpec> StorageRoutes(Node* node);
std::vector<RouteSpec> MarketRoutes(Node* node);   // market_routes.cc
std::vector<RouteSpec> LedgerRoutes(Node* node);   // ledger_routes.cc
std::vector<RouteSpec> EscrowRoutes(Node* node);   // escrow_routes.cc
std::vector<RouteSpec> MeshRoutes(Node* node);     // mesh_routes.cc
std::vector<RouteSpec> ComputeRoutes(Node* node);  // compute_routes.cc

// Shared by the ledger's route families (ledger_routes.cc, escrow_routes.cc): this node's
// seat in the committee (404 naming where ledger calls go), the bytes of the hex string at
// `key` of a JSON body, and a decimal u64 of a path or query (InvalidArgument naming `what`).
core::Result<ledger::Authority*> LedgerAuthority(Node* node);
core::Result<std::string> HexField(const std::string& body, const char* key);
// The answer to a ledger message (an order, a certificate, a settlement, an epoch message)
// that was refused: as ApiResponse::Error, except that a signature or aggregate of the
// caller's that does not verify is 422 integrity (the caller's bad bytes), not 500; the
// alarms and the database's own failures stay 500.
ApiResponse LedgerRefusal(const core::Status& s);
// The authority here and the bytes of the hex at `key` of a POST's JSON body, for `fn`.
template <typename Fn>
ApiResponse WithAuthorityAndHex(Node* node, const ApiRequest& r, const char* key, Fn fn) {
  auto a = LedgerAuthority(node);
  if (!a) return ApiResponse::Error(a.error());
  auto wire = HexField(r.body, key);
  if (!wire) return ApiResponse::Error(wire.error());
  return fn(*a, *wire);
}
core::Result<uint64_t> DecimalParam(const std::string& text, std::string_view what);

// Counts a ledger vote's outcome (a vote, a refusal, a rejected message) in the metrics.
inline void CountLedgerVote(Metrics& m, LedgerKind k, const core::Status& s) {
  if (s.ok())
    ++m.ledger_votes[k];
  else if (s.code() == core::Status::Code::kRefused)
    ++m.ledger_refusals[k];
  else
    ++m.ledger_rejected[k];
}
// Counts a certificate's outcome: applied now, applied before, or rejected.
inline void CountLedgerApply(Metrics& m, LedgerKind k, const core::Status& s, bool applied_now) {
  if (!s.ok())
    ++m.ledger_rejected[k];
  else if (applied_now)
    ++m.ledger_applied[k];
  else
    ++m.ledger_already[k];
}

// Every family dfrpd serves, in one table.
void AddDaemonRoutes(RouteTable* table, Node* node, ServerView server);

}  // namespace dfrp::node
