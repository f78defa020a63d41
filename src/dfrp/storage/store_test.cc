#include "dfrp/storage/store.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "dfrp/core/fault_injection_fs.h"
#include "dfrp/crypto/merkle.h"
#include "dfrp/storage/format.h"
#include "dfrp/storage/store_test_util.h"

namespace dfrp::storage {
namespace {

namespace fs = std::filesystem;
using core::Status;
using testing::CopyDir;
using testing::Pattern;
using testing::Slurp;
using testing::Spit;

class StoreTest : public testing::StoreFixture {};

TEST_F(StoreTest, WriteReadVerifyRoundTripAcrossSizes) {
  auto store = InitAndOpen(Config({64 << 20}));
  ASSERT_TRUE(store);
  std::vector<std::string> contents = {
      "", "x", Pattern(4096), Pattern(4097, 1), Pattern(3 * 1024 * 1024 + 5, 2), Pattern(70000, 3)};
  auto written = Put(*store, contents);
  ASSERT_TRUE(written.has_value()) << written.error().ToString();
  ASSERT_EQ(written->size(), contents.size());
  for (size_t i = 0; i < contents.size(); ++i) {
    const WrittenShard& w = (*written)[i];
    EXPECT_EQ(w.size, contents[i].size());
    EXPECT_EQ(w.root, crypto::MerkleRoot(contents[i], 4096, 1)) << i;
    EXPECT_EQ(w.id.version(), 7);
    auto back = Get(*store, w.id);
    ASSERT_TRUE(back.has_value()) << back.error().ToString();
    EXPECT_EQ(*back, contents[i]) << i;
    VerifyResult v = store->Verify(w.id);
    EXPECT_TRUE(v.ok) << v.status.ToString();
  }
  // Reopened read-only from scratch, everything is still there.
  store.reset();
  auto reader = Store::Open(Config({64 << 20}), Store::Mode::kRead, opt_);
  ASSERT_TRUE(reader.has_value());
  for (size_t i = 0; i < contents.size(); ++i)
    EXPECT_EQ(*Get(**reader, (*written)[i].id), contents[i]);
  EXPECT_TRUE((*reader)->notices().empty());
}

// Many small inputs are read ahead on worker threads in groups; each shard must still get
// exactly its own file's bytes, in batch order.
TEST_F(StoreTest, LargeBatchOfSmallFilesKeepsEveryPayloadInPlace) {
  auto store = InitAndOpen(Config({64 << 20}));
  std::vector<std::string> contents;
  for (int i = 0; i < 3000; ++i) contents.push_back(Pattern(static_cast<size_t>(i % 700), i));
  auto w = Put(*store, contents);
  ASSERT_TRUE(w.has_value()) << w.error().ToString();
  ASSERT_EQ(w->size(), contents.size());
  for (size_t i = 0; i < contents.size(); i += 7) {
    EXPECT_EQ(*Get(*store, (*w)[i].id), contents[i]) << i;
    EXPECT_EQ((*w)[i].root, crypto::MerkleRoot(contents[i], 4096, 1)) << i;
  }
  // One input that vanished in the middle fails the whole batch and leaves nothing.
  const uint64_t used = store->ListVolumes()[0].used;
  std::vector<WriteRequest> batch;
  for (int i = 0; i < 1000; ++i) {
    WriteRequest r;
    r.path = FileWith(Pattern(100, i));
    r.name = r.path;
    if (i == 600) r.size_hint = 100, r.path = dir_ + "/gone";
    batch.push_back(std::move(r));
  }
  auto failed = store->Write(batch);
  ASSERT_FALSE(failed.has_value());
  EXPECT_EQ(store->ListVolumes()[0].used, used);
}

// Small records are laid out in runs by worker threads, each payload read straight into
// its place: runs end at segment boundaries, around large (streamed) records and at
// streams among the files, and a file that grew or shrank since it was sized is caught.
TEST_F(StoreTest, SmallRecordsAcrossSegmentsStreamsAndLargeFilesLandInPlace) {
  opt_.segment_target_size = 64 << 10;
  auto store = InitAndOpen(Config({256 << 20}));
  ASSERT_TRUE(store);
  std::vector<std::string> contents;
  std::vector<WriteRequest> batch;
  for (int i = 0; i < 600; ++i) {
    const size_t size = i % 97 == 5 ? (3 << 19) + static_cast<size_t>(i) : (i * 37) % 5000;
    contents.push_back(Pattern(size, i));
    WriteRequest r;
    r.name = "input " + std::to_string(i);
    if (i % 50 == 3) {
      r.input = core::SequentialFileFromString(contents.back(), r.name);
    } else {
      r.path = FileWith(contents.back());
      if (i % 2 == 0) r.size_hint = static_cast<int64_t>(size);
    }
    batch.push_back(std::move(r));
  }
  auto w = store->Write(batch);
  ASSERT_TRUE(w.has_value()) << w.error().ToString();
  ASSERT_EQ(w->size(), contents.size());
  EXPECT_GT(store->ListVolumes()[0].segments, 20u);
  for (size_t i = 0; i < contents.size(); ++i) {
    EXPECT_EQ((*w)[i].root, crypto::MerkleRoot(contents[i], 4096, 1)) << i;
    EXPECT_EQ(*Get(*store, (*w)[i].id), contents[i]) << i;
  }
  // A file that is not the size it was sized at fails the batch, which leaves nothing.
  const uint64_t used = store->ListVolumes()[0].used;
  for (int64_t hint : {99, 101}) {
    std::vector<WriteRequest> changed;
    for (int i = 0; i < 300; ++i) {
      WriteRequest r;
      r.path = FileWith(Pattern(100, i));
      r.name = r.path;
      if (i == 200) r.size_hint = hint;
      changed.push_back(std::move(r));
    }
    auto failed = store->Write(changed);
    ASSERT_FALSE(failed.has_value());
    EXPECT_NE(failed.error().message().find(hint < 100 ? "grew" : "shrank"), std::string::npos)
        << failed.error().message();
    EXPECT_EQ(store->ListVolumes()[0].used, used);
  }
}

TEST_F(StoreTest, LeafSizeIsRecordedPerShard) {
  auto store = InitAndOpen(Config({16 << 20}));
  std::string data = Pattern(10000);
  auto w = Put(*store, {data}, 512);
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ((*w)[0].leaf_size, 512u);
  EXPECT_EQ((*w)[0].root, crypto::MerkleRoot(data, 512, 1));
  auto info = store->Stat((*w)[0].id);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->metadata.leaf_size, 512u);
  EXPECT_EQ(info->metadata.size, 10000u);
}

TEST_F(StoreTest, FillsVolumesInOrderAndNeverStraddles) {
  auto store = InitAndOpen(Config({64 << 10, 1 << 20}));
  auto w = Put(*store, {Pattern(30000), Pattern(30000, 1), Pattern(30000, 2)});
  ASSERT_TRUE(w.has_value()) << w.error().ToString();
  EXPECT_EQ((*w)[0].volume, 0u);
  EXPECT_EQ((*w)[1].volume, 0u);
  EXPECT_EQ((*w)[2].volume, 1u);  // does not fit in what volume 0 has left
  auto small = Put(*store, {"tiny"});
  ASSERT_TRUE(small.has_value());
  EXPECT_EQ((*small)[0].volume, 0u);  // the lowest volume with room wins again
  auto vols = store->ListVolumes();
  ASSERT_EQ(vols.size(), 2u);
  EXPECT_LE(vols[0].used, vols[0].quota);
  EXPECT_EQ(vols[0].shards, 3u);
  EXPECT_EQ(vols[1].shards, 1u);
  for (const auto& s : *w) EXPECT_TRUE(store->Verify(s.id).ok);
}

TEST_F(StoreTest, NoRoomFailsTheWholeBatchAndLeavesNothing) {
  auto store = InitAndOpen(Config({64 << 10}));
  ASSERT_TRUE(Put(*store, {"first"}).has_value());
  auto before = store->ListVolumes();
  auto w = Put(*store, {Pattern(20000), Pattern(100000)});
  ASSERT_FALSE(w.has_value());
  EXPECT_TRUE(w.error().IsNoSpace());
  EXPECT_NE(w.error().message().find("add a drive"), std::string::npos);
  auto after = store->ListVolumes();
  EXPECT_EQ(after[0].used, before[0].used);
  EXPECT_EQ(after[0].shards, 1u);
}

TEST_F(StoreTest, SecondWriterIsBusyWhileReadersProceed) {
  auto c = Config({1 << 20});
  auto writer = InitAndOpen(c);
  auto w = Put(*writer, {"hello"});
  ASSERT_TRUE(w.has_value());
  auto second = Store::Open(c, Store::Mode::kWrite, opt_);
  ASSERT_FALSE(second.has_value());
  EXPECT_TRUE(second.error().IsBusy());
  EXPECT_NE(second.error().message().find("busy"), std::string::npos);
  auto reader = Store::Open(c, Store::Mode::kRead, opt_);
  ASSERT_TRUE(reader.has_value());
  EXPECT_EQ(*Get(**reader, (*w)[0].id), "hello");
  // A reader sees a batch committed after it opened.
  auto later = Put(*writer, {"later"});
  ASSERT_TRUE(later.has_value());
  EXPECT_EQ(*Get(**reader, (*later)[0].id), "later");
}

TEST_F(StoreTest, VanishedVolumeIsMissingNeverEmpty) {
  auto c = Config({1 << 20, 1 << 20});
  auto store = InitAndOpen(c);
  auto w = Put(*store, {"on volume zero"});
  ASSERT_TRUE(w.has_value());
  store.reset();
  fs::rename(c.drives[0].path + "/DFRP-VOLUME", dir_ + "/hidden-header");  // an unmounted drive
  auto reopened = Store::Open(c, Store::Mode::kWrite, opt_);
  ASSERT_TRUE(reopened.has_value()) << reopened.error().ToString();
  auto vols = (*reopened)->ListVolumes();
  EXPECT_EQ(vols[0].state, VolumeState::kMissing);
  EXPECT_NE(vols[0].problem.find("mount"), std::string::npos);
  auto read = Get(**reopened, (*w)[0].id);
  ASSERT_FALSE(read.has_value());
  EXPECT_TRUE(read.error().IsNotFound());
  EXPECT_NE(read.error().message().find("volume 0"), std::string::npos);
  auto next = Put(**reopened, {"goes elsewhere"});
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ((*next)[0].volume, 1u);  // nothing is ever written to a missing volume
  // init-storage refuses to lay the missing volume out again.
  reopened->reset();
  auto init = Store::Init(c, opt_);
  ASSERT_FALSE(init.has_value());
  EXPECT_NE(init.error().message().find("not treated as empty"), std::string::npos);
  // Remounting brings the shard back.
  fs::rename(dir_ + "/hidden-header", c.drives[0].path + "/DFRP-VOLUME");
  auto back = Store::Open(c, Store::Mode::kRead, opt_);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*Get(**back, (*w)[0].id), "on volume zero");
}

