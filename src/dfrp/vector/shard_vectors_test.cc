#include "dfrp/vector/shard_vectors.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <set>

#include "dfrp/core/fault_injection_fs.h"
#include "dfrp/storage/store_test_util.h"

namespace dfrp::vector {
namespace {

using storage::Store;
using storage::WriteRequest;

constexpr uint32_t kDim = 8;

class ShardVectorsTest : public storage::testing::StoreFixture {
 protected:
  void SetUp() override {
    StoreFixture::SetUp();
    config_ = Config({1ull << 30});
    config_.vector_dim = kDim;
    store_ = InitAndOpen(config_);
    ASSERT_NE(store_, nullptr);
  }

  std::vector<float> RandomVector() {
    std::normal_distribution<float> n;
    std::vector<float> v(kDim);
    for (float& x : v) x = n(rng_);
    return v;
  }

  // Stores `n` shards, every third one without a vector; remembers the vectors.
  void StoreShards(size_t n) {
    std::vector<WriteRequest> batch;
    std::vector<std::vector<float>> vectors;
    for (size_t i = 0; i < n; ++i) {
      WriteRequest r;
      r.path = FileWith(storage::testing::Pattern(100 + i, static_cast<int>(i)));
      r.name = r.path;
      if ((written_ + i) % 3 != 2) r.meta.vector = RandomVector();
      vectors.push_back(r.meta.vector);
      batch.push_back(std::move(r));
    }
    auto w = store_->Write(batch);
    ASSERT_TRUE(w) << w.error().ToString();
    for (size_t i = 0; i < n; ++i)
      if (!vectors[i].empty()) truth_[(*w)[i].id] = vectors[i];
    written_ += n;
  }

  std::unique_ptr<ShardVectors> OpenIndex(bool rebuild = false, Metric metric = Metric::kCosine) {
    ShardVectorsOptions o;
    o.dim = kDim;
    o.metric = metric;
    auto v = ShardVectors::Open(store_.get(), config_.state_dir, o, rebuild);
    EXPECT_TRUE(v) << v.error().ToString();
    return v ? std::move(*v) : nullptr;
  }

  // The k nearest by brute force over the vectors this test wrote (the truth).
  std::vector<core::Uuid> Truth(const std::vector<float>& q, size_t k, Metric metric) {
    std::vector<std::pair<float, core::Uuid>> all;
    const std::vector<float> pq = Prepare(q, metric);
    for (const auto& [id, v] : truth_)
      all.emplace_back(Distance(pq, Prepare(v, metric), metric), id);
    std::sort(all.begin(), all.end());
    std::vector<core::Uuid> out;
    for (size_t i = 0; i < std::min(k, all.size()); ++i) out.push_back(all[i].second);
    return out;
  }

  // Exact search through the index must give the truth, whatever state it was loaded from.
  void ExpectAgreesWithStore(ShardVectors& index, Metric metric = Metric::kCosine) {
    ASSERT_EQ(index.size(), truth_.size());
    for (int i = 0; i < 5; ++i) {
      const std::vector<float> q = RandomVector();
      auto hits = index.Search(q, {.k = 10, .exact = true});
      ASSERT_TRUE(hits) << hits.error().ToString();
      std::vector<core::Uuid> got;
      for (const Hit& h : *hits) got.push_back(h.id);
      EXPECT_EQ(got, Truth(q, 10, metric));
    }
  }

