#include "dfrp/ledger/client.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <type_traits>

#include "dfrp/ledger/wire.h"
#include "dfrp/node/client.h"
#include "dfrp/node/peer_client.h"
#include "dfrp/wallet/address.h"

namespace dfrp::ledger {

using core::Err;
using core::Result;
using core::Status;
using nlohmann::json;

namespace {

// Each authority call's whole exchange must end within this.
constexpr int kRequestTimeoutMs = 10'000;

// Runs fn(i) for every i < n on threads of their own; returns when all are done. An exception
// out of fn (a malformed answer that slipped past a check) is caught: it must not end the
// process from a thread.
template <typename Fn>
void ForEachParallel(size_t n, Fn fn) {
  std::vector<std::thread> threads;
  for (size_t i = 0; i < n; ++i)
    threads.emplace_back([&fn, i] {
      try {
        fn(i);
      } catch (const std::exception&) {
      }
    });
  for (auto& t : threads) t.join();
}

// A field of an authority's JSON answer, of the expected type, or nullopt.
std::optional<std::string> StringField(const json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_string()) return std::nullopt;
  return j[key].get<std::string>();
}
template <typename T>
std::optional<T> IntField(const json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_number_integer()) return std::nullopt;
  if (std::is_unsigned_v<T> && !j[key].is_number_unsigned() && j[key].get<int64_t>() < 0)
    return std::nullopt;
  return j[key].get<T>();
}

std::string Hex(std::string_view bytes) { return core::ToHex(bytes); }

}  // namespace

Result<std::string> HostPortOfUrl(const std::string& url) {
  constexpr std::string_view kHttp = "http://";
  std::string_view rest(url);
  if (!rest.starts_with(kHttp))
    return Err(Status::InvalidArgument(
        fmt::format("authority url '{}' is not http://HOST:PORT", url.substr(0, 80))));
  rest.remove_prefix(kHttp.size());
  while (rest.ends_with('/')) rest.remove_suffix(1);
  if (rest.empty() || rest.find('/') != std::string_view::npos ||
      rest.find(':') == std::string_view::npos)
    return Err(Status::InvalidArgument(
        fmt::format("authority url '{}' is not http://HOST:PORT", url.substr(0, 80))));
  return std::string(rest);
}

Result<LedgerClient> LedgerClient::Make(const economy::EconomicPolicy& policy,
                                        std::vector<std::string> urls) {
  const auto& members = policy.genesis.committee;
  std::vector<std::pair<std::string, std::string>> keys;
  for (const auto& m : members) keys.emplace_back(m.public_key_hex, m.pop_hex);
  if (keys.empty())
    return Err(Status::InvalidArgument(fmt::format(
        "{} has no committee (genesis.committee): there is no ledger to send to", policy.source)));
  DFRP_ASSIGN_OR_RETURN(Committee c, Committee::Make(0, keys));
  if (urls.empty())
    for (const auto& m : members) urls.push_back(m.url);
  if (urls.size() != members.size())
    return Err(Status::InvalidArgument(fmt::format(
        "{} authority urls for a committee of {}: give one per member, in committee order",
        urls.size(), members.size())));
  for (const auto& u : urls) DFRP_RETURN_IF_ERROR(HostPortOfUrl(u).status());
  return LedgerClient(policy, std::move(c), std::move(urls));
}

Result<uint64_t> LedgerClient::RefreshEpoch() {
  std::vector<uint64_t> seen;
  std::mutex mu;
  ForEachParallel(urls_.size(), [&](size_t a) {
    auto r = Get(a, "/v1/ledger/committee");
    if (!r || !r->contains("epoch") || !(*r)["epoch"].is_number_unsigned()) return;
    std::lock_guard<std::mutex> lock(mu);
    seen.push_back((*r)["epoch"].get<uint64_t>());
  });
  const size_t need = committee_.faults() + 1;
  if (seen.size() < need)
    return Err(Status::Busy(fmt::format(
        "{} of the committee's {} authorities told their epoch, {} must: try again later",
        seen.size(), urls_.size(), need)));
  std::sort(seen.begin(), seen.end(), std::greater<>());
  const uint64_t e = seen[need - 1];  // f + 1 authorities have reached it
  epoch_->store(e);
  return e;
}

