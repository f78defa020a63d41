// Proofs of storage and verified range reads (issue 4): ShardReader over real stores, and the
// proof encodings and verifier against tampered input.
#include "dfrp/storage/proof.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "dfrp/core/bytes.h"
#include "dfrp/crypto/merkle.h"
#include "dfrp/storage/shard_reader.h"
#include "dfrp/storage/store.h"
#include "dfrp/storage/store_test_util.h"

namespace dfrp::storage {
namespace {

using core::Status;
using crypto::Hash;
using testing::Pattern;

class ProofTest : public testing::StoreFixture {
 protected:
  // Leaf hashes of a payload computed in memory, the reference for stored proofs.
  static std::vector<Hash> LeafHashes(const std::string& data, uint32_t leaf_size) {
    std::vector<Hash> h(crypto::LeafCount(data.size(), leaf_size));
    crypto::HashLeaves(data, leaf_size, h, 1);
    return h;
  }
  static std::string ReadAll(const ShardReader& r, uint64_t off, uint64_t len, Status* s) {
    std::string out;
    *s = r.ReadRange(off, len, [&](std::string_view d) {
      out.append(d);
      return Status::OK();
    });
    return out;
  }
  static void FlipByte(const std::string& path, uint64_t at) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(at));
    char c = 0;
    f.read(&c, 1);
    c ^= 0x5a;
    f.seekp(static_cast<std::streamoff>(at));
    f.write(&c, 1);
  }
};

TEST_F(ProofTest, ProofsOfEveryLeafMatchTheReferenceAndVerify) {
  auto store = InitAndOpen(Config({64 << 20}));
  const std::vector<std::string> contents = {"x", Pattern(4096), Pattern(4097, 1),
                                             Pattern(5 * 4096 + 7, 2), Pattern(70000, 3)};
  auto w = Put(*store, contents);
  ASSERT_TRUE(w.has_value()) << w.error().ToString();
  for (size_t s = 0; s < contents.size(); ++s) {
    auto r = store->OpenShard((*w)[s].id);
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    const auto leaves = LeafHashes(contents[s], 4096);
    ASSERT_EQ(r->leaves(), leaves.size());
    for (uint64_t i = 0; i < leaves.size(); ++i) {
      auto lp = r->ProveLeaf(i);
      ASSERT_TRUE(lp.has_value()) << lp.error().ToString();
      EXPECT_EQ(lp->path, crypto::ProofFromLeafHashes(leaves, i).path) << s << "/" << i;
      EXPECT_EQ(lp->leaf, contents[s].substr(i * 4096, 4096));
      uint64_t one[] = {i};
      auto set = r->Prove(one);
      ASSERT_TRUE(set.has_value());
      EXPECT_TRUE(VerifyProofSet(*set, (*w)[s].root).ok()) << s << "/" << i;
    }
    auto beyond = r->ProveLeaf(leaves.size());
    EXPECT_EQ(beyond.error().code(), Status::Code::kInvalidArgument);
  }
}

TEST_F(ProofTest, EmptyShardHasNothingToProve) {
  auto store = InitAndOpen(Config({64 << 20}));
  auto w = Put(*store, {""});
  ASSERT_TRUE(w.has_value());
  auto r = store->OpenShard((*w)[0].id);
  ASSERT_TRUE(r.has_value());
  auto p = r->ProveLeaf(0);
  ASSERT_FALSE(p.has_value());
  EXPECT_NE(p.error().message().find("empty"), std::string::npos);
  Status s;
  EXPECT_EQ(ReadAll(*r, 0, 0, &s), "");
  EXPECT_TRUE(s.ok());
}

