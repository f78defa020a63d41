#include "dfrp/storage/index.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <cstring>

namespace dfrp::storage {

using core::Err;
using core::Result;
using core::Status;

namespace {

constexpr int kSchemaVersion = 1;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS shards(
  id BLOB PRIMARY KEY, volume INTEGER NOT NULL, segment INTEGER NOT NULL,
  offset INTEGER NOT NULL, record_len INTEGER NOT NULL, payload_len INTEGER NOT NULL,
  leaf_size INTEGER NOT NULL, root BLOB NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS shards_by_place ON shards(volume, segment, offset);
CREATE TABLE IF NOT EXISTS segments(
  volume INTEGER NOT NULL, segment INTEGER NOT NULL, indexed_end INTEGER NOT NULL,
  PRIMARY KEY(volume, segment)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS volumes(
  volume INTEGER PRIMARY KEY, shards INTEGER NOT NULL, payload_bytes INTEGER NOT NULL);
)sql";

ShardLocation RowToLocation(sqlite3_stmt* st, int first_col) {
  ShardLocation loc;
  int c = first_col;
  if (sqlite3_column_bytes(st, c) == 16)
    std::memcpy(loc.id.bytes.data(), sqlite3_column_blob(st, c), 16);
  loc.volume = static_cast<uint32_t>(sqlite3_column_int64(st, c + 1));
  loc.segment = static_cast<uint64_t>(sqlite3_column_int64(st, c + 2));
  loc.offset = static_cast<uint64_t>(sqlite3_column_int64(st, c + 3));
  loc.record_len = static_cast<uint64_t>(sqlite3_column_int64(st, c + 4));
  loc.payload_len = static_cast<uint64_t>(sqlite3_column_int64(st, c + 5));
  loc.leaf_size = static_cast<uint32_t>(sqlite3_column_int64(st, c + 6));
  if (sqlite3_column_bytes(st, c + 7) == 32)
    std::memcpy(loc.root.data(), sqlite3_column_blob(st, c + 7), 32);
  return loc;
}

}  // namespace

Index::~Index() {
  for (sqlite3_stmt* st : {find_, insert_, mark_, count_}) sqlite3_finalize(st);
  sqlite3_close(db_);
}

Status Index::Error(std::string_view what) const {
  int code = sqlite3_errcode(db_);
  std::string msg = fmt::format("index {}: {}", what, sqlite3_errmsg(db_));
  if (code == SQLITE_BUSY || code == SQLITE_LOCKED) return Status::Busy(std::move(msg));
  if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB)
    return Status::Corruption(msg +
                              ": the index file is damaged; run `dfrp-storage rebuild-index` (it "
                              "is rebuilt from the drives, nothing is lost)");
  if (code == SQLITE_FULL) return Status::NoSpace(std::move(msg));
  return Status::IOError(std::move(msg));
}

Status Index::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    Status s = Error(fmt::format("statement failed ({})", err ? err : "?"));
    sqlite3_free(err);
    return s;
  }
  return Status::OK();
}

Status Index::Prepare() {
  struct {
    sqlite3_stmt** st;
    const char* sql;
  } stmts[] = {
      {&find_,
       "SELECT id, volume, segment, offset, record_len, payload_len, leaf_size, root "
       "FROM shards WHERE id = ?"},
      {&insert_,
       "INSERT OR IGNORE INTO shards(id, volume, segment, offset, record_len, payload_len, "
       "leaf_size, root) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"},
      {&mark_, "INSERT OR REPLACE INTO segments(volume, segment, indexed_end) VALUES (?, ?, ?)"},
      {&count_,
       "INSERT INTO volumes(volume, shards, payload_bytes) VALUES (?, ?, ?) "
       "ON CONFLICT(volume) DO UPDATE SET shards = shards + excluded.shards, "
       "payload_bytes = payload_bytes + excluded.payload_bytes"},
  };
  for (auto& s : stmts)
    if (sqlite3_prepare_v3(db_, s.sql, -1, SQLITE_PREPARE_PERSISTENT, s.st, nullptr) != SQLITE_OK)
      return Error("cannot prepare a statement");
  return Status::OK();
}

