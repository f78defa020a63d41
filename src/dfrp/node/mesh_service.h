// MeshService: this node's membership in the mesh (docs/PROTOCOL.md, "Mesh: membership").
//
// The node speaks with a node key (STATE_DIR/node.key, made at first start, readable by its
// user only) that its wallet delegates to for 30 days, signed anew at each start. It keeps a
// signed record of itself (URL, roles, vector, measured capacity, price vector, policy
// version), signed again when half its TTL passed or its prices moved.
//
// Each gossip interval it exchanges records (push-pull) with a few peers: the bootstrap URLs
// (PEERS) and up to `fanout` known peers at random. An exchange is one POST
// /v1/mesh/exchange of a signed envelope holding this node's record and the freshest records
// it knows (within 28 KiB); the answer is the peer's envelope of the same kind. Every envelope
// passes the EnvelopeGate (size, expiry, replay, signatures), every record the PeerTable
// (newer seq only, verified, expiry capped by gossip.record_ttl_seconds). A peer counts as
// alive only once its URL answered under the node key of its record: a URL learnt from gossip
// is tried at most every 10 s until then, so forged records cannot make the mesh call
// arbitrary addresses often. A peer whose exchange fails is suspect, and dead once
// gossip.suspect_timeout_ms passed without an answer; a record not renewed expires, and its
// node leaves every view.
//
// SWIM's indirect probe: when an exchange with a peer that answered before fails (no
// connection, no answer in time), up to gossip.indirect_probes alive peers are asked (POST
// /v1/mesh/probe, a signed envelope naming the peer's wallet) to reach it at the URL of their
// own record of it; a helper that gets its answer relays that envelope as the target signed
// it, so the asker trusts the target's signature, not the helper. A relayed answer makes a
// suspect (or dead) peer alive again. Each peer is probed indirectly at most once per two
// gossip intervals; a node runs one probe for others at a time (it holds a verify-lane
// thread for at most the request timeout), and only for peers it knows alive.
//
// Trust (mesh/trust.h; docs/PROTOCOL.md, "Trust"): every 5 rounds the node computes global
// trust, EigenTrust-style, from its peers' published opinions and, on an authority node, each
// payer's paid work with each provider as its ledger certified it (weighed by the payer's own
// trust), starting from itself, its TRUSTED_PEERS and the committee; first-hand uptime and
// round trips scale the paid work, a certified fraud record cuts a wallet off. An authority
// node publishes its trust in the providers it saw paid as the opinion in its record. The
// result ranks and (trust.min_trust_bps) filters offers and weights neighbours' prices.
//
// Not built yet: digests for meshes whose records exceed one exchange, and spreading prices
// and certificates beyond the records.
//
// Thread-safety: every member may be called from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "dfrp/core/clock.h"
#include "dfrp/core/file_system.h"
#include "dfrp/core/thread_annotations.h"
#include "dfrp/economy/policy.h"
#include "dfrp/economy/pricing.h"
#include "dfrp/mesh/envelope.h"
#include "dfrp/mesh/node_record.h"
#include "dfrp/node/peer_client.h"
#include "dfrp/node/ticker.h"

