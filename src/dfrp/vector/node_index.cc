#include "dfrp/vector/node_index.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <queue>

namespace dfrp::vector {

using core::Err;
using core::Result;
using core::Status;

NodeIndex::NodeIndex(const NodeIndexOptions& opt) : opt_(opt), prices_(opt.resources) {}
NodeIndex::~NodeIndex() = default;

Status NodeIndex::Upsert(const Offer& offer) {
  const std::string what = fmt::format("the vector of node {}", offer.node);
  DFRP_RETURN_IF_ERROR(CheckVector(offer.vector, opt_.dim, opt_.metric, what));
  if (offer.prices.size() != opt_.resources)
    return Status::InvalidArgument(fmt::format("node {} offers {} prices; the index keeps {}",
                                               offer.node, offer.prices.size(), opt_.resources));
  if (!(offer.trust >= 0.0 && offer.trust <= 1.0))
    return Status::InvalidArgument(
        fmt::format("node {}: trust {} is outside [0, 1]", offer.node, offer.trust));
  size_t slot;
  if (auto it = slot_of_.find(offer.node); it != slot_of_.end()) {
    slot = it->second;
  } else if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
  } else {
    slot = nodes_.size();
    nodes_.emplace_back();
    vectors_.resize(vectors_.size() + opt_.dim);
    for (auto& p : prices_) p.push_back(0);
    trust_.push_back(0);
    live_slot_.push_back(false);
  }
  if (!live_slot_[slot]) ++live_;
  slot_of_[offer.node] = slot;
  nodes_[slot] = offer.node;
  const std::vector<float> v = Prepare(offer.vector, opt_.metric);
  std::copy(v.begin(), v.end(), vectors_.begin() + slot * opt_.dim);
  for (uint32_t r = 0; r < opt_.resources; ++r) prices_[r][slot] = offer.prices[r];
  trust_[slot] = offer.trust;
  live_slot_[slot] = true;
  if (graph_) {
    GraphAdd(slot);
  } else if (live_ > opt_.brute_force_below) {
    BuildGraph();
  }
  return Status::OK();
}

void NodeIndex::Remove(const std::string& node) {
  auto it = slot_of_.find(node);
  if (it == slot_of_.end()) return;
  const size_t slot = it->second;
  slot_of_.erase(it);
  live_slot_[slot] = false;
  free_.push_back(slot);
  --live_;
  if (graph_) graph_->Remove(slot);
}

void NodeIndex::GraphAdd(size_t slot) {
  graph_->Reserve(slot + 1);
  // A label the graph has is updated (and restored); a new one is added.
  graph_->Add(vectors_.data() + slot * opt_.dim, slot);
}

void NodeIndex::BuildGraph() {
  graph_ = std::make_unique<HnswGraph>(opt_.metric, opt_.dim, std::max<size_t>(nodes_.size(), 1024),
                                       opt_.m, opt_.ef_construction);
  for (size_t s = 0; s < nodes_.size(); ++s)
    if (live_slot_[s]) graph_->Add(vectors_.data() + s * opt_.dim, s);
}

Status NodeIndex::CheckRequest(const RouteRequest& req) const {
  DFRP_RETURN_IF_ERROR(CheckVector(req.vector, opt_.dim, opt_.metric, "the request's vector"));
  if (req.quantities.size() != opt_.resources)
    return Status::InvalidArgument(
        fmt::format("the request gives {} quantities; offers price {} resources",
                    req.quantities.size(), opt_.resources));
  if (req.k == 0) return Status::InvalidArgument("the request asks for k = 0 offers");
  return Status::OK();
}

std::optional<uint64_t> NodeIndex::FeeWithin(size_t s, std::span<const uint64_t> q,
                                             std::span<const uint32_t> used,
                                             uint64_t max_fee) const {
  // Each product is exact in 128 bits; a product over max_fee ends it, so the sum of the
  // rest (each at most max_fee < 2^64, at most 2^32 of them) cannot overflow 128 bits.
  unsigned __int128 fee = 0;
  for (uint32_t r : used) {
    const unsigned __int128 part = static_cast<unsigned __int128>(prices_[r][s]) * q[r];
    if (part > max_fee) return std::nullopt;
    fee += part;
  }
  if (fee > max_fee) return std::nullopt;
  return static_cast<uint64_t>(fee);
}

