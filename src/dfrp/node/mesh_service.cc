#include "dfrp/node/mesh_service.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <future>
#include <memory>
#include <set>

#include "dfrp/core/bytes.h"
#include "dfrp/economy/fee_match.h"
#include "dfrp/economy/market.h"
#include "dfrp/wallet/address.h"

namespace dfrp::node {

namespace bls = crypto::bls;
using core::Err;
using core::Result;
using core::Status;
using nlohmann::json;

namespace {

constexpr int64_t kDelegationMs = 30LL * 24 * 3600 * 1000;
constexpr int64_t kEnvelopeTtlMs = 60'000;
// How long before a probe a relayed answer may have been signed (the clocks differ).
constexpr int64_t kProbeSkewMs = 5'000;
constexpr size_t kRecordsPerExchange = 28 * 1024;  // hex doubles it; JSON bodies are <= 64 KiB
constexpr int64_t kUnverifiedRetryMs = 10'000;
constexpr size_t kMaxUrlsTracked = 4096;
// Trust is computed at most this often (and every 5 gossip rounds at most), and an opinion
// that moved is signed into the record at most every kOpinionResignRounds rounds.
constexpr int64_t kTrustMinIntervalMs = 1000;
constexpr int64_t kOpinionResignRounds = 10;

// Whether two opinions differ enough to sign the record again: another set of peers, or a
// share moved by more than 1/32.
bool OpinionMoved(const std::vector<mesh::OpinionEntry>& a,
                  const std::vector<mesh::OpinionEntry>& b) {
  if (a.size() != b.size()) return true;
  std::map<ledger::KeyBytes, int> w;
  for (const auto& e : a) w[e.peer] = e.weight;
  for (const auto& e : b) {
    auto it = w.find(e.peer);
    if (it == w.end() || std::abs(it->second - static_cast<int>(e.weight)) > 65535 / 32)
      return true;
  }
  return false;
}

Result<bls::SecretKey> LoadOrMakeNodeKey(core::FileSystem* fs, const std::string& path) {
  auto text = core::ReadWholeFile(fs, path);
  if (text) {
    std::string hex = *text;
    while (!hex.empty() && (hex.back() == '\n' || hex.back() == '\r')) hex.pop_back();
    auto bytes = core::FromHex(hex);
    if (!bytes || bytes->size() != bls::kSecretKeySize)
      return Err(Status::Corruption(fmt::format(
          "{}: not the hex of a {}-byte node key; move it aside and dfrpd makes a new one (the "
          "wallet delegates to it at start)",
          path, bls::kSecretKeySize)));
    auto key = bls::SecretKey::FromBytes(core::AsBytes(*bytes));
    if (!key) return Err(key.error().WithContext(path));
    return std::move(*key);
  }
  if (!text.error().IsNotFound()) return Err(text.error());
  DFRP_ASSIGN_OR_RETURN(bls::SecretKey key, bls::SecretKey::Generate());
  std::array<uint8_t, bls::kSecretKeySize> raw{};
  key.ExportTo(raw);
  std::string hex = core::ToHex(raw);
  raw.fill(0);
  DFRP_RETURN_IF_ERROR(core::WriteFileAtomic(fs, path, hex + "\n", /*private_mode=*/true));
  std::fill(hex.begin(), hex.end(), '0');
  return key;
}

}  // namespace

Result<std::unique_ptr<MeshService>> MeshService::Open(core::FileSystem* fs, core::Clock* clock,
                                                       const std::string& state_dir,
                                                       const bls::SecretKey& wallet,
                                                       MeshOptions opt) {
  const std::string path = core::JoinPath(state_dir, std::string(kNodeKeyFileName));
  DFRP_ASSIGN_OR_RETURN(bls::SecretKey node_key, LoadOrMakeNodeKey(fs, path));
  if (node_key.GetPublicKey() == wallet.GetPublicKey())
    return Err(Status::InvalidArgument(
        fmt::format("{} holds the wallet's own key: a node key must be another key (move it "
                    "aside and dfrpd makes one)",
                    path)));
  const mesh::Delegation d = mesh::SignDelegation(
      wallet, node_key.GetPublicKey(),
      static_cast<uint64_t>(clock->NowUnixMillis() + kDelegationMs), opt.network_id);
  auto m = std::unique_ptr<MeshService>(
      new MeshService(clock, std::move(opt), &wallet, std::move(node_key), d));
  m->fs_ = fs;
  m->leaving_path_ = core::JoinPath(state_dir, std::string(kLeavingFileName));
  core::MutexLock lock(&m->mu_);
  m->leaving_ = fs->Exists(m->leaving_path_);
  return m;
}

Status MeshService::SetLeaving(bool leaving) {
  // leave_mu_ orders the changes; mu_ is not held across the fsyncs (the peer client's
  // callbacks take it).
  core::MutexLock order(&leave_mu_);
  {
    core::MutexLock lock(&mu_);
    if (leaving == leaving_) return Status::OK();
  }
  // Durable before it is announced: a restarted node stays leaving (or not).
  if (leaving) {
    DFRP_RETURN_IF_ERROR(core::WriteFileAtomic(
        fs_, leaving_path_,
        "this node is leaving the mesh (dfrp-mesh leave --cancel undoes it)\n"));
  } else {
    DFRP_RETURN_IF_ERROR(fs_->RemoveFile(leaving_path_));
    DFRP_RETURN_IF_ERROR(fs_->SyncDir(core::DirName(leaving_path_)));
  }
  core::MutexLock lock(&mu_);
  leaving_ = leaving;
  own_wire_.clear();  // signed again, with the flag, in the next round
  return Status::OK();
}

MeshService::MeshService(core::Clock* clock, MeshOptions opt, const bls::SecretKey* wallet,
                         bls::SecretKey node_key, mesh::Delegation delegation)
    : clock_(clock),
      opt_(std::move(opt)),
      wallet_(wallet),
      node_key_(std::move(node_key)),
      wallet_key_(delegation.wallet),
      node_pub_(delegation.node),
      gate_(opt_.network_id, clock_, {}),
      table_(opt_.network_id, wallet_key_,
             {.record_ttl_ms = opt_.record_ttl_ms,
              .suspect_timeout_ms = opt_.suspect_timeout_ms,
              .keep = opt_.pretrusted}),
      client_({.max_connections_per_peer = 2,
               .max_queue_per_peer = 8,
               .connect_timeout_ms = static_cast<int>(opt_.request_timeout_ms),
               .request_timeout_ms = static_cast<int>(opt_.request_timeout_ms),
               .retries = 0,
               .max_body_bytes = 256 << 10}),
      ticker_(clock, opt_.interval_ms) {
  core::MutexLock lock(&mu_);
  delegation_ = delegation;
}

mesh::Delegation MeshService::DelegationLocked(int64_t now_ms) {
  // Signed again by the wallet when half its life has passed: a node that runs for months
  // stays in the mesh.
  if (static_cast<int64_t>(delegation_.expiry_unix_ms) - now_ms < kDelegationMs / 2)
    delegation_ =
        mesh::SignDelegation(*wallet_, node_key_.GetPublicKey(),
                             static_cast<uint64_t>(now_ms + kDelegationMs), opt_.network_id);
  return delegation_;
}

MeshService::~MeshService() { Stop(); }

void MeshService::Start(const std::string& url) {
  {
    core::MutexLock lock(&mu_);
    url_ = url;
  }
  ticker_.Start([this] { Tick(); });
}

Result<std::string> MeshService::OwnRecord(int64_t now_ms) {
  std::vector<uint64_t> prices = opt_.prices ? opt_.prices() : std::vector<uint64_t>{};
  const mesh::RecordCapacity capacity = opt_.capacity ? opt_.capacity() : mesh::RecordCapacity{};
  core::MutexLock lock(&mu_);
  const mesh::Delegation d = DelegationLocked(now_ms);
  // Capacity counts too: a drive added, paused, migrated or filling past a step of its quota
  // is announced in the next round.
  const bool opinion_due =
      OpinionMoved(opinion_, own_opinion_) &&
      (own_opinion_.empty() || now_ms - own_signed_ms_ >= kOpinionResignRounds * opt_.interval_ms);
  const bool due = own_wire_.empty() || prices != own_prices_ || capacity != own_capacity_ ||
                   now_ms - own_signed_ms_ > opt_.record_ttl_ms / 2 ||
                   d.expiry_unix_ms != own_delegation_expiry_ || opinion_due;
  if (!due) return own_wire_;
  mesh::NodeRecord r;
  r.sender = d;
  own_delegation_expiry_ = d.expiry_unix_ms;
  r.seq = std::max<uint64_t>(own_seq_ + 1, static_cast<uint64_t>(now_ms));
  r.expiry_unix_ms = static_cast<uint64_t>(now_ms + opt_.record_ttl_ms);
  r.url = url_;
  r.roles = static_cast<uint8_t>(opt_.roles | (leaving_ ? mesh::kRoleLeaving : 0));
  r.policy_version = opt_.policy_version;
  r.vector = opt_.vector;
  r.prices = prices;
  r.capacity = capacity;
  r.opinion = opinion_;
  DFRP_RETURN_IF_ERROR(mesh::SignRecord(&r, node_key_, opt_.network_id));
  own_opinion_ = opinion_;
  own_capacity_ = capacity;
  own_seq_ = r.seq;
  own_signed_ms_ = now_ms;
  own_prices_ = std::move(prices);
  own_wire_ = mesh::EncodeRecord(r);
  return own_wire_;
}

Result<json> MeshService::SignedBody(std::string_view kind, std::string body, int64_t now_ms) {
  DFRP_ASSIGN_OR_RETURN(mesh::Envelope e,
                        mesh::SignEnvelope(
                            [&] {
                              core::MutexLock lock(&mu_);
                              return DelegationLocked(now_ms);
                            }(),
                            node_key_, std::string(kind), std::move(body),
                            static_cast<uint64_t>(now_ms + kEnvelopeTtlMs), opt_.network_id));
  return json{{"network", core::ToHex(opt_.network_id)},
              {"envelope", core::ToHex(mesh::EncodeEnvelope(e))}};
}

Result<json> MeshService::ExchangeBody(int64_t now_ms) {
  DFRP_ASSIGN_OR_RETURN(std::string own, OwnRecord(now_ms));
  std::vector<std::string> wires = {own};
  for (auto& w : table_.Wires(kRecordsPerExchange - own.size())) wires.push_back(std::move(w));
  return SignedBody(mesh::kExchangeKind, mesh::EncodeRecordList(wires), now_ms);
}

size_t MeshService::TakeRecords(const mesh::Envelope& e, int64_t now_ms) {
  auto list = mesh::DecodeRecordList(e.body);
  if (!list) {
    core::MutexLock lock(&mu_);
    ++records_rejected_;
    last_error_ = list.error().message();
    return 0;
  }
  size_t taken = 0, rejected = 0;
  std::string error;
  for (std::string_view wire : *list) {
    auto outcome = table_.Offer(wire, now_ms);
    if (!outcome) {
      ++rejected;
      error = outcome.error().message();
    } else if (*outcome == mesh::OfferOutcome::kNew || *outcome == mesh::OfferOutcome::kNewer) {
      ++taken;
    }
  }
  if (rejected) {
    core::MutexLock lock(&mu_);
    records_rejected_ += rejected;
    last_error_ = error;
  }
  return taken;
}

namespace {

// {"network": HEX, "envelope": HEX}: the envelope's bytes, after the network check.
Result<std::string> EnvelopeOf(const json& j, const crypto::Hash& network_id) {
  if (!j.is_object() || !j.contains("envelope") || !j["envelope"].is_string() ||
      !j.contains("network") || !j["network"].is_string())
    return Err(Status::InvalidArgument(
        "a mesh exchange is a JSON object with \"network\" and \"envelope\" (hex)"));
  const std::string mine = core::ToHex(network_id);
  if (j["network"].get<std::string>() != mine)
    return Err(Status::InvalidArgument(fmt::format(
        "another network: this node's network id (the SHA-256 of its economic.toml's genesis) is "
        "{}, the peer's is {}: nodes of one mesh share one genesis",
        mine, j["network"].get<std::string>().substr(0, 64))));
  auto bytes = core::FromHex(j["envelope"].get<std::string>());
  if (!bytes) return Err(Status::InvalidArgument("\"envelope\" is not hex"));
  return std::move(*bytes);
}

}  // namespace

Result<json> MeshService::HandleExchange(const std::string& request) {
  const json j = json::parse(request, nullptr, false);
  DFRP_ASSIGN_OR_RETURN(std::string wire, EnvelopeOf(j, opt_.network_id));
  DFRP_ASSIGN_OR_RETURN(mesh::Envelope e, gate_.Admit(wire));
  if (e.kind != mesh::kExchangeKind)
    return Err(Status::InvalidArgument(
        fmt::format("an envelope of kind {} sent to /v1/mesh/exchange (it takes {})", e.kind,
                    mesh::kExchangeKind)));
  const int64_t now = clock_->NowUnixMillis();
  TakeRecords(e, now);
  auto answer = ExchangeBody(now);
  if (!answer)  // this node's fault, not the peer's
    return Err(Status::Internal(
        fmt::format("this node could not sign its answer: {}", answer.error().message())));
  core::MutexLock lock(&mu_);
  ++exchanges_served_;
  return std::move(*answer);
}

void MeshService::TakeAnswer(const std::string& url,
                             const std::optional<ledger::KeyBytes>& expected,
                             Result<HttpResponse> r, bool for_probe, int64_t sent_mono_ns) {
  const int64_t now = clock_->NowUnixMillis();
  const double rtt =
      sent_mono_ns > 0
          ? static_cast<double>(std::max<int64_t>(0, clock_->NowMonotonicNanos() - sent_mono_ns)) /
                1e6
          : -1;
  auto fail = [&](const std::string& why) {
    if (expected) table_.Failed(*expected, now);
    core::MutexLock lock(&mu_);
    ++exchanges_failed_;
    last_error_ = fmt::format("{}: {}", url, why);
  };
  if (!r) {
    // No connection or no answer in time: the path may be what failed, not the peer. A peer
    // that answered before is asked about through others (SWIM's indirect probe).
    const auto before = expected ? table_.Get(*expected) : std::nullopt;
    fail(r.error().message());
    if (!for_probe && before && before->last_answer_ms > 0) ProbeIndirectly(*expected, now);
    return;
  }
  if (r->status != 200) {
    const json err = json::parse(r->body, nullptr, false);
    return fail(fmt::format(
        "answered {}: {}", r->status,
        err.is_object() && err.contains("error") ? err["error"].dump() : r->body.substr(0, 200)));
  }
  auto wire = EnvelopeOf(json::parse(r->body, nullptr, false), opt_.network_id);
  if (!wire) return fail(wire.error().message());
  auto e = gate_.Admit(*wire);
  if (!e) return fail(e.error().message());
  if (e->kind != mesh::kExchangeKind) return fail("an answer of kind " + e->kind);
  TakeRecords(*e, now);
  if (expected) {
    // It must answer under the key of the record that named this URL, and that record (its
    // answer may have brought a newer one) must still name this URL.
    auto peer = table_.Get(*expected);
    if (e->sender.wallet != *expected || !peer || peer->record.sender.node != e->sender.node) {
      {
        core::MutexLock lock(&mu_);
        ++wrong_key_;
      }
      return fail(fmt::format("answered under wallet {}…, not the record's {}…",
                              core::ToHex(e->sender.wallet).substr(0, 16),
                              core::ToHex(*expected).substr(0, 16)));
    }
    // Its answer brought a record with another URL: that URL must answer for itself.
    if (peer->record.url == url) table_.Answered(*expected, now, rtt);
  } else {
    // A bootstrap URL: whoever answers there is the peer it names, if its record says so.
    auto peer = table_.Get(e->sender.wallet);
    if (peer && peer->record.url == url && peer->record.sender.node == e->sender.node)
      table_.Answered(e->sender.wallet, now, rtt);
  }
  core::MutexLock lock(&mu_);
  ++exchanges_ok_;
}

void MeshService::Tick() {
  const int64_t now = clock_->NowUnixMillis();
  table_.Tick(now);
  std::string self_url;
  bool trust_due = false;
  {
    core::MutexLock lock(&mu_);
    ++rounds_;
    self_url = url_;
    trust_due = now - trust_ms_ >= std::max<int64_t>(kTrustMinIntervalMs, 5 * opt_.interval_ms);
  }
  if (trust_due) RecomputeTrustAt(now);
  // Targets: the bootstrap URLs no live peer answers at yet, then known peers at random.
  struct Target {
    std::string url;
    std::optional<ledger::KeyBytes> wallet;
  };
  std::vector<Target> targets;
  const std::vector<mesh::Peer> peers = table_.Snapshot();
  for (const auto& u : opt_.bootstrap) {
    if (u == self_url) continue;
    const bool known_alive = std::any_of(peers.begin(), peers.end(), [&](const mesh::Peer& p) {
      return p.record.url == u && p.state == mesh::PeerState::kAlive;
    });
    if (!known_alive) targets.push_back({u, std::nullopt});
  }
  // Peers that answered (alive, suspect) fill the fanout; of the others (a URL not yet heard
  // under its key, a dead peer) at most one a round, and each URL at most every 10 s however
  // many records name it: forged records cannot make this node call an address often.
  std::vector<const mesh::Peer*> known, unheard;
  for (const auto& p : peers) {
    if (p.record.url == self_url) continue;
    if (p.state == mesh::PeerState::kAlive || p.state == mesh::PeerState::kSuspect)
      known.push_back(&p);
    else
      unheard.push_back(&p);
  }
  {
    core::MutexLock lock(&mu_);
    for (auto* list : {&known, &unheard})
      for (size_t i = list->size(); i > 1; --i) {  // a Fisher-Yates shuffle
        rng_ ^= rng_ << 13;
        rng_ ^= rng_ >> 7;
        rng_ ^= rng_ << 17;
        std::swap((*list)[i - 1], (*list)[rng_ % i]);
      }
    std::erase_if(url_tried_,
                  [&](const auto& kv) { return now - kv.second >= kUnverifiedRetryMs; });
    for (const mesh::Peer* p : unheard) {
      if (url_tried_.contains(p->record.url)) continue;
      if (url_tried_.size() >= kMaxUrlsTracked) break;
      url_tried_[p->record.url] = now;
      targets.push_back({p->record.url, p->record.sender.wallet});
      break;
    }
  }
  for (size_t i = 0; i < known.size() && i < opt_.fanout; ++i)
    targets.push_back({known[i]->record.url, known[i]->record.sender.wallet});
  if (targets.empty()) return;
  auto body = ExchangeBody(now);
  if (!body) {
    core::MutexLock lock(&mu_);
    last_error_ = body.error().message();
    return;
  }
  const std::string text = body->dump();
  for (const auto& t : targets) {
    if (t.wallet) table_.Attempted(*t.wallet, now);
    PeerRequest req;
    req.url = t.url;
    req.method = "POST";
    req.target = "/v1/mesh/exchange";
    req.headers = {{"Content-Type", "application/json"}};
    req.body = text;
    // A URL learnt from gossip is called only at an IP address: a name would be looked up,
    // and a name whose DNS never answers would hold up every call.
    req.numeric_host = t.wallet.has_value();
    client_.Send(std::move(req), [this, url = t.url, wallet = t.wallet,
                                  sent = clock_->NowMonotonicNanos()](Result<HttpResponse> r) {
      TakeAnswer(url, wallet, std::move(r), false, sent);
    });
  }
}

void MeshService::ProbeIndirectly(const ledger::KeyBytes& target, int64_t now_ms) {
  if (opt_.indirect_probes == 0) return;
  std::vector<mesh::Peer> helpers;
  for (mesh::Peer& p : table_.Snapshot())
    if (p.state == mesh::PeerState::kAlive && p.record.sender.wallet != target)
      helpers.push_back(std::move(p));
  if (helpers.empty()) return;
  {
    core::MutexLock lock(&mu_);
    auto it = last_indirect_.find(target);
    if (it != last_indirect_.end() && now_ms - it->second < 2 * opt_.interval_ms) return;
    if (last_indirect_.size() >= kMaxUrlsTracked) last_indirect_.clear();
    last_indirect_[target] = now_ms;
    for (size_t i = helpers.size(); i > 1; --i) {  // a Fisher-Yates shuffle
      rng_ ^= rng_ << 13;
      rng_ ^= rng_ >> 7;
      rng_ ^= rng_ << 17;
      std::swap(helpers[i - 1], helpers[rng_ % i]);
    }
  }
  if (helpers.size() > opt_.indirect_probes) helpers.resize(opt_.indirect_probes);
  auto body = SignedBody(mesh::kProbeKind, std::string(target.begin(), target.end()), now_ms);
  if (!body) {
    core::MutexLock lock(&mu_);
    last_error_ = body.error().message();
    return;
  }
  const std::string text = body->dump();
  for (const mesh::Peer& h : helpers) {
    PeerRequest req;
    req.url = h.record.url;
    req.method = "POST";
    req.target = "/v1/mesh/probe";
    req.headers = {{"Content-Type", "application/json"}};
    req.body = text;
    req.numeric_host = true;
    {
      core::MutexLock lock(&mu_);
      ++probes_sent_;
    }
    client_.Send(std::move(req), [this, target, now_ms](Result<HttpResponse> r) {
      TakeProbeAnswer(target, now_ms, std::move(r));
    });
  }
}

void MeshService::TakeProbeAnswer(const ledger::KeyBytes& target, int64_t asked_ms,
                                  Result<HttpResponse> r) {
  if (!r || r->status != 200) return;  // the helper did not reach it either
  auto wire = EnvelopeOf(json::parse(r->body, nullptr, false), opt_.network_id);
  if (!wire) return;
  auto e = gate_.Admit(*wire);
  if (!e || e->kind != mesh::kExchangeKind || e->sender.wallet != target) return;
  // Signed for this probe, not an older answer a helper kept: its signing time (expiry minus
  // the TTL) is no earlier than the question, give or take the clocks' difference.
  const int64_t signed_ms = static_cast<int64_t>(e->expiry_unix_ms) - kEnvelopeTtlMs;
  if (signed_ms < asked_ms - kProbeSkewMs) return;
  const int64_t now = clock_->NowUnixMillis();
  TakeRecords(*e, now);
  auto peer = table_.Get(target);
  if (!peer || peer->record.sender.node != e->sender.node) return;
  const bool revived = peer->state != mesh::PeerState::kAlive;
  table_.AnsweredIndirectly(target, now);
  if (revived) {
    core::MutexLock lock(&mu_);
    ++indirect_acks_;
  }
}

Result<json> MeshService::HandleProbe(const std::string& request) {
  const json j = json::parse(request, nullptr, false);
  DFRP_ASSIGN_OR_RETURN(std::string wire, EnvelopeOf(j, opt_.network_id));
  auto refuse = [&](Status s) -> Result<json> {
    core::MutexLock lock(&mu_);
    ++probes_refused_;
    return Err(std::move(s));
  };
  // The kind before the gate: an envelope meant for another route (an exchange) is refused
  // as such here, not admitted, so it is neither spent nor counted as a replay by this route.
  DFRP_ASSIGN_OR_RETURN(mesh::Envelope peek, mesh::DecodeEnvelope(wire));
  if (peek.kind != mesh::kProbeKind)
    return refuse(Status::InvalidArgument(
        fmt::format("/v1/mesh/probe takes an envelope of kind {} whose body is a wallet key",
                    mesh::kProbeKind)));
  DFRP_ASSIGN_OR_RETURN(mesh::Envelope e, gate_.Admit(wire));
  if (e.kind != mesh::kProbeKind || e.body.size() != ledger::KeyBytes{}.size())
    return refuse(Status::InvalidArgument(
        fmt::format("/v1/mesh/probe takes an envelope of kind {} whose body is a wallet key",
                    mesh::kProbeKind)));
  auto asker = table_.Get(e.sender.wallet);
  if (!asker || asker->state != mesh::PeerState::kAlive)
    return refuse(Status::InvalidArgument(
        "this node probes only for peers it knows as alive: exchange records with it first"));
  ledger::KeyBytes target{};
  std::memcpy(target.data(), e.body.data(), target.size());
  if (target == e.sender.wallet)
    return refuse(Status::InvalidArgument("a node cannot ask for a probe of itself"));
  auto peer = table_.Get(target);
  if (!peer) return refuse(Status::NotFound("this node knows no record of the wallet to probe"));
  // Only a peer this node heard answer under its key at its URL: a probe must not make it
  // call an address an asker put in a record (a reflector, a port scanner).
  if (peer->last_answer_ms == 0 ||
      (peer->state != mesh::PeerState::kAlive && peer->state != mesh::PeerState::kSuspect))
    return refuse(Status::Unavailable("this node has not heard that peer answer lately"));
  const int64_t now = clock_->NowUnixMillis();
  {
    core::MutexLock lock(&mu_);
    // A probe holds one of the verify lane's threads while it waits: one at a time, and each
    // asker at most one per gossip interval.
    auto it = probe_askers_.find(e.sender.wallet);
    if (probes_in_flight_ >= 1 ||
        (it != probe_askers_.end() && now - it->second < opt_.interval_ms)) {
      ++probes_refused_;
      return Err(Status::Busy(
          "this node is running a probe already, or ran one for this asker within a gossip "
          "interval: ask another peer"));
    }
    if (probe_askers_.size() >= kMaxUrlsTracked) probe_askers_.clear();
    probe_askers_[e.sender.wallet] = now;
    ++probes_in_flight_;
  }
  auto body = ExchangeBody(now);
  std::optional<Result<HttpResponse>> got;
  if (body) {
    PeerRequest req;
    req.url = peer->record.url;
    req.method = "POST";
    req.target = "/v1/mesh/exchange";
    req.headers = {{"Content-Type", "application/json"}};
    req.body = body->dump();
    req.numeric_host = true;
    auto promise = std::make_shared<std::promise<Result<HttpResponse>>>();
    auto future = promise->get_future();
    table_.Attempted(target, now);
    client_.Send(std::move(req),
                 [promise](Result<HttpResponse> r) { promise->set_value(std::move(r)); });
    // The client's connect and request timeouts each run up to request_timeout_ms.
    if (future.wait_for(std::chrono::milliseconds(2 * opt_.request_timeout_ms + 250)) ==
        std::future_status::ready)
      got = future.get();
  }
  {
    core::MutexLock lock(&mu_);
    --probes_in_flight_;
  }
  if (!body)
    return Err(Status::Internal(
        fmt::format("this node could not sign its exchange: {}", body.error().message())));
  // Said plainly: the asker learns that the peer did not answer, not how (no transport error,
  // no status), so that probes cannot map what answers where.
  if (!got || !*got || (*got)->status != 200)
    return refuse(Status::Unavailable("the peer did not answer this node either"));
  const std::string answer = (*got)->body;
  // This node learns from the answer too (first-hand: it called the record's URL itself).
  TakeAnswer(peer->record.url, target, std::move(*got), /*for_probe=*/true);
  auto after = table_.Get(target);
  if (!after || after->last_answer_ms < now)
    return refuse(Status::Unavailable(
        fmt::format("the peer at {} did not answer under its record's key", peer->record.url)));
  json relayed = json::parse(answer, nullptr, false);
  core::MutexLock lock(&mu_);
  ++probes_served_;
  return relayed;
}

Result<json> MeshService::OffersJson(std::string_view request, size_t k) const {
  const economy::EconomicPolicy& p = *opt_.policy;
  DFRP_ASSIGN_OR_RETURN(
      economy::FeeRequest req,
      economy::ParseFeeRequest(request, p, static_cast<uint32_t>(opt_.vector.size())));
  struct Candidate {
    std::string address, url;
    std::string state;
    std::vector<float> vector;
    std::vector<uint64_t> prices;
    uint32_t policy_version = 0;
    double uptime = 1;
    bool self = false;
    uint64_t storage_free = 0;
    bool leaving = false;
    ledger::KeyBytes wallet{};
    double trust = 1;
    uint8_t roles = 0;
  };
  std::vector<Candidate> all;
  {
    auto key = ledger::KeyFrom(wallet_key_);
    core::MutexLock lock(&mu_);
    all.push_back({key ? wallet::AddressOf(*key) : "", url_, "self", opt_.vector, own_prices_,
                   opt_.policy_version, 1.0, true, 0, leaving_, wallet_key_, 1.0, opt_.roles});
  }
  if (all[0].prices.empty() && opt_.prices) all[0].prices = opt_.prices();
  if (opt_.capacity) all[0].storage_free = opt_.capacity().storage_free_bytes;
  for (const mesh::Peer& peer : table_.Snapshot()) {
    auto key = ledger::KeyFrom(peer.record.sender.wallet);
    all.push_back({key ? wallet::AddressOf(*key) : core::ToHex(peer.record.sender.wallet),
                   peer.record.url, mesh::PeerStateName(peer.state), peer.record.vector,
                   peer.record.prices, peer.record.policy_version, peer.Uptime(), false,
                   peer.record.capacity.storage_free_bytes,
                   (peer.record.roles & mesh::kRoleLeaving) != 0, peer.record.sender.wallet,
                   TrustOf(peer.record.sender.wallet), peer.record.roles});
  }
  // The node's own checks first (alive, policy, prices); the market ranks the rest.
  json refused = json::array();
  std::vector<const Candidate*> eligible;
  std::vector<economy::RouteCandidate> route;
  for (const Candidate& c : all) {
    auto refuse = [&](const std::string& why) {
      refused.push_back({{"address", c.address}, {"url", c.url}, {"reason", why}});
    };
    // A wallet the committee certified a fraud proof against is trusted with nothing new.
    if (const size_t frauds = opt_.fraud_records ? opt_.fraud_records(c.wallet) : 0; frauds > 0) {
      refuse(
          fmt::format("caught: the committee certified {} fraud proof(s) against it "
                      "(GET /v1/compute/fraud?provider={})",
                      frauds, c.address));
      continue;
    }
    if (!c.self && c.state != "alive") {
      refuse(fmt::format("not alive ({})", c.state));
      continue;
    }
    if (!c.self && c.trust * 10000 < p.trust.min_trust_bps) {
      refuse(fmt::format("trust {:.2f} under floor {:.2f} (trust.min_trust_bps)", c.trust,
                         p.trust.min_trust_bps / 10000.0));
      continue;
    }
    if (c.policy_version != opt_.policy_version) {
      refuse(fmt::format("policy version {}, this node's is {}", c.policy_version,
                         opt_.policy_version));
      continue;
    }
    if (c.prices.size() != economy::kResourceCount) {
      refuse(fmt::format("its record has {} prices, the policy {}", c.prices.size(),
                         economy::kResourceCount));
      continue;
    }
    if (c.leaving) {
      refuse("leaving the mesh: it takes no new contracts");
      continue;
    }
    if (req.storage_bytes > 0 && !(c.roles & mesh::kRoleStorage)) {
      refuse("stores nothing for others (its ROLES has no storage)");
      continue;
    }
    if (req.storage_bytes > c.storage_free) {
      refuse(fmt::format("room for {} bytes of new shards, the request needs {}", c.storage_free,
                         req.storage_bytes));
      continue;
    }
    economy::RouteCandidate rc{.vector = &c.vector};
    std::copy(c.prices.begin(), c.prices.end(), rc.prices.begin());
    eligible.push_back(&c);
    route.push_back(rc);
  }
  economy::Routing routing = economy::RankCandidates(req, route, p, k);
  // Trust weighs the ranking: by (1 + similarity) / 2 x (1 - w + w x trust) (similarity may
  // be negative: -1 for a vector that cannot be compared), then the cheaper, then the order
  // the market gave.
  const double w = p.trust.routing_weight_bps / 10000.0;
  auto score = [&](const economy::RankedCandidate& r) {
    return (1 + r.similarity) / 2 * (1 - w + w * eligible[r.index]->trust);
  };
  std::sort(routing.passed.begin(), routing.passed.end(),
            [&](const economy::RankedCandidate& a, const economy::RankedCandidate& b) {
              const double sa = score(a), sb = score(b);
              if (sa != sb) return sa > sb;
              if (a.total != b.total) return a.total < b.total;
              return a.index < b.index;
            });
  auto offer_json = [&](const economy::RankedCandidate& r) {
    const Candidate& c = *eligible[r.index];
    json o = {{"address", c.address},       {"url", c.url},       {"state", c.state},
              {"similarity", r.similarity}, {"uptime", c.uptime}, {"trust", c.trust}};
    economy::PutAmount(o, "total", p, r.total);
    return o;
  };
  for (const economy::RankedCandidate& r : routing.refused)
    refused.push_back({{"address", eligible[r.index]->address},
                       {"url", eligible[r.index]->url},
                       {"reason", r.reason}});
  json offers = json::array();
  for (size_t i = 0; i < routing.passed.size(); ++i) {
    const economy::RankedCandidate& r = routing.passed[i];
    if (i < k)
      offers.push_back(offer_json(r));
    else
      refused.push_back({{"address", eligible[r.index]->address},
                         {"url", eligible[r.index]->url},
                         {"reason", fmt::format("not among the {} nearest", k)}});
  }
  json out = {{"offers", offers}, {"refused", refused}, {"k", k}, {"currency", p.genesis.currency}};
  if (req.max_fee) economy::PutAmount(out, "max_fee", p, *req.max_fee);
  out["cheapest_over_max_fee"] =
      routing.cheapest_over_max_fee ? offer_json(*routing.cheapest_over_max_fee) : json(nullptr);
  return out;
}

void MeshService::RecomputeTrust() { RecomputeTrustAt(clock_->NowUnixMillis()); }

void MeshService::RecomputeTrustAt(int64_t now_ms) {
  core::MutexLock one_at_a_time(&trust_compute_mu_);
  const std::vector<mesh::Peer> peers = table_.Snapshot();
  const std::vector<mesh::PayerOutcome> outcomes =
      opt_.proof_outcomes ? opt_.proof_outcomes() : std::vector<mesh::PayerOutcome>{};
  std::set<ledger::KeyBytes> pre(opt_.pretrusted.begin(), opt_.pretrusted.end());
  pre.insert(wallet_key_);

  // The vertices: this node (0), its peers, then the payers and providers of the ledger and
  // the wallets the opinions name.
  std::map<ledger::KeyBytes, uint32_t> index;
  auto vertex = [&](const ledger::KeyBytes& k) {
    return index.emplace(k, static_cast<uint32_t>(index.size())).first->second;
  };
  vertex(wallet_key_);
  std::map<ledger::KeyBytes, const mesh::Peer*> by_wallet;
  for (const mesh::Peer& p : peers) {
    vertex(p.record.sender.wallet);
    by_wallet[p.record.sender.wallet] = &p;
  }
  // Evidence per provider: every payer's outcomes (shown), and the first-hand figures of the
  // peers (answers, failures, round trip, fraud records).
  std::map<ledger::KeyBytes, mesh::PeerEvidence> evidence;
  auto evidence_of = [&](const ledger::KeyBytes& k) -> mesh::PeerEvidence& {
    auto [it, added] = evidence.try_emplace(k);
    if (added) {
      if (auto p = by_wallet.find(k); p != by_wallet.end()) {
        it->second.answers = p->second->answers_total;
        it->second.failures = p->second->failures_total;
        it->second.rtt_ms = p->second->rtt_ms;
      }
      it->second.fraud_records = opt_.fraud_records ? opt_.fraud_records(k) : 0;
      it->second.equivocations = opt_.equivocations ? opt_.equivocations(k) : 0;
    }
    return it->second;
  };
  for (const mesh::Peer& p : peers) evidence_of(p.record.sender.wallet);
  // Each payer's testimony, from the certified ledger (an authority node): its paid work with
  // each provider, scaled by what this node saw of the provider. A payer's row weighs what the
  // payer's own trust is, so a Sybil client paying its own provider gives it nothing.
  std::map<ledger::KeyBytes, std::vector<std::pair<ledger::KeyBytes, double>>> payer_rows;
  std::map<ledger::KeyBytes, double> local;  // this node's direct evidence: pre-trusted payers'
  std::set<ledger::KeyBytes> paid_well;      // providers with some payer's testimony for them
  for (const mesh::PayerOutcome& o : outcomes) {
    if (o.provider == wallet_key_ || o.provider == o.payer) continue;
    mesh::PeerEvidence& e = evidence_of(o.provider);
    e.proofs_passed += o.released;
    e.proofs_missed += o.refunded;
    mesh::PeerEvidence one = e;
    one.proofs_passed = std::min(o.released, mesh::kMaxProofEvidence);
    one.proofs_missed = std::min(o.refunded, mesh::kMaxProofEvidence);
    const double w = mesh::LocalTrust(one);
    if (w <= 0) continue;
    vertex(o.payer);
    vertex(o.provider);
    payer_rows[o.payer].emplace_back(o.provider, w);
    paid_well.insert(o.provider);
    if (pre.contains(o.payer)) local[o.provider] += w;
  }
  const bool authority_view = static_cast<bool>(opt_.proof_outcomes);

  // Rows: this node's direct evidence, each peer's published opinion, each payer's testimony
  // (a wallet with both: half each). Nothing flows to a wallet with a certified fraud record or
  // an equivocation proof.
  std::vector<std::vector<std::pair<uint32_t, double>>> rows;
  auto cut_off = [&](const ledger::KeyBytes& k) {
    const mesh::PeerEvidence& e = evidence_of(k);
    return e.fraud_records > 0 || e.equivocations > 0;
  };
  auto add = [&](uint32_t from, const std::vector<std::pair<ledger::KeyBytes, double>>& part) {
    double sum = 0;
    for (const auto& [k, w] : part)
      if (w > 0 && !cut_off(k)) sum += w;
    if (!(sum > 0)) return;
    std::vector<std::pair<uint32_t, double>> add_row;
    for (const auto& [k, w] : part)
      if (w > 0 && !cut_off(k)) add_row.emplace_back(vertex(k), w / sum);
    if (rows.size() < index.size()) rows.resize(index.size());
    for (auto& e : add_row) rows[from].push_back(e);
  };
  add(0, {local.begin(), local.end()});
  for (const mesh::Peer& p : peers) {
    std::vector<std::pair<ledger::KeyBytes, double>> op;
    for (const mesh::OpinionEntry& o : p.record.opinion) op.emplace_back(o.peer, o.weight);
    add(index.at(p.record.sender.wallet), op);
  }
  for (const auto& [payer, row] : payer_rows) {
    if (payer == wallet_key_) continue;  // its own payments are in `local`
    add(vertex(payer), row);
  }
  rows.resize(index.size());
  std::vector<uint32_t> pre_idx;
  for (const ledger::KeyBytes& k : pre)
    if (auto it = index.find(k); it != index.end()) pre_idx.push_back(it->second);
  const mesh::TrustResult r = mesh::ComputeGlobalTrust(
      index.size(), rows, pre_idx,
      {.pretrust_weight = opt_.policy->trust.pretrust_weight_bps / 10000.0});

  // A peer's score: its t over the largest t of any peer (this node left out of the scale).
  double top = 0;
  for (const mesh::Peer& p : peers) top = std::max(top, r.global[index.at(p.record.sender.wallet)]);
  std::map<ledger::KeyBytes, TrustView> views;
  std::vector<std::pair<ledger::KeyBytes, double>> provided;  // an authority's opinion
  for (const auto& [k, i] : index) {
    if (i == 0) continue;
    TrustView v;
    v.global = r.global[i];
    v.score = top > 0 ? std::min(1.0, v.global / top) : 0;
    if (auto it = evidence.find(k); it != evidence.end()) v.evidence = it->second;
    if (auto it = local.find(k); it != local.end()) v.local = it->second;
    if (paid_well.contains(k) && !cut_off(k)) provided.emplace_back(k, v.global);
    views.emplace(k, v);
  }
  // What this node publishes: an authority node its trust in the providers its ledger shows
  // paid (its summary of the certified evidence, weighted through the payers' trust); any other
  // node its direct evidence (none without a ledger of its own).
  std::vector<mesh::OpinionEntry> opinion =
      mesh::OpinionFromLocal(authority_view ? provided
                                            : std::vector<std::pair<ledger::KeyBytes, double>>(
                                                  local.begin(), local.end()));
  core::MutexLock lock(&mu_);
  trust_ = std::move(views);
  self_global_ = r.global[0];
  trust_ms_ = now_ms;
  trust_iterations_ = r.iterations;
  trust_nodes_ = index.size();
  opinion_ = std::move(opinion);
}

double MeshService::TrustOf(const ledger::KeyBytes& wallet) const {
  if (wallet == wallet_key_) return 1;
  core::MutexLock lock(&mu_);
  auto it = trust_.find(wallet);
  return it == trust_.end() ? 0 : it->second.score;
}

std::array<std::vector<economy::NeighbourPrice>, economy::kResourceCount>
MeshService::NeighbourPrices(size_t k) const {
  std::vector<std::pair<double, const mesh::Peer*>> near;
  const std::vector<mesh::Peer> peers = table_.Snapshot();
  for (const mesh::Peer& p : peers) {
    if (p.state != mesh::PeerState::kAlive || p.record.policy_version != opt_.policy_version ||
        p.record.prices.size() != economy::kResourceCount)
      continue;
    const double sim = economy::CosineSimilarity(opt_.vector, p.record.vector).value_or(-1.0);
    near.emplace_back(-sim, &p);
  }
  std::sort(near.begin(), near.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::array<std::vector<economy::NeighbourPrice>, economy::kResourceCount> out{};
  for (size_t i = 0; i < near.size() && i < k; ++i)
    for (size_t r = 0; r < economy::kResourceCount; ++r)
      out[r].push_back(
          {near[i].second->record.prices[r],
           near[i].second->Uptime() * (1 + 9 * TrustOf(near[i].second->record.sender.wallet))});
  return out;
}

json MeshService::PriceVectorOf(const std::vector<uint64_t>& prices) const {
  if (prices.size() != economy::kResourceCount) return nullptr;
  economy::PriceVector v{};
  std::copy(prices.begin(), prices.end(), v.begin());
  return economy::PriceVectorJson(*opt_.policy, v);
}

std::vector<std::string> MeshService::AliveStorageUrls() const {
  std::vector<std::string> urls;
  for (const mesh::Peer& p : table_.Snapshot())
    if (p.state == mesh::PeerState::kAlive && (p.record.roles & mesh::kRoleStorage))
      urls.push_back(p.record.url);
  return urls;
}

std::vector<std::string> MeshService::AliveUrls() const {
  std::vector<std::string> urls;
  for (const mesh::Peer& p : table_.Snapshot())
    if (p.state == mesh::PeerState::kAlive) urls.push_back(p.record.url);
  return urls;
}

namespace {

// [{"address", "share"}...].
json OpinionJson(const std::vector<mesh::OpinionEntry>& op) {
  json out = json::array();
  for (const mesh::OpinionEntry& o : op)
    out.push_back({{"address", ledger::AddressOfKey(o.peer)}, {"share", o.weight / 65535.0}});
  return out;
}

}  // namespace

json MeshService::TrustJson(const ledger::KeyBytes& wallet) const {
  core::MutexLock lock(&mu_);
  auto it = trust_.find(wallet);
  if (it == trust_.end()) return json{{"score", 0}, {"global", 0}, {"local", 0}};
  const TrustView& v = it->second;
  return json{{"score", v.score},
              {"global", v.global},
              {"local", v.local},
              {"evidence",
               {{"answers", v.evidence.answers},
                {"failures", v.evidence.failures},
                {"rtt_ms", v.evidence.rtt_ms},
                {"proofs_passed", v.evidence.proofs_passed},
                {"proofs_missed", v.evidence.proofs_missed},
                {"fraud_records", v.evidence.fraud_records},
                {"equivocations", v.evidence.equivocations}}}};
}

json MeshService::PeersJson() const {
  const int64_t now = clock_->NowUnixMillis();
  json peers = json::array();
  for (const mesh::Peer& p : table_.Snapshot()) {
    const mesh::NodeRecord& r = p.record;
    json roles = json::array();
    if (r.roles & mesh::kRoleStorage) roles.push_back("storage");
    if (r.roles & mesh::kRoleAuthority) roles.push_back("authority");
    if (r.roles & mesh::kRoleCompute) roles.push_back("compute");
    if (r.roles & mesh::kRoleLeaving) roles.push_back("leaving");
    auto key = ledger::KeyFrom(r.sender.wallet);
    peers.push_back(
        {{"address", key ? wallet::AddressOf(*key) : core::ToHex(r.sender.wallet)},
         {"node_key", core::ToHex(r.sender.node)},
         {"url", r.url},
         {"state", mesh::PeerStateName(p.state)},
         {"roles", roles},
         {"seq", r.seq},
         {"expires_in_s", (static_cast<int64_t>(r.expiry_unix_ms) - now) / 1000},
         {"last_answer_ms_ago", p.last_answer_ms ? now - p.last_answer_ms : -1},
         {"failures", p.failures},
         {"uptime", p.Uptime()},
         {"policy_version", r.policy_version},
         {"prices", r.prices},
         {"price_vector", PriceVectorOf(r.prices)},
         {"distance", 1.0 - economy::CosineSimilarity(opt_.vector, r.vector).value_or(-1.0)},
         {"storage_free_bytes", r.capacity.storage_free_bytes},
         {"storage_quota_bytes", r.capacity.storage_quota_bytes},
         {"fraud_records", opt_.fraud_records ? opt_.fraud_records(r.sender.wallet) : 0},
         {"trust", TrustJson(r.sender.wallet)},
         {"opinion", OpinionJson(r.opinion)},
         {"vector", r.vector}});
  }
  return json{{"peers", peers}, {"currency", opt_.policy->genesis.currency}};
}

json MeshService::Json() const {
  size_t by_state[4] = {0, 0, 0, 0};
  for (const mesh::Peer& p : table_.Snapshot()) ++by_state[static_cast<size_t>(p.state)];
  json drops = json::object();
  for (size_t d = 0; d < mesh::kDropKinds; ++d)
    drops[mesh::DropName(static_cast<mesh::Drop>(d))] = gate_.dropped(static_cast<mesh::Drop>(d));
  auto key = ledger::KeyFrom(wallet_key_);
  json pre = json::array();
  for (const ledger::KeyBytes& k : opt_.pretrusted) pre.push_back(ledger::AddressOfKey(k));
  core::MutexLock lock(&mu_);
  const json trust = {{"pretrusted", pre},
                      {"computed_ms_ago", trust_ms_ ? clock_->NowUnixMillis() - trust_ms_ : -1},
                      {"iterations", trust_iterations_},
                      {"nodes", trust_nodes_},
                      {"self_global", self_global_},
                      {"opinion", OpinionJson(opinion_)},
                      {"published_opinion", OpinionJson(own_opinion_)}};
  return json{{"address", key ? wallet::AddressOf(*key) : ""},
              {"node_key", core::ToHex(node_pub_)},
              {"delegation_expires_unix_ms", delegation_.expiry_unix_ms},
              {"url", url_},
              {"seq", own_seq_},
              {"leaving", leaving_},
              {"bootstrap", opt_.bootstrap},
              {"peers",
               {{"unverified", by_state[0]},
                {"alive", by_state[1]},
                {"suspect", by_state[2]},
                {"dead", by_state[3]}}},
              {"rounds", rounds_},
              {"exchanges_ok", exchanges_ok_},
              {"exchanges_failed", exchanges_failed_},
              {"exchanges_served", exchanges_served_},
              {"records_rejected", records_rejected_},
              {"wrong_key_answers", wrong_key_},
              {"indirect_probes_sent", probes_sent_},
              {"indirect_acks", indirect_acks_},
              {"probes_served", probes_served_},
              {"probes_refused", probes_refused_},
              {"trust", trust},
              {"envelopes_admitted", gate_.admitted()},
              {"envelopes_dropped", drops},
              {"last_error", last_error_}};
}

std::string MeshService::MetricsText() const {
  const json j = Json();
  std::string out =
      "# HELP dfrp_mesh_peers Peers this node knows, by state.\n# TYPE dfrp_mesh_peers gauge\n";
  for (const char* s : {"unverified", "alive", "suspect", "dead"})
    out += fmt::format("dfrp_mesh_peers{{state=\"{}\"}} {}\n", s, j["peers"][s].get<uint64_t>());
  out +=
      "# HELP dfrp_mesh_envelopes_dropped_total Mesh envelopes dropped, by reason.\n"
      "# TYPE dfrp_mesh_envelopes_dropped_total counter\n";
  for (const auto& [reason, n] : j["envelopes_dropped"].items())
    out += fmt::format("dfrp_mesh_envelopes_dropped_total{{reason=\"{}\"}} {}\n", reason,
                       n.get<uint64_t>());
  out += fmt::format(
      "# HELP dfrp_mesh_exchanges_total Record exchanges this node began, by result.\n"
      "# TYPE dfrp_mesh_exchanges_total counter\n"
      "dfrp_mesh_exchanges_total{{result=\"ok\"}} {}\n"
      "dfrp_mesh_exchanges_total{{result=\"failed\"}} {}\n"
      "# HELP dfrp_mesh_records_rejected_total Node records refused (layout, expiry, signature).\n"
      "# TYPE dfrp_mesh_records_rejected_total counter\n"
      "dfrp_mesh_records_rejected_total {}\n"
      "# HELP dfrp_mesh_indirect_probes_total SWIM indirect probes: asked of helpers, answers "
      "relayed that revived a peer, run for others, refused.\n"
      "# TYPE dfrp_mesh_indirect_probes_total counter\n"
      "dfrp_mesh_indirect_probes_total{{event=\"sent\"}} {}\n"
      "dfrp_mesh_indirect_probes_total{{event=\"revived\"}} {}\n"
      "dfrp_mesh_indirect_probes_total{{event=\"served\"}} {}\n"
      "dfrp_mesh_indirect_probes_total{{event=\"refused\"}} {}\n",
      j["exchanges_ok"].get<uint64_t>(), j["exchanges_failed"].get<uint64_t>(),
      j["records_rejected"].get<uint64_t>(), j["indirect_probes_sent"].get<uint64_t>(),
      j["indirect_acks"].get<uint64_t>(), j["probes_served"].get<uint64_t>(),
      j["probes_refused"].get<uint64_t>());
  return out;
}

}  // namespace dfrp::node
