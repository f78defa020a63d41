#include "dfrp/economy/usage.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "dfrp/storage/store_test_util.h"

namespace dfrp::economy {
namespace {

using storage::testing::Pattern;
using storage::testing::Spit;

core::RequestContext Who(const std::string& who) { return {.who = who, .request_id = "r1"}; }

class UsageTest : public storage::testing::StoreFixture {
 protected:
  void SetUp() override {
    StoreFixture::SetUp();
    opt_.clock = &clock_;
    config_ = Config({64 << 20});
    store_ = InitAndOpen(config_);
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override {
    store_.reset();
    StoreFixture::TearDown();
  }
  std::unique_ptr<UsageCounter> OpenCounter() {
    auto c = UsageCounter::Open(Options());
    EXPECT_TRUE(c.has_value()) << c.error().ToString();
    return c ? std::move(*c) : nullptr;
  }
  UsageOptions Options() {
    return {.path = UsagePath(config_.state_dir),
            .epoch_seconds = 60,
            .clock = &clock_,
            .background_flush = false};
  }
  std::vector<storage::WrittenShard> Write(const std::vector<std::string>& contents,
                                           const core::RequestContext& ctx) {
    std::vector<storage::WriteRequest> batch;
    for (const auto& c : contents) {
      storage::WriteRequest r;
      r.path = FileWith(c);
      r.name = r.path;
      batch.push_back(std::move(r));
    }
    auto w = store_->Write(batch, nullptr, ctx);
    EXPECT_TRUE(w.has_value()) << w.error().ToString();
    return w ? *w : std::vector<storage::WrittenShard>{};
  }
  static const UsageRow* Find(const std::vector<UsageRow>& rows, const std::string& key) {
    for (const auto& r : rows)
      if (r.key == key) return &r;
    return nullptr;
  }

  core::ManualClock clock_;
  core::NodeConfig config_;
  std::unique_ptr<storage::Store> store_;
};

TEST_F(UsageTest, CountsPerWalletShardAndEpochAndEpochsRoll) {
  auto usage = OpenCounter();
  store_->SetObserver(usage.get());
  auto a = Write({Pattern(1000, 1), Pattern(3000, 2)}, Who("wallet-a"));
  clock_.AdvanceMillis(60'000);  // the next epoch
  auto b = Write({Pattern(500, 3)}, Who("wallet-b"));
  usage->OnRead(Who("wallet-b"), a[0].id, 1000);
  usage->OnRead(Who("wallet-b"), a[0].id, 200);
  usage->OnProof(Who("wallet-a"), a[1].id, 3);

  auto wallets = usage->ByWallet();
  ASSERT_TRUE(wallets.has_value()) << wallets.error().ToString();
  const UsageRow* wa = Find(*wallets, "wallet-a");
  const UsageRow* wb = Find(*wallets, "wallet-b");
  ASSERT_TRUE(wa && wb);
  EXPECT_EQ(wa->shards_written, 2u);
  EXPECT_EQ(wa->bytes_written, 4000u);
  EXPECT_EQ(wa->proofs, 1u);
  EXPECT_EQ(wa->proof_leaves, 3u);
  EXPECT_EQ(wb->bytes_written, 500u);
  EXPECT_EQ(wb->bytes_read, 1200u);
  EXPECT_EQ(wb->reads, 2u);

  auto epochs = usage->ByEpoch();
  ASSERT_TRUE(epochs.has_value());
  ASSERT_EQ(epochs->size(), 2u);
  const int64_t e0 = usage->EpochOf(1'700'000'000'000);
  EXPECT_EQ((*epochs)[0].key, std::to_string(e0));
  EXPECT_EQ((*epochs)[0].bytes_written, 4000u);
  EXPECT_EQ((*epochs)[1].key, std::to_string(e0 + 1));
  EXPECT_EQ((*epochs)[1].bytes_written, 500u);
  EXPECT_EQ((*epochs)[1].bytes_read, 1200u);

  auto shards = usage->ByShard(std::string("wallet-b"));
  ASSERT_TRUE(shards.has_value());
  const UsageRow* s0 = Find(*shards, a[0].id.ToString());
  ASSERT_TRUE(s0);
  EXPECT_EQ(s0->bytes_read, 1200u);
  EXPECT_EQ(s0->bytes_written, 0u);  // wallet-a wrote it

  auto top = usage->TopWallets(1);
  ASSERT_TRUE(top.has_value());
  ASSERT_EQ(top->size(), 1u);
  EXPECT_EQ((*top)[0].key, "wallet-a");  // 4000 bytes against 1700

  auto j = usage->UsageJson({.wallet = "wallet-b"});
  ASSERT_TRUE(j.has_value());
  EXPECT_EQ((*j)["totals"]["bytes_read"], 1200);
  EXPECT_EQ((*j)["totals"]["bytes_written"], 500);
  EXPECT_EQ((*j)["wallets"].size(), 1u);
  EXPECT_EQ((*j)["epoch_seconds"], 60);
  EXPECT_TRUE((*j)["epochs"][0].contains("epoch_start_unix_ms"));
}

TEST_F(UsageTest, AWriteRecordedTwiceCountsOnce) {
  auto usage = OpenCounter();
  store_->SetObserver(usage.get());
  auto w = Write({Pattern(777, 1)}, Who("w"));
  usage->OnWrite(Who("w"), w[0].id, 777);
  usage->OnWrite(Who("other"), w[0].id, 777);
  auto rows = usage->ByWallet();
  ASSERT_TRUE(rows.has_value());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].bytes_written, 777u);
  EXPECT_EQ((*rows)[0].shards_written, 1u);
  EXPECT_EQ(*usage->Reconcile(*store_), 0u);
}

TEST_F(UsageTest, ReconcileCountsACommittedShardWithoutARowOnce) {
  auto usage = OpenCounter();
  store_->SetObserver(usage.get());
  auto counted = Write({Pattern(100, 1)}, Who("w"));
  // The crash: the store committed these, the counter never heard of them.
  store_->SetObserver(nullptr);
  clock_.AdvanceMillis(5);
  auto lost = Write({Pattern(200, 2), Pattern(300, 3)}, Who("w"));
  usage.reset();

  usage = OpenCounter();
  auto n = usage->Reconcile(*store_);
  ASSERT_TRUE(n.has_value()) << n.error().ToString();
  EXPECT_EQ(*n, 2u);
  EXPECT_EQ(*usage->Reconcile(*store_), 0u);  // a second open counts nothing again
  auto rows = usage->ByWallet();
  ASSERT_TRUE(rows.has_value());
  EXPECT_EQ(Find(*rows, "w")->bytes_written, 100u);
  EXPECT_EQ(Find(*rows, "local")->bytes_written, 500u);
  EXPECT_EQ(Find(*rows, "local")->shards_written, 2u);
}

// The store's writer records a batch as one write_batches row; the per-shard rows come later
// from the flusher. A process that dies in between (here: never flushes) has still committed
// who wrote what, and the next process counts it under that wallet, not as "local".
TEST_F(UsageTest, ABatchRecordedButNotSpreadKeepsItsWalletAcrossACrash) {
  auto dying = OpenCounter();  // background_flush off: nothing spreads the batch
  store_->SetObserver(dying.get());
  auto w = Write({Pattern(100, 1), Pattern(250, 2)}, Who("wallet-w"));
  store_->SetObserver(nullptr);
  auto count = [&](const char* table) {
    sqlite3* db = nullptr;
    sqlite3_open(UsagePath(config_.state_dir).c_str(), &db);
    sqlite3_stmt* st = nullptr;
    const std::string sql = std::string("SELECT count(*) FROM ") + table;
    sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr);
    sqlite3_step(st);
    const int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
  };
  EXPECT_EQ(count("write_batches"), 1);
  EXPECT_EQ(count("writes"), 0);

