// A power cut under SQLite, for tests: a shim VFS that forwards to the default one, remembers
// each file's content at its last xSync, fails the n-th xSync (and every write, sync and open
// after it), and ApplyCut() then puts every file back as a power cut would leave it: its
// content at its last sync; a file never synced is gone, and so is the shared-memory WAL index;
// a file deleted without a sync of its folder is back (a rollback journal: hot again).
//
// Use: g_cut = CutState{.countdown = n}; InstallShim(); ...run...; RemoveShim(); if
// (g_cut.down) ApplyCut(); then reopen and check. One test at a time (process-wide state).
#pragma once

#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <string>

namespace dfrp::core::testing {

inline std::string SlurpFile(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

struct CutState {
  int countdown = 0;  // 0: no cut planned
  int syncs = 0;
  bool down = false;
  std::map<std::string, std::optional<std::string>> durable;  // path -> content at last sync
};
inline CutState g_cut;
inline sqlite3_vfs* g_real = nullptr;

struct ShimFile {
  sqlite3_file base;
  sqlite3_file* real;
  std::string* path;  // null for files SQLite opens without a name
};

inline sqlite3_file* Real(sqlite3_file* f) { return reinterpret_cast<ShimFile*>(f)->real; }

inline std::string ReadAll(sqlite3_file* real) {
  sqlite3_int64 size = 0;
  real->pMethods->xFileSize(real, &size);
  std::string data(static_cast<size_t>(size), '\0');
  if (size > 0) real->pMethods->xRead(real, data.data(), static_cast<int>(size), 0);
  return data;
}

inline int ShimClose(sqlite3_file* f) {
  auto* s = reinterpret_cast<ShimFile*>(f);
  int rc = s->real->pMethods->xClose(s->real);
  delete s->path;
  return rc;
}
inline int ShimRead(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
  return Real(f)->pMethods->xRead(Real(f), buf, n, off);
}
inline int ShimWrite(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
  if (g_cut.down) return SQLITE_IOERR_WRITE;
  return Real(f)->pMethods->xWrite(Real(f), buf, n, off);
}
inline int ShimTruncate(sqlite3_file* f, sqlite3_int64 size) {
  if (g_cut.down) return SQLITE_IOERR_TRUNCATE;
  return Real(f)->pMethods->xTruncate(Real(f), size);
}
inline int ShimSync(sqlite3_file* f, int flags) {
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
inline int ShimFileSize(sqlite3_file* f, sqlite3_int64* size) {
  return Real(f)->pMethods->xFileSize(Real(f), size);
}
inline int ShimLock(sqlite3_file* f, int l) { return Real(f)->pMethods->xLock(Real(f), l); }
inline int ShimUnlock(sqlite3_file* f, int l) { return Real(f)->pMethods->xUnlock(Real(f), l); }
inline int ShimCheckReserved(sqlite3_file* f, int* out) {
  return Real(f)->pMethods->xCheckReservedLock(Real(f), out);
}
inline int ShimFileControl(sqlite3_file* f, int op, void* arg) {
  return Real(f)->pMethods->xFileControl(Real(f), op, arg);
}
inline int ShimSectorSize(sqlite3_file* f) { return Real(f)->pMethods->xSectorSize(Real(f)); }
inline int ShimDeviceCharacteristics(sqlite3_file* f) {
  return Real(f)->pMethods->xDeviceCharacteristics(Real(f));
}
inline int ShimShmMap(sqlite3_file* f, int region, int size, int extend, void volatile** p) {
  return Real(f)->pMethods->xShmMap(Real(f), region, size, extend, p);
}
inline int ShimShmLock(sqlite3_file* f, int offset, int n, int flags) {
  return Real(f)->pMethods->xShmLock(Real(f), offset, n, flags);
}
inline void ShimShmBarrier(sqlite3_file* f) { Real(f)->pMethods->xShmBarrier(Real(f)); }
inline int ShimShmUnmap(sqlite3_file* f, int del) {
  return Real(f)->pMethods->xShmUnmap(Real(f), del);
}

inline const sqlite3_io_methods kShimMethods = {2,
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

inline int ShimOpen(sqlite3_vfs* vfs, const char* name, sqlite3_file* f, int flags,
                    int* out_flags) {
  auto* s = reinterpret_cast<ShimFile*>(f);
  s->real = reinterpret_cast<sqlite3_file*>(s + 1);
  s->path = nullptr;
  s->base.pMethods = nullptr;
  if (g_cut.down) return SQLITE_CANTOPEN;
  std::optional<std::string> before;
  if (name != nullptr && ::access(name, F_OK) == 0) before = SlurpFile(name);
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

// A file deleted with dirSync is durably gone; one deleted without it may come back after a
// power cut (its directory entry was never synced), and the shim assumes the worst: it does.
inline int ShimDelete(sqlite3_vfs*, const char* name, int dir_sync) {
  if (g_cut.down) return SQLITE_IOERR_DELETE;
  const int rc = g_real->xDelete(g_real, name, dir_sync);
  if (rc == SQLITE_OK && dir_sync) g_cut.durable[name] = std::nullopt;
  return rc;
}

inline sqlite3_vfs g_shim;

inline bool InstallShim() {
  g_real = sqlite3_vfs_find(nullptr);
  g_shim = *g_real;
  g_shim.zName = "dfrp-power-cut";
  g_shim.szOsFile = static_cast<int>(sizeof(ShimFile)) + g_real->szOsFile;
  g_shim.xOpen = ShimOpen;
  g_shim.xDelete = ShimDelete;
  g_shim.pNext = nullptr;
  return sqlite3_vfs_register(&g_shim, /*makeDflt=*/1) == SQLITE_OK;
}

inline void RemoveShim() {
  sqlite3_vfs_unregister(&g_shim);
  sqlite3_vfs_register(g_real, 1);
}

// The files as a power cut leaves them.
inline void ApplyCut() {
  for (const auto& [path, content] : g_cut.durable) {
    if (content) {
      std::ofstream(path, std::ios::binary | std::ios::trunc) << *content;
    } else {
      std::filesystem::remove(path);
    }
    // The WAL index is shared memory: a power cut loses it.
    std::filesystem::remove(path + "-shm");
  }
}

}  // namespace dfrp::core::testing
