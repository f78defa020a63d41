// The ledger's routes (issue 13; docs/API.md, "Ledger"), served by a node whose ROLES has
// authority. Signed objects travel as hex of their canonical encoding (ledger/messages.h)
// inside small JSON documents:
//
//   POST /v1/ledger/orders                 {"order": HEX}: this authority's vote
//                                          {"vote": HEX, "authority": i}; 402 refused (funds,
//                                          an equivocation), 400 (sequence, epoch, signature)
//   POST /v1/ledger/certificates           {"certificate": HEX}: applied once
//                                          {"outcome": "applied" | "already_applied"}; 404 when
//                                          the sender's earlier certificates are missing here
//   GET  /v1/ledger/accounts/{address}     balance, next sequence number, lock
//   GET  /v1/ledger/certificates/{address}[?from=SEQ]   the sender's applied certificates
//   GET  /v1/ledger/equivocations          the proofs kept
//   GET  /v1/ledger/committee              epoch, members, quorum, this authority's index
//   GET  /v1/ledger/supply                 the supply and whether the balances sum to it
//   POST /v1/ledger/epoch/seal             {"seal": HEX}: a member's seal of the epoch
//   GET  /v1/ledger/epoch                  epoch, sealed, the proposal voted for, checkpoint
//   POST /v1/ledger/epoch/proposals        {"proposal": HEX}: this authority's vote for it
//   POST /v1/ledger/epoch/certificates     {"certificate": HEX}: the next epoch begins here
//   GET  /v1/ledger/epochs[?after=E]       the epoch certificates applied, after epoch E
//
// Orders and certificates are verified (BLS) and synced to disk: the verify lane.
#include <fmt/format.h>

#include "dfrp/ledger/client.h"
#include "dfrp/ledger/epoch.h"
#include "dfrp/ledger/messages.h"
#include "dfrp/node/routes.h"
#include "dfrp/node/views.h"
#include "dfrp/wallet/address.h"

namespace dfrp::node {

using core::Status;
using nlohmann::json;

core::Result<ledger::Authority*> LedgerAuthority(Node* node) {
  if (!node->authority())
    return core::Err(Status::NotFound(
        "this node is not a ledger authority (its ROLES has no authority): send ledger calls to "
        "the committee's members, listed in economic.toml's genesis.committee"));
  return node->authority();
}

core::Result<std::string> HexField(const std::string& body, const char* key) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains(key) || !j[key].is_string())
    return core::Err(Status::InvalidArgument(
        fmt::format("the body must be a JSON object with \"{}\": the hex of a {}", key, key)));
  auto bytes = core::FromHex(j[key].get<std::string>());
  if (!bytes) return core::Err(Status::InvalidArgument(fmt::format("\"{}\" is not hex", key)));
  return *bytes;
}

ApiResponse LedgerRefusal(const Status& s) {
  const std::string& m = s.message();
  if (s.code() == Status::Code::kCorruption && m.find("ALARM") == std::string::npos &&
      !m.starts_with("ledger database"))
    return ApiResponse::Json(422, ErrorJson(s));
  return ApiResponse::Error(s);
}

core::Result<uint64_t> DecimalParam(const std::string& v, std::string_view what) {
  if (v.empty() || v.size() > 19 || v.find_first_not_of("0123456789") != std::string::npos)
    return core::Err(
        Status::InvalidArgument(fmt::format("{} {:?} is not a number", what, v.substr(0, 32))));
  return std::stoull(v);
}

namespace {

constexpr size_t kMaxCertificatesPerAnswer = 1000;

void AddEpochRoutes(Node* node, std::vector<RouteSpec>* t);
nlohmann::json EpochStateJson(const ledger::EpochState& st, uint32_t index);

core::Result<ledger::KeyBytes> KeyOfAddress(const std::string& address) {
  if (address == "committee") return ledger::kCommitteeAccount;
  DFRP_ASSIGN_OR_RETURN(auto key, wallet::PublicKeyFromAddress(address));
  return key.bytes();
}

// ?from=N (default `dflt`), or why not.
core::Result<uint64_t> FromParam(const ApiRequest& r, uint64_t dflt) {
  auto it = r.route.query.find("from");
  if (it == r.route.query.end()) return dflt;
  return DecimalParam(it->second, "from=");
}

}  // namespace