std::shared_ptr<node::PeerClient> LedgerClient::MakePeerClient() {
  // No retries here: a call that fails is the round's answer from that authority (the
  // quorum does not wait for it), and the callers retry what is worth it themselves.
  return std::make_shared<node::PeerClient>(
      node::PeerClientOptions{.max_connections_per_peer = 32,
                              .max_queue_per_peer = 1024,
                              .connect_timeout_ms = 3000,
                              .request_timeout_ms = kRequestTimeoutMs,
                              .retries = 0,
                              .max_body_bytes = 16 << 20});
}

Result<json> LedgerClient::Post(size_t a, const std::string& target, const json& body) {
  node::DaemonInfo info;
  info.url = urls_[a];
  DFRP_ASSIGN_OR_RETURN(info.api_addr, HostPortOfUrl(urls_[a]));
  node::PeerRequest req;
  req.url = urls_[a];
  req.method = body.is_null() ? "GET" : "POST";
  req.target = target;
  req.headers = {{"Content-Type", "application/json"}};
  req.body = body.is_null() ? "" : body.dump();
  // An order sent twice gets the same vote; a certificate applied twice moves nothing.
  req.idempotent = true;
  DFRP_ASSIGN_OR_RETURN(node::HttpResponse r, peers_->Call(std::move(req)));
  if (r.status / 100 != 2) return Err(node::StatusFromResponse(info, r));
  json j = json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Err(Status::IOError(
        fmt::format("authority {} ({}) answered {} with no JSON object", a, urls_[a], target)));
  return j;
}

Result<json> LedgerClient::Get(size_t a, const std::string& target) {
  return Post(a, target, json());
}

Status LedgerClient::Sync(size_t a, const KeyBytes& sender) {
  const std::string address = AddressOfKey(sender);
  DFRP_ASSIGN_OR_RETURN(json mine, Get(a, "/v1/ledger/accounts/" + address));
  const auto start = IntField<uint64_t>(mine, "next_seq");
  if (!start)
    return Status::IOError(fmt::format("authority {} answered an account without next_seq", a));
  uint64_t from = *start;
  bool any = false;
  // Every peer in turn (the receiving authority verifies what it is sent, so a peer's
  // garbage costs only time); pages of up to 1000 certificates until a peer has no more.
  for (size_t peer = 0; peer < urls_.size(); ++peer) {
    if (peer == a) continue;
    for (bool more = true; more;) {
      more = false;
      auto certs = Get(peer, fmt::format("/v1/ledger/certificates/{}?from={}", address, from));
      if (!certs || !certs->contains("certificates") || !(*certs)["certificates"].is_array()) break;
      for (const auto& hex : (*certs)["certificates"]) {
        if (!hex.is_string()) break;
        auto sent = Post(a, "/v1/ledger/certificates", json{{"certificate", hex}});
        if (!sent) break;  // this peer's list is no good: try the next peer
        ++from;
        any = more = true;
      }
    }
  }
  if (any) return Status::OK();
  return Status::NotFound(fmt::format(
      "no other authority has certificates of {} from sequence number {} on", address, from));
}