  auto next = OpenCounter();  // the restarted process
  EXPECT_EQ(*next->Reconcile(*store_), 0u);
  EXPECT_EQ(count("write_batches"), 0);
  EXPECT_EQ(count("writes"), 2);
  auto rows = next->ByWallet();
  ASSERT_TRUE(rows.has_value());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].key, "wallet-w");
  EXPECT_EQ((*rows)[0].bytes_written, 350u);
  dying.reset();  // its Close finds nothing left to spread, and counts nothing twice
  EXPECT_EQ((*next->ByWallet())[0].bytes_written, 350u);
}

TEST_F(UsageTest, ShardsFromBeforeTheUsageFileAreNotCounted) {
  Write({Pattern(100, 1)}, Who("w"));
  // Shard ids take their time from the system clock (core::DefaultUuidGenerator).
  clock_.SetMillis(core::SystemClock()->NowUnixMillis() + 1000);
  auto usage = OpenCounter();
  EXPECT_EQ(*usage->Reconcile(*store_), 0u);
}

TEST_F(UsageTest, ReadsFlushOnCloseAndAfterASecond) {
  auto usage = OpenCounter();
  const core::Uuid id = *core::Uuid::Parse("01890a5d-ac96-774b-bcce-b302099a8057");
  usage->OnRead(Who("w"), id, 10);
  auto count_io = [&] {
    sqlite3* db = nullptr;
    sqlite3_open(UsagePath(config_.state_dir).c_str(), &db);
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, "SELECT coalesce(sum(bytes_read), 0) FROM io", -1, &st, nullptr);
    sqlite3_step(st);
    const int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
  };
  EXPECT_EQ(count_io(), 0);  // held in memory
  clock_.AdvanceMillis(1000);
  usage->OnRead(Who("w"), id, 5);  // a second passed: this call flushes
  EXPECT_EQ(count_io(), 15);
  usage->OnRead(Who("w"), id, 7);
  ASSERT_TRUE(usage->Close().ok());
  EXPECT_EQ(count_io(), 22);
  usage = OpenCounter();
  EXPECT_EQ((*usage->ByWallet())[0].bytes_read, 22u);
}