namespace dfrp::node {

inline constexpr std::string_view kNodeKeyFileName = "node.key";
// Present while the node is leaving the mesh (SetLeaving).
inline constexpr std::string_view kLeavingFileName = "mesh-leaving";

struct MeshOptions {
  const economy::EconomicPolicy* policy = nullptr;  // required; outlives the service
  crypto::Hash network_id{};
  uint32_t policy_version = 0;
  std::vector<std::string> bootstrap;  // PEERS
  uint8_t roles = mesh::kRoleStorage;
  std::vector<float> vector;  // the wallet's identity vector
  int64_t interval_ms = 1000;
  int64_t record_ttl_ms = 3600 * 1000;
  int64_t suspect_timeout_ms = 5000;
  int64_t request_timeout_ms = 2000;
  size_t fanout = 3;
  size_t indirect_probes = 3;  // gossip.indirect_probes
  // This node's prices and capacity now (the market's), for its record.
  std::function<std::vector<uint64_t>()> prices;
  std::function<mesh::RecordCapacity()> capacity;
  // How many certified fraud records this node knows of a wallet (node/fraud_book.h); unset:
  // none shown.
  std::function<size_t(const ledger::KeyBytes&)> fraud_records;
  // Wallets trusted from the start (TRUSTED_PEERS and the committee's authorities); this node
  // is always one.
  std::vector<ledger::KeyBytes> pretrusted;
  // An authority node's storage outcomes per (payer, provider) (ledger::Authority::
  // ProofOutcomes); unset: none.
  std::function<std::vector<mesh::PayerOutcome>()> proof_outcomes;
  // How many equivocation proofs an authority node's ledger keeps against a wallet (read after
  // proof_outcomes, in the same computation); unset: none.
  std::function<size_t(const ledger::KeyBytes&)> equivocations;
};

class MeshService {
 public:
  // Reads or makes STATE_DIR/node.key and signs the node key's delegation with `wallet`
  // (kept, to sign it again before it expires: it must outlive the service).
  static core::Result<std::unique_ptr<MeshService>> Open(core::FileSystem* fs, core::Clock* clock,
                                                         const std::string& state_dir,
                                                         const crypto::bls::SecretKey& wallet,
                                                         MeshOptions opt);
  ~MeshService();

  // Starts the gossip rounds; `url` is where peers reach this node (ADVERTISE_URL, else the
  // API's bound address).
  void Start(const std::string& url) EXCLUDES(mu_);
  void RequestStop() { ticker_.RequestStop(); }
  void Stop() { ticker_.Stop(); }

  // POST /v1/mesh/exchange: `request` is {"network": HEX, "envelope": HEX}; the answer the
  // same, with this node's envelope. InvalidArgument for another network (named), a bad or
  // replayed envelope, a kind other than an exchange; Corruption for a forged one.
  core::Result<nlohmann::json> HandleExchange(const std::string& request) EXCLUDES(mu_);

  // dfrp-mesh leave (POST /v1/mesh/leave): while leaving, this node's record carries
  // kRoleLeaving, so offers everywhere refuse it and its payers' repair moves their copies;
  // it goes on serving and proving what it holds. Kept in STATE_DIR/mesh-leaving (synced), so
  // a restart keeps it; false undoes it.
  core::Status SetLeaving(bool leaving) EXCLUDES(mu_, leave_mu_);
  bool leaving() const EXCLUDES(mu_) {
    core::MutexLock lock(&mu_);
    return leaving_;
  }

  // POST /v1/mesh/probe: `request` as for an exchange, the envelope of kind kProbeKind naming a
  // peer; this node calls that peer (an exchange, waiting at most the request timeout) and
  // answers with the peer's own answer envelope. InvalidArgument for a bad envelope, a sender
  // this node does not know as alive, a target that is the sender; NotFound for a target it
  // does not know; Busy while another probe runs; Unavailable when the peer did not
  // answer under its key.
  core::Result<nlohmann::json> HandleProbe(const std::string& request) EXCLUDES(mu_);

  // POST /v1/mesh/offers: the request is the market's quote request (economy/fee_match.h);
  // every node this one knows (itself included) is matched against it at the prices of its
  // record: the alive ones that pass, nearest the request's vector first, then cheapest, at
  // most `k`; every other with the reason (caught by a certified fraud record, not alive, fee
  // over max_fee, a price over its cap, another policy version). InvalidArgument for a bad request.
  core::Result<nlohmann::json> OffersJson(std::string_view request, size_t k) const EXCLUDES(mu_);

  // The prices the market blends toward (economy/pricing.h): those of the `k` alive peers
  // nearest this node's vector that run this node's policy version, per resource, each
  // weighted by its first-hand uptime x (1 + 9 x its trust score): a peer trusted fully counts
  // ten times one nobody vouches for. These are the prices the peers announce in their
  // records; prices paid in published certificates are to replace them (issue 15, item 4).
  std::array<std::vector<economy::NeighbourPrice>, economy::kResourceCount> NeighbourPrices(
      size_t k) const EXCLUDES(mu_);