LedgerClient::Gathered LedgerClient::GatherVotes(
    const std::string& target, const json& body, const crypto::Hash& item, uint64_t epoch,
    const std::function<bool(size_t, const Status&)>& resync) {
  const Committee committee = committee_.AtEpoch(epoch);
  Gathered g;
  std::mutex mu;
  ForEachParallel(urls_.size(), [&](size_t a) {
    auto ask = [&]() { return body.is_null() ? Get(a, target) : Post(a, target, body); };
    auto r = ask();
    if (!r && resync(a, r.error())) r = ask();
    std::lock_guard<std::mutex> lock(mu);
    if (!r) {
      g.notes.push_back(fmt::format("authority {} ({}): {}", a, urls_[a], r.error().message()));
      if (r.error().code() == Status::Code::kRefused) {
        ++g.refused;
        if (g.first_refusal.ok()) g.first_refusal = r.error();
      }
      // Only a verdict on the order is an answer; an authority that could not be reached (or
      // broke the exchange) is as good as one that did not answer.
      const auto code = r.error().code();
      if (code == Status::Code::kRefused || code == Status::Code::kInvalidArgument ||
          code == Status::Code::kCorruption)
        ++g.answered;
      return;
    }
    const auto vote_hex = StringField(*r, "vote");
    auto bytes = vote_hex ? core::FromHex(*vote_hex) : std::nullopt;
    auto vote = bytes ? DecodeVote(*bytes) : Result<Vote>(Err(Status::InvalidArgument("not hex")));
    Status ok = vote ? Status::OK() : vote.error();
    if (ok.ok() && (vote->order_hash != item || vote->authority != a || vote->epoch != epoch))
      ok = Status::Corruption("a vote for something else, another epoch or from another authority");
    // A bad vote counts as no answer: that authority is faulty, and the order may still
    // gather a quorum (Busy, try again), whatever it says.
    if (!ok.ok()) {
      g.notes.push_back(
          fmt::format("authority {} ({}): a bad vote: {}", a, urls_[a], ok.message()));
      return;
    }
    ++g.answered;
    g.votes.push_back(*vote);
  });
  // The signatures: all at once as one aggregate (a single pairing check instead of one per
  // vote); only when that fails, one by one, to keep the good votes and name the bad ones.
  std::vector<Vote> unchecked = std::move(g.votes);
  g.votes.clear();
  if (unchecked.size() >= committee.quorum()) {
    auto q = wire::AggregateVotes(item, unchecked, committee, committee.quorum());
    if (q && wire::VerifyQuorum(*q, item, committee, network_id(), "votes", false, verifier_.get())
                 .ok()) {
      g.votes = std::move(unchecked);
      return g;
    }
  }
  for (const Vote& v : unchecked) {
    Status ok = VerifyVote(v, committee, network_id(), verifier_.get());
    if (ok.ok()) {
      g.votes.push_back(v);
    } else {
      --g.answered;
      g.notes.push_back(fmt::format("authority {} ({}): a bad vote: {}", v.authority,
                                    urls_[v.authority], ok.message()));
    }
  }
  return g;
}

Status LedgerClient::ShortOfQuorum(const Gathered& g, size_t need) const {
  std::string why = fmt::format("{} valid votes of the {} needed (committee of {})", g.votes.size(),
                                need, urls_.size());
  for (const auto& note : g.notes) why += "; " + note;
  if (!g.first_refusal.ok()) return Status::Refused(why);
  if (g.answered < need) return Status::Busy(why);
  return Status::InvalidArgument(why);
}

Result<SubmitResult> LedgerClient::Submit(const SignedOrder& order, bool* locked_nowhere) {
  const std::string wire_hex = Hex(EncodeSignedOrder(order, network_id()));
  // Perhaps an authority lags behind this sender ("not its next"): Sync is ok only when it
  // sent the authority certificates it lacked; then ask again.
  Gathered g = GatherVotes("/v1/ledger/orders", json{{"order", wire_hex}}, order.hash,
                           order.order.epoch, [&](size_t a, const Status& e) {
                             return e.code() == Status::Code::kInvalidArgument &&
                                    Sync(a, order.order.sender).ok();
                           });
  if (locked_nowhere) *locked_nowhere = false;
  if (g.votes.size() < quorum()) {
    // A refusal for funds takes no lock; a refusal for another locked order means that other
    // order holds the lock, not this one.
    if (locked_nowhere) *locked_nowhere = g.votes.empty() && g.refused == urls_.size();
    return Err(ShortOfQuorum(g, quorum()));
  }
  SubmitResult out;
  out.votes = g.votes.size();
  DFRP_ASSIGN_OR_RETURN(out.certificate,
                        MakeCertificate(order, g.votes, committee_.AtEpoch(order.order.epoch)));
  out.certificate_wire = EncodeCertificate(out.certificate, network_id());
  out.applied = BroadcastCertificate(out.certificate, out.certificate_wire, &g.notes);
  out.notes = std::move(g.notes);
  return out;
}

Result<size_t> LedgerClient::Broadcast(const std::string& wire) {
  DFRP_ASSIGN_OR_RETURN(Certificate cert, DecodeCertificate(wire, network_id()));
  DFRP_RETURN_IF_ERROR(VerifyCertificate(cert, committee_.AtEpoch(cert.epoch), network_id()));
  std::vector<std::string> notes;
  const size_t applied = BroadcastCertificate(cert, wire, &notes);
  if (applied < quorum()) {
    std::string why = fmt::format(
        "the certificate was applied by {} authorities, fewer than the quorum of {}: send it "
        "again later",
        applied, quorum());
    for (const auto& note : notes) why += "; " + note;
    return Err(Status::Busy(why));
  }
  return applied;
}

