#include "dfrp/storage/scrubber.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "dfrp/core/file_system.h"

namespace dfrp::storage {

using core::Err;
using core::Result;
using core::Status;

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cursor(
  volume INTEGER PRIMARY KEY, segment INTEGER, offset INTEGER,
  passes INTEGER NOT NULL DEFAULT 0, pass_started_ms INTEGER, last_pass_ms INTEGER);
CREATE TABLE IF NOT EXISTS verified(
  id BLOB PRIMARY KEY, volume INTEGER NOT NULL, segment INTEGER NOT NULL,
  offset INTEGER NOT NULL, verified_ms INTEGER NOT NULL, ok INTEGER NOT NULL,
  error TEXT) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS verified_by_volume ON verified(volume, verified_ms);
)sql";

// A prepared statement, finalized on scope exit.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &st_, nullptr); }
  ~Stmt() { sqlite3_finalize(st_); }
  sqlite3_stmt* get() const { return st_; }
  bool ok() const { return st_ != nullptr; }
  Stmt& Int(int i, int64_t v) {
    sqlite3_bind_int64(st_, i, v);
    return *this;
  }
  Stmt& Blob(int i, std::string_view v) {
    sqlite3_bind_blob(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Text(int i, std::string_view v) {
    sqlite3_bind_text(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  int Step() { return sqlite3_step(st_); }
  void Reset() {
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
  }

 private:
  sqlite3_stmt* st_ = nullptr;
};

struct Cursor {
  bool in_pass = false;  // a pass was begun and not finished
  uint64_t segment = 0, offset = 0;
};

}  // namespace

uint64_t ScrubReport::corrupt() const {
  return static_cast<uint64_t>(std::count_if(
      findings.begin(), findings.end(), [](const auto& f) { return f.status.IsCorruption(); }));
}

Scrubber::~Scrubber() { sqlite3_close(db_); }

Status Scrubber::Error(std::string_view what) const {
  return Status::IOError(fmt::format("scrub state {}: {}", what, sqlite3_errmsg(db_)));
}

Status Scrubber::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    Status s = Error(err ? err : "statement failed");
    sqlite3_free(err);
    return s;
  }
  return Status::OK();
}

Status Scrubber::Init(bool* reset) {
  DFRP_RETURN_IF_ERROR(Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"));
  DFRP_RETURN_IF_ERROR(Exec(kSchema));
  const std::string id = store_.store_id().ToString();
  Stmt get(db_, "SELECT value FROM meta WHERE key = 'store_id'");
  if (!get.ok()) return Error("cannot read");
  std::string have;
  if (get.Step() == SQLITE_ROW)
    have = reinterpret_cast<const char*>(sqlite3_column_text(get.get(), 0));
  if (have == id) return Status::OK();
  // Absent, or another store's: start over (the state is only a record of past work).
  *reset = true;
  DFRP_RETURN_IF_ERROR(Exec("BEGIN; DELETE FROM cursor; DELETE FROM verified;"));
  Stmt put(db_, "INSERT OR REPLACE INTO meta(key, value) VALUES ('store_id', ?1), ('schema', '1')");
  put.Text(1, id);
  if (put.Step() != SQLITE_DONE) {
    (void)Exec("ROLLBACK");
    return Error("cannot write");
  }
  return Exec("COMMIT");
}

Result<std::unique_ptr<Scrubber>> Scrubber::Open(Store& store, const std::string& state_dir,
                                                 core::FileSystem* fs) {
  auto lock = fs->TryLock(core::JoinPath(state_dir, kScrubLockFileName));
  if (!lock) {
    if (lock.error().IsBusy())
      return Err(Status::Busy(
          "another scrub of this store is running: wait for it, or stop it (it resumes later)"));
    return Err(lock.error());
  }
  const std::string path = core::JoinPath(state_dir, kScrubStateFileName);
  for (int attempt = 0; attempt < 2; ++attempt) {
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
        SQLITE_OK) {
      std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
      sqlite3_close(db);
      return Err(Status::IOError(fmt::format("cannot open the scrub state {}: {}", path, msg)));
    }
    sqlite3_busy_timeout(db, 5000);
    std::unique_ptr<Scrubber> s(new Scrubber(store, db, nullptr));
    Status st = s->Init(&s->reset_);
    if (st.ok()) {
      s->lock_ = std::move(*lock);
      return s;
    }
    // A damaged state file only costs the record of past work: remove it and start over.
    s.reset();
    if (attempt == 1) return Err(st);
    for (const char* suffix : {"", "-wal", "-shm"}) (void)fs->RemoveFile(path + suffix);
  }
  return Err(Status::Internal("unreachable"));
}

