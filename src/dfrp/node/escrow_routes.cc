// Escrow routes (issue 13; docs/API.md, "Escrows"). On an authority (ROLES has authority):
//
//   POST /v1/ledger/settlements                 {"settlement": HEX}: this authority's vote
//                                               {"vote", "authority"}; 402 refused (outside
//                                               the window, a proof that does not verify, the
//                                               period locked the other way), 404 escrow unknown
//   POST /v1/ledger/settlement-certificates     {"certificate": HEX}: applied once
//   GET  /v1/ledger/settlement-certificates/{id}  the escrow's applied settlement certificates
//   GET  /v1/ledger/beacon/{slot}               this authority's signature of the slot (402
//                                               before the slot has begun)
//   GET  /v1/ledger/escrows/{id}                one escrow: terms, what is left, settled periods
//   GET  /v1/ledger/escrows?party=ADDRESS[&after=ID][&limit=N]   the open escrows the address
//                                               pays or provides, by id, a page at a time
//
// On a storage node with a WALLET (the provider's side):
//
//   POST /v1/escrows/accept                     {"payer", "seq", "epoch", "amount_base_units",
//                                               "terms_hex"[, "kind", "job_hex"]}: the
//                                               provider's signed acceptance,
//                                               given only for a shard this node holds with
//                                               exactly those root, size and leaf size
#include <fmt/format.h>

#include <set>

#include "dfrp/ledger/escrow.h"
#include "dfrp/node/compute_service.h"
#include "dfrp/node/mesh_service.h"
#include "dfrp/node/router.h"
#include "dfrp/node/routes.h"
#include "dfrp/wallet/address.h"