Result<std::unique_ptr<Index>> Index::Open(const std::string& path, const core::Uuid& store_id,
                                           bool may_reset, bool* was_reset, bool sync) {
  const Status needs_lock = Status::Busy(fmt::format(
      "the index {} must be rebuilt, which needs the writer lock: wait for the writer to finish",
      path));
  *was_reset = false;
  for (int attempt = 0; attempt < 2; ++attempt) {
    sqlite3* db = nullptr;
    int rc =
        sqlite3_open_v2(path.c_str(), &db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
      std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
      sqlite3_close(db);
      return Err(Status::IOError(fmt::format("cannot open index {}: {}", path, msg)));
    }
    std::unique_ptr<Index> idx(new Index(db));
    sqlite3_busy_timeout(db, 10000);
    // The index is a cache: a commit lost to a power cut is found again by the tail scan, so
    // NORMAL (no sync per commit in WAL mode) is enough; WAL keeps it consistent.
    idx->sync_ = sync;
    Status s = idx->Exec(sync ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                              : "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;");
    if (s.ok()) s = idx->Exec(kSchema);
    bool reset = false;
    if (s.ok()) {
      sqlite3_stmt* st = nullptr;
      sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'store_id'", -1, &st, nullptr);
      int step = st ? sqlite3_step(st) : SQLITE_ERROR;
      if (step == SQLITE_ROW) {
        std::string_view have(static_cast<const char*>(sqlite3_column_blob(st, 0)),
                              static_cast<size_t>(sqlite3_column_bytes(st, 0)));
        if (have != store_id.AsBytes()) reset = true;
      } else if (step != SQLITE_DONE) {
        s = idx->Error("cannot read");
      }
      sqlite3_finalize(st);
      if (s.ok() && (step == SQLITE_DONE || reset) && !may_reset) return Err(needs_lock);
      if (s.ok() && (step == SQLITE_DONE || reset)) {
        s = idx->Exec(
            "BEGIN; DELETE FROM shards; DELETE FROM segments; DELETE FROM volumes; "
            "DELETE FROM meta; COMMIT;");
        if (s.ok()) {
          sqlite3_stmt* ins = nullptr;
          sqlite3_prepare_v2(db,
                             "INSERT INTO meta(key, value) VALUES ('store_id', ?), "
                             "('schema', ?)",
                             -1, &ins, nullptr);
          sqlite3_bind_blob(ins, 1, store_id.bytes.data(), 16, SQLITE_TRANSIENT);
          sqlite3_bind_int(ins, 2, kSchemaVersion);
          if (sqlite3_step(ins) != SQLITE_DONE) s = idx->Error("cannot write");
          sqlite3_finalize(ins);
        }
      }
    }
    if (s.ok()) s = idx->Prepare();
    if (s.ok()) {
      *was_reset = *was_reset || reset;
      return idx;
    }
    if (!s.IsCorruption() || attempt == 1) return Err(s);
    if (!may_reset) return Err(needs_lock);
    // A damaged index file: it is only a cache, so start it afresh.
    idx.reset();
    for (const char* suffix : {"", "-wal", "-shm"}) ::remove((path + suffix).c_str());
    *was_reset = true;
  }
  return Err(Status::Internal("unreachable"));
}

Result<std::optional<ShardLocation>> Index::Find(const core::Uuid& id) {
  sqlite3_reset(find_);
  sqlite3_bind_blob(find_, 1, id.bytes.data(), 16, SQLITE_STATIC);
  int rc = sqlite3_step(find_);
  if (rc == SQLITE_DONE) return std::optional<ShardLocation>();
  if (rc != SQLITE_ROW) return Err(Error("lookup failed"));
  ShardLocation loc = RowToLocation(find_, 0);
  sqlite3_reset(find_);
  return std::optional<ShardLocation>(loc);
}

Status Index::Commit(std::span<const ShardLocation> added,
                     const std::map<SegmentKey, uint64_t>& marks, bool durable) {
  durable = durable && sync_;
  if (durable) DFRP_RETURN_IF_ERROR(Exec("PRAGMA synchronous=FULL"));
  Status result = Stage(added, marks);
  if (result.ok()) result = FinishStaged(true);
  if (durable) {
    Status back = Exec("PRAGMA synchronous=NORMAL");
    if (result.ok()) result = back;
  }
  return result;
}

Status Index::Stage(std::span<const ShardLocation> added,
                    const std::map<SegmentKey, uint64_t>& marks) {
  DFRP_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  Status s = Apply(added, marks);
  if (!s.ok()) (void)Exec("ROLLBACK");
  return s;
}