Result<std::optional<ShardScrubRecord>> Scrubber::LastVerified(const core::Uuid& id) {
  Stmt q(db_, "SELECT verified_ms, ok, error FROM verified WHERE id = ?1");
  if (!q.ok()) return Err(Error("cannot read"));
  q.Blob(1, id.AsBytes());
  if (q.Step() != SQLITE_ROW) return std::optional<ShardScrubRecord>();
  ShardScrubRecord r;
  r.verified_unix_ms = sqlite3_column_int64(q.get(), 0);
  r.ok = sqlite3_column_int64(q.get(), 1) != 0;
  if (const unsigned char* e = sqlite3_column_text(q.get(), 2))
    r.error = reinterpret_cast<const char*>(e);
  return std::optional<ShardScrubRecord>(r);
}

namespace {

Result<Cursor> LoadCursor(sqlite3* db, uint32_t volume) {
  Stmt q(db, "SELECT segment, offset FROM cursor WHERE volume = ?1");
  if (!q.ok()) return Err(Status::IOError("scrub state: cannot read the cursor"));
  q.Int(1, volume);
  Cursor c;
  if (q.Step() == SQLITE_ROW && sqlite3_column_type(q.get(), 0) != SQLITE_NULL) {
    c.in_pass = true;
    c.segment = static_cast<uint64_t>(sqlite3_column_int64(q.get(), 0));
    c.offset = static_cast<uint64_t>(sqlite3_column_int64(q.get(), 1));
  }
  return c;
}

// Records verified shards and the cursor, in one transaction.
class Journal {
 public:
  Journal(sqlite3* db, uint32_t volume, core::Clock* clock)
      : db_(db),
        volume_(volume),
        clock_(clock),
        row_(db,
             "INSERT OR REPLACE INTO verified(id, volume, segment, offset, verified_ms, ok, "
             "error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)") {}

  Status Begin() { return Run("BEGIN"); }
  Status Add(const ShardLocation& loc, const Status& result) {
    row_.Blob(1, loc.id.AsBytes()).Int(2, volume_).Int(3, loc.segment).Int(4, loc.offset);
    row_.Int(5, clock_->NowUnixMillis()).Int(6, result.ok() ? 1 : 0);
    if (!result.ok()) row_.Text(7, result.message());
    const int rc = row_.Step();
    row_.Reset();
    return rc == SQLITE_DONE ? Status::OK() : Fail("cannot record a verified shard");
  }
  // Moves the cursor to `at` (if any shard was checked since the pass or run began), marks the
  // pass complete when `pass_done`, and commits.
  Status Commit(std::optional<DiskPlace> at, bool pass_begun, bool pass_done) {
    if (pass_begun) {
      Stmt s(db_,
             "INSERT INTO cursor(volume, passes, pass_started_ms) VALUES (?1, 0, ?2) "
             "ON CONFLICT(volume) DO UPDATE SET pass_started_ms = excluded.pass_started_ms");
      s.Int(1, volume_).Int(2, clock_->NowUnixMillis());
      if (s.Step() != SQLITE_DONE) return Fail("cannot start a pass");
    }
    if (pass_done) {
      Stmt s(db_,
             "UPDATE cursor SET segment = NULL, offset = NULL, passes = passes + 1, "
             "last_pass_ms = ?2 WHERE volume = ?1");
      s.Int(1, volume_).Int(2, clock_->NowUnixMillis());
      if (s.Step() != SQLITE_DONE) return Fail("cannot finish a pass");
    } else if (at) {
      Stmt s(db_, "UPDATE cursor SET segment = ?2, offset = ?3 WHERE volume = ?1");
      s.Int(1, volume_).Int(2, static_cast<int64_t>(at->segment));
      s.Int(3, static_cast<int64_t>(at->offset));
      if (s.Step() != SQLITE_DONE) return Fail("cannot move the cursor");
    }
    return Run("COMMIT");
  }

