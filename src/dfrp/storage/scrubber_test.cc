#include "dfrp/storage/scrubber.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "dfrp/storage/store_test_util.h"

namespace dfrp::storage {
namespace {

using testing::Pattern;

class ScrubberTest : public testing::StoreFixture {
 protected:
  void SetUp() override {
    StoreFixture::SetUp();
    config_ = Config({300 << 10, 64 << 20});
    store_ = InitAndOpen(config_);
    ASSERT_TRUE(store_);
    // 200 KiB each: the first volume (300 KiB) takes one, the rest go to volume 1.
    std::vector<std::string> contents;
    for (int i = 0; i < 5; ++i) contents.push_back(Pattern(200 << 10, i));
    auto w = Put(*store_, contents);
    ASSERT_TRUE(w.has_value()) << w.error().ToString();
    written_ = *w;
  }

  std::unique_ptr<Scrubber> OpenScrubber() {
    auto s = Scrubber::Open(*store_, config_.state_dir, core::DefaultFileSystem());
    EXPECT_TRUE(s.has_value()) << s.error().ToString();
    return s ? std::move(*s) : nullptr;
  }

  ScrubReport RunOk(Scrubber& s, const ScrubOptions& opt) {
    auto r = s.Run(opt);
    EXPECT_TRUE(r.has_value()) << r.error().ToString();
    return r ? *r : ScrubReport{};
  }

  ScrubOptions Opts() {
    ScrubOptions o;
    o.clock = &clock_;
    return o;
  }