Status Index::Replace(std::span<const ShardLocation> all,
                      const std::map<SegmentKey, uint64_t>& marks,
                      const std::set<uint32_t>& volumes) {
  if (sync_) DFRP_RETURN_IF_ERROR(Exec("PRAGMA synchronous=FULL"));
  Status s = Exec("BEGIN IMMEDIATE");
  if (s.ok()) {
    for (auto it = volumes.begin(); s.ok() && it != volumes.end(); ++it) {
      const std::string sql = fmt::format(
          "DELETE FROM shards WHERE volume = {0}; DELETE FROM segments WHERE volume = {0}; "
          "DELETE FROM volumes WHERE volume = {0};",
          *it);
      s = Exec(sql.c_str());
    }
    if (s.ok()) s = Apply(all, marks);
    if (s.ok())
      s = Exec("COMMIT");
    else
      (void)Exec("ROLLBACK");
  }
  if (sync_) {
    Status back = Exec("PRAGMA synchronous=NORMAL");
    if (s.ok()) s = back;
  }
  return s;
}

Status Index::Apply(std::span<const ShardLocation> added,
                    const std::map<SegmentKey, uint64_t>& marks) {
  std::map<uint32_t, VolumeCounts> delta;
  Status s;
  for (const ShardLocation& l : added) {
    sqlite3_reset(insert_);
    sqlite3_bind_blob(insert_, 1, l.id.bytes.data(), 16, SQLITE_STATIC);
    sqlite3_bind_int64(insert_, 2, l.volume);
    sqlite3_bind_int64(insert_, 3, static_cast<int64_t>(l.segment));
    sqlite3_bind_int64(insert_, 4, static_cast<int64_t>(l.offset));
    sqlite3_bind_int64(insert_, 5, static_cast<int64_t>(l.record_len));
    sqlite3_bind_int64(insert_, 6, static_cast<int64_t>(l.payload_len));
    sqlite3_bind_int64(insert_, 7, l.leaf_size);
    sqlite3_bind_blob(insert_, 8, l.root.data(), 32, SQLITE_STATIC);
    if (sqlite3_step(insert_) != SQLITE_DONE) {
      s = Error("cannot add a shard");
      break;
    }
    if (sqlite3_changes(db_) > 0) {
      delta[l.volume].shards += 1;
      delta[l.volume].payload_bytes += l.payload_len;
    }
  }
  for (auto it = marks.begin(); s.ok() && it != marks.end(); ++it) {
    sqlite3_reset(mark_);
    sqlite3_bind_int64(mark_, 1, it->first.first);
    sqlite3_bind_int64(mark_, 2, static_cast<int64_t>(it->first.second));
    sqlite3_bind_int64(mark_, 3, static_cast<int64_t>(it->second));
    if (sqlite3_step(mark_) != SQLITE_DONE) s = Error("cannot record a segment mark");
  }
  for (auto it = delta.begin(); s.ok() && it != delta.end(); ++it) {
    sqlite3_reset(count_);
    sqlite3_bind_int64(count_, 1, it->first);
    sqlite3_bind_int64(count_, 2, static_cast<int64_t>(it->second.shards));
    sqlite3_bind_int64(count_, 3, static_cast<int64_t>(it->second.payload_bytes));
    if (sqlite3_step(count_) != SQLITE_DONE) s = Error("cannot update volume counts");
  }
  return s;
}

Status Index::FinishStaged(bool commit) {
  if (commit) return Exec("COMMIT");
  return Exec("ROLLBACK");
}

Result<std::map<SegmentKey, uint64_t>> Index::SegmentMarks() {
  std::map<SegmentKey, uint64_t> out;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, "SELECT volume, segment, indexed_end FROM segments", -1, &st,
                         nullptr) != SQLITE_OK)
    return Err(Error("cannot read segment marks"));
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW)
    out[{static_cast<uint32_t>(sqlite3_column_int64(st, 0)),
         static_cast<uint64_t>(sqlite3_column_int64(st, 1))}] =
        static_cast<uint64_t>(sqlite3_column_int64(st, 2));
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return Err(Error("cannot read segment marks"));
  return out;
}

Result<std::map<uint32_t, VolumeCounts>> Index::Counts() {
  std::map<uint32_t, VolumeCounts> out;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, "SELECT volume, shards, payload_bytes FROM volumes", -1, &st,
                         nullptr) != SQLITE_OK)
    return Err(Error("cannot read volume counts"));
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW)
    out[static_cast<uint32_t>(sqlite3_column_int64(st, 0))] = {
        static_cast<uint64_t>(sqlite3_column_int64(st, 1)),
        static_cast<uint64_t>(sqlite3_column_int64(st, 2))};
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return Err(Error("cannot read volume counts"));
  return out;
}