  core::NodeConfig config_;
  std::unique_ptr<storage::Store> store_;
  std::mt19937 rng_{7};
  std::map<core::Uuid, std::vector<float>> truth_;
  size_t written_ = 0;
  std::string IndexPath() { return config_.state_dir + "/vectors.idx"; }
};

TEST_F(ShardVectorsTest, BuildsFromTheDrivesAndAnswersExactlyAndApproximately) {
  StoreShards(300);
  auto index = OpenIndex();
  ASSERT_NE(index, nullptr);
  EXPECT_TRUE(index->report().built);
  EXPECT_EQ(index->report().why_built, "no saved index");
  EXPECT_EQ(index->report().scanned, 300u);
  EXPECT_EQ(index->report().added, 200u);
  ExpectAgreesWithStore(*index);
  // A shard's own vector finds it first, at distance 0.
  const auto& [id, v] = *truth_.begin();
  auto hits = index->Search(v, {.k = 3});
  ASSERT_TRUE(hits);
  ASSERT_EQ(hits->size(), 3u);
  EXPECT_EQ((*hits)[0].id, id);
  EXPECT_NEAR((*hits)[0].distance, 0.0f, 1e-5);
  EXPECT_LE((*hits)[0].distance, (*hits)[1].distance);
}

TEST_F(ShardVectorsTest, RefusesBadQueriesNamingTheArgument) {
  StoreShards(10);
  auto index = OpenIndex();
  auto short_q = index->Search(std::vector<float>(kDim - 1, 1.0f), {});
  ASSERT_FALSE(short_q);
  EXPECT_NE(short_q.error().message().find("--near has 7 components but VECTOR_DIM is 8"),
            std::string::npos);
  auto zero = index->Search(std::vector<float>(kDim, 0.0f), {});
  ASSERT_FALSE(zero);
  EXPECT_NE(zero.error().message().find("zero vector"), std::string::npos);
}

TEST_F(ShardVectorsTest, SavedIndexLoadsAndCatchesUpWithNewShards) {
  StoreShards(50);
  {
    auto index = OpenIndex();
    ASSERT_TRUE(index->Save().ok());
    EXPECT_EQ(index->unsaved(), 0u);
  }
  {
    auto index = OpenIndex();
    EXPECT_FALSE(index->report().built) << index->report().why_built;
    EXPECT_EQ(index->report().scanned, 0u);
    ExpectAgreesWithStore(*index);
  }
  StoreShards(40);  // another process's writes, with no vector index open
  auto index = OpenIndex();
  EXPECT_FALSE(index->report().built) << index->report().why_built;
  EXPECT_EQ(index->report().scanned, 40u);  // only the new records' prefixes
  ExpectAgreesWithStore(*index);
}

TEST_F(ShardVectorsTest, TheObserverAddsStoredShardsAtOnce) {
  StoreShards(20);
  auto index = OpenIndex();
  ShardVectorsObserver observer(index.get());
  store_->SetObserver(&observer);
  StoreShards(30);
  ExpectAgreesWithStore(*index);  // without reopening
  ASSERT_TRUE(index->Save().ok());
  store_->SetObserver(nullptr);
  auto again = OpenIndex();
  EXPECT_FALSE(again->report().built) << again->report().why_built;
  EXPECT_EQ(again->report().scanned, 0u);
  ExpectAgreesWithStore(*again);
}

TEST_F(ShardVectorsTest, DamagedOrTruncatedSnapshotsAreRebuiltNeverTrusted) {
  StoreShards(60);
  ASSERT_TRUE(OpenIndex()->Save().ok());
  const std::string good = storage::testing::Slurp(IndexPath());
  // Truncated at many lengths (every byte of the header, then strides), and bit flips.
  std::vector<size_t> cuts;
  for (size_t n = 0; n < std::min<size_t>(good.size(), 200); ++n) cuts.push_back(n);
  for (size_t n = 200; n < good.size(); n += 397) cuts.push_back(n);
  for (size_t n : cuts) {
    storage::testing::Spit(IndexPath(), good.substr(0, n));
    auto index = OpenIndex();
    ASSERT_NE(index, nullptr);
    EXPECT_TRUE(index->report().built) << n;
    ASSERT_EQ(index->size(), truth_.size()) << n;
  }
  for (size_t at : {size_t(9), good.size() / 2, good.size() - 1}) {
    std::string bad = good;
    bad[at] ^= 0x10;
    storage::testing::Spit(IndexPath(), bad);
    auto index = OpenIndex();
    EXPECT_TRUE(index->report().built);
    EXPECT_NE(index->report().why_built.find(at < 8 ? "not a vector index" : "checksum"),
              std::string::npos)
        << index->report().why_built;
    ExpectAgreesWithStore(*index);
  }
}

TEST_F(ShardVectorsTest, AStaleSnapshotIsRebuilt) {
  StoreShards(30);
  // A copy of the store as it is now...
  const std::string copy = dir_ + "/copy";
  storage::testing::CopyDir(dir_ + "/d0", copy + "-d0");
  storage::testing::CopyDir(config_.state_dir, copy + "-state");
  const auto truth_then = truth_;
  StoreShards(30);
  ASSERT_TRUE(OpenIndex()->Save().ok());
  const std::string newer = storage::testing::Slurp(IndexPath());
  // ... put back, with the newer snapshot: it covers shards the store does not have.
  store_.reset();
  storage::testing::CopyDir(copy + "-d0", dir_ + "/d0");
  storage::testing::CopyDir(copy + "-state", config_.state_dir);
  storage::testing::Spit(IndexPath(), newer);
  store_ = std::move(*Store::Open(config_, Store::Mode::kWrite, opt_));
  truth_ = truth_then;
  auto index = OpenIndex();
  EXPECT_TRUE(index->report().built);
  EXPECT_NE(index->report().why_built.find("where the store's index now has 30"), std::string::npos)
      << index->report().why_built;
  ExpectAgreesWithStore(*index);
}

TEST_F(ShardVectorsTest, AnotherMetricRebuilds) {
  StoreShards(40);
  ASSERT_TRUE(OpenIndex()->Save().ok());
  auto index = OpenIndex(false, Metric::kL2);
  EXPECT_TRUE(index->report().built);
  EXPECT_NE(index->report().why_built.find("VECTOR_METRIC = cosine"), std::string::npos);
  ExpectAgreesWithStore(*index, Metric::kL2);
}

TEST_F(ShardVectorsTest, SurvivesAPowerCutAtEverySyncOfASave) {
  StoreShards(40);
  ASSERT_TRUE(OpenIndex()->Save().ok());
  StoreShards(20);
  for (int n = 1;; ++n) {
    core::FaultInjectingFileSystem fault(core::DefaultFileSystem());
    ShardVectorsOptions o;
    o.dim = kDim;
    storage::StoreOptions so = opt_;
    so.fs = &fault;
    store_.reset();
    store_ = std::move(*Store::Open(config_, Store::Mode::kWrite, so));
    auto index = ShardVectors::Open(store_.get(), config_.state_dir, o);
    ASSERT_TRUE(index);
    fault.CrashAtSync(n);
    const bool saved = (*index)->Save().ok();
    ASSERT_TRUE(fault.DropUnsyncedData().ok());
    store_.reset();
    store_ = std::move(*Store::Open(config_, Store::Mode::kWrite, opt_));
    auto after = OpenIndex();
    ASSERT_NE(after, nullptr);
    ExpectAgreesWithStore(*after);  // the old snapshot caught up, or the new one
    if (saved) {
      EXPECT_FALSE(after->report().built);
      break;
    }
    // The next round crashes one sync later (the reopen above saved nothing).
    ASSERT_LT(n, 20) << "a save that never finishes";
  }
}

TEST_F(ShardVectorsTest, RecallAtTenOnRandomVectors) {
  for (int i = 0; i < 6; ++i) StoreShards(500);  // 2,000 vectors
  auto index = OpenIndex();
  double found = 0;
  const int queries = 50;
  for (int i = 0; i < queries; ++i) {
    const std::vector<float> q = RandomVector();
    auto approx = index->Search(q, {.k = 10, .ef = 64});
    ASSERT_TRUE(approx);
    const std::vector<core::Uuid> truth = Truth(q, 10, Metric::kCosine);
    const std::set<core::Uuid> want(truth.begin(), truth.end());
    for (const Hit& h : *approx) found += want.contains(h.id);
  }
  // A quality check on the graph, not a speed check: HNSW at ef 64 on 2,000 points in 8
  // dimensions finds nearly all of the true ten.
  EXPECT_GE(found / (queries * 10.0), 0.95);
}

}  // namespace
}  // namespace dfrp::vector
