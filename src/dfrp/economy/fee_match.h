// Fee matching: whether a request's fee pays for what it asks at a node's prices, and how
// competing requests are weighted (the sigmoid weighting against spam).
//
// A request (the seed's context JSON, accepted as is):
//   {"cpu_sec": 1.2, "storage_mb": 300, "wallet": "dfrp1...", "max_fee": 0.0042}
// with optional "gpu_sec", "months" (for storage_mb; default 1), "read_mb", "write_mb",
// "proofs", "max_price" ({"cpu_sec": "0.002", ...} per resource of the price vector),
// "vector" (VECTOR_DIM finite floats), "nonce" and "signature" (checked by the ledger and
// compute issues, carried here). Amounts and quantities are decimal strings or JSON numbers,
// parsed exactly from their text. MB is 10^6 bytes; a storage month is 30 days; storage is
// priced per GiB-month, reads and writes per GiB (2^30 bytes).
//
// Matching: every capped price must be within its cap, then the total of ceil(price x
// quantity) per resource must be within max_fee, then the vector similarity must reach the
// threshold (when both vectors are given), then trust its floor (when given). The first
// failure is the reason, in words: "cpu_sec price 0.0031 over cap 0.002".
//
// Weighting (docs/PROTOCOL.md, "Sigmoid weighting"): a funded request's weight is
//   w = sigmoid(s * (offered / asked - m)) * similarity / (1 + max(0, rate - free) / free)
// with s = reward.sigmoid_steepness, m = reward.sigmoid_midpoint, `offered` its max_fee,
// `asked` the matched total, `similarity` clamped to [0, 1] (1 without vectors), `rate` the
// wallet's recent requests per minute (exponentially decayed, half-life
// reward.rate_half_life_seconds) and `free` reward.rate_free_per_minute. So an offer at the
// asked price weighs 0.5 and one 20% above it 0.83 (s = 8, m = 1); a wallet past its free
// rate loses weight in proportion, so flooding (even with tips) cannot buy priority, while
// many fresh wallets (a Sybil flood, each funded) weigh no more than their offers. An
// unfunded request is served only from a per-source bucket of reward.unfunded_per_minute.
// AdmissionControl keeps the rates and buckets.
//
// Thread-safety: the free functions are pure; AdmissionControl is internally locked.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dfrp/economy/policy.h"

namespace dfrp::economy {

struct FeeRequest {
  // Quantities in micros of each resource's unit (what the prices are per).
  std::array<QuantityMicros, kResourceCount> quantity{};
  std::optional<Amount> max_fee;
  std::array<std::optional<Price>, kResourceCount> max_price{};
  std::string wallet;
  std::vector<float> vector;
  std::string nonce, signature;
  uint64_t storage_bytes = 0;  // storage_mb in bytes: the room a node needs for it
  // As given, for display: storage_mb and months, read_mb, write_mb.
  std::string storage_mb = "0", months = "1", read_mb = "0", write_mb = "0";
};

// Parses the context JSON. InvalidArgument naming the field: unknown fields, wrong types, NaN
// or infinite numbers, negative or overflowing amounts, amounts with more decimals than the
// currency has, quantities with more than 6 decimals, unknown resources in max_price, a vector
// of the wrong dimension (vector_dim; 0 accepts any) or with a non-finite component, a
// wallet that is not an address. At most 64 KiB.
core::Result<FeeRequest> ParseFeeRequest(std::string_view json, const EconomicPolicy& policy,
                                         uint32_t vector_dim);

// Converts request units to resource micros (exact, rounded up). False on overflow.
bool StorageQuantity(uint64_t mb_micros, uint64_t months_micros, QuantityMicros* out);
bool TransferQuantity(uint64_t mb_micros, QuantityMicros* out);

struct MatchOptions {
  const std::vector<float>* node_vector = nullptr;  // with the request's: similarity checked
  double vector_threshold = -2;                     // below -1: not checked
  std::optional<double> trust;                      // the node's trust, when known
  double trust_floor = 0;
};

struct Quote {
  bool accepted = false;
  std::string reason;  // the first reason for a refusal, in words; empty when accepted
  std::array<Amount, kResourceCount> fee{};
  Amount total = 0;
  std::optional<double> similarity;
};

// Matches a request against a price vector (see the header comment).
Quote MatchFee(const FeeRequest& req, const PriceVector& prices, const EconomicPolicy& policy,
               const MatchOptions& opt = {});

// Cosine similarity of two vectors of one dimension (nullopt for a zero vector or a
// dimension mismatch).
std::optional<double> CosineSimilarity(const std::vector<float>& a, const std::vector<float>& b);

// Routing: one request matched against many candidates' price vectors (the mesh's offers).
struct RouteCandidate {
  const std::vector<float>* vector = nullptr;  // its place in the vector space; may be null
  PriceVector prices{};
};
// Small on purpose (no per-resource fees): a decision over a thousand candidates stays within
// the allocator's heap, where a Quote apiece would take a fresh mapping for every decision.
struct RankedCandidate {
  size_t index = 0;       // into the candidates given
  Amount total = 0;       // the fee quoted (0 when a cap refused it first)
  double similarity = 1;  // cosine similarity to the request's vector; 1 without one, -1 when
                          // the candidate's vector cannot be compared
  std::string reason;     // why the fee match refused it; empty when it passed
};
struct Routing {
  // The candidates whose fee matches: the first min(k, size) nearest the request's vector,
  // then cheapest, in that order; the rest after them, unordered.
  std::vector<RankedCandidate> passed;
  std::vector<RankedCandidate> refused;  // by the fee match: reason says why
  // The cheapest refused for max_fee alone: what the request would cost.
  std::optional<RankedCandidate> cheapest_over_max_fee;
};
Routing RankCandidates(const FeeRequest& req, const std::vector<RouteCandidate>& candidates,
                       const EconomicPolicy& policy, size_t k);

// The weight of a funded, matched request (header comment).
double RequestWeight(const RewardPolicy& r, Amount offered, Amount asked, double similarity,
                     double wallet_rate_per_minute);

// Per-wallet request rates and per-source unfunded buckets, for ranking competing requests.
class AdmissionControl {
 public:
  explicit AdmissionControl(RewardPolicy r) : r_(r) {}
  // Notes a request of `wallet` at `now_ms` and returns the wallet's rate (per minute)
  // including it.
  double NoteRequest(const std::string& wallet, int64_t now_ms);
  double Rate(const std::string& wallet, int64_t now_ms) const;
  // Takes one token of `source`'s unfunded bucket (false: none left; the bucket refills at
  // unfunded_per_minute, holding at most that many).
  bool TakeUnfunded(const std::string& source, int64_t now_ms);
  // The weight of a funded request that matched at `asked` (and notes it).
  double Weigh(const std::string& wallet, Amount offered, Amount asked, double similarity,
               int64_t now_ms);

 private:
  struct Rate_ {
    double value = 0;  // requests per minute, decayed
    int64_t at_ms = 0;
  };
  struct Bucket {
    double tokens = 0;
    int64_t at_ms = 0;
  };
  double Decayed(const Rate_& r, int64_t now_ms) const;
  RewardPolicy r_;
  mutable std::mutex mu_;
  std::map<std::string, Rate_, std::less<>> rates_;
  std::map<std::string, Bucket, std::less<>> buckets_;
};

}  // namespace dfrp::economy
