// A power cut at every sync point of rebuild-index. rebuild-index writes only the index,
// through SQLite, so the cut is injected under SQLite: a shim VFS that forwards to the
// default one, remembers each file's content at its last xSync, fails the n-th xSync (and
// everything after it), and afterwards puts every file back as a power cut would leave it
// (its content at the last sync; a file never synced is gone, and so is the shared-memory
// index). The index is a cache: whatever state the cut leaves, the next open must find every
// shard.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "dfrp/core/sqlite_power_cut_test_util.h"
#include "dfrp/storage/format.h"
#include "dfrp/storage/store.h"
#include "dfrp/storage/store_test_util.h"

namespace dfrp::storage {
namespace {

namespace fs = std::filesystem;
using testing::Pattern;
using testing::Slurp;
using testing::Spit;

using core::testing::ApplyCut;
using core::testing::CutState;
using core::testing::g_cut;
using core::testing::InstallShim;
using core::testing::RemoveShim;

class IndexPowerCutTest : public testing::StoreFixture {};

TEST_F(IndexPowerCutTest, PowerCutAtEverySyncPointOfRebuildIndex) {
  auto c = Config({64 << 20, 64 << 20});
  std::vector<std::string> contents;
  for (int i = 0; i < 30; ++i) contents.push_back(Pattern(100 + i * 1500, i));
  std::vector<WrittenShard> shards;
  {
    auto store = InitAndOpen(c);
    for (int b = 0; b < 3; ++b) {
      std::vector<std::string> part(contents.begin() + b * 10, contents.begin() + b * 10 + 10);
      auto w = Put(*store, part);
      ASSERT_TRUE(w.has_value());
      shards.insert(shards.end(), w->begin(), w->end());
    }
  }
  const std::string saved = dir_ + "/state-saved";
  testing::CopyDir(c.state_dir, saved);
  int n = 1;
  for (bool cut = true; cut; ++n) {
    ASSERT_LT(n, 100) << "rebuild-index never stopped syncing";
    testing::CopyDir(saved, c.state_dir);
    g_cut = CutState();
    ASSERT_TRUE(InstallShim());
    {
      auto store = Store::Open(c, Store::Mode::kWrite, opt_);
      ASSERT_TRUE(store.has_value()) << store.error().ToString();
      g_cut.countdown = n;  // counting from the rebuild on
      auto r = (*store)->RebuildIndex();
      cut = g_cut.down;
      if (!cut) {
        ASSERT_TRUE(r.has_value()) << r.error().ToString();
      }
    }
    RemoveShim();
    if (cut) ApplyCut();
    auto after = Store::Open(c, Store::Mode::kWrite, opt_);
    ASSERT_TRUE(after.has_value()) << "cut at sync " << n << ": " << after.error().ToString();
    for (size_t i = 0; i < shards.size(); ++i) {
      auto got = Get(**after, shards[i].id);
      ASSERT_TRUE(got.has_value()) << "cut at sync " << n << ": " << got.error().ToString();
      EXPECT_EQ(*got, contents[i]) << "cut at sync " << n;
    }
    size_t listed = 0;
    for (const auto& v : (*after)->ListVolumes()) listed += v.shards;
    EXPECT_EQ(listed, shards.size()) << "cut at sync " << n;
  }
  EXPECT_GE(n, 3) << "the rebuild must have synced at least once";
  std::printf("cut points: %d\n", n - 2);
}

// The case rebuild-index exists for: a broken record chain hides the shards after it from
// the open-time scan, and only the rebuild finds them. After a cut at each of its syncs, the
// shards of the batches before the damaged one are always there, any other shard is there
// only as itself, and once a rebuild completes, all but the damaged one are.
TEST_F(IndexPowerCutTest, PowerCutDuringARebuildThatFindsShardsPastDamage) {
  auto c = Config({64 << 20});
  std::vector<std::string> contents;
  for (int i = 0; i < 30; ++i) contents.push_back(Pattern(100 + i * 1500, i + 50));
  std::vector<WrittenShard> shards;
  std::string seg;
  uint64_t damaged_at = 0;
  {
    auto store = InitAndOpen(c);
    for (int b = 0; b < 3; ++b) {
      std::vector<std::string> part(contents.begin() + b * 10, contents.begin() + b * 10 + 10);
      auto w = Put(*store, part);
      ASSERT_TRUE(w.has_value());
      shards.insert(shards.end(), w->begin(), w->end());
    }
    auto victim = store->Stat(shards[12].id);
    ASSERT_TRUE(victim.has_value());
    seg = victim->segment_path;
    damaged_at = victim->location.offset;
  }
  std::string bytes = Slurp(seg);
  bytes[damaged_at + 20] ^= 0x04;  // shard 12's header: the chain breaks there
  Spit(seg, bytes);
  for (const char* suffix : {"", "-wal", "-shm"})
    fs::remove(c.state_dir + "/" + std::string(kIndexFileName) + suffix);
  {
    auto partial = Store::Open(c, Store::Mode::kWrite, opt_);  // indexes up to the damage
    ASSERT_TRUE(partial.has_value());
    ASSERT_FALSE(Get(**partial, shards[20].id).has_value());
  }
  const std::string saved = dir_ + "/state-saved";
  testing::CopyDir(c.state_dir, saved);
  int n = 1;
  for (bool cut = true; cut; ++n) {
    ASSERT_LT(n, 100) << "rebuild-index never stopped syncing";
    testing::CopyDir(saved, c.state_dir);
    g_cut = CutState();
    ASSERT_TRUE(InstallShim());
    {
      auto store = Store::Open(c, Store::Mode::kWrite, opt_);
      ASSERT_TRUE(store.has_value()) << store.error().ToString();
      g_cut.countdown = n;
      auto r = (*store)->RebuildIndex();
      cut = g_cut.down;
      if (!cut) {
        ASSERT_TRUE(r.has_value()) << r.error().ToString();
        EXPECT_EQ(r->shards, shards.size() - 1);
      }
    }
    RemoveShim();
    if (cut) ApplyCut();
    auto after = Store::Open(c, Store::Mode::kWrite, opt_);
    ASSERT_TRUE(after.has_value()) << "cut at sync " << n << ": " << after.error().ToString();
    size_t found = 0;
    for (size_t i = 0; i < shards.size(); ++i) {
      auto got = Get(**after, shards[i].id);
      if (got) {
        EXPECT_EQ(*got, contents[i]) << "cut at sync " << n << ", shard " << i;
        ++found;
      } else {
        // The open-time scan indexes what a commit closes; the damaged batch's commit lies
        // past the break, so its shards (10..19) and later wait for the rebuild.
        EXPECT_GE(i, 10u) << "cut at sync " << n << ": a shard before the damaged batch is lost";
      }
    }
    if (!cut) {
      EXPECT_EQ(found, shards.size() - 1) << "the completed rebuild finds all but one";
    }
  }
  EXPECT_GE(n, 3);
}

}  // namespace
}  // namespace dfrp::storage