namespace dfrp::node {

using core::Status;
using nlohmann::json;

namespace {

constexpr uint64_t kEscrowPage = 1000;

core::Result<crypto::Hash> EscrowIdParam(const std::string& text) {
  auto bytes = core::FromHex(text);
  if (!bytes || bytes->size() != 32)
    return core::Err(Status::InvalidArgument(
        fmt::format("'{}' is not an escrow id (64 hex digits, as escrow open printed it)",
                    text.substr(0, 80))));
  crypto::Hash id{};
  std::memcpy(id.data(), bytes->data(), 32);
  return id;
}

// The authority here and the {id} of the route (an escrow id), for `fn`.
template <typename Fn>
ApiResponse WithAuthorityAndEscrow(Node* node, const ApiRequest& r, Fn fn) {
  auto a = LedgerAuthority(node);
  if (!a) return ApiResponse::Error(a.error());
  auto id = EscrowIdParam(r.route.params.at("id"));
  if (!id) return ApiResponse::Error(id.error());
  return fn(*a, *id);
}

core::Result<uint64_t> UintField(const json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_number_unsigned())
    return core::Err(
        Status::InvalidArgument(fmt::format("\"{}\" must be a non-negative integer", key)));
  return j[key].get<uint64_t>();
}

// What every escrow's JSON begins with: who pays whom, how much, the margin.
json EscrowHead(const ledger::EscrowInfo& e, const economy::EconomicPolicy& p) {
  return json{{"id", core::ToHex(e.id)},
              {"kind", e.is_read ? "read" : (e.is_job ? "job" : "storage")},
              {"payer", ledger::AddressOfKey(e.payer)},
              {"provider", ledger::AddressOfKey(e.provider)},
              {"amount", p.FormatAmount(e.amount)},
              {"amount_base_units", e.amount},
              {"remaining", p.FormatAmount(e.remaining)},
              {"remaining_base_units", e.remaining},
              {"owner", e.owner ? json(ledger::AddressOfKey(*e.owner)) : json()},
              {"margin_bps", e.margin_bps}};
}

// A read escrow (ledger/escrow.h, "Read escrows"): its terms, the bytes redeemed, and this
// authority's own record of the highest total it voted to redeem (what a close must cover).
json ReadEscrowJson(const ledger::EscrowInfo& e, const economy::EconomicPolicy& p, int64_t now_ms) {
  const auto& sp = p.storage;
  const int64_t close_ms =
      (static_cast<int64_t>(e.read.end_unix) + static_cast<int64_t>(sp.grace_seconds)) * 1000;
  json j = EscrowHead(e, p);
  j.update(json{{"read_terms",
                 {{"price_per_mib", p.FormatAmount(e.read.price_per_mib)},
                  {"price_per_mib_base_units", e.read.price_per_mib},
                  {"end_unix", e.read.end_unix}}},
                {"terms_hex", core::ToHex(ledger::EncodeReadTerms(e.read))},
                {"redeemed_bytes", e.redeemed_bytes},
                {"paid_base_units", ledger::ReadDue(e.redeemed_bytes, e.read, e.amount)},
                {"max_voted_bytes", e.max_voted_bytes},
                {"read_settlements", e.read_settlements},
                {"closed", e.closed},
                {"redeem_until_ms", close_ms - static_cast<int64_t>(sp.max_skew_ms)},
                {"closable_from_ms", close_ms},
                {"state", e.closed                                                ? "closed"
                          : now_ms < static_cast<int64_t>(e.read.end_unix) * 1000 ? "open"
                          : now_ms < close_ms                                     ? "grace"
                                                                                  : "closable"},
                {"settled", json::array()},
                {"next_period", json()}});
  return j;
}

// A compute escrow (ledger/escrow.h, "Compute escrows"): its terms, its windows and how it was
// settled.
json JobEscrowJson(const ledger::EscrowInfo& e, const economy::EconomicPolicy& p, int64_t now_ms) {
  const ledger::JobWindow w = ledger::JobWindowOf(e.job, p.storage);
  json settled = json::array();
  for (const auto& s : e.settled)
    settled.push_back({{"period", s.period},
                       {"kind", ledger::SettleKindName(s.kind)},
                       {"paid", p.FormatAmount(s.paid)},
                       {"paid_base_units", s.paid},
                       {"margin_base_units", s.margin}});
  json j = EscrowHead(e, p);
  j.update(json{
      {"job_terms",
       {{"job_id", core::ToHex(e.job.job_id)},
        {"verifier", e.job.has_verifier() ? json(ledger::AddressOfKey(e.job.verifier)) : json()},
        {"price", p.FormatAmount(e.job.price)},
        {"price_base_units", e.job.price},
        {"settle_unix", e.job.settle_unix},
        {"collateral", p.FormatAmount(e.job.collateral)},
        {"collateral_base_units", e.job.collateral}}},
      // The provider's stake, as this authority holds it (ledger/escrow.h, "Collateral").
      {"collateral",
       {{"required_base_units", e.job.collateral},
        {"held_base_units", e.collateral_held},
        {"to_provider_base_units", e.collateral_to_provider},
        {"to_payer_base_units", e.collateral_to_payer},
        {"state", e.job.collateral == 0                   ? "none asked"
                  : e.collateral_to_payer > 0             ? "forfeited to the payer"
                  : e.collateral_to_provider > 0          ? "returned to the provider"
                  : e.collateral_held >= e.job.collateral ? "held"
                                                          : "not staked"}}},
      {"terms_hex", core::ToHex(ledger::EncodeJobTerms(e.job))},
      {"dispute_until_ms", w.dispute_until_ms},
      {"release_from_ms", w.release_from_ms},
      {"release_until_ms", w.release_until_ms},
      {"refundable_from_ms", w.refund_from_ms},
      {"state",
       !e.settled.empty()
           ? std::string(e.settled.front().kind == ledger::SettleKind::kJobRelease ? "released"
                                                                                   : "refunded")
       : now_ms < w.dispute_until_ms ? "dispute window"
       : now_ms < w.release_from_ms  ? "closing disputes"
       : now_ms < w.release_until_ms ? "release window"
       : now_ms < w.refund_from_ms   ? "grace"
                                     : "refundable"},
      {"settled", settled},
      {"next_period", json()}});
  return j;
}

json EscrowJson(const ledger::EscrowInfo& e, const economy::EconomicPolicy& p, int64_t now_ms) {
  if (e.is_read) return ReadEscrowJson(e, p, now_ms);
  if (e.is_job) return JobEscrowJson(e, p, now_ms);
  const ledger::StorageTerms& t = e.terms;
  json settled = json::array();
  for (const auto& s : e.settled)
    settled.push_back({{"period", s.period},
                       {"kind", ledger::SettleKindName(s.kind)},
                       {"paid", p.FormatAmount(s.paid)},
                       {"paid_base_units", s.paid},
                       {"margin_base_units", s.margin}});
  // The next period not settled, and its window, for people and for the provider's node.
  json next;
  std::set<uint32_t> done;
  for (const auto& s : e.settled) done.insert(s.period);
  for (uint32_t k = 0; k < t.periods; ++k) {
    if (done.contains(k)) continue;
    const ledger::PeriodWindow w = ledger::WindowOf(e.id, t, k, p.storage);
    next = {{"period", k},
            {"window_open_ms", w.open_ms},
            {"window_close_ms", w.close_ms},
            {"refundable_from_ms", w.refund_ms},
            {"beacon_slot", w.slot},
            {"state", now_ms < w.open_ms         ? "waiting"
                      : now_ms < w.vote_until_ms ? "answer window open"
                      : now_ms < w.refund_ms     ? "grace"
                                                 : "refundable"}};
    break;
  }
  json j = EscrowHead(e, p);
  j.update(json{{"terms",
                 {{"shard_id", t.shard_id.ToString()},
                  {"root", core::ToHex(t.root)},
                  {"size", t.size},
                  {"leaf_size", t.leaf_size},
                  {"periods", t.periods},
                  {"period_seconds", t.period_seconds},
                  {"start_unix", t.start_unix},
                  {"challenges", t.challenges}}},
                {"terms_hex", core::ToHex(ledger::EncodeTerms(t))},
                {"settled", settled},
                {"next_period", next}});
  return j;
}

// A read escrow's acceptance: terms that end in the future, within a year, at no less than
// this node's price for reads (the oracle's read_gib price now).
ApiResponse AcceptRead(Node* node, const crypto::bls::SecretKey& key, const ledger::KeyBytes& payer,
                       uint64_t seq, uint64_t epoch, uint64_t amount,
                       const std::string& terms_bytes) {
  if (!node->read_desk())
    return ApiResponse::Error(Status::NotFound(
        "this node takes no paid reads: it needs the storage role, a WALLET and a committee"));
  auto t = ledger::DecodeReadTerms(terms_bytes);
  if (!t) return ApiResponse::Error(t.error());
  const int64_t now = node->NowMs();
  constexpr int64_t kMaxReadEscrowMs = int64_t{366} * 86400 * 1000;
  const auto end_ms = static_cast<int64_t>(t->end_unix) * 1000;
  if (end_ms <= now || end_ms - now > kMaxReadEscrowMs)
    return ApiResponse::Error(Status::InvalidArgument(
        fmt::format("read terms: the escrow ends at {} (Unix s); this node takes ends from now "
                    "({} ms) to a year on",
                    t->end_unix, now)));
  // Prices are in 10^-6 base units per GiB; the terms' in base units per MiB.
  const economy::Price asked =
      node->market().oracle().Current().prices[static_cast<size_t>(economy::Resource::kReadGib)];
  const unsigned __int128 offered =
      static_cast<unsigned __int128>(t->price_per_mib) * 1024 * 1'000'000;
  if (offered < asked)
    return ApiResponse::Error(Status::Refused(fmt::format(
        "read terms: {} per MiB is under this node's read price of {} per GiB ({} per MiB, "
        "rounded up)",
        node->policy().FormatAmount(t->price_per_mib), node->policy().FormatPrice(asked),
        node->policy().FormatAmount((asked + 1024 * 1'000'000 - 1) / (1024 * 1'000'000)))));
  const ledger::KeyBytes provider = key.GetPublicKey().bytes();
  const std::string bytes = ledger::ReadAcceptanceSigningBytes(payer, seq, epoch, provider, amount,
                                                               *t, node->policy().network_id);
  return ApiResponse::Json(200,
                           json{{"provider", wallet::AddressOf(key.GetPublicKey())},
                                {"acceptance", core::ToHex(key.Sign(core::AsBytes(bytes)).bytes())},
                                {"kind", "read"},
                                {"chunk_bytes", ledger::kReadChunkBytes}});
}

}  // namespace