 private:
  Status Run(const char* sql) {
    return sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) == SQLITE_OK ? Status::OK()
                                                                          : Fail(sql);
  }
  Status Fail(std::string_view what) {
    return Status::IOError(fmt::format("scrub state: {}: {}", what, sqlite3_errmsg(db_)));
  }
  sqlite3* db_;
  uint32_t volume_;
  core::Clock* clock_;
  Stmt row_;
};

// Keeps the verified bytes under the rate: sleeps (in slices, watching should_stop) until the
// time spent is at least bytes / rate.
class Throttle {
 public:
  explicit Throttle(const ScrubOptions& opt) : opt_(opt), start_(opt.clock->NowMonotonicNanos()) {}
  void Account(uint64_t bytes) {
    bytes_ += bytes;
    if (opt_.rate_bytes_per_sec <= 0) return;
    for (;;) {
      const int64_t due = start_ + static_cast<int64_t>(bytes_ / opt_.rate_bytes_per_sec * 1e9);
      const int64_t wait = due - opt_.clock->NowMonotonicNanos();
      if (wait <= 0 || (opt_.should_stop && opt_.should_stop())) return;
      const int64_t slice = std::min<int64_t>(wait, 100'000'000);
      if (opt_.sleep)
        opt_.sleep(slice);
      else
        std::this_thread::sleep_for(std::chrono::nanoseconds(slice));
    }
  }

 private:
  const ScrubOptions& opt_;
  int64_t start_;
  uint64_t bytes_ = 0;
};

// What a run does on one volume: the rest of its pass, from the cursor to the last shard the
// index holds as the run begins (shards written later wait for the next pass, so a pass ends
// even while writes go on).
struct PassPlan {
  uint32_t volume = 0;
  bool resumed = false;
  DiskPlace after;  // the cursor, or DiskPlace{} (before every record) for a new pass
  ShardSpan span;
};

// Walks the planned passes one index page at a time: the memory it holds is one page of
// ShardLocations, however many shards the store has.
class Walker {
 public:
  Walker(Store& store, sqlite3* db, const ScrubOptions& opt, ScrubReport& report,
         uint64_t bytes_total)
      : store_(store), db_(db), opt_(opt), report_(report), throttle_(opt) {
    progress_.bytes_total = bytes_total;
  }

  Status Walk(const PassPlan& plan) {
    ScrubVolumeReport& vr = *std::find_if(report_.volumes.begin(), report_.volumes.end(),
                                          [&](const auto& r) { return r.volume == plan.volume; });
    progress_.volume = plan.volume;
    Journal journal(db_, plan.volume, opt_.clock);
    DFRP_RETURN_IF_ERROR(journal.Begin());
    bool begun = !plan.resumed;
    int64_t last_commit = opt_.clock->NowMonotonicNanos();
    std::optional<DiskPlace> at;
    const size_t rows = std::max<size_t>(opt_.page_rows, 1);
    for (DiskPlace after = plan.after; plan.span.last && !report_.stopped;) {
      DFRP_ASSIGN_OR_RETURN(std::vector<ShardLocation> page,
                            store_.ShardPage(plan.volume, after, *plan.span.last, rows));
      ++report_.index_pages;
      for (const ShardLocation& loc : page) {
        if (opt_.should_stop && opt_.should_stop()) {
          report_.stopped = true;
          break;
        }
        DFRP_RETURN_IF_ERROR(VerifyOne(loc, plan.volume, journal, vr));
        at = DiskPlace{loc.segment, loc.offset};
        if (opt_.clock->NowMonotonicNanos() - last_commit >=
            opt_.checkpoint_interval_ms * 1'000'000) {
          DFRP_RETURN_IF_ERROR(journal.Commit(at, begun, false));
          DFRP_RETURN_IF_ERROR(journal.Begin());
          begun = false;
          last_commit = opt_.clock->NowMonotonicNanos();
        }
      }
      if (page.size() < rows) break;
      after = DiskPlace{page.back().segment, page.back().offset};
    }
    vr.pass_completed = !report_.stopped;
    return journal.Commit(at, begun, vr.pass_completed);
  }

