#include "dfrp/ledger/client.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>

#include "dfrp/node/client.h"
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
  node::Client client(info, {.connect_timeout_ms = 3000,
                             .request_timeout_ms = kRequestTimeoutMs,
                             .max_body_bytes = 16 << 20});
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
    if (!r && r.error().code() == Status::Code::kInvalidArgument) {
      // Perhaps the authority lags behind this sender ("not its next"): Sync is ok only when
      // it sent the authority certificates it lacked; then ask again.
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
    const auto vote_hex = StringField(*r, "vote");
    auto bytes = vote_hex ? core::FromHex(*vote_hex) : std::nullopt;
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
  out.applied = BroadcastCertificate(out.certificate, out.certificate_wire, &notes);
  out.notes = std::move(notes);
  return out;
}

Result<size_t> LedgerClient::Broadcast(const std::string& wire) {
  DFRP_ASSIGN_OR_RETURN(Certificate cert, DecodeCertificate(wire, network_id()));
  DFRP_RETURN_IF_ERROR(VerifyCertificate(cert, committee_, network_id()));
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

size_t LedgerClient::BroadcastCertificate(const Certificate& cert, const std::string& wire,
                                          std::vector<std::string>* notes) {
  const std::string hex = Hex(wire);
  std::mutex mu;
  size_t applied = 0;
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
      notes->push_back(fmt::format("authority {}: {}", a, r.error().message()));
  });
  return applied;
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

}  // namespace dfrp::ledger