  // This node's trust in the peer of `wallet`, in [0, 1] (its global trust over the largest
  // of any peer's); 0 for one it does not know. 1 for itself.
  double TrustOf(const ledger::KeyBytes& wallet) const EXCLUDES(mu_);
  // Computes trust now (the gossip rounds do it every few rounds); for tests and callers that
  // need it fresh.
  void RecomputeTrust() EXCLUDES(mu_);

  // GET /v1/mesh/peers, and the "mesh" section of /v1/status.
  nlohmann::json PeersJson() const EXCLUDES(mu_);
  // The URLs of the storage peers known alive (where a compute job's inputs may be).
  std::vector<std::string> AliveStorageUrls() const EXCLUDES(mu_);
  // The URLs of every peer known alive (where a fraud record is spread).
  std::vector<std::string> AliveUrls() const EXCLUDES(mu_);
  nlohmann::json Json() const EXCLUDES(mu_);
  std::string MetricsText() const EXCLUDES(mu_);
  const mesh::PeerTable& table() const { return table_; }

 private:
  MeshService(core::Clock* clock, MeshOptions opt, const crypto::bls::SecretKey* wallet,
              crypto::bls::SecretKey node_key, mesh::Delegation delegation);
  // The wallet's delegation of the node key, signed again when half its life has passed.
  mesh::Delegation DelegationLocked(int64_t now_ms) REQUIRES(mu_);
  void Tick() EXCLUDES(mu_);
  // This node's record, signed again when due.
  core::Result<std::string> OwnRecord(int64_t now_ms) EXCLUDES(mu_);
  // This node's exchange envelope, as the JSON body of a request or answer.
  core::Result<nlohmann::json> ExchangeBody(int64_t now_ms) EXCLUDES(mu_);
  // Takes the records of an admitted exchange envelope; how many were new or newer.
  size_t TakeRecords(const mesh::Envelope& e, int64_t now_ms) EXCLUDES(mu_);
  // A peer's answer to this node's exchange; `expected` is the wallet the URL should answer
  // for (nullopt for a bootstrap URL).
  // A transport failure with a peer that answered before starts an indirect probe of it
  // unless `for_probe` (a helper's own call never starts another).
  // `sent_mono_ns`: when the request left, by the clock's monotonic reading (its round trip is
  // measured; 0: not measured).
  void TakeAnswer(const std::string& url, const std::optional<ledger::KeyBytes>& expected,
                  core::Result<HttpResponse> r, bool for_probe = false, int64_t sent_mono_ns = 0)
      EXCLUDES(mu_);
  // What this node saw of each peer, and the trust computed from every opinion known; one
  // computation at a time (the ticker's and RecomputeTrust's).
  void RecomputeTrustAt(int64_t now_ms) EXCLUDES(mu_, trust_compute_mu_);
  // Asks up to opt_.indirect_probes alive peers to reach `target`.
  void ProbeIndirectly(const ledger::KeyBytes& target, int64_t now_ms) EXCLUDES(mu_);
  // A helper's answer to this node's probe of `target`.
  // `asked_ms`: when this node asked; an answer signed well before it is not taken.
  void TakeProbeAnswer(const ledger::KeyBytes& target, int64_t asked_ms,
                       core::Result<HttpResponse> r) EXCLUDES(mu_);
  // An envelope signed by this node's key of `kind` with `body`, as a request body.
  core::Result<nlohmann::json> SignedBody(std::string_view kind, std::string body, int64_t now_ms)
      EXCLUDES(mu_);

  // {"score", "global", "local", "evidence"} of a peer.
  nlohmann::json TrustJson(const ledger::KeyBytes& wallet) const EXCLUDES(mu_);

  // A record's prices as the market shows them ({"cpu_sec": "0.00001", ...}); null for a
  // vector of another length.
  nlohmann::json PriceVectorOf(const std::vector<uint64_t>& prices) const;

