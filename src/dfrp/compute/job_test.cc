#include "dfrp/compute/job.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>

#include "dfrp/compute/catalog.h"
#include "dfrp/crypto/sha256.h"

namespace dfrp::compute {
namespace {

namespace bls = crypto::bls;

bls::SecretKey Key(char seed) {
  auto k = bls::SecretKey::FromIkm(core::AsBytes(std::string(32, seed)));
  EXPECT_TRUE(k.has_value());
  return std::move(*k);
}

class JobTest : public ::testing::Test {
 protected:
  JobTest() : net_(crypto::Sha256Of("a test genesis")), client_(Key('c')), provider_(Key('p')) {}

  JobContext Job() {
    JobContext j;
    j.client = client_.GetPublicKey().bytes();
    j.nonce = 42;
    j.expiry_unix = 1'900'000'000;
    j.app = "matmul";
    j.args = {"256", "7"};
    JobInput in;
    in.shard_id = *core::Uuid::Parse("0123456789abcdef0123456789abcdef");
    in.root = crypto::Sha256Of("input");
    in.size = 12345;
    in.leaf_size = 4096;
    j.inputs = {in};
    j.ranks = 4;
    j.limits = {.cpu_seconds = 60, .gpu_seconds = 0, .memory_bytes = 1 << 30, .wall_seconds = 120};
    j.max_fee = 5'000'000;
    j.vector = {0.5f, -0.25f, 1.0f};
    EXPECT_TRUE(SignJob(&j, client_, net_).ok());
    return j;
  }