size_t LedgerClient::SendToAll(const std::string& target, const std::string& wire,
                               const std::function<bool(size_t)>& resync,
                               std::vector<std::string>* notes) {
  const std::string hex = Hex(wire);
  std::mutex mu;
  size_t applied = 0;
  ForEachParallel(urls_.size(), [&](size_t a) {
    auto send = [&]() { return Post(a, target, json{{"certificate", hex}}); };
    auto r = send();
    if (!r && r.error().code() == Status::Code::kNotFound && resync(a)) r = send();
    std::lock_guard<std::mutex> lock(mu);
    if (r)
      ++applied;
    else
      notes->push_back(fmt::format("authority {}: {}", a, r.error().message()));
  });
  return applied;
}

size_t LedgerClient::BroadcastCertificate(const Certificate& cert, const std::string& wire,
                                          std::vector<std::string>* notes) {
  return SendToAll(
      "/v1/ledger/certificates", wire,
      [&](size_t a) { return Sync(a, cert.order.order.sender).ok(); }, notes);
}

Status LedgerClient::SyncEscrow(size_t a, const crypto::Hash& escrow_id) {
  // The payer is named by any authority that has the escrow (the one lacking it syncs from
  // the payer's certificates, which it verifies).
  for (size_t peer = 0; peer < urls_.size(); ++peer) {
    if (peer == a) continue;
    auto e = Get(peer, "/v1/ledger/escrows/" + core::ToHex(escrow_id));
    if (!e) continue;
    const auto payer = StringField(*e, "payer");
    auto key = payer ? wallet::PublicKeyFromAddress(*payer)
                     : core::Result<crypto::bls::PublicKey>(Err(Status::NotFound("")));
    if (!key) continue;
    if (Sync(a, key->bytes()).ok()) return Status::OK();  // else another peer may do better
  }
  return Status::NotFound("no other authority knows the escrow");
}

Result<SettleResult> LedgerClient::Settle(const Settlement& s) {
  const std::string hex = Hex(SettlementBytes(s, network_id()));
  Gathered g =
      GatherVotes("/v1/ledger/settlements", json{{"settlement", hex}}, s.hash, s.epoch,
                  [&](size_t a, const Status& e) {
                    return e.code() == Status::Code::kNotFound && SyncEscrow(a, s.escrow_id).ok();
                  });
  if (g.votes.size() < quorum()) return Err(ShortOfQuorum(g, quorum()));
  SettleResult out;
  out.votes = g.votes.size();
  DFRP_ASSIGN_OR_RETURN(out.certificate,
                        MakeSettleCertificate(s, g.votes, committee_.AtEpoch(s.epoch)));
  out.certificate_wire = EncodeSettleCertificate(out.certificate, network_id());
  out.applied = SendToAll(
      "/v1/ledger/settlement-certificates", out.certificate_wire,
      [&](size_t a) { return SyncEscrow(a, s.escrow_id).ok(); }, &g.notes);
  out.notes = std::move(g.notes);
  return out;
}

Result<size_t> LedgerClient::BroadcastSettlement(const std::string& wire) {
  DFRP_ASSIGN_OR_RETURN(SettleCertificate cert, DecodeSettleCertificate(wire, network_id()));
  DFRP_RETURN_IF_ERROR(VerifySettleCertificate(cert, committee_.AtEpoch(cert.epoch), network_id()));
  std::vector<std::string> notes;
  const size_t applied = SendToAll(
      "/v1/ledger/settlement-certificates", wire,
      [&](size_t a) { return SyncEscrow(a, cert.settlement.escrow_id).ok(); }, &notes);
  if (applied < quorum()) {
    std::string why = fmt::format(
        "the settlement certificate was applied by {} authorities, fewer than the quorum of {}: "
        "send it again later",
        applied, quorum());
    for (const auto& note : notes) why += "; " + note;
    return Err(Status::Busy(why));
  }
  return applied;
}

Result<Beacon> LedgerClient::GetBeacon(uint64_t slot) {
  const uint64_t e = epoch();
  Gathered g = GatherVotes(fmt::format("/v1/ledger/beacon/{}", slot), json(),
                           BeaconItemHash(slot, e, network_id()), e,
                           [](size_t, const Status&) { return false; });
  if (g.votes.size() < quorum()) return Err(ShortOfQuorum(g, quorum()));
  return MakeBeacon(slot, g.votes, committee_.AtEpoch(e));
}

