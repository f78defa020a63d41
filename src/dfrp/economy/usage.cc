#include "dfrp/economy/usage.h"

#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/resource.h>

#include <charconv>

#include "dfrp/core/bytes.h"
#include "dfrp/core/sqlite_stmt.h"

namespace dfrp::economy {

using core::Err;
using core::Result;
using core::Status;
using nlohmann::json;

namespace {

constexpr char kSchema[] = R"(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS writes (
  shard BLOB PRIMARY KEY, who TEXT NOT NULL, epoch_ms INTEGER NOT NULL, bytes INTEGER NOT NULL,
  at_ms INTEGER NOT NULL, reconciled INTEGER NOT NULL, request_id TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS write_batches (
  id INTEGER PRIMARY KEY, who TEXT NOT NULL, epoch_ms INTEGER NOT NULL, at_ms INTEGER NOT NULL,
  request_id TEXT NOT NULL, shards BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS io (
  who TEXT NOT NULL, shard BLOB NOT NULL, epoch_ms INTEGER NOT NULL, reads INTEGER NOT NULL,
  bytes_read INTEGER NOT NULL, proofs INTEGER NOT NULL, leaves INTEGER NOT NULL,
  PRIMARY KEY (who, shard, epoch_ms)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS jobs (
  job_id TEXT NOT NULL, who TEXT NOT NULL, epoch_ms INTEGER NOT NULL, cpu_usec INTEGER NOT NULL,
  cycles INTEGER NOT NULL, PRIMARY KEY (job_id, who, epoch_ms)) WITHOUT ROWID;
)";

// Every counter as one row per event kind, so one GROUP BY sums any view.
constexpr char kAllRows[] = R"(
  SELECT who, epoch_ms, shard, 1 AS sw, bytes AS bw, 0 AS rd, 0 AS br, 0 AS pf, 0 AS lv,
         0 AS jb, 0 AS cpu, 0 AS cy FROM writes
  UNION ALL SELECT who, epoch_ms, shard, 0, 0, reads, bytes_read, proofs, leaves, 0, 0, 0 FROM io
  UNION ALL SELECT who, epoch_ms, NULL, 0, 0, 0, 0, 0, 0, 1, cpu_usec, cycles FROM jobs)";

// A write_batches blob entry: the 16-byte shard id, then its payload bytes (u64 LE).
constexpr size_t kBatchEntry = 16 + 8;

std::string WayOut(const std::string& path) {
  return fmt::format(
      "run `dfrp-market usage --rebuild` (it moves {} aside and recounts); the writes are "
      "recounted from the store, the read counts in it are lost",
      path);
}

using Stmt = core::SqlStmt;

Status SqlError(sqlite3* db, const std::string& path, std::string_view what) {
  const int rc = sqlite3_errcode(db);
  const std::string msg = sqlite3_errmsg(db);
  if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
    return Status::Busy(
        fmt::format("usage database {} is busy ({} failed: {}): try again", path, what, msg));
  if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB)
    return Status::Corruption(
        fmt::format("usage database {} is damaged ({}: {}): {}", path, what, msg, WayOut(path)));
  return Status::IOError(fmt::format("usage database {}: {} failed: {}", path, what, msg));
}

Status Exec(sqlite3* db, const std::string& path, const char* sql) {
  if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) return SqlError(db, path, sql);
  return Status::OK();
}

UsageRow RowFrom(const Stmt& st) {
  UsageRow r;
  r.shards_written = st.Int(1);
  r.bytes_written = st.Int(2);
  r.reads = st.Int(3);
  r.bytes_read = st.Int(4);
  r.proofs = st.Int(5);
  r.proof_leaves = st.Int(6);
  r.jobs = st.Int(7);
  r.cpu_usec = st.Int(8);
  r.cycles = st.Int(9);
  return r;
}