TEST_F(UsageTest, BackgroundFlushWritesWithinASecondOrSo) {
  UsageOptions o = Options();
  o.background_flush = true;
  auto usage = UsageCounter::Open(o);
  ASSERT_TRUE(usage.has_value());
  const core::Uuid id = *core::Uuid::Parse("01890a5d-ac96-774b-bcce-b302099a8057");
  (*usage)->OnProof(Who("w"), id, 2);
  auto other = UsageCounter::Open(Options());  // a second process's view of the file
  ASSERT_TRUE(other.has_value());
  bool seen = false;
  for (int i = 0; i < 40 && !seen; ++i) {
    usleep(100'000);
    auto rows = (*other)->ByWallet();
    seen = rows && !rows->empty() && (*rows)[0].proofs == 1;
  }
  EXPECT_TRUE(seen);
}

TEST_F(UsageTest, DamagedFileIsRefusedAndRebuildRecountsWrites) {
  auto usage = OpenCounter();
  store_->SetObserver(usage.get());
  Write({Pattern(100, 1), Pattern(50, 2)}, Who("w"));
  store_->SetObserver(nullptr);
  usage.reset();
  const std::string path = UsagePath(config_.state_dir);
  std::filesystem::remove(path + "-wal");
  std::filesystem::remove(path + "-shm");
  Spit(path, std::string(8192, 'x'));
  auto refused = UsageCounter::Open(Options());
  ASSERT_FALSE(refused.has_value());
  EXPECT_TRUE(refused.error().IsCorruption()) << refused.error().ToString();
  EXPECT_NE(refused.error().message().find(path), std::string::npos);
  EXPECT_NE(refused.error().message().find("the read counts in it are lost"), std::string::npos)
      << refused.error().message();
  EXPECT_EQ(std::filesystem::file_size(path), 8192u);  // never zeroed

  auto rebuilt = RebuildUsage(config_.state_dir, *store_);
  ASSERT_TRUE(rebuilt.has_value()) << rebuilt.error().ToString();
  EXPECT_EQ(rebuilt->shards, 2u);
  EXPECT_TRUE(std::filesystem::exists(rebuilt->moved_to));
  usage = OpenCounter();
  auto rows = usage->ByWallet();
  ASSERT_TRUE(rows.has_value());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].key, "local");
  EXPECT_EQ((*rows)[0].bytes_written, 150u);
}

TEST_F(UsageTest, WrongSchemaVersionIsRefused) {
  OpenCounter().reset();
  sqlite3* db = nullptr;
  sqlite3_open(UsagePath(config_.state_dir).c_str(), &db);
  sqlite3_exec(db, "UPDATE meta SET value = '99' WHERE key = 'schema_version'", nullptr, nullptr,
               nullptr);
  sqlite3_close(db);
  auto refused = UsageCounter::Open(Options());
  ASSERT_FALSE(refused.has_value());
  EXPECT_NE(refused.error().message().find("schema version '99'"), std::string::npos)
      << refused.error().message();
}

TEST_F(UsageTest, JobUsageAddsUp) {
  auto usage = OpenCounter();
  ASSERT_TRUE(usage->AddJobUsage(Who("w"), "job-1", 1500, 10).ok());
  ASSERT_TRUE(usage->AddJobUsage(Who("w"), "job-1", 500, 5).ok());
  auto rows = usage->ByWallet();
  ASSERT_TRUE(rows.has_value());
  EXPECT_EQ((*rows)[0].cpu_usec, 2000u);
  EXPECT_EQ((*rows)[0].cycles, 15u);
  EXPECT_EQ((*rows)[0].jobs, 1u);  // one job, two additions
}

TEST(CpuStat, ParsesCgroupV2) {
  char tmpl[] = "/tmp/dfrp-cpustat-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/cpu.stat";
  Spit(path,
       "usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\nnr_periods 0\n"
       "nr_throttled 0\nthrottled_usec 0\n");
  auto s = ReadCgroupCpuStat(core::DefaultFileSystem(), path);
  ASSERT_TRUE(s.has_value()) << s.error().ToString();
  EXPECT_EQ(s->usage_usec, 123456u);
  EXPECT_EQ(s->user_usec, 100000u);
  EXPECT_EQ(s->system_usec, 23456u);
  auto bad = ParseCgroupCpuStat("usage_usec x\n", path);
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message().find(path), std::string::npos);
  EXPECT_FALSE(ParseCgroupCpuStat("nr_periods 0\n", path).has_value());
  std::filesystem::remove_all(tmpl);
}

TEST(CpuStat, ChildrenRusageSeesABurningChild) {
  const CpuStat before = ChildrenRusage();
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    struct timespec t0 {
    }, t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    volatile uint64_t x = 0;
    do {
      for (int i = 0; i < 100000; ++i) x = x + static_cast<uint64_t>(i);
      clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    } while ((t.tv_sec - t0.tv_sec) * 1'000'000'000L + (t.tv_nsec - t0.tv_nsec) < 200'000'000L);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  const CpuStat after = ChildrenRusage();
  const uint64_t used = after.usage_usec - before.usage_usec;
  EXPECT_GE(used, 180'000u);
  EXPECT_LT(used, 2'000'000u);
}

}  // namespace
}  // namespace dfrp::economy