namespace {

// One authority's escrow JSON (escrow_routes.cc) as a view of one answer.
Result<EscrowView> ParseEscrow(const json& j) {
  const auto id = StringField(j, "id");
  const auto terms_hex = StringField(j, "terms_hex");
  const auto payer = StringField(j, "payer");
  const auto provider = StringField(j, "provider");
  const auto amount = IntField<uint64_t>(j, "amount_base_units");
  const auto remaining = IntField<uint64_t>(j, "remaining_base_units");
  const auto bps = IntField<uint32_t>(j, "margin_bps");
  auto id_bytes = id ? core::FromHex(*id) : std::nullopt;
  auto terms_bytes = terms_hex ? core::FromHex(*terms_hex) : std::nullopt;
  const std::string kind = StringField(j, "kind").value_or("storage");
  const bool is_read = kind == "read";
  const bool is_job = kind == "job";
  auto terms =
      terms_bytes && !is_read && !is_job
          ? DecodeTerms(*terms_bytes)
          : Result<StorageTerms>(is_read || is_job ? Result<StorageTerms>(StorageTerms{})
                                                   : Err(Status::InvalidArgument("no terms")));
  auto job = terms_bytes && is_job
                 ? DecodeJobTerms(*terms_bytes)
                 : Result<JobTerms>(is_job ? Err(Status::InvalidArgument("no terms"))
                                           : Result<JobTerms>(JobTerms{}));
  auto read = terms_bytes && is_read
                  ? DecodeReadTerms(*terms_bytes)
                  : Result<ReadTerms>(is_read ? Err(Status::InvalidArgument("no terms"))
                                              : Result<ReadTerms>(ReadTerms{}));
  auto payer_key = payer ? wallet::PublicKeyFromAddress(*payer)
                         : Result<crypto::bls::PublicKey>(Err(Status::InvalidArgument("")));
  auto provider_key = provider ? wallet::PublicKeyFromAddress(*provider)
                               : Result<crypto::bls::PublicKey>(Err(Status::InvalidArgument("")));
  if (!id_bytes || id_bytes->size() != 32 || !terms || !read || !job || !payer_key ||
      !provider_key || !amount || !remaining || !bps || !j.contains("settled") ||
      !j["settled"].is_array())
    return Err(Status::IOError("an escrow answer without its fields"));
  EscrowView v;
  v.is_read = is_read;
  v.read = *read;
  v.is_job = is_job;
  v.job = *job;
  if (is_read) {
    const auto redeemed = IntField<uint64_t>(j, "redeemed_bytes");
    const auto voted = IntField<uint64_t>(j, "max_voted_bytes");
    if (!redeemed || !voted || !j.contains("closed") || !j["closed"].is_boolean())
      return Err(Status::IOError("a read escrow answer without its fields"));
    v.redeemed_bytes = *redeemed;
    v.max_voted_bytes = std::max(*voted, *redeemed);
    v.closed = j["closed"].get<bool>();
  }
  if (is_job && j.contains("collateral") && j["collateral"].is_object()) {
    const json& c = j["collateral"];
    v.collateral_held = IntField<uint64_t>(c, "held_base_units").value_or(0);
    v.collateral_to_provider = IntField<uint64_t>(c, "to_provider_base_units").value_or(0);
    v.collateral_to_payer = IntField<uint64_t>(c, "to_payer_base_units").value_or(0);
  }
  std::memcpy(v.id.data(), id_bytes->data(), 32);
  v.remaining = *remaining;
  v.terms = *terms;
  v.payer = payer_key->bytes();
  v.provider = provider_key->bytes();
  v.amount = *amount;
  v.margin_bps = *bps;
  v.owner = StringField(j, "owner").value_or("");
  for (const auto& p : j["settled"]) {
    const auto period = IntField<uint32_t>(p, "period");
    const auto kind = StringField(p, "kind");
    const auto paid = IntField<uint64_t>(p, "paid_base_units");
    const auto margin = IntField<uint64_t>(p, "margin_base_units");
    SettleKind k = SettleKind::kRelease;
    bool known = false;
    for (SettleKind s : {SettleKind::kRelease, SettleKind::kRefund, SettleKind::kJobRelease,
                         SettleKind::kJobRefund})
      if (kind && *kind == SettleKindName(s)) {
        k = s;
        known = true;
      }
    if (!period || !kind || !paid || !margin || !known)
      return Err(Status::IOError("a malformed settled period"));
    v.settled[*period] = {*period, k, *paid, *margin};
  }
  v.answers = 1;
  return v;
}

// What identifies an escrow's terms in one authority's answer.
std::string IdentityOf(const EscrowView& v) {
  return core::ToHex(v.payer) + core::ToHex(v.provider) +
         (v.is_read  ? "read" + EncodeReadTerms(v.read)
          : v.is_job ? "job" + EncodeJobTerms(v.job)
                     : EncodeTerms(v.terms)) +
         "/" + std::to_string(v.amount) + "/" + v.owner + "/" + std::to_string(v.margin_bps);
}

// Several authorities' answers about one escrow (one answer each) merged: the terms that at
// least `need` (f + 1, so one honest) of them report, and a period as settled when `need` of
// them report it settled the same way; `remaining` the least of those agreeing. A lying
// authority can neither change the provider nor mark a period paid.
std::optional<EscrowView> Agree(const std::vector<EscrowView>& views, size_t need,
                                std::vector<std::string>* notes) {
  std::map<std::string, std::vector<const EscrowView*>> by_identity;
  for (const auto& v : views) by_identity[IdentityOf(v)].push_back(&v);
  for (const auto& [identity, agreeing] : by_identity) {
    if (agreeing.size() < need) continue;
    EscrowView out = *agreeing.front();
    out.answers = agreeing.size();
    out.settled.clear();
    std::map<std::pair<uint32_t, SettleKind>, size_t> votes;
    for (const EscrowView* v : agreeing) {
      out.remaining = std::min(out.remaining, v->remaining);
      for (const auto& [k, p] : v->settled) ++votes[{k, p.kind}];
    }
    for (const EscrowView* v : agreeing)
      for (const auto& [k, p] : v->settled)
        if (votes[{k, p.kind}] >= need) out.settled[k] = p;
    // Read escrows: the need-th highest of each figure is one at least `need` report (one of
    // them honest); closed when `need` report it.
    auto nth_highest = [&](auto field) {
      std::vector<uint64_t> xs;
      for (const EscrowView* v : agreeing) xs.push_back(field(*v));
      std::sort(xs.begin(), xs.end(), std::greater<>());
      return xs[need - 1];
    };
    out.redeemed_bytes = nth_highest([](const EscrowView& v) { return v.redeemed_bytes; });
    out.max_voted_bytes = nth_highest([](const EscrowView& v) { return v.max_voted_bytes; });
    out.closed = nth_highest([](const EscrowView& v) -> uint64_t { return v.closed; }) > 0;
    out.collateral_held = nth_highest([](const EscrowView& v) { return v.collateral_held; });
    out.collateral_to_provider =
        nth_highest([](const EscrowView& v) { return v.collateral_to_provider; });
    out.collateral_to_payer =
        nth_highest([](const EscrowView& v) { return v.collateral_to_payer; });
    if (agreeing.size() < views.size())
      notes->push_back(fmt::format("{} of {} answers disagree on the escrow's terms",
                                   views.size() - agreeing.size(), views.size()));
    return out;
  }
  notes->push_back(fmt::format("no {} authorities agree on the escrow's terms", need));
  return std::nullopt;
}

}  // namespace