json RowJson(const char* key_name, const json& key, const UsageRow& r) {
  return json{{key_name, key},
              {"shards_written", r.shards_written},
              {"bytes_written", r.bytes_written},
              {"reads", r.reads},
              {"bytes_read", r.bytes_read},
              {"proofs_served", r.proofs},
              {"proof_leaves", r.proof_leaves},
              {"jobs", r.jobs},
              {"cpu_usec", r.cpu_usec},
              {"cycles", r.cycles}};
}

}  // namespace

std::string UsagePath(const std::string& state_dir) {
  return core::JoinPath(state_dir, kUsageFileName);
}

Result<std::unique_ptr<UsageCounter>> UsageCounter::Open(const UsageOptions& opt) {
  if (!opt.clock) return Err(Status::Internal("UsageCounter::Open needs a clock"));
  if (opt.epoch_seconds <= 0)
    return Err(Status::InvalidArgument(
        fmt::format("epoch_seconds {} is not positive: set pricing.epoch_seconds in economic.toml",
                    opt.epoch_seconds)));
  std::unique_ptr<UsageCounter> c(new UsageCounter(opt));
  DFRP_RETURN_IF_ERROR(c->Init());
  if (opt.background_flush) {
    if (sqlite3_open_v2(opt.path.c_str(), &c->checkpoint_db_, SQLITE_OPEN_READWRITE, nullptr) !=
        SQLITE_OK) {
      sqlite3_close(c->checkpoint_db_);  // no checkpoints then: SQLite's own at close
      c->checkpoint_db_ = nullptr;
    }
    c->flusher_ = std::thread([p = c.get()] { p->FlushLoop(); });
  }
  return c;
}

