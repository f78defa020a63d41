// Trust vectors (docs/PROTOCOL.md, "Trust"): what a node saw of each peer first-hand,
// the opinion it publishes in its record, and the global trust it computes from everyone's
// opinions, EigenTrust-style (Kamvar, Schlosser and Garcia-Molina, 2003).
//
// Local trust. A node's evidence of a peer is what it saw itself: paid work (an authority node
// counts, per payer, from the settlements its committee certified, the storage periods
// released on a verified proof and the compute jobs released undisputed, against those
// refunded; node/mesh_service.h weighs each payer's testimony by the payer's trust), the exchanges
// the peer answered under its key and those that failed (uptime), how long the answers took
// (latency), and the certified fraud records against it. LocalTrust turns that into one number >=
// 0: paid work, scaled by uptime and latency. Answering gossip alone earns nothing (it costs a
// Sybil nothing either, and any share of trust given to it would be kept (1 - a) / a times over by
// a closed Sybil set); a certified fraud record makes it 0 whatever else was seen.
//
// Opinion. Trusts normalised to sum 1, the largest kMaxOpinion of them, each as a u16 share
// (OpinionFromLocal); an authority node publishes its trust in the providers it saw paid. It goes
// in the node's signed record, so everyone can see who vouches for whom and how much; nobody states
// its own trust.
//
// Global trust. With C the matrix of normalised opinions (row i: node i's opinion; a node that
// publishes none, or one not known, follows the pre-trusted distribution p), the global trust
// vector is the fixed point of
//     t = (1 - a) · Cᵀ t + a · p
// where p is uniform over the pre-trusted nodes (the node itself, its TRUSTED_PEERS and the
// committee's authorities) and a is trust.pretrust_weight_bps / 10000. t sums to 1. A node
// reaches trust only along opinions from the pre-trusted set: a ring of Sybil wallets vouching
// for one another, or a Sybil client paying its own provider, that no trusted node vouches for
// has global trust 0, however many opinions it publishes. What a Sybil set can take is the
// share trusted nodes give it, kept (1 - a) / a times over in a closed loop (EigenTrust's known
// amplification): only paid work for trusted payers earns such a share
// (bench/trust_sim.cc measures it).
//
// Thread-safety: the functions are pure.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "dfrp/ledger/messages.h"

namespace dfrp::mesh {

inline constexpr size_t kMaxOpinion = 16;
// Paid work in LocalTrust: each released period or job (net of twice the refunded ones) counts
// 1, at most kMaxProofEvidence per payer.
inline constexpr uint64_t kMaxProofEvidence = 64;
// Answers slower than this scale the evidence down (x ref / rtt); faster ones count whole, so a
// peer never exchanged with gains nothing over a prompt one.
inline constexpr double kLatencyReferenceMs = 250.0;

struct OpinionEntry {
  ledger::KeyBytes peer{};  // the peer's wallet key
  uint16_t weight = 0;      // its share of the opinion, in 1/65535 (> 0)
  bool operator==(const OpinionEntry&) const = default;
};

struct PeerEvidence {
  uint64_t answers = 0;   // exchanges it answered under its key
  uint64_t failures = 0;  // exchanges with it that failed
  double rtt_ms = -1;     // its answers' round trip, smoothed; < 0: none measured
  // Storage periods and compute jobs released to it (a proof verified, a claim undisputed) and
  // refunded: one payer's, each at most kMaxProofEvidence, for LocalTrust; summed over every
  // payer where shown.
  uint64_t proofs_passed = 0, proofs_missed = 0;
  uint64_t fraud_records = 0;  // certified fraud records against it
  // Equivocation proofs against its wallet (two orders it signed for one sequence number), as
  // an authority node's ledger keeps them.
  uint64_t equivocations = 0;
};

// An authority's count of one payer's storage periods with one provider (ledger::Authority::
// ProofOutcomes).
struct PayerOutcome {
  ledger::KeyBytes payer{}, provider{};
  uint64_t released = 0, refunded = 0;
};

// max(0, passed - 2 x missed) x uptime x latency factor, where uptime is (answers + 1) /
// (answers + failures + 2) and the latency factor min(1, kLatencyReferenceMs / rtt), each 1
// when this node never exchanged with the peer; 0 for a peer with a fraud record or an
// equivocation proof.
double LocalTrust(const PeerEvidence& e);

// The largest kMaxOpinion positive local trusts, as shares of 65535 (each at least 1), largest
// first (ties by key). Empty when none is positive.
std::vector<OpinionEntry> OpinionFromLocal(
    const std::vector<std::pair<ledger::KeyBytes, double>>& local);

struct TrustOptions {
  double pretrust_weight = 0.15;  // a
  int max_iterations = 200;
  double epsilon = 1e-12;  // stop when the L1 change of an iteration is below
};

struct TrustResult {
  std::vector<double> global;  // by node index; sums to 1
  int iterations = 0;
  double residual = 0;  // the L1 change of the last iteration
};

// `rows[i]`: node i's opinion as (node index, weight >= 0) pairs (indices < n; an index equal
// to i, a non-finite or negative weight, counts nothing); `pretrusted`: indices < n, at least
// one. The global trust vector by power iteration (header comment).
TrustResult ComputeGlobalTrust(size_t n,
                               const std::vector<std::vector<std::pair<uint32_t, double>>>& rows,
                               const std::vector<uint32_t>& pretrusted, const TrustOptions& opt);

}  // namespace dfrp::mesh
