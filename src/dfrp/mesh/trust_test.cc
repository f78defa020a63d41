#include "dfrp/mesh/trust.h"

#include <gtest/gtest.h>

#include <numeric>

namespace dfrp::mesh {
namespace {

using Rows = std::vector<std::vector<std::pair<uint32_t, double>>>;

double Sum(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }

ledger::KeyBytes TestKey(uint8_t b) {
  ledger::KeyBytes k{};
  k[0] = b;
  return k;
}

TEST(LocalTrust, FraudZeroesEverything) {
  PeerEvidence e{.answers = 100, .failures = 0, .rtt_ms = 1, .proofs_passed = 50};
  EXPECT_GT(LocalTrust(e), 45.0);
  e.fraud_records = 1;
  EXPECT_EQ(LocalTrust(e), 0.0);
  e.fraud_records = 0;
  e.equivocations = 1;  // it signed two orders for one sequence number
  EXPECT_EQ(LocalTrust(e), 0.0);
}

TEST(LocalTrust, PaidWorkScaledByUptimeAndLatency) {
  // Answering gossip alone earns nothing: it costs a Sybil nothing either.
  EXPECT_EQ(LocalTrust({}), 0.0);
  EXPECT_EQ(LocalTrust({.answers = 1000, .rtt_ms = 1}), 0.0);
  const PeerEvidence paid{.answers = 99, .failures = 1, .rtt_ms = 5, .proofs_passed = 10};
  const PeerEvidence flaky{.answers = 50, .failures = 50, .rtt_ms = 5, .proofs_passed = 10};
  const PeerEvidence slow{.answers = 99, .failures = 1, .rtt_ms = 1000, .proofs_passed = 10};
  const PeerEvidence more{.answers = 99, .failures = 1, .rtt_ms = 5, .proofs_passed = 20};
  EXPECT_NEAR(LocalTrust(paid), 10.0 * 100 / 102, 1e-12);  // 5 ms: no latency penalty
  EXPECT_NEAR(LocalTrust(slow), 10.0 * 100 / 102 * kLatencyReferenceMs / 1000, 1e-12);
  EXPECT_GT(LocalTrust(paid), LocalTrust(flaky));
  EXPECT_GT(LocalTrust(paid), LocalTrust(slow));
  EXPECT_NEAR(LocalTrust(more), 2 * LocalTrust(paid), 1e-12);
  // Never exchanged with (an authority that only sees the ledger): the work counts whole.
  EXPECT_EQ(LocalTrust({.proofs_passed = 7}), 7.0);
  // Refunds count twice against: 10 - 2 x 6 < 0 is nothing.
  EXPECT_EQ(LocalTrust({.answers = 99, .proofs_passed = 10, .proofs_missed = 6}), 0.0);
  EXPECT_EQ(LocalTrust({.proofs_passed = 10, .proofs_missed = 4}), 2.0);
}

TEST(Opinion, SharesSumToOneAndKeepTheLargest) {
  std::vector<std::pair<ledger::KeyBytes, double>> local;
  for (int i = 0; i < 40; ++i) local.emplace_back(TestKey(static_cast<uint8_t>(i)), 1.0 + i);
  local.emplace_back(TestKey(200), 0.0);
  local.emplace_back(TestKey(201), -3.0);
  const auto op = OpinionFromLocal(local);
  ASSERT_EQ(op.size(), kMaxOpinion);
  EXPECT_EQ(op.front().peer, TestKey(39));
  EXPECT_EQ(op.back().peer, TestKey(39 - kMaxOpinion + 1));
  uint32_t sum = 0;
  for (size_t i = 0; i < op.size(); ++i) {
    sum += op[i].weight;
    EXPECT_GE(op[i].weight, 1);
    if (i > 0) {
      EXPECT_GE(op[i - 1].weight, op[i].weight);
    }
  }
  EXPECT_NEAR(sum, 65535, kMaxOpinion);
  EXPECT_TRUE(OpinionFromLocal({{TestKey(1), 0.0}, {TestKey(2), -1.0}}).empty());
  // A vanishing share still shows (at least 1).
  const auto tiny = OpinionFromLocal({{TestKey(1), 1e9}, {TestKey(2), 1e-9}});
  ASSERT_EQ(tiny.size(), 2u);
  EXPECT_EQ(tiny[1].weight, 1);
}

TEST(GlobalTrust, SumsToOneAndConverges) {
  // 0 is pre-trusted; a chain 0 -> 1 -> 2 -> 3 -> 0 with extra edges.
  Rows rows = {{{1, 1}, {2, 1}}, {{2, 1}}, {{3, 1}}, {{0, 1}, {1, 2}}};
  const TrustResult r = ComputeGlobalTrust(4, rows, {0}, {});
  ASSERT_EQ(r.global.size(), 4u);
  EXPECT_NEAR(Sum(r.global), 1.0, 1e-9);
  EXPECT_LT(r.residual, 1e-10);
  EXPECT_LT(r.iterations, 200);
  for (double v : r.global) EXPECT_GT(v, 0.0);
  // The fixed point: t = (1 - a) C^T t + a p.
  const double a = 0.15;
  std::vector<double> want(4, 0.0);
  want[0] += a;
  const auto& t = r.global;
  want[1] += (1 - a) * (t[0] * 0.5 + t[3] * 2.0 / 3.0);
  want[2] += (1 - a) * (t[0] * 0.5 + t[1]);
  want[3] += (1 - a) * t[2];
  want[0] += (1 - a) * t[3] / 3.0;
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(t[i], want[i], 1e-9) << i;
}

TEST(GlobalTrust, SybilRingUnreachableFromThePretrustedGetsNothing) {
  // Honest nodes 0..4 (0 pre-trusted) vouch for each other; Sybils 5..54 vouch for each other
  // and for their provider 55 as strongly as they can. No honest node vouches for any of them.
  const size_t honest = 5, sybils = 50, n = honest + sybils + 1;
  const uint32_t provider = static_cast<uint32_t>(n - 1);
  Rows rows(n);
  for (uint32_t i = 0; i < honest; ++i)
    for (uint32_t j = 0; j < honest; ++j)
      if (i != j) rows[i].emplace_back(j, 1.0);
  for (uint32_t i = honest; i < honest + sybils; ++i) {
    for (uint32_t j = honest; j < honest + sybils; ++j)
      if (i != j) rows[i].emplace_back(j, 1.0);
    rows[i].emplace_back(provider, 1000.0);
  }
  rows[provider].emplace_back(honest, 1.0);
  const TrustResult r = ComputeGlobalTrust(n, rows, {0}, {});
  EXPECT_NEAR(Sum(r.global), 1.0, 1e-9);
  for (uint32_t i = honest; i < n; ++i) EXPECT_EQ(r.global[i], 0.0) << i;
  for (uint32_t i = 0; i < honest; ++i) EXPECT_GT(r.global[i], 0.1) << i;
}

TEST(GlobalTrust, ASybilSetTakesOnlyWhatTrustedNodesGiveIt) {
  // Honest 0..3 (0 pre-trusted) each give a Sybil 4 a share s of their opinion; the Sybil
  // pours everything into a provider 5, which vouches back for the Sybil. Their sum never
  // passes the mass flowing in, whatever the Sybils say to each other.
  for (double s : {0.01, 0.05, 0.2}) {
    Rows rows(6);
    for (uint32_t i = 0; i < 4; ++i) {
      for (uint32_t j = 0; j < 4; ++j)
        if (i != j) rows[i].emplace_back(j, (1 - s) / 3);
      rows[i].emplace_back(4, s);
    }
    rows[4] = {{5, 1.0}};
    rows[5] = {{4, 1.0}};
    const TrustResult r = ComputeGlobalTrust(6, rows, {0}, {});
    const double honest = r.global[0] + r.global[1] + r.global[2] + r.global[3];
    const double sybil = r.global[4] + r.global[5];
    EXPECT_NEAR(honest + sybil, 1.0, 1e-9);
    // In the fixed point the inflow (1 - a) s · honest equals the outflow a · sybil: a closed
    // loop keeps (1 - a) / a times what trusted nodes give it (EigenTrust's known amplification;
    // docs/PROTOCOL.md says what bounds s), and nothing without it (the test above).
    EXPECT_NEAR(sybil, (1 - 0.15) * s * honest / 0.15, 1e-6) << s;
    EXPECT_LT(sybil, 1.0);
  }
}

TEST(GlobalTrust, AFraudOpinionCutsTheProviderOff) {
  // 0 pre-trusted vouches for 1 and 2 equally; once its evidence of 2 is a fraud record its
  // opinion drops 2, and nobody else vouches for 2.
  Rows before = {{{1, 1.0}, {2, 1.0}}, {{0, 1.0}}, {{0, 1.0}}};
  Rows after = {{{1, 1.0}}, {{0, 1.0}}, {{0, 1.0}}};
  const auto b = ComputeGlobalTrust(3, before, {0}, {});
  const auto a = ComputeGlobalTrust(3, after, {0}, {});
  EXPECT_GT(b.global[2], 0.2);
  EXPECT_EQ(a.global[2], 0.0);
  EXPECT_GT(a.global[1], b.global[1]);
}

TEST(GlobalTrust, EdgeCases) {
  EXPECT_TRUE(ComputeGlobalTrust(0, {}, {}, {}).global.empty());
  // No pre-trusted node: uniform start, and nodes without opinions follow it.
  const auto u = ComputeGlobalTrust(3, {}, {}, {});
  for (double v : u.global) EXPECT_NEAR(v, 1.0 / 3, 1e-12);
  // Self-opinions, out-of-range indices and bad weights count nothing.
  const double nan = std::nan("");
  Rows junk = {{{0, 5.0}, {9, 1.0}, {1, -1.0}, {1, nan}}, {}};
  const auto j = ComputeGlobalTrust(2, junk, {0, 0, 7}, {});
  EXPECT_NEAR(j.global[0], 1.0, 1e-12);  // every row empty: all follow p = {0}
  EXPECT_EQ(j.global[1], 0.0);
}

}  // namespace
}  // namespace dfrp::mesh
