// NodeIndex: the offers of the nodes a node knows (each a vector, a price per unit of each
// resource and a trust score) and the question the mesh and compute listeners ask of them:
// the k offers nearest a request's vector whose price for the request is within its max_fee
// and whose trust passes a floor.
//
// Debian's hnswlib (0.6.2) has no filtered search, and a fee filter is a half-space in price
// space (fee = sum of price x quantity), so offers cannot be partitioned by one fee band for
// every request. Two ways are kept, chosen by size (docs/BENCHMARKS.md, "Issue 14", has the
// figures behind the threshold):
//   brute force   every offer's prices are checked against max_fee / quantity (exact for a
//                 request on one resource; the exact sum follows for several), then trust,
//                 and the distance is computed only for those that pass: exact, and at
//                 10,000 offers about 65,000 decisions per second on one core.
//   post-filter   an HNSW search with a candidate list wide enough for the filter's
//                 selectivity, widened (doubled) until k offers pass or it covers everything.
// Money is exact: prices, quantities, fees and max_fee are integers in base units; a fee
// that would overflow 64 bits is refused, never wrapped.
//
// Thread-safety: Rank may be called from several threads at once (the post-filter takes a
// lock of its own: hnswlib's candidate list size is one per graph); Upsert, Remove and
// BuildGraph need exclusive use (the caller's lock).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "dfrp/core/status.h"
#include "dfrp/core/thread_annotations.h"
#include "dfrp/vector/hnsw_graph.h"
#include "dfrp/vector/vector_math.h"

namespace dfrp::vector {

struct Offer {
  std::string node;              // the node's address (its key in the index)
  std::vector<float> vector;     // VECTOR_DIM components
  std::vector<uint64_t> prices;  // base units per unit of each resource (one per resource)
  double trust = 0;              // in [0, 1]
};

struct RouteRequest {
  std::vector<float> vector;
  std::vector<uint64_t> quantities;  // units of each resource (as many as the prices)
  uint64_t max_fee = 0;
  double min_trust = 0;
  size_t k = 10;
};

struct Ranked {
  std::string node;
  float distance = 0;
  uint64_t fee = 0;  // sum of price x quantity
};

struct RouteAnswer {
  std::vector<Ranked> offers;  // nearest first
  // Offers left out, and why (only counted by the brute-force way, which sees them all).
  uint64_t over_fee = 0;
  uint64_t under_trust = 0;
  bool exact = false;  // answered by brute force
};

struct NodeIndexOptions {
  uint32_t dim = 16;
  uint32_t resources = 4;  // prices per offer
  Metric metric = Metric::kCosine;
  // Brute force up to this many offers; an HNSW post-filter above.
  size_t brute_force_below = 50'000;
  uint32_t m = 16;
  uint32_t ef_construction = 200;
};

class NodeIndex {
 public:
  explicit NodeIndex(const NodeIndexOptions& opt);
  ~NodeIndex();

  // Adds an offer or replaces the node's; InvalidArgument naming the node for a bad vector, a
  // wrong number of prices or a trust outside [0, 1].
  core::Status Upsert(const Offer& offer);
  void Remove(const std::string& node);
  size_t size() const { return live_; }
  // Builds the HNSW graph now (Upsert builds it once brute_force_below is passed).
  void BuildGraph();

  // InvalidArgument for a bad request (its vector, its quantities, k = 0).
  core::Result<RouteAnswer> Rank(const RouteRequest& req) const;
  // The same question forced one way (for the benchmark and tests).
  core::Result<RouteAnswer> RankExact(const RouteRequest& req) const;
  core::Result<RouteAnswer> RankPostFilter(const RouteRequest& req) const;

 private:
  core::Status CheckRequest(const RouteRequest& req) const;
  // The fee of slot `s` for `q`, or nullopt when it is over `max_fee` (an overflow of 64 bits
  // is over any max_fee). `used` lists the resources whose quantity is not zero.
  std::optional<uint64_t> FeeWithin(size_t s, std::span<const uint64_t> q,
                                    std::span<const uint32_t> used, uint64_t max_fee) const;
  void GraphAdd(size_t slot);

  NodeIndexOptions opt_;
  // Offers in slots; a removed offer's slot is reused.
  std::vector<std::string> nodes_;
  std::vector<float> vectors_;                 // slot x dim, prepared (unit length under cosine)
  std::vector<std::vector<uint64_t>> prices_;  // per resource, per slot
  std::vector<double> trust_;
  std::vector<uint8_t> live_slot_;
  std::vector<size_t> free_;
  std::map<std::string, size_t> slot_of_;
  size_t live_ = 0;
  // The HNSW graph over the slots (labels are slots), built once brute_force_below is passed
  // and kept up to date by Upsert and Remove from then on.
  std::unique_ptr<HnswGraph> graph_;
  mutable core::Mutex search_mu_;  // one post-filter search at a time (hnswlib's ef)
};

}  // namespace dfrp::vector
