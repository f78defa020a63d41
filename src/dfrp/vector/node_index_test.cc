#include "dfrp/vector/node_index.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

namespace dfrp::vector {
namespace {

constexpr uint32_t kIndexDim = 8;

Offer MakeOffer(std::mt19937& rng, int i) {
  std::normal_distribution<float> n;
  Offer o;
  o.node = "node-" + std::to_string(i);
  o.vector.resize(kIndexDim);
  for (float& x : o.vector) x = n(rng);
  o.prices = {uint64_t(rng() % 100 + 1), uint64_t(rng() % 100 + 1), uint64_t(rng() % 10),
              uint64_t(rng() % 10)};
  o.trust = (rng() % 1000) / 999.0;
  return o;
}

RouteRequest MakeRequest(std::mt19937& rng) {
  std::normal_distribution<float> n;
  RouteRequest r;
  r.vector.resize(kIndexDim);
  for (float& x : r.vector) x = n(rng);
  r.quantities = {10, 10, 5, 5};
  r.max_fee = 900;  // about a third of the offers pass
  r.min_trust = 0.2;
  r.k = 10;
  return r;
}

TEST(NodeIndex, KeepsOnlyOffersWithinFeeAndTrustNearestFirst) {
  NodeIndex index({.dim = kIndexDim, .resources = 4});
  std::mt19937 rng(3);
  std::vector<Offer> offers;
  for (int i = 0; i < 500; ++i) {
    offers.push_back(MakeOffer(rng, i));
    ASSERT_TRUE(index.Upsert(offers.back()).ok());
  }
  const RouteRequest req = MakeRequest(rng);
  auto a = index.Rank(req);
  ASSERT_TRUE(a) << a.error().ToString();
  EXPECT_TRUE(a->exact);
  ASSERT_EQ(a->offers.size(), 10u);
  EXPECT_GT(a->over_fee, 0u);
  EXPECT_GT(a->under_trust, 0u);
  std::map<std::string, const Offer*> by_node;
  for (const Offer& o : offers) by_node[o.node] = &o;
  // Every offer kept passes; every offer that passes and is left out is farther.
  size_t passing = 0;
  for (const Offer& o : offers) {
    uint64_t fee = 0;
    for (size_t i = 0; i < 4; ++i) fee += o.prices[i] * req.quantities[i];
    if (fee > req.max_fee || o.trust < req.min_trust) continue;
    ++passing;
    const float d = Distance(Prepare(req.vector, Metric::kCosine),
                             Prepare(o.vector, Metric::kCosine), Metric::kCosine);
    bool kept = false;
    for (const Ranked& r : a->offers) kept |= r.node == o.node;
    if (!kept) {
      EXPECT_GE(d, a->offers.back().distance - 1e-6);
    }
  }
  EXPECT_EQ(passing + a->over_fee + a->under_trust, offers.size());
  for (size_t i = 0; i < a->offers.size(); ++i) {
    const Offer& o = *by_node[a->offers[i].node];
    uint64_t fee = 0;
    for (size_t j = 0; j < 4; ++j) fee += o.prices[j] * req.quantities[j];
    EXPECT_EQ(a->offers[i].fee, fee);
    EXPECT_LE(fee, req.max_fee);
    EXPECT_GE(o.trust, req.min_trust);
    if (i > 0) {
      EXPECT_LE(a->offers[i - 1].distance, a->offers[i].distance);
    }
  }
}

TEST(NodeIndex, PostFilterAgreesWithBruteForce) {
  NodeIndex index({.dim = kIndexDim, .resources = 4});
  std::mt19937 rng(5);
  for (int i = 0; i < 3000; ++i) ASSERT_TRUE(index.Upsert(MakeOffer(rng, i)).ok());
  index.BuildGraph();
  for (int i = 0; i < 200; ++i) index.Remove("node-" + std::to_string(i * 7));
  double same = 0;
  for (int q = 0; q < 40; ++q) {
    const RouteRequest req = MakeRequest(rng);
    auto exact = index.RankExact(req);
    auto post = index.RankPostFilter(req);
    ASSERT_TRUE(exact && post);
    ASSERT_EQ(post->offers.size(), exact->offers.size());
    std::set<std::string> want;
    for (const Ranked& r : exact->offers) want.insert(r.node);
    for (const Ranked& r : post->offers) {
      same += want.contains(r.node);
      EXPECT_NE(r.node.substr(0, 5), "");
      // A removed node is never offered.
      const int n = std::stoi(r.node.substr(5));
      EXPECT_FALSE(n % 7 == 0 && n < 1400) << r.node;
    }
  }
  EXPECT_GE(same / (40 * 10.0), 0.95);  // recall of the post-filter against brute force
}

TEST(NodeIndex, ReplacesRemovesAndRefusesBadInput) {
  NodeIndex index({.dim = kIndexDim, .resources = 4});
  std::mt19937 rng(9);
  Offer o = MakeOffer(rng, 1);
  ASSERT_TRUE(index.Upsert(o).ok());
  o.prices = {1, 1, 1, 1};
  ASSERT_TRUE(index.Upsert(o).ok());
  EXPECT_EQ(index.size(), 1u);
  RouteRequest req = MakeRequest(rng);
  req.max_fee = 30;
  auto a = index.Rank(req);
  ASSERT_TRUE(a);
  ASSERT_EQ(a->offers.size(), o.trust >= req.min_trust ? 1u : 0u);
  // A fee that would overflow 64 bits is over any max_fee, never wrapped to a small one.
  o.prices = {UINT64_MAX / 2, 3, 0, 0};
  o.trust = 1;
  ASSERT_TRUE(index.Upsert(o).ok());
  req.max_fee = UINT64_MAX;
  a = index.Rank(req);
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->offers.empty());
  EXPECT_EQ(a->over_fee, 1u);
  index.Remove(o.node);
  EXPECT_EQ(index.size(), 0u);

  Offer bad = MakeOffer(rng, 2);
  bad.vector.pop_back();
  EXPECT_NE(index.Upsert(bad).message().find("the vector of node node-2"), std::string::npos);
  bad = MakeOffer(rng, 3);
  bad.prices.pop_back();
  EXPECT_FALSE(index.Upsert(bad).ok());
  bad = MakeOffer(rng, 4);
  bad.trust = 1.5;
  EXPECT_FALSE(index.Upsert(bad).ok());
  req.k = 0;
  EXPECT_FALSE(index.Rank(req));
  req.k = 3;
  req.quantities = {1};
  EXPECT_FALSE(index.Rank(req));
}

}  // namespace
}  // namespace dfrp::vector
