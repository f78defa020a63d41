#include "dfrp/economy/fee_match.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "dfrp/core/bytes.h"
#include "dfrp/crypto/bls.h"
#include "dfrp/wallet/address.h"

namespace dfrp::economy {
namespace {

EconomicPolicy Default() {
  auto p = ParseEconomicPolicy(kDefaultEconomicToml, "embedded default");
  EXPECT_TRUE(p.has_value());
  return *p;
}

std::string Address(uint8_t seed) {
  const std::string ikm(32, static_cast<char>(seed));
  return wallet::AddressOf(crypto::bls::SecretKey::FromIkm(core::AsBytes(ikm))->GetPublicKey());
}

FeeRequest Req(const std::string& json, uint32_t dim = 0) {
  auto r = ParseFeeRequest(json, Default(), dim);
  EXPECT_TRUE(r.has_value()) << json << ": " << (r ? "" : r.error().message());
  return r ? *r : FeeRequest{};
}

std::string Error(const std::string& json, uint32_t dim = 16) {
  auto r = ParseFeeRequest(json, Default(), dim);
  EXPECT_FALSE(r.has_value()) << "accepted: " << json;
  return r ? "" : r.error().message();
}

constexpr size_t kCpu = static_cast<size_t>(Resource::kCpuSec);
constexpr size_t kStore = static_cast<size_t>(Resource::kStorageGibMonth);
constexpr size_t kRead = static_cast<size_t>(Resource::kReadGib);

TEST(FeeMatch, TheSeedsContextIsAcceptedAsIs) {
  const std::string w = Address(1);
  const EconomicPolicy pol = Default();
  FeeRequest r = Req(fmt::format(
      R"({{"cpu_sec": 1.2, "storage_mb": 300, "wallet": "{}", "max_fee": 0.0042}})", w));
  EXPECT_EQ(r.quantity[kCpu], 1'200'000u);
  // 300 MB for one month = 300e6 / 2^30 GiB-months = 0.279396772 (rounded up in micros).
  EXPECT_EQ(r.quantity[kStore], 279397u);
  EXPECT_EQ(r.max_fee, 4'200'000u);
  EXPECT_EQ(r.wallet, w);
  // At the floors: 1.2 s x 0.00001 + 0.279397 x 0.004 = 0.000012 + 0.001117588 -> 0.001129588.
  const Quote q = MatchFee(r, pol.pricing.floor, pol);
  EXPECT_TRUE(q.accepted) << q.reason;
  EXPECT_EQ(q.fee[kCpu], 12'000u);
  EXPECT_EQ(q.fee[kStore], 1'117'588u);
  EXPECT_EQ(q.total, 1'129'588u);
  // The same request with every number as a string is the same request.
  FeeRequest s = Req(fmt::format(
      R"({{"cpu_sec": "1.2", "storage_mb": "300", "wallet": "{}", "max_fee": "0.0042"}})", w));
  EXPECT_EQ(s.quantity, r.quantity);
  EXPECT_EQ(s.max_fee, r.max_fee);
}

TEST(FeeMatch, RefusalsNameTheFirstReason) {
  const EconomicPolicy pol = Default();
  PriceVector prices = pol.pricing.floor;
  prices[kCpu] = 3'100'000'000'000ull;  // 0.0031 per CPU-second (10^-15 DFRP units)
  Quote q = MatchFee(Req(R"({"cpu_sec": 1, "max_fee": 1, "max_price": {"cpu_sec": "0.002"}})"),
                     prices, pol);
  EXPECT_FALSE(q.accepted);
  EXPECT_EQ(q.reason, "cpu_sec price 0.0031 over cap 0.002");
  q = MatchFee(Req(R"({"cpu_sec": "1.645162", "max_fee": "0.0042"})"), prices, pol);
  EXPECT_FALSE(q.accepted);
  // 0.0031 x 1.645162 = 0.0051000022, rounded up to a whole base unit.
  EXPECT_EQ(q.reason, "total 0.005100003 over max_fee 0.0042");
  // Exactly max_fee is enough.
  q = MatchFee(Req(R"({"cpu_sec": 1, "max_fee": 0.0031})"), prices, pol);
  EXPECT_TRUE(q.accepted) << q.reason;
  EXPECT_EQ(q.total, 3'100'000u);
  q = MatchFee(Req(R"({"cpu_sec": 1, "max_fee": 0.003099999})"), prices, pol);
  EXPECT_FALSE(q.accepted);
  // Vector similarity and trust, in that order.
  const std::vector<float> node = {1, 0, 0};
  MatchOptions opt;
  opt.node_vector = &node;
  opt.vector_threshold = 0.8;
  q = MatchFee(Req(R"({"cpu_sec": 1, "vector": [0.41, 0.9119, 0]})"), prices, pol, opt);
  EXPECT_FALSE(q.accepted);
  EXPECT_EQ(q.reason, "vector similarity 0.41 under threshold 0.80");
  q = MatchFee(Req(R"({"cpu_sec": 1, "vector": [0.9, 0.1, 0]})"), prices, pol, opt);
  EXPECT_TRUE(q.accepted) << q.reason;
  opt.trust = 0.2;
  opt.trust_floor = 0.5;
  q = MatchFee(Req(R"({"cpu_sec": 1, "vector": [0.9, 0.1, 0]})"), prices, pol, opt);
  EXPECT_EQ(q.reason, "trust 0.20 under floor 0.50");
  // No max_fee: a quote, always accepted unless a cap refuses it.
  q = MatchFee(Req(R"({"read_mb": 1073.741824})"), pol.pricing.floor, pol);
  EXPECT_TRUE(q.accepted);
  EXPECT_EQ(q.fee[kRead], 7'000'000u);  // one GiB at 0.007
}

TEST(FeeMatch, RoutingRanksNearestThenCheapestAndNamesTheCheapestOverMaxFee) {
  const EconomicPolicy pol = Default();
  const std::vector<float> east = {1, 0, 0}, north = {0, 1, 0}, mid = {0.7f, 0.7f, 0};
  auto at = [&](const std::vector<float>* v, uint64_t cpu_price) {
    RouteCandidate c{.vector = v, .prices = pol.pricing.floor};
    c.prices[kCpu] = cpu_price;
    return c;
  };
  // 1 CPU-second at 0.001 (10^12 in price units) costs 0.001; max_fee 0.002.
  const std::vector<RouteCandidate> cands = {
      at(&north, 1'000'000'000'000ull),  // 0: far
      at(&east, 1'500'000'000'000ull),   // 1: nearest, dearer
      at(&east, 1'000'000'000'000ull),   // 2: nearest, cheaper
      at(&east, 3'000'000'000'000ull),   // 3: over max_fee (0.003)
      at(&east, 2'500'000'000'000ull),   // 4: over max_fee, the cheapest such (0.0025)
      at(&mid, 1'000'000'000'000ull),    // 5: between
      at(nullptr, 1'000'000'000'000ull)  // 6: no vector: last
  };
  const FeeRequest req = Req(R"({"cpu_sec": 1, "max_fee": "0.002", "vector": [1, 0, 0]})");
  Routing r = RankCandidates(req, cands, pol, 3);
  ASSERT_EQ(r.passed.size(), 5u);
  EXPECT_EQ(r.passed[0].index, 2u);
  EXPECT_EQ(r.passed[1].index, 1u);
  EXPECT_EQ(r.passed[2].index, 5u);
  EXPECT_NEAR(r.passed[0].similarity, 1.0, 1e-9);
  ASSERT_EQ(r.refused.size(), 2u);
  EXPECT_NE(r.refused[0].reason.find("over max_fee"), std::string::npos);
  ASSERT_TRUE(r.cheapest_over_max_fee.has_value());
  EXPECT_EQ(r.cheapest_over_max_fee->index, 4u);
  EXPECT_EQ(r.cheapest_over_max_fee->total, 2'500'000u);
  // k past the list orders all of them; a candidate without a vector ranks last.
  r = RankCandidates(req, cands, pol, 100);
  ASSERT_EQ(r.passed.size(), 5u);
  EXPECT_EQ(r.passed[3].index, 0u);
  EXPECT_EQ(r.passed[4].index, 6u);
  EXPECT_EQ(r.passed[4].similarity, -1.0);
  // A cap refuses before the total: not "over max_fee", so not the cheapest over it.
  r = RankCandidates(
      Req(R"({"cpu_sec": 1, "max_fee": "0.002", "max_price": {"cpu_sec": "0.0001"}})"), cands, pol,
      3);
  EXPECT_TRUE(r.passed.empty());
  EXPECT_EQ(r.refused.size(), cands.size());
  EXPECT_FALSE(r.cheapest_over_max_fee.has_value());
}

TEST(FeeMatch, HostileRequestsGetAnErrorNamingTheField) {
  EXPECT_NE(Error("[1]").find("must be a JSON object"), std::string::npos);
  EXPECT_NE(Error("{").find("not valid JSON"), std::string::npos);
  EXPECT_NE(Error(R"({"cpu_sec": NaN})").find("not valid JSON"), std::string::npos);
  EXPECT_NE(Error(R"({"cpu_sec": Infinity})").find("not valid JSON"), std::string::npos);
  // nlohmann refuses a number past the double range itself; the message names it.
  EXPECT_NE(Error(R"({"max_fee": 1e400})").find("1e400"), std::string::npos);
  EXPECT_NE(Error(R"({"max_fee": "1e400"})").find("max_fee"), std::string::npos);
  EXPECT_NE(Error(R"({"max_fee": -1})").find("negative"), std::string::npos);
  EXPECT_NE(Error(R"({"max_fee": 0.0000000001})").find("more decimals"), std::string::npos);
  EXPECT_NE(Error(R"({"max_fee": 18446744074})").find("too large"), std::string::npos);
  EXPECT_NE(Error(R"({"cpu_sec": 0.0000001})").find("cpu_sec"), std::string::npos);
  EXPECT_NE(Error(R"({"cpu_sec": true})").find("cpu_sec: must be a number"), std::string::npos);
  EXPECT_NE(Error(R"({"cpu_sec": [1]})").find("cpu_sec"), std::string::npos);
  EXPECT_NE(Error(R"({"ram_gb": 1})").find("ram_gb: is not a field"), std::string::npos);
  EXPECT_NE(Error(R"({"max_price": {"ram": "1"}})").find("max_price.ram: is not a resource"),
            std::string::npos);
  EXPECT_NE(Error(R"({"max_price": 5})").find("max_price"), std::string::npos);
  EXPECT_NE(Error(R"({"wallet": 5})").find("wallet: must be a string"), std::string::npos);
  EXPECT_NE(Error(R"({"wallet": "dfrp1abc"})").find("not a dfrp wallet address"),
            std::string::npos);
  EXPECT_NE(Error(R"({"vector": [1, 2]})").find("VECTOR_DIM is 16"), std::string::npos);
  EXPECT_NE(
      Error(R"({"vector": [1e39, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]})").find("vector[0]"),
      std::string::npos);
  EXPECT_NE(Error(R"({"vector": ["1", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]})")
                .find("vector[0]: must be a number"),
            std::string::npos);
  EXPECT_NE(Error(R"({"cpu_sec": 1, "cpu_sec": 2})").find("twice"), std::string::npos);
  EXPECT_NE(Error(R"({"months": 2})").find("without storage_mb"), std::string::npos);
  EXPECT_NE(Error(R"({"storage_mb": 1, "months": 0})").find("more than 0"), std::string::npos);
  EXPECT_NE(Error(R"({"storage_mb": 18446744073709, "months": 18446744073709})").find("too large"),
            std::string::npos);
  EXPECT_NE(Error(std::string(70000, ' ')).find("more than the 65536"), std::string::npos);
  std::string deep(100, '[');
  EXPECT_NE(Error(deep).find("request"), std::string::npos);
  EXPECT_NE(Error(R"({"proofs": 1.5})").find("more decimals"), std::string::npos);
}

TEST(FeeMatch, SigmoidWeighting) {
  const RewardPolicy r = Default().reward;  // s = 8, m = 1, 60 per minute free
  EXPECT_NEAR(RequestWeight(r, 100, 100, 1, 0), 0.5, 1e-9);
  EXPECT_NEAR(RequestWeight(r, 120, 100, 1, 0), 1 / (1 + std::exp(-1.6)), 1e-9);
  EXPECT_LT(RequestWeight(r, 50, 100, 1, 0), 0.02);
  EXPECT_NEAR(RequestWeight(r, 120, 100, 0.5, 0), 0.5 / (1 + std::exp(-1.6)), 1e-9);
  EXPECT_EQ(RequestWeight(r, 120, 100, 1, 60), RequestWeight(r, 120, 100, 1, 0));
  EXPECT_NEAR(RequestWeight(r, 120, 100, 1, 600), RequestWeight(r, 120, 100, 1, 0) / 10, 1e-9);
  EXPECT_EQ(RequestWeight(r, 120, 100, NAN, 0), 0);
}

TEST(FeeMatch, AWalletRateSettlesAtItsRequestsPerMinute) {
  AdmissionControl ac(Default().reward);
  int64_t now = 0;
  for (int i = 0; i < 3000; ++i, now += 500) ac.NoteRequest("w", now);  // 2 per second
  EXPECT_NEAR(ac.Rate("w", now), 120, 3);
  EXPECT_NEAR(ac.Rate("w", now + 60'000), 60, 2) << "one half-life later";
  EXPECT_EQ(ac.Rate("nobody", now), 0);
}

TEST(FeeMatch, UnfundedRequestsGetASmallBucketPerSource) {
  AdmissionControl ac(Default().reward);  // 6 per minute
  int taken = 0;
  for (int i = 0; i < 600; ++i) taken += ac.TakeUnfunded("10.0.0.1", i * 100);  // 1 minute
  EXPECT_GE(taken, 6);
  EXPECT_LE(taken, 12);  // the full bucket, then the refill of one minute
  EXPECT_TRUE(ac.TakeUnfunded("10.0.0.2", 0)) << "another source has its own bucket";
}

// A node that serves `kCapacity` requests per second ranks each second's requests by weight.
// Honest wallets offer 20% over the ask at one request per second each; a flooder (one wallet,
// 500 per second, at the ask or with a 50% tip) and a Sybil crowd (1,000 fresh funded wallets
// per second at the ask) compete. Every honest request is served, and the floods share only
// what honest demand leaves.
TEST(FeeMatch, FloodsGetABoundedShareWhileFairRequestsAreServed) {
  const EconomicPolicy pol = Default();
  constexpr int kCapacity = 100, kHonest = 20, kSeconds = 120;
  for (const char* flood : {"one wallet at the ask", "one wallet with a tip", "sybil crowd"}) {
    AdmissionControl ac(pol.reward);
    const Amount asked = 1'000'000;
    int64_t honest_served = 0, honest_sent = 0, flood_served = 0, served = 0;
    int64_t honest_missed_later = 0, honest_missed_first = 0;
    int fresh = 0;
    for (int sec = 0; sec < kSeconds; ++sec) {
      const int64_t now = sec * 1000;
      struct Pending {
        double weight;
        bool honest;
      };
      std::vector<Pending> pending;
      for (int h = 0; h < kHonest; ++h)
        pending.push_back(
            {ac.Weigh(fmt::format("honest-{}", h), asked * 12 / 10, asked, 1, now), true});
      honest_sent += kHonest;
      for (int f = 0; f < 500; ++f) {
        const std::string_view kind = flood;
        if (kind == "sybil crowd") {
          pending.push_back(
              {ac.Weigh(fmt::format("sybil-{}", fresh++), asked, asked, 1, now), false});
          pending.push_back(
              {ac.Weigh(fmt::format("sybil-{}", fresh++), asked, asked, 1, now), false});
        } else {
          const Amount offer = kind == "one wallet with a tip" ? asked * 3 / 2 : asked;
          pending.push_back({ac.Weigh("flooder", offer, asked, 1, now), false});
        }
      }
      std::stable_sort(pending.begin(), pending.end(),
                       [](const Pending& a, const Pending& b) { return a.weight > b.weight; });
      int honest_now = 0;
      for (int i = 0; i < kCapacity && i < static_cast<int>(pending.size()); ++i) {
        ++served;
        if (pending[i].honest)
          ++honest_now;
        else
          ++flood_served;
      }
      honest_served += honest_now;
      (sec == 0 ? honest_missed_first : honest_missed_later) += kHonest - honest_now;
    }
    // A wallet's rate is learnt from its requests: a flooder's first burst (its free rate's
    // worth, rate_free / ln 2 = 87 requests) may outbid the honest ones in the first second.
    EXPECT_EQ(honest_missed_later, 0)
        << flood << ": after the first second every fair request is served";
    EXPECT_LE(honest_missed_first, 87) << flood;
    const double share = static_cast<double>(flood_served) / served;
    EXPECT_LE(share, 1.0 - static_cast<double>(kHonest) / kCapacity + 87.0 / served) << flood;
    fmt::print("{}: honest {}/{} served, flood share {:.3f}\n", flood, honest_served, honest_sent,
               share);
  }
}

}  // namespace
}  // namespace dfrp::economy