Status UsageCounter::Init() {
  core::MutexLock lock(&db_mu_);
  const std::string& path = opt_.path;
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    Status s = Status::IOError(fmt::format("cannot open usage database {}: {}", path,
                                           db_ ? sqlite3_errmsg(db_) : "out of memory"));
    sqlite3_close(db_);
    db_ = nullptr;
    return s;
  }
  sqlite3_busy_timeout(db_, 5000);  // dfrp-storage and dfrpd share the file
  {
    Stmt check(db_, "PRAGMA integrity_check");
    const int step = check.Step();
    if (!check.ok() || step != SQLITE_ROW) return SqlError(db_, path, "integrity_check");
    if (check.Text(0) != "ok")
      return Status::Corruption(fmt::format("usage database {} fails its integrity check ({}): {}",
                                            path, check.Text(0), WayOut(path)));
  }
  // A kill -9 never loses a committed transaction in WAL mode; a power cut may lose the last
  // ones under NORMAL, which Reconcile makes up for as far as writes go.
  DFRP_RETURN_IF_ERROR(Exec(db_, path, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL"));
  // With a flusher thread, the WAL is checkpointed there (its fsync off the store's writer
  // thread, which commits each batch's row); without one, SQLite's automatic checkpoint.
  if (opt_.background_flush) DFRP_RETURN_IF_ERROR(Exec(db_, path, "PRAGMA wal_autocheckpoint=0"));
  int64_t have_tables = 0;
  {
    Stmt st(db_, "SELECT count(*) FROM sqlite_master WHERE type = 'table'");
    if (st.Step() != SQLITE_ROW) return SqlError(db_, path, "reading the schema");
    have_tables = st.Int(0);
  }
  DFRP_RETURN_IF_ERROR(Exec(db_, path, "BEGIN IMMEDIATE"));
  Status s = Exec(db_, path, kSchema);
  if (s.ok() && have_tables == 0) {
    Stmt ins(db_, "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?1), ('created_ms', ?2)");
    ins.Bind(1, std::to_string(kUsageSchemaVersion))
        .Bind(2, std::to_string(opt_.clock->NowUnixMillis()));
    if (ins.Step() != SQLITE_DONE) s = SqlError(db_, path, "writing the schema version");
  }
  std::string version, created;
  if (s.ok()) {
    Stmt st(db_, "SELECT key, value FROM meta WHERE key IN ('schema_version', 'created_ms')");
    for (int step; (step = st.Step()) == SQLITE_ROW;)
      (st.Text(0) == "schema_version" ? version : created) = st.Text(1);
  }
  (void)Exec(db_, path, s.ok() ? "COMMIT" : "ROLLBACK");
  DFRP_RETURN_IF_ERROR(s);
  if (version != std::to_string(kUsageSchemaVersion) ||
      std::from_chars(created.data(), created.data() + created.size(), created_ms_).ec !=
          std::errc())
    return Status::Corruption(fmt::format(
        "usage database {} has schema version '{}' (this dfrp reads {}) or no creation time: {}",
        path, version, kUsageSchemaVersion, WayOut(path)));
  {
    core::MutexLock p(&pending_mu_);
    last_flush_ms_ = opt_.clock->NowUnixMillis();
  }
  return Status::OK();
}

UsageCounter::~UsageCounter() { (void)Close(); }

Status UsageCounter::Close() {
  {
    core::MutexLock p(&pending_mu_);
    stop_ = true;
  }
  wake_.SignalAll();
  if (flusher_.joinable()) flusher_.join();
  sqlite3_close_v2(checkpoint_db_);
  checkpoint_db_ = nullptr;
  core::MutexLock lock(&db_mu_);
  if (!db_) return Status::OK();
  Status s = FlushLocked();
  sqlite3_close_v2(db_);
  db_ = nullptr;
  return s;
}

void UsageCounter::FlushLoop() {
  core::MutexLock p(&pending_mu_);
  while (!stop_) {
    // Once a second: the write batches become per-shard rows, the read and proof sums go in.
    wake_.WaitForMillis(&pending_mu_, 1000);
    if (stop_ || (pending_.empty() && pending_writes_.empty() && !batches_pending_)) continue;
    pending_mu_.Unlock();  // lock order: db_mu_ before pending_mu_
    Status s;
    // The write batches first, one per hold of db_mu_: the store's writer (OnWriteBatchDone)
    // never waits for more than one batch's rows.
    for (bool more = true; more && s.ok();) {
      core::MutexLock lock(&db_mu_);
      s = InsertWritesLocked();
      if (!s.ok() || !db_) break;
      Result<bool> r = ExpandOneBatchLocked();
      if (!r)
        s = r.error();
      else
        more = *r;
    }
    if (s.ok()) {
      core::MutexLock lock(&db_mu_);
      s = FlushLocked();
    }
    // On a connection of its own, without db_mu_: the store's writer can commit its next batch
    // row while the checkpoint copies and syncs. PASSIVE never waits; the WAL stays small.
    if (s.ok() && checkpoint_db_)
      (void)sqlite3_wal_checkpoint_v2(checkpoint_db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr,
                                      nullptr);
    if (!s.ok()) NoteError(s);
    pending_mu_.Lock();
  }
}

void UsageCounter::NoteError(const Status& s) {
  core::MutexLock p(&pending_mu_);
  if (error_.ok()) error_ = s;
}

Status UsageCounter::TakeError() {
  core::MutexLock p(&pending_mu_);
  return std::exchange(error_, Status::OK());
}

Status UsageCounter::Flush() {
  core::MutexLock lock(&db_mu_);
  return FlushLocked();
}

Status UsageCounter::FlushLocked() {
  DFRP_RETURN_IF_ERROR(InsertWritesLocked());
  {
    core::MutexLock p(&pending_mu_);
    batches_pending_ = false;
  }
  if (db_) {
    Status s = ExpandBatchesLocked();
    if (!s.ok()) {
      core::MutexLock p(&pending_mu_);
      batches_pending_ = true;
      return s;
    }
  }
  std::map<Key, Sums, std::less<>> batch;
  {
    core::MutexLock p(&pending_mu_);
    batch.swap(pending_);
    last_sums_ = nullptr;
    last_flush_ms_ = opt_.clock->NowUnixMillis();
  }
  if (batch.empty() || !db_) return Status::OK();
  Status s = Exec(db_, opt_.path, "BEGIN IMMEDIATE");
  if (s.ok()) {
    Stmt up(db_,
            "INSERT INTO io VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (who, shard, epoch_ms) "
            "DO UPDATE SET reads = reads + ?4, bytes_read = bytes_read + ?5, "
            "proofs = proofs + ?6, leaves = leaves + ?7");
    for (const auto& [key, sum] : batch) {
      const auto& [who, shard, epoch_ms] = key;
      up.Bind(1, who).BindBlob(2, shard.AsBytes()).Bind(3, epoch_ms);
      up.Bind(4, static_cast<int64_t>(sum.reads)).Bind(5, static_cast<int64_t>(sum.bytes));
      up.Bind(6, static_cast<int64_t>(sum.proofs)).Bind(7, static_cast<int64_t>(sum.leaves));
      if (up.Step() != SQLITE_DONE) {
        s = SqlError(db_, opt_.path, "adding read counts");
        break;
      }
      up.Reset();
    }
    if (s.ok()) s = Exec(db_, opt_.path, "COMMIT");
    if (!s.ok()) (void)Exec(db_, opt_.path, "ROLLBACK");
  }
  if (!s.ok()) {
    // Nothing of the batch was committed: keep it for the next flush.
    core::MutexLock p(&pending_mu_);
    for (const auto& [key, sum] : batch) {
      Sums& to = pending_[key];
      to.reads += sum.reads;
      to.bytes += sum.bytes;
      to.proofs += sum.proofs;
      to.leaves += sum.leaves;
    }
  }
  return s;
}

void UsageCounter::OnWrite(const core::RequestContext& ctx, const core::Uuid& shard,
                           uint64_t payload_bytes) {
  const int64_t now = opt_.clock->NowUnixMillis();
  const int64_t epoch_ms = EpochStartMs(now);
  core::MutexLock p(&pending_mu_);
  auto it = pending_writes_.find(WriteKeyView{ctx.who, epoch_ms, ctx.request_id});
  if (it == pending_writes_.end())
    it = pending_writes_.emplace(WriteKey{ctx.who, epoch_ms, ctx.request_id}, WriteGroup{}).first;
  it->second.at_ms = now;
  it->second.shards.append(shard.AsBytes());
  core::PutU64(&it->second.shards, payload_bytes);
}

void UsageCounter::OnWriteBatchDone() {
  Status s;
  {
    core::MutexLock lock(&db_mu_);
    s = InsertWritesLocked();
  }
  if (!s.ok()) NoteError(s);
}

Status UsageCounter::InsertWritesLocked() {
  WriteGroups groups;
  {
    core::MutexLock p(&pending_mu_);
    groups.swap(pending_writes_);
  }
  if (groups.empty() || !db_) return Status::OK();
  // One write_batches row per (who, epoch, request) of the batch -- nearly always one -- whose
  // blob lists the shards; the flusher spreads it into per-shard rows later, off the store's
  // write path (ExpandBatchesLocked).
  Status s = Exec(db_, opt_.path, "BEGIN IMMEDIATE");
  if (s.ok()) {
    Stmt ins(db_,
             "INSERT INTO write_batches (who, epoch_ms, at_ms, request_id, shards) "
             "VALUES (?1, ?2, ?3, ?4, ?5)");
    for (const auto& [key, value] : groups) {
      const auto& [who, epoch_ms, request_id] = key;
      ins.Bind(1, who).Bind(2, epoch_ms).Bind(3, value.at_ms).Bind(4, request_id);
      ins.BindBlob(5, value.shards);
      if (ins.Step() != SQLITE_DONE) {
        s = SqlError(db_, opt_.path, "counting a write batch");
        break;
      }
      ins.Reset();
    }
    if (s.ok()) s = Exec(db_, opt_.path, "COMMIT");
    if (!s.ok()) (void)Exec(db_, opt_.path, "ROLLBACK");
  }
  core::MutexLock p(&pending_mu_);
  if (!s.ok()) {
    // Nothing was committed: keep the rows for the next try (Reconcile makes up for them if
    // the process ends first).
    for (auto& [key, group] : groups) {
      WriteGroup& to = pending_writes_[key];
      to.at_ms = std::max(to.at_ms, group.at_ms);
      to.shards.insert(0, group.shards);
    }
  } else {
    batches_pending_ = true;
  }
  return s;
}

Status UsageCounter::ExpandBatchesLocked() {
  for (;;) {
    DFRP_ASSIGN_OR_RETURN(const bool more, ExpandOneBatchLocked());
    if (!more) return Status::OK();
  }
}

Result<bool> UsageCounter::ExpandOneBatchLocked() {
  {
    DFRP_RETURN_IF_ERROR(Exec(db_, opt_.path, "BEGIN IMMEDIATE"));
    Status s;
    bool any = false;
    {
      Stmt next(db_,
                "SELECT id, who, epoch_ms, at_ms, request_id, shards FROM write_batches "
                "ORDER BY id LIMIT 1");
      const int step = next.Step();
      if (step == SQLITE_ROW) {
        any = true;
        const int64_t id = next.Int(0), epoch_ms = next.Int(2), at_ms = next.Int(3);
        const std::string who = next.Text(1), request_id = next.Text(4), blob = next.Blob(5);
        if (blob.size() % kBatchEntry != 0) {
          s = Status::Corruption(fmt::format(
              "usage database {}: write batch {} holds {} bytes, not a multiple of {}: {}",
              opt_.path, id, blob.size(), kBatchEntry, WayOut(opt_.path)));
        }
        Stmt ins(db_, "INSERT OR IGNORE INTO writes VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)");
        for (size_t at = 0; s.ok() && at < blob.size(); at += kBatchEntry) {
          ins.BindBlob(1, std::string_view(blob).substr(at, 16)).Bind(2, who).Bind(3, epoch_ms);
          ins.Bind(4, static_cast<int64_t>(core::GetU64(blob.data() + at + 16)));
          ins.Bind(5, at_ms).Bind(6, request_id);
          if (ins.Step() != SQLITE_DONE) s = SqlError(db_, opt_.path, "counting a write");
          ins.Reset();
        }
        if (s.ok()) {
          Stmt del(db_, "DELETE FROM write_batches WHERE id = ?1");
          del.Bind(1, id);
          if (del.Step() != SQLITE_DONE) s = SqlError(db_, opt_.path, "removing a write batch");
        }
      } else if (step != SQLITE_DONE) {
        s = SqlError(db_, opt_.path, "reading the write batches");
      }
    }
    if (s.ok()) s = Exec(db_, opt_.path, "COMMIT");
    if (!s.ok()) {
      (void)Exec(db_, opt_.path, "ROLLBACK");
      return Err(s);
    }
    return any;
  }
}

void UsageCounter::Count(const core::RequestContext& ctx, const core::Uuid& shard,
                         const Sums& add) {
  const int64_t now = opt_.clock->NowUnixMillis();
  bool due = false;
  {
    core::MutexLock p(&pending_mu_);
    const int64_t epoch_ms = EpochStartMs(now);
    if (!last_sums_ || last_shard_ != shard || last_epoch_ms_ != epoch_ms || last_who_ != ctx.who) {
      auto it = pending_.find(KeyView{ctx.who, shard, epoch_ms});
      if (it == pending_.end()) it = pending_.emplace(Key{ctx.who, shard, epoch_ms}, Sums{}).first;
      last_sums_ = &it->second;
      last_who_ = ctx.who;
      last_shard_ = shard;
      last_epoch_ms_ = epoch_ms;
    }
    Sums& to = *last_sums_;
    to.reads += add.reads;
    to.bytes += add.bytes;
    to.proofs += add.proofs;
    to.leaves += add.leaves;
    due = !opt_.background_flush && now - last_flush_ms_ >= 1000;
  }
  if (due) {
    Status s = Flush();
    if (!s.ok()) NoteError(s);
  }
}

void UsageCounter::OnRead(const core::RequestContext& ctx, const core::Uuid& shard,
                          uint64_t verified_bytes) {
  Count(ctx, shard, Sums{.reads = 1, .bytes = verified_bytes});
}

void UsageCounter::OnProof(const core::RequestContext& ctx, const core::Uuid& shard,
                           uint64_t leaves) {
  Count(ctx, shard, Sums{.proofs = 1, .leaves = leaves});
}

Status UsageCounter::AddJobUsage(const core::RequestContext& ctx, const std::string& job_id,
                                 uint64_t cpu_usec, uint64_t cycles) {
  const int64_t now = opt_.clock->NowUnixMillis();
  core::MutexLock lock(&db_mu_);
  if (!db_) return Status::Internal("the usage database is closed");
  Stmt up(db_,
          "INSERT INTO jobs VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (job_id, who, epoch_ms) "
          "DO UPDATE SET cpu_usec = cpu_usec + ?4, cycles = cycles + ?5");
  up.Bind(1, job_id).Bind(2, ctx.who).Bind(3, EpochStartMs(now));
  up.Bind(4, static_cast<int64_t>(cpu_usec)).Bind(5, static_cast<int64_t>(cycles));
  if (up.Step() != SQLITE_DONE) return SqlError(db_, opt_.path, "counting a job");
  return Status::OK();
}

Result<uint64_t> UsageCounter::Reconcile(storage::Store& store) {
  core::MutexLock lock(&db_mu_);
  if (!db_) return Err(Status::Internal("the usage database is closed"));
  DFRP_RETURN_IF_ERROR(InsertWritesLocked());
  DFRP_RETURN_IF_ERROR(ExpandBatchesLocked());
  // Shards made since the usage database was: each must have a write row. The common case
  // (as many rows as shards) costs one index walk and one count.
  std::vector<storage::ShardLocation> since;
  const int64_t created_ms = created_ms_;  // the lambda below cannot show clang the lock
  DFRP_RETURN_IF_ERROR(store.ForEachShard(std::nullopt, [&](const storage::ShardLocation& l) {
    if (static_cast<int64_t>(l.id.unix_millis()) >= created_ms) since.push_back(l);
    return true;
  }));
  int64_t rows = 0;
  {
    Stmt st(db_, "SELECT count(*) FROM writes");
    if (st.Step() != SQLITE_ROW) return Err(SqlError(db_, opt_.path, "counting writes"));
    rows = st.Int(0);
  }
  if (static_cast<uint64_t>(rows) == since.size()) return uint64_t{0};
  DFRP_RETURN_IF_ERROR(Exec(db_, opt_.path, "BEGIN IMMEDIATE"));
  uint64_t added = 0;
  Status s;
  {
    Stmt ins(db_, "INSERT OR IGNORE INTO writes VALUES (?1, 'local', ?2, ?3, ?4, 1, '')");
    const int64_t now = opt_.clock->NowUnixMillis();
    for (const auto& l : since) {
      const int64_t made = static_cast<int64_t>(l.id.unix_millis());
      ins.BindBlob(1, l.id.AsBytes()).Bind(2, EpochStartMs(made));
      ins.Bind(3, static_cast<int64_t>(l.payload_len)).Bind(4, now);
      if (ins.Step() != SQLITE_DONE) {
        s = SqlError(db_, opt_.path, "counting a write found in the store");
        break;
      }
      added += static_cast<uint64_t>(sqlite3_changes(db_));
      ins.Reset();
    }
  }
  if (s.ok()) s = Exec(db_, opt_.path, "COMMIT");
  if (!s.ok()) {
    (void)Exec(db_, opt_.path, "ROLLBACK");
    return Err(s);
  }
  return added;
}

Result<std::vector<UsageRow>> UsageCounter::Group(const std::string& key_sql,
                                                  const std::optional<std::string>& wallet,
                                                  const std::string& order, size_t limit) {
  DFRP_RETURN_IF_ERROR(Flush());
  core::MutexLock lock(&db_mu_);
  if (!db_) return Err(Status::Internal("the usage database is closed"));
  const std::string sql = fmt::format(
      "SELECT {0}, sum(sw), sum(bw), sum(rd), sum(br), sum(pf), sum(lv), sum(jb), sum(cpu), "
      "sum(cy) FROM ({1}) WHERE (?1 IS NULL OR who = ?1) AND {0} IS NOT NULL GROUP BY {0} "
      "ORDER BY {2} LIMIT ?2",
      key_sql, kAllRows, order);
  Stmt st(db_, sql.c_str());
  if (!st.ok()) return Err(SqlError(db_, opt_.path, "preparing a usage view"));
  if (wallet) st.Bind(1, *wallet);
  st.Bind(2, limit == 0 ? int64_t{-1} : static_cast<int64_t>(limit));
  std::vector<UsageRow> out;
  int step;
  while ((step = st.Step()) == SQLITE_ROW) {
    UsageRow r = RowFrom(st);
    if (key_sql == "shard") {
      const std::string b = st.Blob(0);
      r.key = b.size() == 16 ? core::Uuid::FromBytes(b).ToString() : core::ToHex(b);
    } else if (key_sql == "epoch_ms") {
      r.key = std::to_string(EpochOf(st.Int(0)));
    } else {
      r.key = st.Text(0);
    }
    out.push_back(std::move(r));
  }
  if (step != SQLITE_DONE) return Err(SqlError(db_, opt_.path, "reading a usage view"));
  return out;
}

Result<std::vector<UsageRow>> UsageCounter::ByWallet(const std::optional<std::string>& wallet) {
  return Group("who", wallet, "who", 0);
}
Result<std::vector<UsageRow>> UsageCounter::ByEpoch(const std::optional<std::string>& wallet) {
  return Group("epoch_ms", wallet, "epoch_ms", 0);
}
Result<std::vector<UsageRow>> UsageCounter::ByShard(const std::optional<std::string>& wallet,
                                                    size_t limit) {
  return Group("shard", wallet, "sum(bw) + sum(br) DESC, shard", limit);
}
Result<std::vector<UsageRow>> UsageCounter::TopWallets(size_t n) {
  return Group("who", std::nullopt, "sum(bw) + sum(br) DESC, who", n == 0 ? 1 : n);
}

Result<json> UsageCounter::UsageJson(const UsageQuery& q) {
  DFRP_ASSIGN_OR_RETURN(auto wallets, ByWallet(q.wallet));
  DFRP_ASSIGN_OR_RETURN(auto epochs, ByEpoch(q.wallet));
  DFRP_ASSIGN_OR_RETURN(auto shards, ByShard(q.wallet, q.shard_limit));
  DFRP_ASSIGN_OR_RETURN(auto top, TopWallets(q.top));
  UsageRow total;
  json jw = json::array(), je = json::array(), js = json::array(), jt = json::array();
  for (const auto& r : wallets) {
    total.shards_written += r.shards_written;
    total.bytes_written += r.bytes_written;
    total.reads += r.reads;
    total.bytes_read += r.bytes_read;
    total.proofs += r.proofs;
    total.proof_leaves += r.proof_leaves;
    total.jobs += r.jobs;
    total.cpu_usec += r.cpu_usec;
    total.cycles += r.cycles;
    jw.push_back(RowJson("wallet", r.key, r));
  }
  for (const auto& r : epochs) {
    json e = RowJson("epoch", std::stoll(r.key), r);
    e["epoch_start_unix_ms"] = std::stoll(r.key) * opt_.epoch_seconds * 1000;
    je.push_back(std::move(e));
  }
  for (const auto& r : shards) js.push_back(RowJson("shard", r.key, r));
  for (const auto& r : top) jt.push_back(RowJson("wallet", r.key, r));
  json totals = RowJson("wallet", q.wallet ? json(*q.wallet) : json(nullptr), total);
  totals.erase("wallet");
  return json{{"epoch_seconds", opt_.epoch_seconds},
              {"current_epoch", EpochOf(opt_.clock->NowUnixMillis())},
              {"wallet", q.wallet ? json(*q.wallet) : json(nullptr)},
              {"totals", std::move(totals)},
              {"wallets", std::move(jw)},
              {"epochs", std::move(je)},
              {"shards", std::move(js)},
              {"top_wallets", std::move(jt)}};
}

Result<UsageRebuild> RebuildUsage(const std::string& state_dir, storage::Store& store,
                                  int64_t epoch_seconds) {
  core::FileSystem* fs = store.fs();
  const std::string path = UsagePath(state_dir);
  UsageRebuild out;
  if (fs->Exists(path)) {
    out.moved_to = fmt::format("{}.damaged-{}", path, store.clock()->NowUnixMillis());
    DFRP_RETURN_IF_ERROR(fs->RenameNoReplace(path, out.moved_to));
    for (const char* suffix : {"-wal", "-shm"})
      if (fs->Exists(path + suffix))
        DFRP_RETURN_IF_ERROR(fs->Rename(path + suffix, out.moved_to + suffix));
    DFRP_RETURN_IF_ERROR(fs->SyncDir(state_dir));
  }
  UsageOptions opt{.path = path,
                   .epoch_seconds = epoch_seconds,
                   .clock = store.clock(),
                   .background_flush = false};
  DFRP_ASSIGN_OR_RETURN(auto counter, UsageCounter::Open(opt));
  {
    // Every shard of the store is recounted: the new file counts from the beginning of time.
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK ||
        sqlite3_exec(db, "UPDATE meta SET value = '0' WHERE key = 'created_ms'", nullptr, nullptr,
                     nullptr) != SQLITE_OK) {
      Status s = SqlError(db, path, "marking the rebuilt file");
      sqlite3_close(db);
      return Err(s);
    }
    sqlite3_close(db);
  }
  DFRP_RETURN_IF_ERROR(counter->Close());
  DFRP_ASSIGN_OR_RETURN(counter, UsageCounter::Open(opt));
  DFRP_ASSIGN_OR_RETURN(out.shards, counter->Reconcile(store));
  DFRP_RETURN_IF_ERROR(counter->Close());
  return out;
}