std::vector<RouteSpec> EscrowRoutes(Node* node) {
  std::vector<RouteSpec> t;
  t.push_back({.methods = "POST",
               .pattern = "/v1/ledger/settlements",
               .body = BodyKind::kJson,
               .max_json_body = ledger::kMaxSettlementBodyBytes,
               .lane = Lane::kVerify,
               .handler = [node](const ApiRequest& r) {
                 return WithAuthorityAndHex(
                     node, r, "settlement", [node](ledger::Authority* a, const std::string& wire) {
                       auto s = ledger::DecodeSettlement(wire, a->network_id());
                       if (!s) {
                         CountLedgerVote(node->metrics(), kLedgerSettlement, s.error());
                         return ApiResponse::Error(s.error());
                       }
                       auto vote = a->HandleSettlement(*s);
                       CountLedgerVote(node->metrics(), kLedgerSettlement, vote.status());
                       if (!vote) return LedgerRefusal(vote.error());
                       return ApiResponse::Json(
                           200, json{{"vote", core::ToHex(ledger::EncodeVote(*vote))},
                                     {"authority", vote->authority},
                                     {"settlement_hash", core::ToHex(s->hash)}});
                     });
               }});
  t.push_back({.methods = "POST",
               .pattern = "/v1/ledger/settlement-certificates",
               .body = BodyKind::kJson,
               .max_json_body = ledger::kMaxSettlementBodyBytes,
               .lane = Lane::kVerify,
               .handler = [node](const ApiRequest& r) {
                 return WithAuthorityAndHex(
                     node, r, "certificate", [node](ledger::Authority* a, const std::string& wire) {
                       auto c = ledger::DecodeSettleCertificate(wire, a->network_id());
                       if (!c) {
                         CountLedgerApply(node->metrics(), kLedgerSettlement, c.error(), false);
                         return ApiResponse::Error(c.error());
                       }
                       auto outcome = a->HandleSettleCertificate(*c);
                       const bool now = outcome && *outcome == ledger::ApplyOutcome::kApplied;
                       CountLedgerApply(node->metrics(), kLedgerSettlement, outcome.status(), now);
                       if (!outcome) return LedgerRefusal(outcome.error());
                       return ApiResponse::Json(
                           200, json{{"outcome", now ? "applied" : "already_applied"},
                                     {"settlement_hash", core::ToHex(c->settlement.hash)}});
                     });
               }});
  t.push_back({.methods = "GET",
               .pattern = "/v1/ledger/settlement-certificates/{id}",
               .lane = Lane::kRead,
               .handler = [node](const ApiRequest& r) {
                 return WithAuthorityAndEscrow(
                     node, r, [](ledger::Authority* a, const crypto::Hash& id) {
                       auto certs = a->SettleCertificates(id);
                       if (!certs) return ApiResponse::Error(certs.error());
                       json list = json::array();
                       for (const auto& c : *certs) list.push_back(core::ToHex(c));
                       return ApiResponse::Json(200, json{{"certificates", list}});
                     });
               }});
  t.push_back({.methods = "GET",
               .pattern = "/v1/ledger/beacon/{slot}",
               .lane = Lane::kVerify,
               .handler = [node](const ApiRequest& r) {
                 auto a = LedgerAuthority(node);
                 if (!a) return ApiResponse::Error(a.error());
                 auto slot = DecimalParam(r.route.params.at("slot"), "beacon slot");
                 if (!slot) return ApiResponse::Error(slot.error());
                 auto vote = (*a)->BeaconShare(*slot);
                 CountLedgerVote(node->metrics(), kLedgerBeacon, vote.status());
                 if (!vote) return ApiResponse::Error(vote.error());
                 return ApiResponse::Json(200,
                                          json{{"vote", core::ToHex(ledger::EncodeVote(*vote))},
                                               {"authority", vote->authority},
                                               {"slot", *slot}});
               }});
  t.push_back({.methods = "GET",
               .pattern = "/v1/ledger/escrows/{id}",
               .lane = Lane::kRead,
               .handler = [node](const ApiRequest& r) {
                 return WithAuthorityAndEscrow(
                     node, r, [node](ledger::Authority* a, const crypto::Hash& id) {
                       auto e = a->Escrow(id);
                       if (!e) return ApiResponse::Error(e.error());
                       return ApiResponse::Json(200, EscrowJson(*e, node->policy(), node->NowMs()));
                     });
               }});
  t.push_back(
      {.methods = "GET",
       .pattern = "/v1/ledger/escrows",
       .lane = Lane::kRead,
       .handler = [node](const ApiRequest& r) {
         auto a = LedgerAuthority(node);
         if (!a) return ApiResponse::Error(a.error());
         std::string party, error;
         if (!QueryValue(r.route.query, "party", &party, &error) || !error.empty())
           return ApiResponse::Error(Status::InvalidArgument(
               error.empty() ? "give ?party=ADDRESS (a payer or a provider)" : error));
         auto key = wallet::PublicKeyFromAddress(party);
         if (!key) return ApiResponse::Error(key.error());
         crypto::Hash after{};
         std::string v;
         if (QueryValue(r.route.query, "after", &v, &error)) {
           auto bytes = core::FromHex(v);
           if (!bytes || bytes->size() != after.size())
             return ApiResponse::Error(Status::InvalidArgument(
                 "after= must be an escrow id (64 hex digits): the last of the page before"));
           std::memcpy(after.data(), bytes->data(), after.size());
         }
         uint64_t limit = kEscrowPage;
         if (QueryValue(r.route.query, "limit", &v, &error)) {
           auto n = DecimalParam(v, "limit=");
           if (!n || *n == 0 || *n > kEscrowPage)
             return ApiResponse::Error(
                 Status::InvalidArgument(fmt::format("limit= must be 1 to {}", kEscrowPage)));
           limit = *n;
         }
         if (!error.empty()) return ApiResponse::Error(Status::InvalidArgument(error));
         auto list = (*a)->OpenEscrows(key->bytes(), limit, after);
         if (!list) return ApiResponse::Error(list.error());
         json out = json::array();
         for (const auto& e : *list) out.push_back(EscrowJson(e, node->policy(), node->NowMs()));
         // A full page may have more after it: the next starts after its last id.
         const json next = list->size() == limit ? json(core::ToHex(list->back().id)) : json();
         return ApiResponse::Json(200,
                                  json{{"party", party}, {"escrows", out}, {"next_after", next}});
       }});
  t.push_back(
      {.methods = "POST",
       .pattern = "/v1/escrows/accept",
       .body = BodyKind::kJson,
       .lane = Lane::kRead,
       .handler = [node](const ApiRequest& r) {
         const crypto::bls::SecretKey* key = node->wallet_key();
         if (!key)
           return ApiResponse::Error(
               Status::NotFound("this node has no WALLET: it cannot accept escrows (set WALLET and "
                                "WALLET_PASSPHRASE_FILE in its config)"));
         if (node->mesh() != nullptr && node->mesh()->leaving())
           return ApiResponse::Error(Status::Refused(
               "this node is leaving the mesh (dfrp-mesh leave): it takes no new contracts"));
         json j = json::parse(r.body, nullptr, false);
         if (j.is_discarded() || !j.is_object())
           return ApiResponse::Error(Status::InvalidArgument("the body must be a JSON object"));
         auto seq = UintField(j, "seq");
         auto amount = UintField(j, "amount_base_units");
         if (!seq) return ApiResponse::Error(seq.error());
         // The committee epoch the payer's order is for (0 when not given).
         auto epoch = j.contains("epoch") ? UintField(j, "epoch") : core::Result<uint64_t>(0);
         if (!epoch) return ApiResponse::Error(epoch.error());
         if (!amount || *amount == 0)
           return ApiResponse::Error(
               Status::InvalidArgument("\"amount_base_units\" must be more than 0"));
         if (!j.contains("payer") || !j["payer"].is_string())
           return ApiResponse::Error(Status::InvalidArgument("\"payer\" must be an address"));
         auto payer = wallet::PublicKeyFromAddress(j["payer"].get<std::string>());
         if (!payer) return ApiResponse::Error(payer.error());
         auto terms_bytes = HexField(r.body, "terms_hex");
         if (!terms_bytes) return ApiResponse::Error(terms_bytes.error());
         const std::string kind = j.value("kind", std::string("storage"));
         if (kind == "read")
           return AcceptRead(node, *key, payer->bytes(), *seq, *epoch, *amount, *terms_bytes);
         if (kind == "job") {
           // A compute escrow: the job itself comes along, to be checked and quoted.
           if (!node->compute())
             return ApiResponse::Error(Status::NotFound(
                 "this node takes no compute jobs: it needs ROLES with compute and a WALLET"));
           auto job = HexField(r.body, "job_hex");
           if (!job) return ApiResponse::Error(job.error());
           auto terms = ledger::DecodeJobTerms(*terms_bytes);
           if (!terms) return ApiResponse::Error(terms.error());
           auto sig =
               node->compute()->AcceptEscrow(*job, payer->bytes(), *seq, *epoch, *amount, *terms);
           if (!sig) return ApiResponse::Error(sig.error());
           return ApiResponse::Json(200, json{{"provider", wallet::AddressOf(key->GetPublicKey())},
                                              {"acceptance", core::ToHex(*sig)},
                                              {"kind", "job"}});
         }
         if (kind != "storage")
           return ApiResponse::Error(Status::InvalidArgument(fmt::format(
               "\"kind\" is {:?}: \"storage\", \"read\" or \"job\"", kind.substr(0, 40))));
         auto terms = ledger::DecodeTerms(*terms_bytes);
         if (!terms) return ApiResponse::Error(terms.error());
         if (!ledger::AuditAnswerFits(*terms))
           return ApiResponse::Error(Status::InvalidArgument(fmt::format(
               "terms: an audit answer of {} challenges of {}-byte leaves can take {} bytes, more "
               "than a release carries ({})",
               terms->challenges, terms->leaf_size, ledger::MaxAuditAnswerBytes(*terms),
               ledger::kMaxSettlementWireBytes)));
         const auto& sp = node->policy().storage;
         if (terms->period_seconds != sp.period_seconds ||
             terms->challenges < sp.challenges_per_period)
           return ApiResponse::Error(Status::InvalidArgument(fmt::format(
               "terms: periods of {} s with {} challenges; the committee's policy is {} s with at "
               "least {}",
               terms->period_seconds, terms->challenges, sp.period_seconds,
               sp.challenges_per_period)));
         // Only a shard this node holds, exactly as the terms describe it.
         auto info = node->Stat(terms->shard_id);
         if (!info) return ApiResponse::Error(info.error());
         const auto& loc = info->location;
         if (loc.root != terms->root || loc.payload_len != terms->size ||
             loc.leaf_size != terms->leaf_size)
           return ApiResponse::Error(Status::InvalidArgument(fmt::format(
               "terms: shard {} here has root {}, {} bytes, leaves of {}; the terms say {}, {}, {}",
               terms->shard_id.ToString(), core::ToHex(loc.root), loc.payload_len, loc.leaf_size,
               core::ToHex(terms->root), terms->size, terms->leaf_size)));
         const ledger::KeyBytes provider = key->GetPublicKey().bytes();
         const std::string bytes = ledger::AcceptanceSigningBytes(
             payer->bytes(), *seq, *epoch, provider, *amount, *terms, node->policy().network_id);
         const ledger::SigBytes sig = key->Sign(core::AsBytes(bytes)).bytes();
         return ApiResponse::Json(200, json{{"provider", wallet::AddressOf(key->GetPublicKey())},
                                            {"acceptance", core::ToHex(sig)},
                                            {"shard_id", terms->shard_id.ToString()}});
       }});
  t.push_back({.methods = "GET",
               .pattern = "/v1/read-receipts/{id}",
               .lane = Lane::kRead,
               .handler = [node](const ApiRequest& r) {
                 ReadDesk* desk = node->read_desk();
                 if (!desk)
                   return ApiResponse::Error(Status::NotFound(
                       "this node takes no paid reads: it needs the storage role, a WALLET and a "
                       "committee"));
                 auto id = EscrowIdParam(r.route.params.at("id"));
                 if (!id) return ApiResponse::Error(id.error());
                 const auto best = desk->Best(*id);
                 return ApiResponse::Json(
                     200, json{{"escrow", core::ToHex(*id)},
                               {"bytes_total", best ? best->bytes_total : 0},
                               {"receipt", best ? json(core::ToHex(best->wire)) : json()}});
               }});
  return t;
}

}  // namespace dfrp::node