  crypto::Hash net_;
  bls::SecretKey client_, provider_;
};

TEST_F(JobTest, RoundTripsAndVerifies) {
  const JobContext j = Job();
  const std::string wire = EncodeJob(j, net_);
  auto d = DecodeJob(wire, net_);
  ASSERT_TRUE(d.has_value()) << d.status().ToString();
  EXPECT_EQ(d->client, j.client);
  EXPECT_EQ(d->nonce, 42u);
  EXPECT_EQ(d->app, "matmul");
  EXPECT_EQ(d->args, j.args);
  EXPECT_EQ(d->inputs, j.inputs);
  EXPECT_EQ(d->ranks, 4u);
  EXPECT_EQ(d->limits, j.limits);
  EXPECT_EQ(d->max_fee, j.max_fee);
  EXPECT_EQ(d->vector, j.vector);
  EXPECT_EQ(d->signature, j.signature);
  EXPECT_TRUE(VerifyJob(*d, net_).ok());
  EXPECT_EQ(JobId(*d, net_), JobId(j, net_));
  EXPECT_EQ(EncodeJob(*d, net_), wire);
}

TEST_F(JobTest, AnyChangedFieldBreaksTheSignatureOrTheId) {
  const JobContext j = Job();
  const crypto::Hash id = JobId(j, net_);
  JobContext k = j;
  k.max_fee += 1;
  EXPECT_NE(JobId(k, net_), id);
  EXPECT_EQ(VerifyJob(k, net_).code(), core::Status::Code::kCorruption);
  k = j;
  k.args[1] = "8";
  EXPECT_EQ(VerifyJob(k, net_).code(), core::Status::Code::kCorruption);
  k = j;
  k.ranks = 2;
  EXPECT_EQ(VerifyJob(k, net_).code(), core::Status::Code::kCorruption);
  // Another network: the same bytes do not decode there, and the signature is not theirs.
  const crypto::Hash other = crypto::Sha256Of("another genesis");
  EXPECT_FALSE(DecodeJob(EncodeJob(j, net_), other).has_value());
  EXPECT_EQ(VerifyJob(j, other).code(), core::Status::Code::kCorruption);
}

TEST_F(JobTest, EveryFlippedByteIsRefusedOrFailsTheSignature) {
  const std::string wire = EncodeJob(Job(), net_);
  for (size_t i = 0; i < wire.size(); ++i) {
    std::string w = wire;
    w[i] = static_cast<char>(w[i] ^ 0x01);
    auto d = DecodeJob(w, net_);
    if (d.has_value()) {
      EXPECT_FALSE(VerifyJob(*d, net_).ok()) << "byte " << i;
    }
  }
}

TEST_F(JobTest, TruncationAtEveryByteIsAnErrorNamingTheJob) {
  const std::string wire = EncodeJob(Job(), net_);
  for (size_t n = 0; n < wire.size(); ++n) {
    auto d = DecodeJob(std::string_view(wire).substr(0, n), net_);
    ASSERT_FALSE(d.has_value()) << n;
    EXPECT_EQ(d.status().code(), core::Status::Code::kInvalidArgument);
    EXPECT_NE(d.status().message().find("job"), std::string::npos) << d.status().ToString();
  }
  EXPECT_FALSE(DecodeJob(wire + "x", net_).has_value());
}

TEST_F(JobTest, BadFieldsAreRefusedBeforeSigning) {
  JobContext j = Job();
  auto refused = [&](auto mutate, std::string_view words) {
    JobContext k = j;
    mutate(k);
    const core::Status s = SignJob(&k, client_, net_);
    EXPECT_EQ(s.code(), core::Status::Code::kInvalidArgument) << words;
    EXPECT_NE(s.message().find(words), std::string::npos) << s.ToString();
  };
  refused([](JobContext& k) { k.app = "../bin/sh"; }, "app name");
  refused([](JobContext& k) { k.app = ""; }, "app name");
  refused([](JobContext& k) { k.ranks = 0; }, "ranks");
  refused([](JobContext& k) { k.ranks = kMaxRanks + 1; }, "ranks");
  refused([](JobContext& k) { k.limits.wall_seconds = 0; }, "wall-time");
  refused([](JobContext& k) { k.limits.cpu_seconds = 0; }, "CPU-seconds");
  refused([](JobContext& k) { k.limits.memory_bytes = 0; }, "memory");
  refused([](JobContext& k) { k.max_fee = 0; }, "max_fee");
  refused([](JobContext& k) { k.vector[0] = std::nanf(""); }, "not finite");
  refused([](JobContext& k) { k.args.push_back(std::string("a\0b", 3)); }, "NUL");
  refused([](JobContext& k) { k.args.assign(kMaxArgs + 1, "x"); }, "arguments");
  JobContext k = j;
  EXPECT_EQ(SignJob(&k, provider_, net_).code(), core::Status::Code::kInvalidArgument);
}

TEST_F(JobTest, ResultRootProvesEachRankAndNothingElse) {
  std::vector<RankOutput> outs;
  for (uint32_t r = 0; r < 5; ++r)
    outs.push_back({r, crypto::Sha256Of("rank " + std::to_string(r)), 1000u + r});
  auto root = ResultRoot(outs);
  ASSERT_TRUE(root.has_value());
  for (uint32_t r = 0; r < 5; ++r) {
    const auto proof = ResultProof(outs, r);
    EXPECT_TRUE(VerifyRankOutput(outs[r], 5, proof, *root)) << r;
    RankOutput wrong = outs[r];
    wrong.size += 1;
    EXPECT_FALSE(VerifyRankOutput(wrong, 5, proof, *root));
    wrong = outs[r];
    wrong.root[0] ^= 1;
    EXPECT_FALSE(VerifyRankOutput(wrong, 5, proof, *root));
    // Rank r's output presented as another rank's.
    wrong = outs[r];
    wrong.rank = (r + 1) % 5;
    EXPECT_FALSE(VerifyRankOutput(wrong, 5, proof, *root));
    EXPECT_FALSE(VerifyRankOutput(outs[r], 6, proof, *root));
  }
  std::swap(outs[0], outs[1]);
  EXPECT_FALSE(ResultRoot(outs).has_value());
  EXPECT_FALSE(ResultRoot({}).has_value());
}

TEST_F(JobTest, ClaimRoundTripsAndDetectsTampering) {
  ResultClaim c;
  c.job_id = JobId(Job(), net_);
  c.result_root = crypto::Sha256Of("root");
  c.ranks = 4;
  c.usage = {.cpu_ms = 1234, .wall_ms = 900, .max_rss_bytes = 50 << 20};
  SignClaim(&c, provider_, net_);
  const std::string wire = EncodeClaim(c, net_);
  EXPECT_EQ(wire.size(), kClaimWireBytes);
  auto d = DecodeClaim(wire, net_);
  ASSERT_TRUE(d.has_value()) << d.status().ToString();
  EXPECT_EQ(d->usage, c.usage);
  EXPECT_EQ(d->provider, provider_.GetPublicKey().bytes());
  EXPECT_TRUE(VerifyClaim(*d, net_).ok());
  // A provider that inflates its CPU time after signing is caught by the signature.
  ResultClaim inflated = *d;
  inflated.usage.cpu_ms *= 10;
  EXPECT_EQ(VerifyClaim(inflated, net_).code(), core::Status::Code::kCorruption);
  for (size_t n = 0; n < wire.size(); ++n)
    EXPECT_FALSE(DecodeClaim(std::string_view(wire).substr(0, n), net_).has_value());
}

// The fuzz target's seeds (fuzz/corpus/compute_job: a kind byte, then the bytes) for the
// all-zero network id. Rewritten when DFRP_WRITE_COMPUTE_SEEDS names a folder; checked to
// decode either way, so a change of format cannot leave the fuzzer with dead seeds.
TEST(ComputeSeeds, TheCommittedSeedsDecode) {
  const crypto::Hash net{};
  JobContext j;
  const bls::SecretKey client = Key('s');
  j.client = client.GetPublicKey().bytes();
  j.nonce = 1;
  j.expiry_unix = 1'900'000'000;
  j.app = "knn";
  j.args = {"1000", "8", "3", "2", "1", "0"};
  JobInput in;
  in.shard_id = *core::Uuid::Parse("00112233445566778899aabbccddeeff");
  in.root = crypto::Sha256Of("seed input");
  in.size = 8000;
  in.leaf_size = 4096;
  j.inputs = {in};
  j.ranks = 2;
  j.limits = {.cpu_seconds = 10, .gpu_seconds = 0, .memory_bytes = 1 << 28, .wall_seconds = 30};
  j.max_fee = 1000;
  j.vector = {1.0f, 0.0f, -0.5f};
  ASSERT_TRUE(SignJob(&j, client, net).ok());
  ResultClaim c;
  c.job_id = JobId(j, net);
  c.result_root = crypto::Sha256Of("seed result");
  c.ranks = 2;
  c.usage = {.cpu_ms = 10, .wall_ms = 20, .max_rss_bytes = 1 << 20};
  SignClaim(&c, Key('t'), net);
  const std::string catalog =
      "[[app]]\nname = \"blur\"\npath = \"/opt/blur\"\ndeterministic = true\nargs = [ { name "
      "= \"N\", type = \"uint\", min = 1, max = 64 }, { name = \"M\", type = \"enum\", values "
      "= [\"fast\"] }, { name = \"D\", type = \"input\", optional = true } ]\n";
  const char* src = std::getenv("DFRP_SOURCE_DIR");
  const std::string dir = std::string(src != nullptr ? src : "..") + "/fuzz/corpus/compute_job";
  const std::vector<std::pair<std::string, std::string>> seeds = {
      {"job", std::string(1, '\0') + EncodeJob(j, net)},
      {"claim", std::string(1, '\1') + EncodeClaim(c, net)},
      {"catalog", std::string(1, '\2') + catalog}};
  if (const char* out = std::getenv("DFRP_WRITE_COMPUTE_SEEDS"))
    for (const auto& [name, bytes] : seeds)
      std::ofstream(std::string(out) + "/" + name, std::ios::binary) << bytes;
  for (const auto& [name, unused] : seeds) {
    std::ifstream f(dir + "/" + name, std::ios::binary);
    ASSERT_TRUE(f.good()) << dir << "/" << name;
    std::stringstream ss;
    ss << f.rdbuf();
    const std::string bytes = ss.str();
    ASSERT_FALSE(bytes.empty());
    const std::string_view body = std::string_view(bytes).substr(1);
    if (bytes[0] == 0) {
      auto d = DecodeJob(body, net);
      ASSERT_TRUE(d.has_value()) << d.status().ToString();
      EXPECT_TRUE(VerifyJob(*d, net).ok());
    } else if (bytes[0] == 1) {
      auto d = DecodeClaim(body, net);
      ASSERT_TRUE(d.has_value()) << d.status().ToString();
      EXPECT_TRUE(VerifyClaim(*d, net).ok());
    } else {
      auto d = ParseCatalog(body, name);
      ASSERT_TRUE(d.has_value()) << d.status().ToString();
      EXPECT_EQ(d->size(), 1u);
    }
  }
}

}  // namespace
}  // namespace dfrp::compute