Result<EscrowView> LedgerClient::Escrow(const crypto::Hash& id) {
  const std::string target = "/v1/ledger/escrows/" + core::ToHex(id);
  std::vector<Result<json>> answers(urls_.size(), Err(Status::Busy("")));
  ForEachParallel(urls_.size(), [&](size_t a) { answers[a] = Get(a, target); });
  std::vector<EscrowView> views;
  std::vector<std::string> notes;
  for (size_t a = 0; a < answers.size(); ++a) {
    auto one = answers[a] ? ParseEscrow(*answers[a]) : Result<EscrowView>(Err(answers[a].error()));
    if (one && one->id == id)
      views.push_back(std::move(*one));
    else
      notes.push_back(
          fmt::format("authority {}: {}", a, one ? "another escrow" : one.error().message()));
  }
  std::optional<EscrowView> v = Agree(views, committee_.faults() + 1, &notes);
  if (!v) {
    std::string why = fmt::format("no {} authorities agree on escrow {}", committee_.faults() + 1,
                                  target.substr(19));
    for (const auto& note : notes) why += "; " + note;
    return Err(views.empty() ? Status::NotFound(why) : Status::Busy(why));
  }
  v->notes = std::move(notes);
  return std::move(*v);
}

Result<std::vector<EscrowView>> LedgerClient::OpenEscrows(const std::string& address) {
  std::vector<Result<json>> answers(urls_.size(), Err(Status::Busy("")));
  // Page by page (1,000 escrows each), each authority to its end.
  ForEachParallel(urls_.size(), [&](size_t a) {
    json all = json::array();
    std::string after;
    for (int page = 0; page < 10'000; ++page) {
      auto r =
          Get(a, "/v1/ledger/escrows?party=" + address + (after.empty() ? "" : "&after=" + after));
      if (!r || !r->contains("escrows") || !(*r)["escrows"].is_array()) {
        answers[a] = r ? Result<json>(json::object()) : r;
        return;
      }
      for (auto& e : (*r)["escrows"]) all.push_back(std::move(e));
      const json next = r->value("next_after", json());
      if (!next.is_string() || next.get<std::string>() <= after) break;
      after = next.get<std::string>();
    }
    answers[a] = json{{"escrows", std::move(all)}};
  });
  std::map<crypto::Hash, std::vector<EscrowView>> by_id;
  size_t answered = 0;
  std::string why;
  for (size_t a = 0; a < answers.size(); ++a) {
    if (!answers[a] || !answers[a]->contains("escrows") || !(*answers[a])["escrows"].is_array()) {
      why += fmt::format("; authority {}: {}", a,
                         answers[a] ? "no escrows list" : answers[a].error().message());
      continue;
    }
    ++answered;
    std::set<crypto::Hash> seen;  // one answer per authority and escrow
    for (const auto& e : (*answers[a])["escrows"]) {
      auto one = ParseEscrow(e);
      if (!one || !seen.insert(one->id).second) continue;
      by_id[one->id].push_back(std::move(*one));
    }
  }
  if (answered == 0) return Err(Status::Busy("no authority answered" + why));
  std::vector<EscrowView> out;
  for (auto& [id, views] : by_id) {
    std::vector<std::string> notes;
    if (auto v = Agree(views, committee_.faults() + 1, &notes)) {
      v->notes = std::move(notes);
      out.push_back(std::move(*v));
    }
  }
  return out;
}

