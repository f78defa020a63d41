#include "dfrp/vector/vector_math.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace dfrp::vector {
namespace {

TEST(VectorMath, ParsesMetrics) {
  EXPECT_EQ(*ParseMetric("cosine"), Metric::kCosine);
  EXPECT_EQ(*ParseMetric("l2"), Metric::kL2);
  auto bad = ParseMetric("dot");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("VECTOR_METRIC = 'dot'"), std::string::npos);
}

TEST(VectorMath, RefusesBadVectorsNamingThem) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> ok = {1, 0, 0};
  EXPECT_TRUE(CheckVector(ok, 3, Metric::kCosine, "--near").ok());
  core::Status wrong_dim = CheckVector(ok, 4, Metric::kCosine, "--near");
  EXPECT_EQ(wrong_dim.code(), core::Status::Code::kInvalidArgument);
  EXPECT_NE(wrong_dim.message().find("--near has 3 components but VECTOR_DIM is 4"),
            std::string::npos);
  std::vector<float> with_nan = {1, nan, 0};
  EXPECT_NE(CheckVector(with_nan, 3, Metric::kL2, "shard x").message().find("shard x: component 2"),
            std::string::npos);
  std::vector<float> with_inf = {inf, 0, 0};
  EXPECT_FALSE(CheckVector(with_inf, 3, Metric::kL2, "q").ok());
  std::vector<float> zero = {0, 0, 0};
  core::Status z = CheckVector(zero, 3, Metric::kCosine, "--near");
  EXPECT_NE(z.message().find("zero vector"), std::string::npos);
  EXPECT_TRUE(CheckVector(zero, 3, Metric::kL2, "--near").ok());  // a point like any other
}

TEST(VectorMath, ParsesCommaSeparatedVectors) {
  auto v = ParseVector("0.5, -1,2e-3", 3, Metric::kCosine, "--near");
  ASSERT_TRUE(v) << v.error().ToString();
  EXPECT_EQ(*v, (std::vector<float>{0.5f, -1.0f, 2e-3f}));
  for (const char* bad : {"", "1,,2", "1,2,x", "1,2,3,", "nan,1,2", "1 2 3"}) {
    auto r = ParseVector(bad, 3, Metric::kCosine, "--near");
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_NE(r.error().message().find("--near"), std::string::npos) << bad;
    }
  }
}

TEST(VectorMath, DistancesAreTheDocumentedOnes) {
  std::vector<float> a = Prepare(std::vector<float>{3, 4}, Metric::kCosine);
  EXPECT_NEAR(a[0], 0.6f, 1e-6);
  EXPECT_NEAR(a[1], 0.8f, 1e-6);
  std::vector<float> b = Prepare(std::vector<float>{0, 2}, Metric::kCosine);
  EXPECT_NEAR(Distance(a, b, Metric::kCosine), 1.0f - 0.8f, 1e-6);
  std::vector<float> p = {1, 1}, q = {4, 5};
  EXPECT_NEAR(Distance(p, q, Metric::kL2), 5.0f, 1e-6);
  EXPECT_NEAR(RankingDistance(p.data(), q.data(), 2, Metric::kL2), 25.0f, 1e-5);
}

}  // namespace
}  // namespace dfrp::vector
