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

#include "dfrp/storage/format.h"
#include "dfrp/storage/store.h"
#include "dfrp/storage/store_test_util.h"

namespace dfrp::storage {
namespace {

namespace fs = std::filesystem;
using testing::Pattern;
using testing::Slurp;
using testing::Spit;

struct CutState {
  int countdown = 0;  // 0: no cut planned
  int syncs = 0;
  bool down = false;
  std::map<std::string, std::optional<std::string>> durable;  // path -> content at last sync
};
CutState g_cut;
sqlite3_vfs* g_real = nullptr;

struct ShimFile {
  sqlite3_file base;
  sqlite3_file* real;
  std::string* path;  // null for files SQLite opens without a name
};

sqlite3_file* Real(sqlite3_file* f) { return reinterpret_cast<ShimFile*>(f)->real; }

std::string ReadAll(sqlite3_file* real) {
  sqlite3_int64 size = 0;
  real->pMethods->xFileSize(real, &size);
  std::string data(static_cast<size_t>(size), '\0');
  if (size > 0) real->pMethods->xRead(real, data.data(), static_cast<int>(size), 0);
  return data;
}

int ShimClose(sqlite3_file* f) {
  auto* s = reinterpret_cast<ShimFile*>(f);
  int rc = s->real->pMethods->xClose(s->real);
  delete s->path;
  return rc;
}
int ShimRead(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
  return Real(f)->pMethods->xRead(Real(f), buf, n, off);
}
int ShimWrite(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
  if (g_cut.down) return SQLITE_IOERR_WRITE;
  return Real(f)->pMethods->xWrite(Real(f), buf, n, off);
}
int ShimTruncate(sqlite3_file* f, sqlite3_int64 size) {
  if (g_cut.down) return SQLITE_IOERR_TRUNCATE;
  return Real(f)->pMethods->xTruncate(Real(f), size);
}
int ShimSync(sqlite3_file* f, int flags) {
  if (g_cut.down) return SQLITE_IOERR_FSYNC;
  ++g_cut.syncs;
  if (g_cut.countdown > 0 && --g_cut.countdown == 0) {
    g_cut.down = true;
    return SQLITE_IOERR_FSYNC;
  }
  int rc = Real(f)->pMethods->xSync(Real(f), flags);
  auto* s = reinterpret_cast<ShimFile*>(f);
  if (rc == SQLITE_OK && s->path) g_cut.durable[*s->path] = ReadAll(s->real);
  return rc;
}
int ShimFileSize(sqlite3_file* f, sqlite3_int64* size) {
  return Real(f)->pMethods->xFileSize(Real(f), size);
}
int ShimLock(sqlite3_file* f, int l) { return Real(f)->pMethods->xLock(Real(f), l); }
int ShimUnlock(sqlite3_file* f, int l) { return Real(f)->pMethods->xUnlock(Real(f), l); }
int ShimCheckReserved(sqlite3_file* f, int* out) {
  return Real(f)->pMethods->xCheckReservedLock(Real(f), out);
}
int ShimFileControl(sqlite3_file* f, int op, void* arg) {
  return Real(f)->pMethods->xFileControl(Real(f), op, arg);
}
int ShimSectorSize(sqlite3_file* f) { return Real(f)->pMethods->xSectorSize(Real(f)); }
int ShimDeviceCharacteristics(sqlite3_file* f) {
  return Real(f)->pMethods->xDeviceCharacteristics(Real(f));
}
int ShimShmMap(sqlite3_file* f, int region, int size, int extend, void volatile** p) {
  return Real(f)->pMethods->xShmMap(Real(f), region, size, extend, p);
}
int ShimShmLock(sqlite3_file* f, int offset, int n, int flags) {
  return Real(f)->pMethods->xShmLock(Real(f), offset, n, flags);
}
void ShimShmBarrier(sqlite3_file* f) { Real(f)->pMethods->xShmBarrier(Real(f)); }
int ShimShmUnmap(sqlite3_file* f, int del) { return Real(f)->pMethods->xShmUnmap(Real(f), del); }

const sqlite3_io_methods kShimMethods = {2,
                                         ShimClose,
                                         ShimRead,
                                         ShimWrite,
                                         ShimTruncate,
                                         ShimSync,
                                         ShimFileSize,
                                         ShimLock,
                                         ShimUnlock,
                                         ShimCheckReserved,
                                         ShimFileControl,
                                         ShimSectorSize,
                                         ShimDeviceCharacteristics,
                                         ShimShmMap,
                                         ShimShmLock,
                                         ShimShmBarrier,
                                         ShimShmUnmap,
                                         nullptr,
                                         nullptr};

int ShimOpen(sqlite3_vfs* vfs, const char* name, sqlite3_file* f, int flags, int* out_flags) {
  auto* s = reinterpret_cast<ShimFile*>(f);
  s->real = reinterpret_cast<sqlite3_file*>(s + 1);
  s->path = nullptr;
  s->base.pMethods = nullptr;
  if (g_cut.down) return SQLITE_CANTOPEN;
  std::optional<std::string> before;
  if (name != nullptr && ::access(name, F_OK) == 0) before = Slurp(name);
  int rc = g_real->xOpen(g_real, name, s->real, flags, out_flags);
  if (rc != SQLITE_OK) return rc;
  if (name != nullptr) {
    s->path = new std::string(name);
    // A file that existed keeps its content on a cut; a new one is gone until synced.
    if (!g_cut.durable.count(*s->path)) g_cut.durable[*s->path] = before;
  }
  s->base.pMethods = &kShimMethods;
  return SQLITE_OK;
}

sqlite3_vfs g_shim;

void InstallShim() {
  g_real = sqlite3_vfs_find(nullptr);
  g_shim = *g_real;
  g_shim.zName = "dfrp-power-cut";
  g_shim.szOsFile = static_cast<int>(sizeof(ShimFile)) + g_real->szOsFile;
  g_shim.xOpen = ShimOpen;
  g_shim.pNext = nullptr;
  ASSERT_EQ(sqlite3_vfs_register(&g_shim, /*makeDflt=*/1), SQLITE_OK);
}

void RemoveShim() {
  sqlite3_vfs_unregister(&g_shim);
  sqlite3_vfs_register(g_real, 1);
}

// The files as a power cut leaves them.
void ApplyCut() {
  for (const auto& [path, content] : g_cut.durable) {
    if (content)
      Spit(path, *content);
    else
      fs::remove(path);
    if (path.ends_with(".sqlite")) fs::remove(path + "-shm");
  }
}

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
    InstallShim();
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
    InstallShim();
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