TEST_F(StoreTest, InitRefusesADriveOfAnotherStore) {
  auto a = Config({1 << 20}, "state-a");  // store A on d0
  ASSERT_TRUE(Store::Init(a, opt_).has_value());
  core::NodeConfig b = a;  // store B on its own drive, then d0 is added to it by mistake
  b.state_dir = dir_ + "/state-b";
  fs::create_directories(dir_ + "/b0");
  b.drives = {{0, dir_ + "/b0", 1 << 20}};
  ASSERT_TRUE(Store::Init(b, opt_).has_value());
  b.drives.push_back({1, a.drives[0].path, 1 << 20});
  auto r = Store::Init(b, opt_);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(r.error().message().find("belongs to another store"), std::string::npos)
      << r.error().message();
  // Opening store B with that config shows the drive as missing, never as B's.
  auto open = Store::Open(b, Store::Mode::kRead, opt_);
  ASSERT_TRUE(open.has_value());
  EXPECT_EQ((*open)->ListVolumes()[1].state, VolumeState::kUninitialized);
}

TEST_F(StoreTest, StateDirLostIsAdoptedFromTheDrives) {
  auto c = Config({1 << 20, 1 << 20});
  auto store = InitAndOpen(c);
  auto w = Put(*store, {"keep me"});
  ASSERT_TRUE(w.has_value());
  core::Uuid id = store->store_id();
  store.reset();
  fs::remove_all(c.state_dir);
  auto init = Store::Init(c, opt_);
  ASSERT_TRUE(init.has_value()) << init.error().ToString();
  EXPECT_TRUE(init->adopted);
  EXPECT_EQ(init->store_id, id);
  auto reopened = Store::Open(c, Store::Mode::kRead, opt_);
  ASSERT_TRUE(reopened.has_value());
  EXPECT_EQ(*Get(**reopened, (*w)[0].id), "keep me");  // the index was rebuilt from the drive
}