Result<AccountView> LedgerClient::Account(const std::string& address) {
  std::mutex mu;
  std::map<uint64_t, std::vector<int64_t>> by_seq;  // next_seq -> the balances reported
  AccountView view;
  ForEachParallel(urls_.size(), [&](size_t a) {
    auto r = Get(a, "/v1/ledger/accounts/" + address);
    std::lock_guard<std::mutex> lock(mu);
    if (!r) {
      view.notes.push_back(fmt::format("authority {}: {}", a, r.error().message()));
      return;
    }
    const auto balance = IntField<int64_t>(*r, "balance_base_units");
    const auto next = IntField<uint64_t>(*r, "next_seq");
    if (!balance || !next) {
      view.notes.push_back(fmt::format("authority {}: an account answer without its fields", a));
      return;
    }
    ++view.answers;
    by_seq[*next].push_back(*balance);
  });
  // The sequence number a quorum agrees on; balances may differ while credits travel, so
  // the balance shown is the least of theirs (what the sender can count on).
  for (const auto& [next, balances] : by_seq)
    if (balances.size() >= quorum()) {
      view.next_seq = next;
      view.balance = *std::min_element(balances.begin(), balances.end());
      return view;
    }
  std::string why =
      fmt::format("no {} authorities agree on {} ({} answered)", quorum(), address, view.answers);
  for (const auto& note : view.notes) why += "; " + note;
  return Err(Status::Busy(why));
}

Result<AuthorityLog> LedgerClient::FetchLog(size_t a) {
  // The log and the reported state are read in several calls: if the authority applied more
  // meanwhile, everything is read again (a few times), so that they describe one moment.
  for (int attempt = 0;; ++attempt) {
    DFRP_ASSIGN_OR_RETURN(AuthorityLog log, FetchLogOnce(a));
    bool grew = false;
    for (const bool settle : {false, true}) {
      DFRP_ASSIGN_OR_RETURN(
          json more, Get(a, fmt::format("/v1/ledger/{}?from={}", settle ? "settlement-log" : "log",
                                        (settle ? log.settlements : log.certificates).size() + 1)));
      grew = grew || !more.contains("certificates") || !more["certificates"].is_array() ||
             !more["certificates"].empty();
    }
    if (!grew) return log;
    if (attempt == 4)
      return Err(Status::Busy(log.name +
                              " kept applying certificates while it was read: audit it again "
                              "once the traffic pauses"));
  }
}

