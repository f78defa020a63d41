#include "dfrp/economy/oracle.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>

namespace dfrp::economy {
namespace {

constexpr size_t kWrite = static_cast<size_t>(Resource::kWriteGib);
constexpr size_t kReadIdx = static_cast<size_t>(Resource::kReadGib);

class OracleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dfrp-oracle-XXXXXX";
    dir_ = mkdtemp(tmpl);
    policy_ = *ParseEconomicPolicy("[pricing]\nepoch_seconds = 10\n", "economic.toml");
    cap_.figures.write_mb_per_sec = 100;
    cap_.figures.read_mb_per_sec = 200;
    cap_.figures.read_iops = 1000;
    cap_.figures.cpu_hashes_per_sec_one_core = 1e6;
    cap_.cores = 2;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  std::unique_ptr<PriceOracle> Open() {
    auto o = PriceOracle::Open(dir_, policy_, cap_, &clock_);
    EXPECT_TRUE(o.has_value()) << (o ? "" : o.error().message());
    return o ? std::move(*o) : nullptr;
  }
  std::string dir_;
  EconomicPolicy policy_;
  OracleCapacity cap_;
  core::ManualClock clock_{1'700'000'000'000};
};

TEST_F(OracleTest, SaturationRaisesIdleDecaysAndTheHistoryPersists) {
  auto o = Open();
  const PriceVector start = o->Current().prices;
  EXPECT_EQ(start, policy_.pricing.floor);
  // Writes at the full measured rate for one epoch: 100 MB/s for 10 s.
  const auto busy = [](uint64_t) {
    EpochUsage u;
    u.bytes_written = 1'000'000'000;
    return u;
  };
  clock_.AdvanceMillis(10'000);
  ASSERT_EQ(*o->Advance(busy), 1u);
  EXPECT_EQ(o->Current().utilization[kWrite], 10000u);
  EXPECT_EQ(o->Current().prices[kWrite], start[kWrite] + start[kWrite] / 8);
  EXPECT_EQ(o->Current().prices[kReadIdx], start[kReadIdx]) << "an idle price at its floor stays";
  EXPECT_EQ(*o->Advance(busy), 0u) << "an epoch is applied once";
  for (int i = 0; i < 5; ++i) {
    clock_.AdvanceMillis(10'000);
    ASSERT_EQ(*o->Advance(busy), 1u);
  }
  const Price high = o->Current().prices[kWrite];
  EXPECT_GT(high, start[kWrite] * 2);
  // Idle epochs: the price decays.
  clock_.AdvanceMillis(30'000);
  ASSERT_EQ(*o->Advance([](uint64_t) { return EpochUsage{}; }), 3u);
  EXPECT_LT(o->Current().prices[kWrite], high);
  const EpochRecord last = o->Current();
  o.reset();
  // Reopened: the same vector, and the history of 9 epochs.
  o = Open();
  EXPECT_EQ(o->Current().prices, last.prices);
  EXPECT_EQ(o->Current().epoch, last.epoch);
  EXPECT_EQ(o->History(100).size(), 9u);
  // A long pause counts as at most 64 idle epochs: back to the floor.
  clock_.AdvanceMillis(10'000'000);
  EXPECT_EQ(*o->Advance([](uint64_t) { return EpochUsage{}; }), 64u);
  EXPECT_EQ(o->Current().prices, policy_.pricing.floor);
}

TEST_F(OracleTest, NeighboursBlendIntoTheLastEpoch) {
  auto o = Open();
  const PriceVector start = o->Current().prices;
  std::array<std::vector<NeighbourPrice>, kResourceCount> n;
  n[kReadIdx] = {{start[kReadIdx] * 2, 1}, {start[kReadIdx] * 2, 1}, {start[kReadIdx], 0.5}};
  clock_.AdvanceMillis(10'000);
  ASSERT_EQ(*o->Advance([](uint64_t) { return EpochUsage{}; }, n), 1u);
  // Idle would keep the floor; the neighbours (median 2x) pull it up by a quarter of the gap,
  // which is more than one step: it moves one step, 1/8.
  EXPECT_EQ(o->Current().prices[kReadIdx], start[kReadIdx] + start[kReadIdx] / 8);
  n[kReadIdx] = {{start[kReadIdx] + start[kReadIdx] / 4, 1}};
  clock_.AdvanceMillis(10'000);
  const Price before = o->Current().prices[kReadIdx];
  ASSERT_EQ(*o->Advance([](uint64_t) { return EpochUsage{}; }, n), 1u);
  // Idle step down to 7/8 first (clamped to the floor), then a quarter of the way up.
  const Price stepped = std::max(before - before / 8, policy_.pricing.floor[kReadIdx]);
  EXPECT_EQ(o->Current().prices[kReadIdx],
            (stepped * 3 + (start[kReadIdx] + start[kReadIdx] / 4) + 2) / 4);
}

TEST_F(OracleTest, UtilizationAgainstCapacity) {
  auto o = Open();
  EpochUsage u;
  u.cpu_usec = 10'000'000;     // 10 CPU-s of 20 available
  u.bytes_read = 500'000'000;  // of 2 GB
  u.proofs = 20'000;           // more than 10,000
  u.bytes_stored = 1, u.bytes_quota = 4;
  const Utilization ut = o->UtilizationOf(u);
  EXPECT_EQ(ut[static_cast<size_t>(Resource::kCpuSec)], 5000u);
  EXPECT_EQ(ut[kReadIdx], 2500u);
  EXPECT_EQ(ut[static_cast<size_t>(Resource::kProof)], 10000u);
  EXPECT_EQ(ut[static_cast<size_t>(Resource::kStorageGibMonth)], 2500u);
  EXPECT_EQ(ut[static_cast<size_t>(Resource::kGpuSec)], 0u) << "no GPU: no GPU utilisation";
}

TEST_F(OracleTest, ADamagedHistoryIsRefusedByName) {
  {
    std::ofstream f(dir_ + "/market.db");
    f << "this is not a database, but it is long enough to look like a header........";
  }
  auto o = PriceOracle::Open(dir_, policy_, cap_, &clock_);
  ASSERT_FALSE(o.has_value());
  EXPECT_NE(o.error().message().find("market.db is damaged"), std::string::npos)
      << o.error().message();
  EXPECT_NE(o.error().message().find("move it aside"), std::string::npos);
}

}  // namespace
}  // namespace dfrp::economy