TEST_F(StoreTest, QuotaBelowUsedIsAConfigError) {
  auto c = Config({1 << 20});
  auto store = InitAndOpen(c);
  ASSERT_TRUE(Put(*store, {Pattern(50000)}).has_value());
  store.reset();
  c.drives[0].quota = 1000;
  auto r = Store::Open(c, Store::Mode::kWrite, opt_);
  ASSERT_TRUE(r.has_value());  // reads go on
  EXPECT_EQ((*r)->ListVolumes()[0].state, VolumeState::kFull);
  EXPECT_NE((*r)->ListVolumes()[0].problem.find("raise QUOTA_0"), std::string::npos);
  auto w = Put(**r, {"x"});  // writes are refused until the config is fixed
  ASSERT_FALSE(w.has_value());
  EXPECT_EQ(w.error().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(w.error().message().find("raise QUOTA_0"), std::string::npos);
}

// A stream that claims a size and then delivers fewer bytes: a file shrinking under us.
class ShrinkingFile : public core::SequentialFile {
 public:
  ShrinkingFile(int64_t claimed, size_t real) : claimed_(claimed), left_(real) {}
  core::Result<size_t> Read(size_t n, char* dst) override {
    size_t k = std::min(n, left_);
    std::memset(dst, 'a', k);
    left_ -= k;
    return k;
  }
  const std::string& path() const override { return name_; }
  int64_t KnownSize() const override { return claimed_; }

 private:
  int64_t claimed_;
  size_t left_;
  std::string name_ = "shrinking";
};

TEST_F(StoreTest, AFileThatChangesWhileReadIsRefusedAndNothingRemains) {
  auto store = InitAndOpen(Config({64 << 20}));
  for (auto [claimed, real] :
       {std::pair<int64_t, size_t>{10000, 5000}, {3 << 20, 2 << 20}, {5000, 6000}}) {
    auto before = store->ListVolumes()[0].used;
    std::vector<WriteRequest> batch(1);
    batch[0].name = "input.bin";
    batch[0].input = std::make_unique<ShrinkingFile>(claimed, real);
    auto w = store->Write(batch);
    ASSERT_FALSE(w.has_value());
    EXPECT_NE(w.error().message().find(real < size_t(claimed) ? "shrank" : "grew"),
              std::string::npos)
        << w.error().message();
    EXPECT_EQ(store->ListVolumes()[0].used, before);
    EXPECT_EQ(store->ListVolumes()[0].shards, 0u);
  }
}

TEST_F(StoreTest, FlippedBytesAreCaughtByVerifyAndRead) {
  auto store = InitAndOpen(Config({64 << 20}));
  auto w = Put(*store, {Pattern(20000), Pattern(300, 1), Pattern(9000, 2)});
  ASSERT_TRUE(w.has_value());
  auto info = store->Stat((*w)[0].id);
  ASSERT_TRUE(info.has_value());
  const std::string seg = info->segment_path;
  const std::string pristine = Slurp(seg);
  const uint64_t off = info->location.offset;
  const uint64_t meta_len = EncodeMetadata(info->metadata).size();
  struct Case {
    const char* what;
    uint64_t at;
  } cases[] = {{"header", off + 20},
               {"root", off + 70},
               {"metadata", off + 96 + 3},
               {"payload", off + 96 + meta_len + 5000},
               {"tree", off + 96 + meta_len + 20000 + 40}};
  for (const Case& c : cases) {
    std::string bad = pristine;
    bad[c.at] ^= 0x10;
    Spit(seg, bad);
    auto fresh = Store::Open(Config({64 << 20}), Store::Mode::kRead, opt_);
    ASSERT_TRUE(fresh.has_value());
    VerifyResult v = (*fresh)->Verify((*w)[0].id);
    EXPECT_FALSE(v.ok) << c.what;
    EXPECT_TRUE(v.status.IsCorruption()) << c.what << ": " << v.status.ToString();
    std::string got;
    Status r = (*fresh)->Read((*w)[0].id, [&](std::string_view d) {
      got.append(d);
      return Status::OK();
    });
    if (std::string(c.what) == "tree" && c.at >= off + 96 + meta_len + 20000 + 5 * 32) {
      EXPECT_TRUE(r.ok());  // upper tree levels are not needed to stream-verify
    } else if (std::string(c.what) != "tree") {
      EXPECT_TRUE(r.IsCorruption()) << c.what << ": " << r.ToString();
      EXPECT_LT(got.size(), 20000u) << c.what;
    }
    // The neighbours are untouched.
    EXPECT_TRUE((*fresh)->Verify((*w)[1].id).ok) << c.what;
    EXPECT_TRUE((*fresh)->Verify((*w)[2].id).ok) << c.what;
  }
  Spit(seg, pristine);
}

// Copies a store's STATE_DIR (the index) so a test can roll it back to an earlier moment.

TEST_F(StoreTest, UnindexedTailIsFoundOnOpen) {
  auto c = Config({64 << 20});
  auto store = InitAndOpen(c);
  auto first = Put(*store, {"one", "two"});
  ASSERT_TRUE(first.has_value());
  store.reset();
  CopyDir(c.state_dir, dir_ + "/state-after-first");
  store = std::move(*Store::Open(c, Store::Mode::kWrite, opt_));
  auto second = Put(*store, {Pattern(100000), "four"});
  ASSERT_TRUE(second.has_value());
  store.reset();
  // The index forgets the second batch (as a lost commit would); the drives still hold it.
  fs::remove_all(c.state_dir);
  CopyDir(dir_ + "/state-after-first", c.state_dir);
  auto reader = Store::Open(c, Store::Mode::kRead, opt_);
  ASSERT_TRUE(reader.has_value()) << reader.error().ToString();
  EXPECT_EQ(*Get(**reader, (*second)[0].id), Pattern(100000));
  EXPECT_EQ(*Get(**reader, (*second)[1].id), "four");
  EXPECT_EQ((*reader)->ListVolumes()[0].shards, 4u);
}

TEST_F(StoreTest, IndexDeletedIsRebuiltFromTheDrives) {
  auto c = Config({1 << 20, 1 << 20});
  auto store = InitAndOpen(c);
  auto w = Put(*store, {Pattern(600000), Pattern(600000, 1), "small"});
  ASSERT_TRUE(w.has_value());
  store.reset();
  for (const char* f : {"index.sqlite", "index.sqlite-wal", "index.sqlite-shm"})
    fs::remove(c.state_dir + "/" + f);
  auto reader = Store::Open(c, Store::Mode::kRead, opt_);
  ASSERT_TRUE(reader.has_value());
  for (size_t i = 0; i < 3; ++i) EXPECT_TRUE((*reader)->Verify((*w)[i].id).ok);
  auto vols = (*reader)->ListVolumes();
  EXPECT_EQ(vols[0].shards + vols[1].shards, 3u);
}

// A crash in the middle of appending the last record or its commit record, at every byte: the
// store opens, the torn record never appears, its bytes are cut, and every earlier shard
// verifies.
TEST_F(StoreTest, TornLastRecordAtEveryByte) {
  opt_.sync_index = false;  // about 1,600 reopenings; the segment syncs stay real
  auto c = Config({64 << 20});
  auto store = InitAndOpen(c);
  auto early = Put(*store, {Pattern(5000), "second"}, 512);
  ASSERT_TRUE(early.has_value());
  store.reset();
  CopyDir(c.state_dir, dir_ + "/state-before");
  store = std::move(*Store::Open(c, Store::Mode::kWrite, opt_));
  auto last = Put(*store, {Pattern(1300, 9)}, 512);  // 3 leaves: header, metadata, payload, tree
  ASSERT_TRUE(last.has_value());
  auto info = store->Stat((*last)[0].id);
  ASSERT_TRUE(info.has_value());
  store.reset();
  const std::string seg = info->segment_path;
  const std::string full = Slurp(seg);
  const uint64_t start = info->location.offset;
  // The record, then the batch's 32-byte commit record: a cut anywhere in either is a torn
  // batch that was never acknowledged.
  ASSERT_EQ(full.size(), start + info->location.record_len + kCommitSize);
  for (uint64_t cut = start; cut <= full.size(); ++cut) {
    fs::remove_all(c.state_dir);
    CopyDir(dir_ + "/state-before", c.state_dir);
    Spit(seg, full.substr(0, cut));
    auto s = Store::Open(c, Store::Mode::kWrite, opt_);
    ASSERT_TRUE(s.has_value()) << "cut " << cut << ": " << s.error().ToString();
    for (const auto& e : *early) ASSERT_TRUE((*s)->Verify(e.id).ok) << "cut " << cut;
    auto got = Get(**s, (*last)[0].id);
    if (cut == full.size()) {
      ASSERT_TRUE(got.has_value()) << "complete record must be recovered";
      EXPECT_EQ(*got, Pattern(1300, 9));
    } else {
      ASSERT_FALSE(got.has_value()) << "cut " << cut;
      EXPECT_TRUE(got.error().IsNotFound());
      EXPECT_EQ(fs::file_size(seg), start) << "cut " << cut;  // the torn bytes are gone
      if (cut % 97 == 0) {  // the store keeps working: a new write lands where the torn one was
        auto again = Put(**s, {"after crash"});
        ASSERT_TRUE(again.has_value());
        EXPECT_EQ(*Get(**s, (*again)[0].id), "after crash");
      }
    }
  }
}

// Damage inside batches the index has not seen yet (a lost index commit, then bit rot): a
// valid commit record further on proves acknowledged data follows, so nothing is cut; the
// segment is sealed and new writes go to a fresh one.
TEST_F(StoreTest, DamageBeforeALaterCommitIsNeverCut) {
  auto c = Config({64 << 20});
  auto store = InitAndOpen(c);
  ASSERT_TRUE(Put(*store, {"indexed"}).has_value());
  store.reset();
  CopyDir(c.state_dir, dir_ + "/state-before");
  store = std::move(*Store::Open(c, Store::Mode::kWrite, opt_));
  auto lost = Put(*store, {Pattern(3000), "second of the batch"});
  ASSERT_TRUE(lost.has_value());
  auto info = store->Stat((*lost)[0].id);
  ASSERT_TRUE(info.has_value());
  store.reset();
  fs::remove_all(c.state_dir);
  CopyDir(dir_ + "/state-before", c.state_dir);  // the index forgets the second batch
  std::string seg = Slurp(info->segment_path);
  seg[info->location.offset + 20] ^= 1;  // and its first record header rots
  Spit(info->segment_path, seg);
  auto reopened = Store::Open(c, Store::Mode::kWrite, opt_);
  ASSERT_TRUE(reopened.has_value()) << reopened.error().ToString();
  EXPECT_EQ(fs::file_size(info->segment_path), seg.size());  // not one byte cut
  bool warned = false;
  for (const auto& n : (*reopened)->notices()) warned |= n.find("damaged") != std::string::npos;
  EXPECT_TRUE(warned);
  auto next = Put(**reopened, {"after the damage"});
  ASSERT_TRUE(next.has_value());
  auto next_info = (*reopened)->Stat((*next)[0].id);
  ASSERT_TRUE(next_info.has_value());
  EXPECT_NE(next_info->location.segment, info->location.segment);  // sealed: a new segment
}

// A crash while a new segment was being created leaves a file shorter than its header: it is
// removed, and the next write starts a proper segment (never a record at offset 0).
TEST_F(StoreTest, SegmentCutShortAtCreationIsRemoved) {
  auto c = Config({64 << 20});
  auto store = InitAndOpen(c);
  auto first = Put(*store, {"first"});
  ASSERT_TRUE(first.has_value());
  store.reset();
  const std::string stub = c.drives[0].path + "/" + SegmentFileName(2);
  Spit(stub, "DFRPSE");
  auto reopened = Store::Open(c, Store::Mode::kWrite, opt_);
  ASSERT_TRUE(reopened.has_value()) << reopened.error().ToString();
  EXPECT_FALSE(fs::exists(stub));
  auto w = Put(**reopened, {"second"});
  ASSERT_TRUE(w.has_value());
  auto info = (*reopened)->Stat((*w)[0].id);
  ASSERT_TRUE(info.has_value());
  EXPECT_GE(info->location.offset, kSegmentHeaderSize);
  EXPECT_EQ(*Get(**reopened, (*first)[0].id), "first");
}

// A damaged last commit record looks just like an interrupted write. Recovery cannot tell
// them apart, so it never destroys: readers leave the tail alone, and a writer moves it into
// the volume's quarantine folder, byte for byte, before cutting the segment.
TEST_F(StoreTest, UncommittedTailIsMovedAsideNeverDestroyed) {
  auto c = Config({64 << 20});
  auto store = InitAndOpen(c);
  ASSERT_TRUE(Put(*store, {"a", "b"}).has_value());
  auto last = Put(*store, {Pattern(3000)});
  ASSERT_TRUE(last.has_value());
  auto info = store->Stat((*last)[0].id);
  ASSERT_TRUE(info.has_value());
  store.reset();
  std::string seg = Slurp(info->segment_path);
  const std::string tail = seg.substr(info->location.offset);
  seg[seg.size() - 5] ^= 1;  // one bit in the last commit record
  Spit(info->segment_path, seg);
  for (const char* f : {"index.sqlite", "index.sqlite-wal", "index.sqlite-shm"})
    fs::remove(c.state_dir + "/" + f);
  auto reader = Store::Open(c, Store::Mode::kRead, opt_);
  ASSERT_TRUE(reader.has_value()) << reader.error().ToString();
  EXPECT_EQ(fs::file_size(info->segment_path), seg.size());  // a reader never cuts
  reader->reset();
  auto writer = Store::Open(c, Store::Mode::kWrite, opt_);
  ASSERT_TRUE(writer.has_value()) << writer.error().ToString();
  EXPECT_EQ(fs::file_size(info->segment_path), info->location.offset);
  std::vector<std::string> moved;
  for (const auto& e : fs::directory_iterator(c.drives[0].path + "/quarantine"))
    moved.push_back(Slurp(e.path()));
  ASSERT_EQ(moved.size(), 1u);
  std::string expect = tail;
  expect[expect.size() - 5] ^= 1;
  EXPECT_EQ(moved[0], expect);  // every byte kept for the operator
  EXPECT_EQ((*writer)->ListVolumes()[0].shards, 2u);
}

// A power cut at every sync point of a batch that spans two volumes and opens new segments:
// afterwards every shard acknowledged before it reads back intact, the batch is either all
// there (if it was acknowledged) or leaves no shard that does not verify.
TEST_F(StoreTest, PowerCutAtEverySyncPointOfABatch) {
  core::FaultInjectingFileSystem faulty(core::DefaultFileSystem());
  const std::vector<std::string> first = {Pattern(20000), "small"};
  const std::vector<std::string> second = {Pattern(30000, 1), Pattern(5000, 2), Pattern(40000, 3)};
  bool crashed = true;
  int cuts = 0;
  // Seed 0 cuts each file at its last sync; the others also scramble which unsynced blocks
  // reached the disk.
  for (uint64_t tear : {0, 1, 2, 3}) {
    crashed = true;
    for (int n = 1; crashed; ++n, ++cuts) {
      ASSERT_LT(n, 100) << "the batch never stopped syncing";
      core::NodeConfig c;
      for (int i = 0; i < 2; ++i) {
        std::string p = fmt::format("{}/cut{}-{}/d{}", dir_, tear, n, i);
        fs::create_directories(p);
        c.drives.push_back({i, p, 64 << 10});
      }
      c.state_dir = fmt::format("{}/cut{}-{}/state", dir_, tear, n);
      ASSERT_TRUE(Store::Init(c, opt_).has_value());
      StoreOptions faulty_opt = opt_;
      faulty_opt.fs = &faulty;
      auto store = Store::Open(c, Store::Mode::kWrite, faulty_opt);
      ASSERT_TRUE(store.has_value());
      auto acked = Put(**store, first);
      ASSERT_TRUE(acked.has_value());
      faulty.CrashAtSync(n);
      auto batch = Put(**store, second);
      crashed = faulty.crashed();
      EXPECT_EQ(batch.has_value(), !crashed) << "cut at sync " << n;
      store->reset();  // the process is gone
      ASSERT_TRUE(faulty.DropUnsyncedData(tear).ok());
      auto after = Store::Open(c, Store::Mode::kWrite, opt_);
      ASSERT_TRUE(after.has_value()) << "cut at sync " << n << ": " << after.error().ToString();
      for (size_t i = 0; i < first.size(); ++i)
        EXPECT_EQ(*Get(**after, (*acked)[i].id), first[i]) << "cut at sync " << n;
      if (batch.has_value()) {
        for (size_t i = 0; i < second.size(); ++i)
          EXPECT_EQ(*Get(**after, (*batch)[i].id), second[i]) << "cut at sync " << n;
      }
      size_t shards = 0;
      ASSERT_TRUE((*after)
                      ->VerifyAll([&](const VerifyResult& r) {
                        ++shards;
                        EXPECT_TRUE(r.ok) << "cut at sync " << n << ": " << r.status.ToString();
                      })
                      .ok());
      EXPECT_GE(shards, first.size());
      EXPECT_LE(shards, first.size() + second.size());
    }
  }
  // The batch opens a segment on the second volume: its header and folder, the records of
  // both segments and their commit records are each synced.
  EXPECT_GE(cuts, 4 * 5);
}

// A reader never rebuilds or truncates while a writer holds the lock.
TEST_F(StoreTest, ReaderLeavesTheTailToTheActiveWriter) {
  auto c = Config({64 << 20});
  auto writer = InitAndOpen(c);
  ASSERT_TRUE(Put(*writer, {"one"}).has_value());
  const std::string seg = c.drives[0].path + "/" + SegmentFileName(1);
  const uint64_t size = fs::file_size(seg);
  Spit(seg, Slurp(seg) + "half a record from a write in flight");
  auto reader = Store::Open(c, Store::Mode::kRead, opt_);
  ASSERT_TRUE(reader.has_value()) << reader.error().ToString();
  EXPECT_GT(fs::file_size(seg), size);  // untouched: the writer owns its tail
  EXPECT_TRUE((*reader)->notices().empty());
}

}  // namespace
}  // namespace dfrp::storage