  core::Clock* const clock_;
  const MeshOptions opt_;
  const crypto::bls::SecretKey* const wallet_;  // the node's; outlives this service
  const crypto::bls::SecretKey node_key_;
  const ledger::KeyBytes wallet_key_, node_pub_;
  mesh::EnvelopeGate gate_;
  mesh::PeerTable table_;

  mutable core::Mutex mu_;
  std::string url_ GUARDED_BY(mu_);
  mesh::Delegation delegation_ GUARDED_BY(mu_);
  uint64_t own_delegation_expiry_ GUARDED_BY(mu_) = 0;
  std::string own_wire_ GUARDED_BY(mu_);
  uint64_t own_seq_ GUARDED_BY(mu_) = 0;
  int64_t own_signed_ms_ GUARDED_BY(mu_) = 0;
  std::vector<uint64_t> own_prices_ GUARDED_BY(mu_);
  mesh::RecordCapacity own_capacity_ GUARDED_BY(mu_);
  core::FileSystem* fs_ = nullptr;  // set by Open, then read only
  std::string leaving_path_;        // likewise
  bool leaving_ GUARDED_BY(mu_) = false;
  core::Mutex leave_mu_ ACQUIRED_BEFORE(mu_);  // one SetLeaving at a time
  uint64_t rounds_ GUARDED_BY(mu_) = 0;
  uint64_t exchanges_ok_ GUARDED_BY(mu_) = 0, exchanges_failed_ GUARDED_BY(mu_) = 0;
  uint64_t exchanges_served_ GUARDED_BY(mu_) = 0;
  uint64_t records_rejected_ GUARDED_BY(mu_) = 0;
  uint64_t wrong_key_ GUARDED_BY(mu_) = 0;       // URLs that answered under another key
  uint64_t probes_sent_ GUARDED_BY(mu_) = 0;     // indirect probe requests sent
  uint64_t indirect_acks_ GUARDED_BY(mu_) = 0;   // relayed answers that revived a peer
  uint64_t probes_served_ GUARDED_BY(mu_) = 0;   // probes this node ran for others
  uint64_t probes_refused_ GUARDED_BY(mu_) = 0;  // probe requests it refused or could not do
  int probes_in_flight_ GUARDED_BY(mu_) = 0;     // probes it is running for others now
  // When each peer was last probed indirectly.
  std::map<ledger::KeyBytes, int64_t> last_indirect_ GUARDED_BY(mu_);
  // When each asker last had a probe run here.
  std::map<ledger::KeyBytes, int64_t> probe_askers_ GUARDED_BY(mu_);
  std::string last_error_ GUARDED_BY(mu_);
  uint64_t rng_ GUARDED_BY(mu_) = 0x9e3779b97f4a7c15ull;
  // Trust (RecomputeTrustAt). The opinion published in this node's record, and when it was
  // last put there.
  core::Mutex trust_compute_mu_ ACQUIRED_BEFORE(mu_);
  std::vector<mesh::OpinionEntry> opinion_ GUARDED_BY(mu_);
  std::vector<mesh::OpinionEntry> own_opinion_ GUARDED_BY(mu_);
  struct TrustView {
    double score = 0;   // [0, 1]
    double global = 0;  // its share of the global trust vector
    double local = 0;   // this node's local trust in it
    mesh::PeerEvidence evidence;
  };
  std::map<ledger::KeyBytes, TrustView> trust_ GUARDED_BY(mu_);
  double self_global_ GUARDED_BY(mu_) = 0;
  int64_t trust_ms_ GUARDED_BY(mu_) = 0;  // when it was computed (0: never)
  int trust_iterations_ GUARDED_BY(mu_) = 0;
  size_t trust_nodes_ GUARDED_BY(mu_) = 0;  // vertices of the last computation
  // URLs of records not heard first-hand, and when this node last called each.
  std::map<std::string, int64_t> url_tried_ GUARDED_BY(mu_);
  // Its callbacks use the members above: destroyed (waiting for them) before those.
  PeerClient client_;
  Ticker ticker_;  // last: stopped before the members its thread uses go
};

}  // namespace dfrp::node