TEST_F(ProofTest, RangeReadsReturnExactlyTheBytesAskedFor) {
  auto store = InitAndOpen(Config({64 << 20}));
  const std::string big = Pattern(3 * 1024 * 1024 + 5, 4);  // 769 leaves at 4 KiB
  const std::string small = Pattern(700, 5);                // one leaf, no tree
  auto w = Put(*store, {big, small});
  ASSERT_TRUE(w.has_value());
  auto r = store->OpenShard((*w)[0].id);
  ASSERT_TRUE(r.has_value());
  const std::pair<uint64_t, uint64_t> ranges[] = {{0, 1},
                                                  {0, 4096},
                                                  {4095, 2},
                                                  {4096, 4096},
                                                  {100, 50000},
                                                  {big.size() - 1, 1},
                                                  {big.size() - 5, 5},
                                                  {0, big.size()},
                                                  {12345, 0},
                                                  {2 * 4096 + 3, 8 << 20}};
  for (auto [off, len] : ranges) {
    len = std::min<uint64_t>(len, big.size() - off);
    Status s;
    EXPECT_EQ(ReadAll(*r, off, len, &s), big.substr(off, len)) << off << ":" << len;
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  Status s;
  ReadAll(*r, big.size() - 1, 2, &s);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  ReadAll(*r, big.size() + 1, 0, &s);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  char buf[10];
  auto n = r->ReadAt(big.size() - 4, sizeof(buf), buf);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(std::string(buf, *n), big.substr(big.size() - 4));

  auto one = store->OpenShard((*w)[1].id);
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(ReadAll(*one, 10, 20, &s), small.substr(10, 20));
  EXPECT_TRUE(s.ok());
}

// A flipped payload byte fails exactly the reads and proofs of its leaf; a flipped stored tree
// node fails the reads that need it. No wrong byte ever comes out.
TEST_F(ProofTest, DamageFailsOnlyTheLeavesItTouches) {
  auto store = InitAndOpen(Config({64 << 20}));
  const std::string data = Pattern(40 * 4096 + 100, 6);  // 41 leaves
  auto w = Put(*store, {data});
  ASSERT_TRUE(w.has_value());
  auto info = store->Stat((*w)[0].id);
  ASSERT_TRUE(info.has_value());
  auto r0 = store->OpenShard((*w)[0].id);
  ASSERT_TRUE(r0.has_value());
  const uint64_t payload_at = info->location.offset + r0->prefix().header.payload_offset();
  FlipByte(info->segment_path, payload_at + 7 * 4096 + 9);  // leaf 7
  store.reset();
  auto reader = Store::Open(Config({64 << 20}), Store::Mode::kRead, opt_);
  ASSERT_TRUE(reader.has_value());
  auto r = (*reader)->OpenShard((*w)[0].id);
  ASSERT_TRUE(r.has_value());
  Status s;
  std::string got = ReadAll(*r, 0, data.size(), &s);
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_NE(s.message().find("leaf 7 "), std::string::npos) << s.ToString();
  EXPECT_TRUE(got.empty());  // the first 8 MiB piece holds leaf 7: nothing of it came out
  ReadAll(*r, 7 * 4096 + 4000, 10, &s);
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_EQ(ReadAll(*r, 0, 7 * 4096, &s), data.substr(0, 7 * 4096));
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(ReadAll(*r, 8 * 4096, data.size() - 8 * 4096, &s), data.substr(8 * 4096));
  EXPECT_TRUE(s.ok()) << s.ToString();
  // ReadAt verifies whole-leaf reads in the caller's buffer: the same answers.
  std::string buf(8 * 4096, '\0');
  auto at = r->ReadAt(4 * 4096, 4 * 4096, buf.data());  // leaves 4..7
  ASSERT_FALSE(at.has_value());
  EXPECT_NE(at.error().message().find("leaf 7 "), std::string::npos) << at.error().ToString();
  at = r->ReadAt(8 * 4096, 8 * 4096, buf.data());
  ASSERT_TRUE(at.has_value());
  EXPECT_EQ(buf, data.substr(8 * 4096, 8 * 4096));
  at = r->ReadAt(40 * 4096, 4096, buf.data());  // the short last leaf
  ASSERT_TRUE(at.has_value());
  EXPECT_EQ(*at, 100u);
  EXPECT_EQ(buf.substr(0, 100), data.substr(40 * 4096));
  EXPECT_TRUE(r->ProveLeaf(7).error().IsCorruption());
  EXPECT_TRUE(r->ProveLeaf(6).has_value());
  EXPECT_TRUE(r->ProveLeaf(40).has_value());

  // Now a stored node: leaf 20's sibling (leaf hash 21) in the tree section.
  FlipByte(info->segment_path, info->location.offset + r->prefix().header.tree_offset() + 21 * 32);
  reader = Store::Open(Config({64 << 20}), Store::Mode::kRead, opt_);
  r = (*reader)->OpenShard((*w)[0].id);
  ReadAll(*r, 20 * 4096, 4096, &s);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_TRUE(r->ProveLeaf(20).error().IsCorruption());
  EXPECT_EQ(ReadAll(*r, 20 * 4096, 2 * 4096, &s), data.substr(20 * 4096, 2 * 4096));
  EXPECT_TRUE(s.ok()) << "a range covering both siblings needs neither stored hash";
}

ProofSet SampleAudit(const std::string& data, uint32_t leaf_size, uint32_t k) {
  std::vector<Hash> leaves(crypto::LeafCount(data.size(), leaf_size));
  crypto::HashLeaves(data, leaf_size, leaves, 1);
  ProofSet p;
  p.shard_id = *core::Uuid::Parse("01932c07-a35c-7a9b-8f1e-5c1d2b3a4f60");
  p.root = crypto::RootFromLeafHashes(leaves);
  p.tree_size = leaves.size();
  p.leaf_size = leaf_size;
  p.seed = std::string("\x01\x02\x03", 3);
  for (uint64_t i : ChallengeIndices(*p.seed, p.shard_id, p.tree_size, k)) {
    LeafProof lp;
    lp.leaf_index = i;
    lp.leaf = data.substr(i * leaf_size, leaf_size);
    lp.path = crypto::ProofFromLeafHashes(leaves, i).path;
    p.proofs.push_back(lp);
  }
  return p;
}

TEST(ChallengeTest, IndicesFollowTheDocumentedRule) {
  const auto id = *core::Uuid::Parse("01932c07-a35c-7a9b-8f1e-5c1d2b3a4f60");
  const std::string seed = "seed";
  auto idx = ChallengeIndices(seed, id, 1000, 50);
  ASSERT_EQ(idx.size(), 50u);
  for (uint32_t j = 0; j < 50; ++j) {
    std::string msg = seed + std::string(id.AsBytes());
    core::PutU32(&msg, j);
    Hash h = crypto::Sha256Of(msg);
    EXPECT_EQ(idx[j], core::GetU64(reinterpret_cast<const char*>(h.data())) % 1000);
  }
  EXPECT_NE(idx, ChallengeIndices("seed2", id, 1000, 50));
  EXPECT_TRUE(ChallengeIndices(seed, id, 0, 5).empty());
}

TEST(ProofCodecTest, RoundTripsAndVerifies) {
  const std::string data = Pattern(13 * 1024 + 3, 7);
  for (uint32_t k : {1u, 9u}) {
    ProofSet audit = SampleAudit(data, 1024, k);
    ASSERT_TRUE(VerifyProofSet(audit, audit.root).ok());
    ProofSet single = audit;
    single.seed.reset();
    single.proofs.resize(1);
    for (const ProofSet& p : {audit, single}) {
      auto j = DecodeProof(EncodeProofJson(p));
      ASSERT_TRUE(j.has_value()) << j.error().ToString();
      EXPECT_EQ(*j, p);
      auto b = DecodeProof(EncodeProofBinary(p));
      ASSERT_TRUE(b.has_value()) << b.error().ToString();
      EXPECT_EQ(*b, p);
      EXPECT_TRUE(VerifyProofSet(*b, p.root).ok());
    }
  }
}

TEST(ProofCodecTest, EveryTruncationAndAnyTrailingByteIsRejected) {
  ProofSet p = SampleAudit(Pattern(5000, 8), 512, 3);
  const std::string bin = EncodeProofBinary(p);
  for (size_t n = 0; n < bin.size(); ++n) {
    auto d = DecodeProof(std::string_view(bin).substr(0, n));
    ASSERT_FALSE(d.has_value()) << n;
    EXPECT_TRUE(d.error().IsCorruption()) << n;
  }
  EXPECT_FALSE(DecodeProof(bin + "x").has_value());
  const std::string json = EncodeProofJson(p);
  for (size_t n = 0; n < json.size(); n += 7) EXPECT_FALSE(DecodeProof(json.substr(0, n)));
  EXPECT_FALSE(DecodeProof("").has_value());
  EXPECT_FALSE(DecodeProof("garbage").has_value());
}

TEST(ProofCodecTest, TamperedProofsFailWithAReason) {
  const ProofSet good = SampleAudit(Pattern(20 * 1024, 9), 1024, 4);
  auto fails = [&](ProofSet p, const char* why) {
    Status s = VerifyProofSet(p, good.root);
    EXPECT_TRUE(s.IsCorruption()) << why;
    EXPECT_NE(s.message().find(why), std::string::npos) << s.ToString();
  };
  ProofSet p = good;
  p.proofs[1].path.pop_back();
  fails(p, "path of");
  p = good;
  p.proofs[0].path.push_back(p.proofs[0].path[0]);
  fails(p, "path of");
  p = good;
  p.proofs[2].leaf[5] ^= 1;
  fails(p, "does not verify");
  p = good;
  p.proofs[3].path[0][0] ^= 1;
  fails(p, "does not verify");
  p = good;
  p.proofs[0].leaf_index = (p.proofs[0].leaf_index + 1) % p.tree_size;
  fails(p, "seed asks for");
  p = good;
  p.seed = "other";
  fails(p, "seed asks for");
  p = good;
  p.seed.reset();
  p.proofs.resize(1);
  p.proofs[0].leaf_index = p.tree_size;
  fails(p, "beyond the tree");
  p = good;
  p.root[0] ^= 1;
  fails(p, "not for the given root");
  p = good;
  p.tree_size += 1;
  EXPECT_FALSE(VerifyProofSet(p, good.root).ok());
  p = good;
  p.proofs[0].leaf.pop_back();
  fails(p, "bytes");
}

}  // namespace
}  // namespace dfrp::storage
