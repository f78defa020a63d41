#include "dfrp/ledger/client.h"

#include <fmt/format.h>

#include <map>
#include <mutex>
#include <thread>

#include "dfrp/node/client.h"
#include "dfrp/wallet/address.h"

namespace dfrp::ledger {

using core::Err;
using core::Result;
using core::Status;
using nlohmann::json;

namespace {

// Runs fn(i) for every i < n on threads of their own; returns when all are done.
template <typename Fn>
void ForEachParallel(size_t n, Fn fn) {
  std::vector<std::thread> threads;
  for (size_t i = 0; i < n; ++i) threads.emplace_back([&fn, i] { fn(i); });
  for (auto& t : threads) t.join();
}

std::string Hex(std::string_view bytes) { return core::ToHex(bytes); }

std::string SenderAddress(const KeyBytes& k) {
  auto key = KeyFrom(k);
  return key ? wallet::AddressOf(*key) : "?";
}

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

Result<json> LedgerClient::Post(size_t a, const std::string& target, const json& body) {
  node::DaemonInfo info;
  info.url = urls_[a];
  DFRP_ASSIGN_OR_RETURN(info.api_addr, HostPortOfUrl(urls_[a]));
  node::Client client(info, {.connect_timeout_ms = 3000, .max_body_bytes = 16 << 20});
  const std::string text = body.is_null() ? "" : body.dump();
  DFRP_ASSIGN_OR_RETURN(node::HttpResponse r,
                        client.Request(body.is_null() ? "GET" : "POST", target,
                                       {{"Content-Type", "application/json"}}, text));
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
  const std::string address = SenderAddress(sender);
  DFRP_ASSIGN_OR_RETURN(json mine, Get(a, "/v1/ledger/accounts/" + address));
  uint64_t from = mine.value("next_seq", uint64_t{0});
  for (size_t peer = 0; peer < urls_.size(); ++peer) {
    if (peer == a) continue;
    auto certs = Get(peer, fmt::format("/v1/ledger/certificates/{}?from={}", address, from));
    if (!certs || !(*certs)["certificates"].is_array() || (*certs)["certificates"].empty())
      continue;
    for (const auto& hex : (*certs)["certificates"]) {
      if (!hex.is_string()) break;
      auto sent = Post(a, "/v1/ledger/certificates", json{{"certificate", hex}});
      if (!sent) return sent.error();
      ++from;
    }
    return Status::OK();
  }
  return Status::NotFound(fmt::format(
      "no other authority has certificates of {} from sequence number {} on", address, from));
}

Result<SubmitResult> LedgerClient::Submit(const SignedOrder& order, bool* locked_nowhere) {
  const std::string wire_hex = Hex(EncodeSignedOrder(order, network_id()));
  const size_t n = urls_.size();
  std::mutex mu;
  std::vector<Vote> votes;
  std::vector<std::string> notes;
  Status first_refusal;
  size_t answered = 0, refused = 0;
  ForEachParallel(n, [&](size_t a) {
    auto ask = [&]() { return Post(a, "/v1/ledger/orders", json{{"order", wire_hex}}); };
    auto r = ask();
    if (!r && r.error().code() == Status::Code::kInvalidArgument &&
        r.error().message().find("certify the ones before") != std::string::npos) {
      // The authority lags behind this sender: bring it up to date, then ask again.
      if (Sync(a, order.order.sender).ok()) r = ask();
    }
    std::lock_guard<std::mutex> lock(mu);
    if (!r) {
      notes.push_back(fmt::format("authority {} ({}): {}", a, urls_[a], r.error().message()));
      if (r.error().code() == Status::Code::kRefused) {
        ++refused;
        if (first_refusal.ok()) first_refusal = r.error();
      }
      if (r.error().code() != Status::Code::kBusy) ++answered;
      return;
    }
    ++answered;
    auto bytes = core::FromHex(r->value("vote", std::string()));
    auto vote = bytes ? DecodeVote(*bytes) : Result<Vote>(Err(Status::InvalidArgument("not hex")));
    Status ok = vote ? VerifyVote(*vote, committee_, network_id()) : vote.error();
    if (ok.ok() && (vote->order_hash != order.hash || vote->authority != a))
      ok = Status::Corruption("a vote for another order or from another authority");
    if (!ok.ok()) {
      notes.push_back(fmt::format("authority {} ({}): a bad vote: {}", a, urls_[a], ok.message()));
      return;
    }
    votes.push_back(*vote);
  });
  if (locked_nowhere) *locked_nowhere = false;
  if (votes.size() < quorum()) {
    // A refusal for funds takes no lock; a refusal for another locked order means that other
    // order holds the lock, not this one.
    if (locked_nowhere) *locked_nowhere = votes.empty() && refused == n;
    std::string why =
        fmt::format("{} valid votes of the {} needed (committee of {})", votes.size(), quorum(), n);
    for (const auto& note : notes) why += "; " + note;
    if (!first_refusal.ok()) return Err(Status::Refused(why));
    if (answered < quorum()) return Err(Status::Busy(why));
    return Err(Status::InvalidArgument(why));
  }
  SubmitResult out;
  out.votes = votes.size();
  DFRP_ASSIGN_OR_RETURN(out.certificate, MakeCertificate(order, votes, committee_));
  out.certificate_wire = EncodeCertificate(out.certificate, network_id());
  DFRP_ASSIGN_OR_RETURN(out.applied, BroadcastCertificate(out.certificate, out.certificate_wire));
  out.notes = std::move(notes);
  return out;
}

Result<size_t> LedgerClient::Broadcast(const std::string& wire) {
  DFRP_ASSIGN_OR_RETURN(Certificate cert, DecodeCertificate(wire, network_id()));
  DFRP_RETURN_IF_ERROR(VerifyCertificate(cert, committee_, network_id()));
  return BroadcastCertificate(cert, wire);
}

Result<size_t> LedgerClient::BroadcastCertificate(const Certificate& cert,
                                                  const std::string& wire) {
  const std::string hex = Hex(wire);
  std::mutex mu;
  size_t applied = 0;
  std::vector<std::string> notes;
  ForEachParallel(urls_.size(), [&](size_t a) {
    auto send = [&]() { return Post(a, "/v1/ledger/certificates", json{{"certificate", hex}}); };
    auto r = send();
    if (!r && r.error().code() == Status::Code::kNotFound) {
      if (Sync(a, cert.order.order.sender).ok()) r = send();
    }
    std::lock_guard<std::mutex> lock(mu);
    if (r)
      ++applied;
    else
      notes.push_back(fmt::format("authority {}: {}", a, r.error().message()));
  });
  if (applied < quorum()) {
    std::string why = fmt::format(
        "the certificate was applied by {} authorities, fewer than the "
        "quorum of {}; send it again with `dfrp-ledger submit`",
        applied, quorum());
    for (const auto& note : notes) why += "; " + note;
    return Err(Status::Busy(why));
  }
  return applied;
}

Result<AccountView> LedgerClient::Account(const std::string& address) {
  std::mutex mu;
  std::map<std::pair<int64_t, uint64_t>, size_t> tally;
  AccountView view;
  ForEachParallel(urls_.size(), [&](size_t a) {
    auto r = Get(a, "/v1/ledger/accounts/" + address);
    std::lock_guard<std::mutex> lock(mu);
    if (!r) {
      view.notes.push_back(fmt::format("authority {}: {}", a, r.error().message()));
      return;
    }
    ++view.answers;
    ++tally[{r->value("balance_base_units", int64_t{0}), r->value("next_seq", uint64_t{0})}];
  });
  for (const auto& [key, count] : tally)
    if (count >= quorum()) {
      view.balance = key.first;
      view.next_seq = key.second;
      return view;
    }
  std::string why =
      fmt::format("no {} authorities agree on {} ({} answered)", quorum(), address, view.answers);
  for (const auto& note : view.notes) why += "; " + note;
  return Err(Status::Busy(why));
}

}  // namespace dfrp::ledger
