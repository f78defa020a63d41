#include "dfrp/crypto/merkle.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "dfrp/core/bytes.h"

namespace dfrp::crypto {
namespace {

using core::ToHex;

std::string Payload(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i % 251);
  return s;
}

std::string SharedTestdata(const std::string& name) {
  const char* src = std::getenv("DFRP_SOURCE_DIR");
  return std::string(src ? src : ".") + "/../shared/testdata/" + name;
}

// The published vectors in ../shared/testdata/merkle_vectors.json must come out exactly.
TEST(MerkleTest, SharedVectors) {
  std::ifstream in(SharedTestdata("merkle_vectors.json"));
  ASSERT_TRUE(in.good()) << "missing " << SharedTestdata("merkle_vectors.json");
  auto doc = nlohmann::json::parse(in);
  ASSERT_GE(doc["cases"].size(), 6u);
  for (const auto& c : doc["cases"]) {
    size_t size = c["size"];
    uint32_t leaf = c["leaf_size"];
    std::string data = Payload(size);
    for (int threads : {1, 2, 4}) {
      EXPECT_EQ(ToHex(HashBytes(MerkleRoot(data, leaf, threads))), c["root"].get<std::string>())
          << "size " << size << " leaf " << leaf << " threads " << threads;
    }
  }
}

// The RFC 9162 recursive definition, written out plainly, as a second opinion.
Hash ReferenceRoot(std::span<const Hash> d) {
  if (d.empty()) return EmptyRoot();
  if (d.size() == 1) return d[0];
  size_t k = 1;
  while (k * 2 < d.size()) k *= 2;
  return NodeHash(ReferenceRoot(d.subspan(0, k)), ReferenceRoot(d.subspan(k)));
}

TEST(MerkleTest, BottomUpEqualsRecursiveShapeForManySizes) {
  for (size_t n = 0; n <= 70; ++n) {
    std::vector<Hash> leaves(n);
    for (size_t i = 0; i < n; ++i) leaves[i] = LeafHash(std::to_string(i));
    Hash levels_root;
    auto levels = TreeLevels(leaves, &levels_root);
    EXPECT_EQ(RootFromLeafHashes(leaves), ReferenceRoot(leaves)) << n;
    EXPECT_EQ(levels_root, ReferenceRoot(leaves)) << n;
    EXPECT_EQ(levels.size(), TreeLevelsNodeCount(n)) << n;
  }
}

TEST(MerkleTest, ProofsFromLevelsMatchRfcPathsAndVerify) {
  for (size_t n = 1; n <= 40; ++n) {
    std::vector<Hash> leaves(n);
    for (size_t i = 0; i < n; ++i) leaves[i] = LeafHash("leaf" + std::to_string(i));
    Hash root;
    auto levels = TreeLevels(leaves, &root);
    for (size_t i = 0; i < n; ++i) {
      InclusionProof a = ProofFromLeafHashes(leaves, i);
      InclusionProof b = n == 1 ? InclusionProof{i, n, {}} : ProofFromLevels(levels, n, i);
      ASSERT_EQ(a.path, b.path) << "n=" << n << " i=" << i;
      EXPECT_TRUE(VerifyInclusion(leaves[i], i, n, a.path, root)) << n << " " << i;
      // Any change must fail: another leaf, another index, a flipped sibling, a short path.
      EXPECT_FALSE(VerifyInclusion(LeafHash("x"), i, n, a.path, root));
      if (n > 1) {
        EXPECT_FALSE(VerifyInclusion(leaves[i], (i + 1) % n, n, a.path, root));
      }
      if (!a.path.empty()) {  // flip a sibling, drop one
        auto bad = a.path;
        bad[0][5] ^= 1;
        EXPECT_FALSE(VerifyInclusion(leaves[i], i, n, bad, root));
        bad = a.path;
        bad.pop_back();
        EXPECT_FALSE(VerifyInclusion(leaves[i], i, n, bad, root));
      }
      EXPECT_FALSE(VerifyInclusion(leaves[i], n, n, a.path, root));  // index beyond the tree
    }
  }
}

TEST(MerkleTest, ParallelLeafHashingMatchesSerialOnLargePayload) {
  std::string data = Payload((8 << 20) + 123);
  std::vector<Hash> one(LeafCount(data.size(), 4096)), two(one.size());
  HashLeaves(data, 4096, one, 1);
  HashLeaves(data, 4096, two, 2);
  EXPECT_EQ(one, two);
  EXPECT_EQ(one.back(), LeafHash(std::string_view(data).substr(data.size() - 123)));
}

TEST(MerkleTest, LeafCount) {
  EXPECT_EQ(LeafCount(0, 4096), 0u);
  EXPECT_EQ(LeafCount(1, 4096), 1u);
  EXPECT_EQ(LeafCount(4096, 4096), 1u);
  EXPECT_EQ(LeafCount(4097, 4096), 2u);
}

}  // namespace
}  // namespace dfrp::crypto