Result<AuthorityLog> LedgerClient::FetchLogOnce(size_t a) {
  AuthorityLog log;
  log.name = fmt::format("authority {} ({})", a, urls_[a]);
  std::set<crypto::Hash> seen;
  for (const bool settle : {false, true}) {
    std::vector<std::string>& into = settle ? log.settlements : log.certificates;
    for (;;) {
      DFRP_ASSIGN_OR_RETURN(
          json page, Get(a, fmt::format("/v1/ledger/{}?from={}", settle ? "settlement-log" : "log",
                                        into.size() + 1)));
      if (!page.contains("certificates") || !page["certificates"].is_array())
        return Err(Status::IOError(log.name + " answered a log page without certificates"));
      if (page["certificates"].empty()) break;
      for (const auto& hex : page["certificates"]) {
        auto bytes = hex.is_string() ? core::FromHex(hex.get<std::string>()) : std::nullopt;
        if (!bytes) return Err(Status::IOError(log.name + " answered a log entry that is not hex"));
        // Each entry is checked as it comes: a faulty authority could otherwise serve an
        // endless log (forged entries, or real ones over and over). Only certificates a quorum
        // signed exist, and each may appear once, so the read ends.
        const Status ok = settle ? [&] {
          auto c = DecodeSettleCertificate(*bytes, network_id());
          return c ? VerifySettleCertificate(*c, committee_.AtEpoch(c->epoch), network_id())
                   : c.error();
        }()
                                 : [&] {
                                     auto c = DecodeCertificate(*bytes, network_id());
                                     return c ? VerifyCertificate(
                                                    *c, committee_.AtEpoch(c->epoch), network_id())
                                              : c.error();
                                   }();
        const size_t entry = into.size() + 1;
        if (!ok.ok())
          return Err(Status::Corruption(
              fmt::format("{} serves entry {} of its {} that is not a valid certificate: {}",
                          log.name, entry, settle ? "settlement log" : "log", ok.message())));
        if (!seen.insert(crypto::Sha256Of(*bytes)).second)
          return Err(
              Status::Corruption(fmt::format("{} serves entry {} of its {} twice in one log",
                                             log.name, entry, settle ? "settlement log" : "log")));
        into.push_back(std::move(*bytes));
      }
    }
  }
  log.signatures_verified = true;  // each entry above, as it came
  DFRP_ASSIGN_OR_RETURN(json accounts, Get(a, "/v1/ledger/accounts"));
  if (!accounts.contains("accounts") || !accounts["accounts"].is_array())
    return Err(Status::IOError(log.name + " answered no account list"));
  for (const auto& acct : accounts["accounts"]) {
    const auto key_hex = StringField(acct, "key");
    const auto balance = IntField<int64_t>(acct, "balance_base_units");
    const auto next = IntField<uint64_t>(acct, "next_seq");
    auto key = key_hex ? core::FromHex(*key_hex) : std::nullopt;
    if (!key || key->size() != 48 || !balance || !next)
      return Err(Status::IOError(log.name + " answered a malformed account"));
    KeyBytes k{};
    std::memcpy(k.data(), key->data(), 48);
    log.accounts[k] = {*balance, *next};
  }
  if (accounts.contains("collateral") && accounts["collateral"].is_array())
    for (const auto& c : accounts["collateral"]) {
      const auto id_hex = StringField(c, "escrow_id");
      const auto held = IntField<uint64_t>(c, "held_base_units");
      auto id = id_hex ? core::FromHex(*id_hex) : std::nullopt;
      if (!id || id->size() != 32 || !held)
        return Err(Status::IOError(log.name + " answered a malformed collateral entry"));
      crypto::Hash h{};
      std::memcpy(h.data(), id->data(), 32);
      log.collateral_held[h] = *held;
    }
  // The escrows its log opened, as it reports them.
  for (const auto& wire : log.certificates) {
    auto cert = DecodeCertificate(wire, network_id());
    if (!cert || !cert->order.order.opens_escrow()) continue;
    const crypto::Hash id = EscrowId(cert->order.order.sender, cert->order.order.seq);
    auto e = Get(a, "/v1/ledger/escrows/" + core::ToHex(id));
    if (!e) return Err(e.error());
    const auto remaining = IntField<uint64_t>(*e, "remaining_base_units");
    if (!remaining) return Err(Status::IOError(log.name + " answered an escrow without remaining"));
    log.escrow_remaining[id] = *remaining;
  }
  return log;
}

}  // namespace dfrp::ledger