  core::NodeConfig config_;
  std::unique_ptr<Store> store_;
  std::vector<WrittenShard> written_;
  core::ManualClock clock_;
};

TEST_F(ScrubberTest, AFullPassVerifiesEveryShardAndRecordsWhen) {
  ASSERT_EQ(written_[0].volume, 0u);
  ASSERT_EQ(written_[4].volume, 1u);
  auto s = OpenScrubber();
  ScrubReport r = RunOk(*s, Opts());
  EXPECT_TRUE(r.state_reset);  // a new state file
  EXPECT_EQ(r.shards_verified, 5u);
  EXPECT_EQ(r.bytes_verified, 5u * (200 << 10));
  EXPECT_TRUE(r.findings.empty());
  EXPECT_FALSE(r.stopped);
  ASSERT_EQ(r.volumes.size(), 2u);
  EXPECT_TRUE(r.volumes[0].pass_completed && r.volumes[1].pass_completed);
  for (const auto& w : written_) {
    auto rec = s->LastVerified(w.id);
    ASSERT_TRUE(rec.has_value() && rec->has_value());
    EXPECT_TRUE((*rec)->ok);
    EXPECT_EQ((*rec)->verified_unix_ms, clock_.NowUnixMillis());
  }
  auto never = s->LastVerified(core::Uuid{});
  ASSERT_TRUE(never.has_value());
  EXPECT_FALSE(never->has_value());
}

TEST_F(ScrubberTest, AStoppedRunResumesWhereItStoppedEvenAfterAnIndexRebuild) {
  auto s = OpenScrubber();
  int calls = 0;
  ScrubOptions o = Opts();
  o.should_stop = [&] { return ++calls > 3; };  // three shards, then stop
  ScrubReport first = RunOk(*s, o);
  EXPECT_TRUE(first.stopped);
  EXPECT_EQ(first.shards_verified, 3u);
  s.reset();
  // The index is a cache: lose it, and let a writer rebuild it from the drives.
  store_.reset();
  for (const char* f : {"index.sqlite", "index.sqlite-wal", "index.sqlite-shm"})
    std::filesystem::remove(config_.state_dir + "/" + f);
  auto reopened = Store::Open(config_, Store::Mode::kWrite, opt_);
  ASSERT_TRUE(reopened.has_value()) << reopened.error().ToString();
  store_ = std::move(*reopened);
  clock_.AdvanceMillis(60'000);
  s = OpenScrubber();
  ScrubReport second = RunOk(*s, Opts());
  EXPECT_FALSE(second.state_reset);
  EXPECT_EQ(second.shards_verified, 2u);  // only what the first run had not reached
  ASSERT_EQ(second.volumes.size(), 2u);
  EXPECT_TRUE(second.volumes[1].resumed);
  EXPECT_FALSE(second.volumes[0].skipped.empty());  // its pass was complete
  for (size_t i = 0; i < written_.size(); ++i) {
    auto rec = s->LastVerified(written_[i].id);
    ASSERT_TRUE(rec.has_value() && rec->has_value());
    EXPECT_EQ((*rec)->verified_unix_ms, clock_.NowUnixMillis() - (i < 3 ? 60'000 : 0)) << i;
  }
  // With every pass complete, the next run starts a new pass over everything.
  ScrubReport third = RunOk(*s, Opts());
  EXPECT_EQ(third.shards_verified, 5u);
  EXPECT_FALSE(third.volumes[1].resumed);
}

// The shards of a volume in disk order, as the index lists them.
std::vector<core::Uuid> DiskOrder(Store& store, uint32_t volume) {
  std::vector<core::Uuid> ids;
  EXPECT_TRUE(store
                  .ForEachShard(volume,
                                [&](const ShardLocation& l) {
                                  ids.push_back(l.id);
                                  return true;
                                })
                  .ok());
  return ids;
}

TEST_F(ScrubberTest, APassWalksTheIndexPageByPageAndResumesFromItsCursor) {
  std::vector<std::string> small;
  for (int i = 0; i < 40; ++i) small.push_back(Pattern(1000 + i, 100 + i));
  ASSERT_TRUE(Put(*store_, small).has_value());
  const std::vector<core::Uuid> order = DiskOrder(*store_, 0);
  ASSERT_EQ(order.size(), 41u);  // the first fixture shard, then the 40 small ones
  auto s = OpenScrubber();
  ScrubOptions o = Opts();
  o.volume = 0;
  o.page_rows = 4;
  int calls = 0;
  o.should_stop = [&] { return ++calls > 17; };  // 17 shards: four pages and one of the fifth
  ScrubReport first = RunOk(*s, o);
  EXPECT_TRUE(first.stopped);
  EXPECT_EQ(first.shards_verified, 17u);
  EXPECT_EQ(first.index_pages, 5u);
  s.reset();
  clock_.AdvanceMillis(60'000);
  s = OpenScrubber();
  o.should_stop = nullptr;
  ScrubReport second = RunOk(*s, o);
  EXPECT_FALSE(second.stopped);
  EXPECT_EQ(second.shards_verified, 24u);      // from the cursor on, nothing twice
  EXPECT_EQ(second.index_pages, 24u / 4 + 1);  // the last, empty page ends the walk
  ASSERT_EQ(second.volumes.size(), 1u);
  EXPECT_TRUE(second.volumes[0].resumed);
  EXPECT_TRUE(second.volumes[0].pass_completed);
  for (size_t i = 0; i < order.size(); ++i) {
    auto rec = s->LastVerified(order[i]);
    ASSERT_TRUE(rec.has_value() && rec->has_value()) << i;
    EXPECT_EQ((*rec)->verified_unix_ms, clock_.NowUnixMillis() - (i < 17 ? 60'000 : 0)) << i;
  }
}

TEST_F(ScrubberTest, ShardsWrittenDuringAPassWaitForTheNextOne) {
  auto s = OpenScrubber();
  ScrubOptions o = Opts();
  o.volume = 1;
  o.page_rows = 2;
  int calls = 0;
  std::vector<WrittenShard> late;
  // Between shards (outside any call into the store), a writer adds shards to the volume.
  o.should_stop = [&] {
    if (++calls == 2) {
      auto w = Put(*store_, {Pattern(150 << 10, 1), Pattern(150 << 10, 2), Pattern(150 << 10, 3)});
      EXPECT_TRUE(w.has_value());
      if (w) late = *w;
    }
    return false;
  };
  ScrubReport r = RunOk(*s, o);
  ASSERT_EQ(late.size(), 3u);
  ASSERT_EQ(late[0].volume, 1u);
  EXPECT_EQ(r.shards_verified, 4u);  // the pass ends where the volume ended when it began
  EXPECT_TRUE(r.volumes[0].pass_completed);
  for (const auto& w : late) EXPECT_FALSE(s->LastVerified(w.id)->has_value());
  o.should_stop = nullptr;
  ScrubReport next = RunOk(*s, o);
  EXPECT_EQ(next.shards_verified, 7u);
  for (const auto& w : late) EXPECT_TRUE(s->LastVerified(w.id)->has_value());
}

TEST_F(ScrubberTest, ReportsCorruptShardsWithTheirPlace) {
  auto info = store_->Stat(written_[3].id);
  ASSERT_TRUE(info.has_value());
  {
    std::fstream f(info->segment_path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(info->location.offset + 96 + 1000 + 50000));
    f.put('\x7f');
  }
  auto s = OpenScrubber();
  std::vector<ScrubFinding> seen;
  ScrubOptions o = Opts();
  o.on_finding = [&](const ScrubFinding& f) { seen.push_back(f); };
  ScrubReport r = RunOk(*s, o);
  EXPECT_EQ(r.shards_verified, 5u);
  ASSERT_EQ(r.findings.size(), 1u);
  EXPECT_EQ(r.corrupt(), 1u);
  ASSERT_EQ(seen.size(), 1u);
  const ScrubFinding& f = r.findings[0];
  EXPECT_EQ(f.id, written_[3].id);
  EXPECT_EQ(f.volume, info->location.volume);
  EXPECT_EQ(f.segment, info->location.segment);
  EXPECT_EQ(f.offset, info->location.offset);
  EXPECT_EQ(f.segment_path, info->segment_path);
  EXPECT_TRUE(f.status.IsCorruption()) << f.status.ToString();
  auto rec = s->LastVerified(written_[3].id);
  ASSERT_TRUE(rec.has_value() && rec->has_value());
  EXPECT_FALSE((*rec)->ok);
  EXPECT_FALSE((*rec)->error.empty());
}

TEST_F(ScrubberTest, OneVolumeOnlyAndUnknownVolume) {
  auto s = OpenScrubber();
  ScrubOptions o = Opts();
  o.volume = 1;
  ScrubReport r = RunOk(*s, o);
  EXPECT_EQ(r.shards_verified, 4u);
  ASSERT_EQ(r.volumes.size(), 1u);
  EXPECT_EQ(r.volumes[0].volume, 1u);
  auto v0 = s->LastVerified(written_[0].id);
  EXPECT_FALSE(v0->has_value());
  o.volume = 7;
  auto bad = s->Run(o);
  ASSERT_FALSE(bad.has_value());
  EXPECT_TRUE(bad.error().IsNotFound());
}

TEST_F(ScrubberTest, RateLimitWaitsForTheBytesItVerified) {
  auto s = OpenScrubber();
  ScrubOptions o = Opts();
  o.rate_bytes_per_sec = 100 << 10;  // 1000 KiB at 100 KiB/s: 10 s on the manual clock
  int64_t slept = 0;
  o.sleep = [&](int64_t ns) {
    slept += ns;
    clock_.AdvanceMillis(ns / 1'000'000);
  };
  ScrubReport r = RunOk(*s, o);
  EXPECT_EQ(r.bytes_verified, 1000u << 10);
  EXPECT_GE(slept, 9'900'000'000);
  EXPECT_LE(slept, 10'100'000'000);
}

TEST_F(ScrubberTest, OneScrubAtATimeAndAnotherStoresStateIsReset) {
  auto s = OpenScrubber();
  auto second = Scrubber::Open(*store_, config_.state_dir, core::DefaultFileSystem());
  ASSERT_FALSE(second.has_value());
  EXPECT_TRUE(second.error().IsBusy());
  RunOk(*s, Opts());
  s.reset();
  // Damage the state file: it is only a record of past work, so it is started over.
  { std::ofstream(config_.state_dir + "/scrub.sqlite", std::ios::trunc) << "not a database"; }
  for (const char* f : {"scrub.sqlite-wal", "scrub.sqlite-shm"})
    std::filesystem::remove(config_.state_dir + "/" + f);
  s = OpenScrubber();
  ASSERT_TRUE(s);
  ScrubReport r = RunOk(*s, Opts());
  EXPECT_TRUE(r.state_reset);
  EXPECT_EQ(r.shards_verified, 5u);
}

}  // namespace
}  // namespace dfrp::storage