namespace {
std::vector<uint32_t> UsedResources(std::span<const uint64_t> q) {
  std::vector<uint32_t> used;
  for (uint32_t r = 0; r < q.size(); ++r)
    if (q[r] != 0) used.push_back(r);
  return used;
}
}  // namespace

Result<RouteAnswer> NodeIndex::Rank(const RouteRequest& req) const {
  if (graph_ && live_ > opt_.brute_force_below) return RankPostFilter(req);
  return RankExact(req);
}

Result<RouteAnswer> NodeIndex::RankExact(const RouteRequest& req) const {
  DFRP_RETURN_IF_ERROR(CheckRequest(req));
  const std::vector<float> q = Prepare(req.vector, opt_.metric);
  const std::vector<uint32_t> used = UsedResources(req.quantities);
  RouteAnswer out;
  out.exact = true;
  // First a cheap necessary condition on every slot at once: each term price x quantity within
  // max_fee, i.e. price <= max_fee / quantity (and the slot live). It is exact for a request
  // that uses one resource; for several, the slots it lets through get the exact sum below.
  const size_t n = nodes_.size();
  std::vector<uint8_t> ok(live_slot_);
  for (uint32_t r : used) {
    const uint64_t cap = req.max_fee / req.quantities[r];
    const uint64_t* p = prices_[r].data();
    for (size_t s = 0; s < n; ++s) ok[s] &= static_cast<uint8_t>(p[s] <= cap);
  }
  using Entry = std::pair<float, size_t>;  // (ranking distance, slot)
  std::priority_queue<Entry> best;         // the k best so far, worst on top
  size_t passing = 0;
  for (size_t s = 0; s < n; ++s) {
    if (!ok[s]) continue;
    if (used.size() > 1 && !FeeWithin(s, req.quantities, used, req.max_fee)) continue;
    if (trust_[s] < req.min_trust) {
      ++out.under_trust;
      continue;
    }
    ++passing;
    const float d =
        RankingDistance(q.data(), vectors_.data() + s * opt_.dim, opt_.dim, opt_.metric);
    if (best.size() < req.k) {
      best.emplace(d, s);
    } else if (d < best.top().first) {
      best.pop();
      best.emplace(d, s);
    }
  }
  out.over_fee = live_ - out.under_trust - passing;
  std::vector<Entry> sorted;
  for (; !best.empty(); best.pop()) sorted.push_back(best.top());
  std::reverse(sorted.begin(), sorted.end());
  for (const auto& [d, s] : sorted)
    out.offers.push_back({nodes_[s], ReportedDistance(d, opt_.metric),
                          *FeeWithin(s, req.quantities, used, req.max_fee)});
  return out;
}

Result<RouteAnswer> NodeIndex::RankPostFilter(const RouteRequest& req) const {
  DFRP_RETURN_IF_ERROR(CheckRequest(req));
  if (!graph_) return Err(Status::Internal("NodeIndex::RankPostFilter before BuildGraph"));
  const std::vector<float> q = Prepare(req.vector, opt_.metric);
  const std::vector<uint32_t> used = UsedResources(req.quantities);
  RouteAnswer out;
  core::MutexLock lock(&search_mu_);
  // Start as if one offer in ten passed, and widen until k pass or every offer was seen.
  size_t ef = std::max<size_t>(req.k * 10, 64);
  while (true) {
    const size_t want = std::min(ef, live_);
    std::vector<std::pair<float, size_t>> passing;
    for (const auto& [d, slot] : graph_->Search(q.data(), want, want)) {
      if (trust_[slot] >= req.min_trust && FeeWithin(slot, req.quantities, used, req.max_fee))
        passing.emplace_back(d, slot);
    }
    if (passing.size() >= req.k || want >= live_) {
      std::sort(passing.begin(), passing.end());
      passing.resize(std::min(passing.size(), req.k));
      for (const auto& [d, s] : passing)
        out.offers.push_back({nodes_[s], ReportedDistance(d, opt_.metric),
                              *FeeWithin(s, req.quantities, used, req.max_fee)});
      return out;
    }
    ef *= 2;
  }
}

}  // namespace dfrp::vector