std::vector<RouteSpec> LedgerRoutes(Node* node) {
  std::vector<RouteSpec> t;
  t.push_back({.methods = "POST",
               .pattern = "/v1/ledger/orders",
               .body = BodyKind::kJson,
               .lane = Lane::kVerify,
               .handler = [node](const ApiRequest& r) {
                 auto a = LedgerAuthority(node);
                 if (!a) return ApiResponse::Error(a.error());
                 auto wire = HexField(r.body, "order");
                 if (!wire) return ApiResponse::Error(wire.error());
                 auto order = ledger::DecodeSignedOrder(*wire, (*a)->network_id());
                 if (!order) {
                   CountLedgerVote(node->metrics(), kLedgerOrder, order.error());
                   return ApiResponse::Error(order.error());
                 }
                 auto vote = (*a)->HandleOrder(*order);
                 CountLedgerVote(node->metrics(), kLedgerOrder, vote.status());
                 if (!vote) return LedgerRefusal(vote.error());
                 return ApiResponse::Json(200,
                                          json{{"vote", core::ToHex(ledger::EncodeVote(*vote))},
                                               {"authority", vote->authority},
                                               {"order_hash", core::ToHex(order->hash)}});
               }});
  t.push_back(
      {.methods = "POST",
       .pattern = "/v1/ledger/certificates",
       .body = BodyKind::kJson,
       .lane = Lane::kVerify,
       .handler = [node](const ApiRequest& r) {
         auto a = LedgerAuthority(node);
         if (!a) return ApiResponse::Error(a.error());
         auto wire = HexField(r.body, "certificate");
         if (!wire) return ApiResponse::Error(wire.error());
         auto cert = ledger::DecodeCertificate(*wire, (*a)->network_id());
         if (!cert) {
           CountLedgerApply(node->metrics(), kLedgerOrder, cert.error(), false);
           return ApiResponse::Error(cert.error());
         }
         auto outcome = (*a)->HandleCertificate(*cert);
         CountLedgerApply(node->metrics(), kLedgerOrder, outcome.status(),
                          outcome && *outcome == ledger::ApplyOutcome::kApplied);
         if (!outcome) return LedgerRefusal(outcome.error());
         return ApiResponse::Json(
             200, json{{"outcome",
                        *outcome == ledger::ApplyOutcome::kApplied ? "applied" : "already_applied"},
                       {"order_hash", core::ToHex(cert->order.hash)}});
       }});
  t.push_back({.methods = "GET",
               .pattern = "/v1/ledger/accounts/{address}",
               .lane = Lane::kRead,
               .handler = [node](const ApiRequest& r) {
                 auto a = LedgerAuthority(node);
                 if (!a) return ApiResponse::Error(a.error());
                 const std::string& address = r.route.params.at("address");
                 auto key = KeyOfAddress(address);
                 if (!key) return ApiResponse::Error(key.error());
                 auto info = (*a)->Account(*key);
                 if (!info) return ApiResponse::Error(info.error());
                 const int64_t b = info->balance;
                 return ApiResponse::Json(
                     200, json{{"address", address},
                               {"balance", node->policy().FormatSignedAmount(b)},
                               {"balance_base_units", b},
                               {"next_seq", info->next_seq},
                               {"locked", info->locked ? json(core::ToHex(*info->locked)) : json()},
                               {"authority", (*a)->index()}});
               }});
  t.push_back({.methods = "GET",
               .pattern = "/v1/ledger/certificates/{address}",
               .lane = Lane::kRead,
               .handler = [node](const ApiRequest& r) {
                 auto a = LedgerAuthority(node);
                 if (!a) return ApiResponse::Error(a.error());
                 auto key = KeyOfAddress(r.route.params.at("address"));
                 if (!key) return ApiResponse::Error(key.error());
                 auto from = FromParam(r, 0);
                 if (!from) return ApiResponse::Error(from.error());
                 auto certs = (*a)->Certificates(*key, *from, kMaxCertificatesPerAnswer);
                 if (!certs) return ApiResponse::Error(certs.error());
                 json list = json::array();
                 for (const auto& c : *certs) list.push_back(core::ToHex(c));
                 return ApiResponse::Json(200, json{{"from", *from}, {"certificates", list}});
               }});
  // The log, in this authority's order of application (1-based), for auditors.
  for (const bool settle : {false, true})
    t.push_back({.methods = "GET",
                 .pattern = settle ? "/v1/ledger/settlement-log" : "/v1/ledger/log",
                 .lane = Lane::kRead,
                 .handler = [node, settle](const ApiRequest& r) {
                   auto a = LedgerAuthority(node);
                   if (!a) return ApiResponse::Error(a.error());
                   auto from = FromParam(r, 1);
                   if (!from) return ApiResponse::Error(from.error());
                   auto certs = settle ? (*a)->SettleLog(*from, kMaxCertificatesPerAnswer)
                                       : (*a)->Log(*from, kMaxCertificatesPerAnswer);
                   if (!certs) return ApiResponse::Error(certs.error());
                   // A page ends after 4 MiB of certificates (settlements carry proofs): the
                   // reader asks for the next from where this one stopped.
                   json list = json::array();
                   size_t bytes = 0;
                   for (const auto& c : *certs) {
                     if (!list.empty() && bytes + c.size() > (4u << 20)) break;
                     bytes += c.size();
                     list.push_back(core::ToHex(c));
                   }
                   return ApiResponse::Json(200, json{{"from", *from}, {"certificates", list}});
                 }});
  t.push_back({.methods = "GET",
               .pattern = "/v1/ledger/accounts",
               .lane = Lane::kRead,
               .handler = [node](const ApiRequest&) {
                 auto a = LedgerAuthority(node);
                 if (!a) return ApiResponse::Error(a.error());
                 constexpr size_t kMaxAccounts = 1'000'000;
                 auto all = (*a)->Accounts(kMaxAccounts + 1);
                 if (!all) return ApiResponse::Error(all.error());
                 if (all->size() > kMaxAccounts)
                   return ApiResponse::Error(Status::InvalidArgument(fmt::format(
                       "more than {} accounts: this listing is for audits of smaller ledgers",
                       kMaxAccounts)));
                 json list = json::array();
                 for (const auto& acct : *all)
                   list.push_back({{"address", ledger::AddressOfKey(acct.key)},
                                   {"key", core::ToHex(acct.key)},
                                   {"balance_base_units", acct.balance},
                                   {"next_seq", acct.next_seq}});
                 // Providers' stakes on compute escrows, still held: part of the supply.
                 auto held = (*a)->HeldCollateral(kMaxAccounts);
                 if (!held) return ApiResponse::Error(held.error());
                 json stakes = json::array();
                 for (const auto& [id, amount] : *held)
                   stakes.push_back({{"escrow_id", core::ToHex(id)}, {"held_base_units", amount}});
                 return ApiResponse::Json(200, json{{"accounts", list}, {"collateral", stakes}});
               }});
  t.push_back({.methods = "GET",
               .pattern = "/v1/ledger/equivocations",
               .lane = Lane::kRead,
               .handler = [node](const ApiRequest&) {
                 auto a = LedgerAuthority(node);
                 if (!a) return ApiResponse::Error(a.error());
                 auto eq = (*a)->Equivocations();
                 if (!eq) return ApiResponse::Error(eq.error());
                 json list = json::array();
                 for (const auto& e : *eq)
                   list.push_back({{"sender", ledger::AddressOfKey(e.sender)},
                                   {"seq", e.seq},
                                   {"order_a", core::ToHex(e.order_a)},
                                   {"order_b", core::ToHex(e.order_b)}});
                 return ApiResponse::Json(200, json{{"equivocations", list}});
               }});
  t.push_back({.methods = "GET",
               .pattern = "/v1/ledger/committee",
               .lane = Lane::kInline,
               .handler = [node](const ApiRequest&) {
                 const auto& committee = node->policy().genesis.committee;
                 json members = json::array();
                 for (const auto& m : committee)
                   members.push_back({{"address", m.address}, {"url", m.url}});
                 const size_t n = committee.size();
                 const size_t f = n == 0 ? 0 : (n - 1) / 3;
                 return ApiResponse::Json(
                     200,
                     json{{"epoch", node->authority() ? json(node->authority()->epoch()) : json()},
                          {"members", members},
                          {"quorum", n - f},
                          {"network_id", core::ToHex(node->policy().network_id)},
                          {"this_authority",
                           node->authority() ? json(node->authority()->index()) : json()}});
               }});
  // This node's place in the ledger, for the dashboard (served by any node): its wallet's
  // balance as the committee reports it, its escrows as a provider, and, on an authority, what
  // it applied, its supply check, the equivocations it keeps and its pull from peers.
  t.push_back({.methods = "GET",
               .pattern = "/v1/ledger/node",
               .lane = Lane::kRead,
               .handler = [node](const ApiRequest&) {
                 const auto& p = node->policy();
                 json wallet;
                 if (const auto* key = node->wallet_key()) {
                   const std::string address = wallet::AddressOf(key->GetPublicKey());
                   wallet = json{{"address", address}};
                   auto client = ledger::LedgerClient::Make(p);
                   auto view = client ? client->Account(address)
                                      : core::Result<ledger::AccountView>(Err(client.error()));
                   if (view) {
                     wallet["balance"] = p.FormatSignedAmount(view->balance);
                     wallet["balance_base_units"] = view->balance;
                     wallet["next_seq"] = view->next_seq;
                   } else {
                     wallet["error"] = view.error().message();
                   }
                 }
                 json authority;
                 if (ledger::Authority* a = node->authority()) {
                   const Status s = a->CheckSupply();
                   auto applied = a->AppliedCount();
                   auto eq = a->Equivocations();
                   json equivocations = json::array();
                   if (eq)
                     for (const auto& e : *eq)
                       equivocations.push_back(
                           {{"sender", ledger::AddressOfKey(e.sender)}, {"seq", e.seq}});
                   json payouts = json::array();
                   auto series = a->Payouts(p.storage.period_seconds);
                   uint64_t to_providers = 0, margin = 0, refunded = 0;
                   if (series)
                     for (const auto& b : *series) {
                       to_providers += b.to_providers;
                       margin += b.margin;
                       refunded += b.refunded;
                       payouts.push_back({{"start_unix", b.start_unix},
                                          {"to_providers", p.FormatAmount(b.to_providers)},
                                          {"to_providers_base_units", b.to_providers},
                                          {"margin", p.FormatAmount(b.margin)},
                                          {"margin_base_units", b.margin},
                                          {"refunded", p.FormatAmount(b.refunded)},
                                          {"refunded_base_units", b.refunded},
                                          {"releases", b.releases},
                                          {"refunds", b.refunds}});
                     }
                   authority = json{{"index", a->index()},
                                    {"epoch", a->epoch()},
                                    {"payouts", payouts},
                                    {"payout_bucket_seconds", p.storage.period_seconds},
                                    {"payout_totals",
                                     {{"to_providers", p.FormatAmount(to_providers)},
                                      {"to_providers_base_units", to_providers},
                                      {"margin", p.FormatAmount(margin)},
                                      {"margin_base_units", margin},
                                      {"refunded", p.FormatAmount(refunded)},
                                      {"refunded_base_units", refunded}}},
                                    {"certificates_applied", applied ? *applied : 0},
                                    {"conserved", s.ok()},
                                    {"problem", s.ok() ? json() : json(s.message())},
                                    {"equivocations", equivocations}};
                 }
                 return ApiResponse::Json(
                     200, json{{"currency", p.genesis.currency},
                               {"committee_size", p.genesis.committee.size()},
                               {"wallet", wallet},
                               {"authority", authority},
                               {"escrows", node->provider() ? node->provider()->Json() : json()},
                               {"ledger_sync",
                                node->ledger_sync() ? node->ledger_sync()->Json() : json()}});
               }});
  t.push_back({.methods = "GET",
               .pattern = "/v1/ledger/supply",
               .lane = Lane::kRead,
               .handler = [node](const ApiRequest&) {
                 auto a = LedgerAuthority(node);
                 if (!a) return ApiResponse::Error(a.error());
                 const Status s = (*a)->CheckSupply();
                 auto applied = (*a)->AppliedCount();
                 const auto& p = node->policy();
                 return ApiResponse::Json(200,
                                          json{{"supply", p.FormatAmount(p.genesis.supply)},
                                               {"supply_base_units", p.genesis.supply},
                                               {"conserved", s.ok()},
                                               {"problem", s.ok() ? json() : json(s.message())},
                                               {"certificates_applied", applied ? *applied : 0}});
               }});
  AddEpochRoutes(node, &t);
  return t;
}

