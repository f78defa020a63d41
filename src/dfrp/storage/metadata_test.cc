#include "dfrp/storage/metadata.h"

#include <gtest/gtest.h>

#include <cmath>

namespace dfrp::storage {
namespace {

using core::Status;

ShardMetadata Sample() {
  ShardMetadata m;
  m.size = 123;
  m.leaf_size = 1024;
  m.created_unix_ms = 1'700'000'000'123;
  m.content_type = "text/plain";
  m.owner = "dfrp1qxyz";
  m.vector = {0.5f, -1.25f, 3.0f};
  m.tags = {{"zeta", "last"}, {"alpha", "first"}, {"empty", ""}};
  return m;
}

TEST(MetadataTest, RoundTripAndDeterministic) {
  ShardMetadata m = Sample();
  std::string a = EncodeMetadata(m);
  auto d = DecodeMetadata(a);
  ASSERT_TRUE(d.has_value()) << d.error().ToString();
  EXPECT_EQ(*d, m);
  EXPECT_EQ(EncodeMetadata(*d), a);
}

TEST(MetadataTest, EveryTruncationIsRejected) {
  std::string a = EncodeMetadata(Sample());
  for (size_t n = 0; n < a.size(); ++n)
    EXPECT_FALSE(DecodeMetadata(a.substr(0, n)).has_value()) << n;
  EXPECT_FALSE(DecodeMetadata(a + "x").has_value());  // trailing bytes
}

TEST(MetadataTest, ValidationNamesTheProblem) {
  ShardMetadata m = Sample();
  EXPECT_TRUE(ValidateMetadata(m, 3, true).ok());
  Status wrong_dim = ValidateMetadata(m, 16, true);
  EXPECT_EQ(wrong_dim.code(), core::Status::Code::kInvalidArgument);
  EXPECT_NE(wrong_dim.message().find("VECTOR_DIM is 16"), std::string::npos);
  m.vector[1] = std::nanf("");
  EXPECT_FALSE(ValidateMetadata(m, 3, true).ok());
  m = Sample();
  m.tags["bad key"] = "x";
  EXPECT_NE(ValidateMetadata(m, 3, true).message().find("bad key"), std::string::npos);
  m = Sample();
  m.tags["big"] = std::string(70000, 'x');
  EXPECT_NE(ValidateMetadata(m, 3, true).message().find("over the limit"), std::string::npos);
  m = Sample();
  m.vector.assign(3, 0.0f);
  EXPECT_NE(ValidateMetadata(m, 3, true).message().find("zero vector"), std::string::npos);
  EXPECT_TRUE(ValidateMetadata(m, 3, false).ok());  // l2: a point like any other
}

}  // namespace
}  // namespace dfrp::storage