Result<CpuStat> ParseCgroupCpuStat(std::string_view text, std::string_view path) {
  CpuStat out;
  int seen = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    const size_t sp = line.find(' ');
    if (sp == std::string_view::npos) continue;
    const std::string_view name = line.substr(0, sp), value = line.substr(sp + 1);
    uint64_t* field = name == "usage_usec"    ? &out.usage_usec
                      : name == "user_usec"   ? &out.user_usec
                      : name == "system_usec" ? &out.system_usec
                                              : nullptr;
    if (!field) continue;
    if (std::from_chars(value.data(), value.data() + value.size(), *field).ec != std::errc())
      return Err(Status::Corruption(fmt::format(
          "{}: {} is '{}', not a count of microseconds: is this a cgroup v2 cpu.stat file?", path,
          name, value.substr(0, 40))));
    ++seen;
  }
  if (seen != 3)
    return Err(Status::Corruption(
        fmt::format("{} lacks usage_usec, user_usec or system_usec: give a cgroup v2 cpu.stat file "
                    "(/sys/fs/cgroup/<group>/cpu.stat)",
                    path)));
  return out;
}

Result<CpuStat> ReadCgroupCpuStat(core::FileSystem* fs, const std::string& path) {
  DFRP_ASSIGN_OR_RETURN(std::string text, core::ReadWholeFile(fs, path));
  return ParseCgroupCpuStat(text, path);
}

CpuStat ChildrenRusage() {
  struct rusage ru {};
  getrusage(RUSAGE_CHILDREN, &ru);
  CpuStat out;
  out.user_usec = static_cast<uint64_t>(ru.ru_utime.tv_sec) * 1'000'000 +
                  static_cast<uint64_t>(ru.ru_utime.tv_usec);
  out.system_usec = static_cast<uint64_t>(ru.ru_stime.tv_sec) * 1'000'000 +
                    static_cast<uint64_t>(ru.ru_stime.tv_usec);
  out.usage_usec = out.user_usec + out.system_usec;
  return out;
}

}  // namespace dfrp::economy