 private:
  Status VerifyOne(const ShardLocation& loc, uint32_t volume, Journal& journal,
                   ScrubVolumeReport& vr) {
    uint64_t seen = 0;
    VerifyResult r = store_.Verify(loc.id, [&](uint64_t done, uint64_t) {
      throttle_.Account(done - seen);
      progress_.bytes_done += done - seen;
      seen = done;
      if (opt_.progress) opt_.progress(progress_);
    });
    // NotFound: the volume went missing, or the shard left the index under us (a rebuild);
    // nothing was verified, so nothing is recorded, but it is reported.
    if (!r.status.IsNotFound()) DFRP_RETURN_IF_ERROR(journal.Add(loc, r.status));
    if (!r.ok) {
      ScrubFinding f{
          loc.id,  volume, loc.segment, loc.offset, store_.SegmentPathFor(volume, loc.segment),
          r.status};
      if (opt_.on_finding) opt_.on_finding(f);
      report_.findings.push_back(std::move(f));
    }
    ++vr.shards;
    vr.bytes += loc.payload_len;
    ++report_.shards_verified;
    report_.bytes_verified += loc.payload_len;
    return Status::OK();
  }

  Store& store_;
  sqlite3* db_;
  const ScrubOptions& opt_;
  ScrubReport& report_;
  Throttle throttle_;
  ScrubProgress progress_;
};

// Which volumes this run scrubs and from where. A run first finishes the passes an earlier run
// left unfinished; only when none is left does it begin new ones (so a stopped scrub resumes
// instead of starting volumes over).
Result<std::vector<PassPlan>> PlanRun(Store& store, sqlite3* db, const ScrubOptions& opt,
                                      ScrubReport* report) {
  std::vector<VolumeInfo> volumes = store.ListVolumes();
  bool any_unfinished = false;
  for (const VolumeInfo& v : volumes) {
    if (opt.volume && v.index != *opt.volume) continue;
    DFRP_ASSIGN_OR_RETURN(Cursor c, LoadCursor(db, v.index));
    any_unfinished = any_unfinished || c.in_pass;
  }
  std::vector<PassPlan> plans;
  for (const VolumeInfo& v : volumes) {
    if (opt.volume && v.index != *opt.volume) continue;
    ScrubVolumeReport vr;
    vr.volume = v.index;
    DFRP_ASSIGN_OR_RETURN(Cursor c, LoadCursor(db, v.index));
    if (v.state == VolumeState::kMissing || v.state == VolumeState::kUninitialized) {
      vr.skipped = fmt::format("volume {} is {}: {}", v.index, VolumeStateName(v.state), v.problem);
    } else if (any_unfinished && !c.in_pass) {
      vr.skipped = fmt::format(
          "volume {} finished its pass; it starts a new one once the others finish theirs",
          v.index);
    } else {
      vr.resumed = c.in_pass;
      PassPlan plan;
      plan.volume = v.index;
      plan.resumed = c.in_pass;
      if (c.in_pass) plan.after = DiskPlace{c.segment, c.offset};
      DFRP_ASSIGN_OR_RETURN(plan.span, store.ShardSpanAfter(v.index, plan.after));
      plans.push_back(plan);
    }
    report->volumes.push_back(vr);
  }
  if (opt.volume && report->volumes.empty())
    return Err(Status::NotFound(fmt::format(
        "volume {} is not part of this store: see `dfrp-storage list-volumes`", *opt.volume)));
  return plans;
}

}  // namespace

Result<ScrubReport> Scrubber::Run(const ScrubOptions& options) {
  ScrubOptions opt = options;
  if (opt.clock == nullptr) opt.clock = store_.clock();
  ScrubReport report;
  report.state_reset = reset_;
  reset_ = false;
  DFRP_ASSIGN_OR_RETURN(std::vector<PassPlan> plans, PlanRun(store_, db_, opt, &report));
  uint64_t bytes_total = 0;
  for (const PassPlan& p : plans) bytes_total += p.span.payload_bytes;
  Walker walker(store_, db_, opt, report, bytes_total);
  for (const PassPlan& p : plans) {
    DFRP_RETURN_IF_ERROR(walker.Walk(p));
    if (report.stopped) break;
  }
  return report;
}

}  // namespace dfrp::storage