namespace {

void AddEpochRoutes(Node* node, std::vector<RouteSpec>* t) {
  t->push_back(
      {.methods = "POST",
       .pattern = "/v1/ledger/epoch/seal",
       .body = BodyKind::kJson,
       .lane = Lane::kVerify,
       .handler = [node](const ApiRequest& r) {
         return WithAuthorityAndHex(
             node, r, "seal", [](ledger::Authority* a, const std::string& wire) {
               auto seal = ledger::DecodeVote(wire);
               if (!seal) return ApiResponse::Error(seal.error());
               if (Status s = a->Seal(*seal); !s.ok()) return LedgerRefusal(s);
               return ApiResponse::Json(200, json{{"epoch", a->epoch()}, {"sealed", true}});
             });
       }});
  t->push_back({.methods = "GET",
                .pattern = "/v1/ledger/epoch",
                .lane = Lane::kRead,
                .handler = [node](const ApiRequest&) {
                  auto a = LedgerAuthority(node);
                  if (!a) return ApiResponse::Error(a.error());
                  auto st = (*a)->GetEpochState();
                  if (!st) return ApiResponse::Error(st.error());
                  return ApiResponse::Json(200, EpochStateJson(*st, (*a)->index()));
                }});
  t->push_back({.methods = "POST",
                .pattern = "/v1/ledger/epoch/proposals",
                .body = BodyKind::kJson,
                .lane = Lane::kVerify,
                .handler = [node](const ApiRequest& r) {
                  return WithAuthorityAndHex(
                      node, r, "proposal", [](ledger::Authority* a, const std::string& wire) {
                        auto p = ledger::DecodeEpochProposal(wire, a->network_id());
                        if (!p) return ApiResponse::Error(p.error());
                        auto vote = a->HandleEpochProposal(*p);
                        if (!vote) return LedgerRefusal(vote.error());
                        return ApiResponse::Json(
                            200, json{{"vote", core::ToHex(ledger::EncodeVote(*vote))},
                                      {"authority", vote->authority},
                                      {"proposal_hash", core::ToHex(p->hash)}});
                      });
                }});
  t->push_back({.methods = "POST",
                .pattern = "/v1/ledger/epoch/certificates",
                .body = BodyKind::kJson,
                .lane = Lane::kVerify,
                .handler = [node](const ApiRequest& r) {
                  return WithAuthorityAndHex(
                      node, r, "certificate", [](ledger::Authority* a, const std::string& wire) {
                        auto c = ledger::DecodeEpochCertificate(wire, a->network_id());
                        if (!c) return ApiResponse::Error(c.error());
                        auto outcome = a->HandleEpochCertificate(*c);
                        if (!outcome) return LedgerRefusal(outcome.error());
                        return ApiResponse::Json(
                            200, json{{"outcome", *outcome == ledger::ApplyOutcome::kApplied
                                                      ? "applied"
                                                      : "already_applied"},
                                      {"epoch", a->epoch()}});
                      });
                }});
  t->push_back({.methods = "GET",
                .pattern = "/v1/ledger/epochs",
                .lane = Lane::kRead,
                .handler = [node](const ApiRequest& r) {
                  auto a = LedgerAuthority(node);
                  if (!a) return ApiResponse::Error(a.error());
                  uint64_t after = 0;
                  if (auto it = r.route.query.find("after"); it != r.route.query.end()) {
                    auto v = DecimalParam(it->second, "after=");
                    if (!v) return ApiResponse::Error(v.error());
                    after = *v;
                  }
                  auto certs = (*a)->EpochCertificates(after);
                  if (!certs) return ApiResponse::Error(certs.error());
                  json list = json::array();
                  for (const auto& c : *certs) list.push_back(core::ToHex(c));
                  return ApiResponse::Json(
                      200,
                      json{{"after", after}, {"epoch", (*a)->epoch()}, {"certificates", list}});
                }});
}

json EpochStateJson(const ledger::EpochState& st, uint32_t index) {
  return json{{"authority", index},
              {"epoch", st.epoch},
              {"sealed", st.sealed},
              {"voted", st.voted ? json(core::ToHex(*st.voted)) : json()},
              {"checkpoint",
               {{"certificates", st.checkpoint.certificates},
                {"settlements", st.checkpoint.settlements},
                {"state", core::ToHex(st.checkpoint.state)}}}};
}

}  // namespace

}  // namespace dfrp::node