Status Index::ForEach(std::optional<uint32_t> volume,
                      const std::function<bool(const ShardLocation&)>& fn) {
  const char* sql =
      volume ? "SELECT id, volume, segment, offset, record_len, payload_len, leaf_size, root "
               "FROM shards WHERE volume = ? ORDER BY volume, segment, offset"
             : "SELECT id, volume, segment, offset, record_len, payload_len, leaf_size, root "
               "FROM shards ORDER BY volume, segment, offset";
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, sql, -1, &st, nullptr) != SQLITE_OK)
    return Error("cannot list shards");
  if (volume) sqlite3_bind_int64(st, 1, *volume);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW)
    if (!fn(RowToLocation(st, 0))) {
      rc = SQLITE_DONE;
      break;
    }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return Error("cannot list shards");
  return Status::OK();
}

namespace {
constexpr const char* kColumns =
    "SELECT id, volume, segment, offset, record_len, payload_len, leaf_size, root FROM shards ";
// Row values let SQLite seek the (volume, segment, offset) index to the page's first row.
constexpr const char* kAfter = "volume = ?1 AND (segment, offset) > (?2, ?3) ";
}  // namespace

Result<std::vector<ShardLocation>> Index::Page(uint32_t volume, DiskPlace after, DiskPlace last,
                                               size_t limit) {
  const std::string sql = fmt::format(
      "{}WHERE {}AND (segment, offset) <= (?4, ?5) ORDER BY volume, segment, offset LIMIT ?6",
      kColumns, kAfter);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
    return Err(Error("cannot list shards"));
  for (const auto& [i, v] : {std::pair{1, uint64_t{volume}},
                             {2, after.segment},
                             {3, after.offset},
                             {4, last.segment},
                             {5, last.offset},
                             {6, uint64_t{limit}}})
    sqlite3_bind_int64(st, i, static_cast<int64_t>(v));
  std::vector<ShardLocation> out;
  out.reserve(limit);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) out.push_back(RowToLocation(st, 0));
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return Err(Error("cannot list shards"));
  return out;
}

Result<ShardSpan> Index::SpanAfter(uint32_t volume, DiskPlace after) {
  // Runs `sql` bound to (volume, after[, last]) and hands its one row (if any) to `row`.
  auto query = [&](const std::string& sql, std::optional<DiskPlace> last, auto row) -> Status {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
      return Error("cannot count shards");
    sqlite3_bind_int64(st, 1, volume);
    sqlite3_bind_int64(st, 2, static_cast<int64_t>(after.segment));
    sqlite3_bind_int64(st, 3, static_cast<int64_t>(after.offset));
    if (last) {
      sqlite3_bind_int64(st, 4, static_cast<int64_t>(last->segment));
      sqlite3_bind_int64(st, 5, static_cast<int64_t>(last->offset));
    }
    const int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) row(st);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? Status::OK() : Error("cannot count shards");
  };
  ShardSpan span;
  DFRP_RETURN_IF_ERROR(
      query(fmt::format("SELECT segment, offset FROM shards WHERE {}ORDER BY volume DESC, "
                        "segment DESC, offset DESC LIMIT 1",
                        kAfter),
            std::nullopt, [&](sqlite3_stmt* st) {
              span.last = DiskPlace{static_cast<uint64_t>(sqlite3_column_int64(st, 0)),
                                    static_cast<uint64_t>(sqlite3_column_int64(st, 1))};
            }));
  if (!span.last) return span;
  DFRP_RETURN_IF_ERROR(
      query(fmt::format("SELECT count(*), coalesce(sum(payload_len), 0) FROM shards WHERE {}AND "
                        "(segment, offset) <= (?4, ?5)",
                        kAfter),
            span.last, [&](sqlite3_stmt* st) {
              span.shards = static_cast<uint64_t>(sqlite3_column_int64(st, 0));
              span.payload_bytes = static_cast<uint64_t>(sqlite3_column_int64(st, 1));
            }));
  return span;
}

Status Index::Clear(std::optional<uint32_t> volume) {
  if (!volume)
    return Exec("BEGIN; DELETE FROM shards; DELETE FROM segments; DELETE FROM volumes; COMMIT;");
  std::string sql = fmt::format(
      "BEGIN; DELETE FROM shards WHERE volume = {0}; DELETE FROM segments WHERE volume = {0}; "
      "DELETE FROM volumes WHERE volume = {0}; COMMIT;",
      *volume);
  return Exec(sql.c_str());
}

}  // namespace dfrp::storage
