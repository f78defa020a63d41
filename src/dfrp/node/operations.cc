#include "dfrp/node/operations.h"

#include <fmt/format.h>

#include "dfrp/node/views.h"
#include "dfrp/storage/migrate.h"

namespace dfrp::node {

using core::Err;
using core::Result;
using core::Status;
using nlohmann::json;

struct Operations::Op {
  core::Uuid id;
  std::string kind;
  uint32_t volume = 0;
  json params;
  core::Clock* clock = nullptr;
  std::atomic<bool> cancel{false};
  std::atomic<bool> ended{false};  // the thread's body returned (its thread can be joined)
  std::unique_ptr<core::FileLock> migrate_lock;  // held while a migration runs

  mutable core::Mutex mu;
  std::string state GUARDED_BY(mu) = "running";
  std::string phase GUARDED_BY(mu) = "copy";
  uint64_t done GUARDED_BY(mu) = 0;
  uint64_t total GUARDED_BY(mu) = 0;
  double bytes_per_sec GUARDED_BY(mu) = 0;
  int64_t started_ms GUARDED_BY(mu) = 0;
  int64_t finished_ms GUARDED_BY(mu) = 0;
  int64_t phase_start_ns GUARDED_BY(mu) = 0;
  json error GUARDED_BY(mu) = nullptr;
  json result GUARDED_BY(mu) = nullptr;

  bool Running() const {
    core::MutexLock lock(&mu);
    return state == "running";
  }

  void Progress(std::string_view p, uint64_t d, uint64_t t) {
    const int64_t now = clock->NowMonotonicNanos();
    core::MutexLock lock(&mu);
    if (p != phase) {
      phase = std::string(p);
      phase_start_ns = now;
    }
    done = d;
    total = t;
    const double secs = static_cast<double>(now - phase_start_ns) / 1e9;
    bytes_per_sec = secs > 0 ? static_cast<double>(d) / secs : 0;
  }

  json Json() const {
    core::MutexLock lock(&mu);
    return {{"id", id.ToString()},
            {"kind", kind},
            {"volume", volume},
            {"state", state},
            {"phase", phase},
            {"done", done},
            {"total", total},
            {"bytes_per_sec", bytes_per_sec},
            {"started_unix_ms", started_ms},
            {"finished_unix_ms", finished_ms ? json(finished_ms) : json(nullptr)},
            {"error", error},
            {"result", result},
            {"params", params}};
  }
};

Result<std::shared_ptr<Operations::Op>> Operations::NewOp(const std::string& kind, uint32_t volume,
                                                          json params) {
  auto op = std::make_shared<Op>();
  op->id = core::DefaultUuidGenerator()->NewV7();
  op->kind = kind;
  op->volume = volume;
  op->params = std::move(params);
  op->clock = opt_.clock;
  {
    core::MutexLock olock(&op->mu);
    op->started_ms = opt_.clock->NowUnixMillis();
    op->phase_start_ns = opt_.clock->NowMonotonicNanos();
  }
  std::list<Running> ended;  // joined below, outside the lock
  {
    core::MutexLock lock(&mu_);
    if (stopped_) return Err(Status::Busy("dfrpd is shutting down: ask again once it is back"));
    for (const auto& o : ops_)
      if (o->Running())
        return Err(Status::Busy(fmt::format(
            "a {} operation ({}) of volume {} is running: wait for it (GET /v1/operations/{}) "
            "or cancel it (DELETE)",
            o->kind, o->id.ToString(), o->volume, o->id.ToString())));
    for (auto it = running_.begin(); it != running_.end();) {
      auto next = std::next(it);
      if (it->op->ended) ended.splice(ended.end(), running_, it);
      it = next;
    }
    ops_.push_front(op);
    while (ops_.size() > kKept) ops_.pop_back();
  }
  for (auto& r : ended) r.thread.join();
  return op;
}

void Operations::Launch(const std::shared_ptr<Op>& op, std::function<void()> body) {
  core::MutexLock lock(&mu_);
  running_.push_back({op, std::thread([op, body = std::move(body)] {
                        body();
                        op->ended = true;
                      })});
}

void Operations::CancelAll() {
  core::MutexLock lock(&mu_);
  stopped_ = true;
  for (auto& op : ops_) op->cancel = true;
}

void Operations::Stop() {
  CancelAll();
  std::list<Running> all;
  {
    core::MutexLock lock(&mu_);
    all.swap(running_);
  }
  for (auto& r : all) {
    r.op->cancel = true;
    r.thread.join();
  }
}

void Operations::Finish(Op& op, const Status& s, json result) {
  op.migrate_lock.reset();
  core::MutexLock lock(&op.mu);
  op.finished_ms = opt_.clock->NowUnixMillis();
  op.phase = "done";
  // An ended operation's speed is over its whole length, not over its last phase.
  const double secs = static_cast<double>(op.finished_ms - op.started_ms) / 1000.0;
  op.bytes_per_sec = secs > 0 ? static_cast<double>(op.done) / secs : 0;
  op.result = std::move(result);
  if (s.ok()) {
    op.state = "succeeded";
  } else {
    op.state = op.cancel ? "cancelled" : "failed";
    op.error = ErrorJson(s)["error"];
  }
  if (op.kind == "migrate") {
    if (s.ok())
      metrics_.migrations_succeeded.fetch_add(1);
    else if (op.cancel)
      metrics_.migrations_cancelled.fetch_add(1);
    else
      metrics_.migrations_failed.fetch_add(1);
  }
}

Result<json> Operations::StartMigrate(uint32_t volume, const std::string& to, bool resume,
                                      bool delete_source) {
  if (to.empty() || to[0] != '/')
    return Err(Status::InvalidArgument(fmt::format(
        "\"to\" must be an absolute folder path on the daemon's machine; got '{}'", to)));
  DFRP_ASSIGN_OR_RETURN(auto lock, storage::LockMigration(opt_.fs, config_.state_dir));
  DFRP_ASSIGN_OR_RETURN(
      std::shared_ptr<Op> op,
      NewOp("migrate", volume, {{"to", to}, {"resume", resume}, {"delete_source", delete_source}}));
  op->migrate_lock = std::move(lock);
  Launch(op, [this, op, to, resume, delete_source] { RunMigrate(op, to, resume, delete_source); });
  return op->Json();
}

void Operations::RunMigrate(const std::shared_ptr<Op>& op, std::string to, bool resume,
                            bool delete_source) {
  storage::MigrateOptions mo;
  mo.resume = resume;
  mo.delete_source = delete_source;
  mo.progress = [&](std::string_view phase, uint64_t d, uint64_t t) { op->Progress(phase, d, t); };
  mo.should_stop = [&] { return op->cancel.load(); };
  // New reads go to the new folder before the old one can be deleted; reads in flight keep
  // their open files (and the old store) until they finish.
  mo.after_switch = [&] { return readers_.Refresh(); };
  mo.retry_hint = "ask again to finish it, or resume the volume to cancel";
  storage::MigrateReport r;
  Status s = storage::RunMigration(writer_, config_, opt_, op->volume, to, mo, &r);
  if (s.IsCorruption()) metrics_.verification_failures.fetch_add(1);
  json report = {{"volume", r.volume},
                 {"from", r.from},
                 {"to", r.to},
                 {"already_there", r.already_there},
                 {"files", r.files},
                 {"bytes", r.bytes},
                 {"shards_verified", r.shards_verified},
                 {"copy_seconds", r.copy_seconds},
                 {"verify_seconds", r.verify_seconds},
                 {"total_seconds", r.total_seconds},
                 {"resumed", r.resumed},
                 {"source_deleted", r.source_deleted},
                 {"source_bytes_deleted", r.source_bytes_deleted}};
  Finish(*op, s, std::move(report));
}

Result<json> Operations::StartResumeAt(uint32_t volume, const std::string& path) {
  if (path.empty() || path[0] != '/')
    return Err(Status::InvalidArgument(fmt::format(
        "\"path\" must be an absolute folder path on the daemon's machine; got '{}'", path)));
  DFRP_ASSIGN_OR_RETURN(std::shared_ptr<Op> op, NewOp("resume", volume, {{"path", path}}));
  op->Progress("verify", 0, 0);
  Launch(op, [this, op, path] { RunResumeAt(op, path); });
  return op->Json();
}

void Operations::RunResumeAt(const std::shared_ptr<Op>& op, std::string path) {
  json result = nullptr;
  // Store::Resume with a path verifies the copy under the writer (writes wait); the node's
  // stop (StoreOptions::should_stop) ends the check early.
  Status s = writer_.Run([&](storage::Store& store) -> Status {
    DFRP_ASSIGN_OR_RETURN(storage::VolumeCheck check,
                          store.Resume(op->volume, path, [&](uint64_t d, uint64_t t) {
                            op->Progress("verify", d, t);
                          }));
    result = {{"volume", check.volume},
              {"path", check.path},
              {"segments", check.segments},
              {"shards", check.shards},
              {"bytes", check.bytes}};
    return Status::OK();
  });
  if (s.IsCorruption()) metrics_.verification_failures.fetch_add(1);
  if (s.ok()) s = readers_.Refresh();
  Finish(*op, s, s.ok() ? result : json(nullptr));
}

Result<json> Operations::Get(const core::Uuid& id) const {
  core::MutexLock lock(&mu_);
  for (const auto& op : ops_)
    if (op->id == id) return op->Json();
  return Err(Status::NotFound(
      fmt::format("no operation {} (this daemon keeps its last {})", id.ToString(), kKept)));
}

json Operations::List() const {
  json arr = json::array();
  core::MutexLock lock(&mu_);
  for (const auto& op : ops_) arr.push_back(op->Json());
  return arr;
}

Result<json> Operations::Cancel(const core::Uuid& id) {
  core::MutexLock lock(&mu_);
  for (const auto& op : ops_) {
    if (op->id != id) continue;
    {
      core::MutexLock olock(&op->mu);
      if (op->state != "running")
        return Err(
            Status::Busy(fmt::format("operation {} already ended ({})", id.ToString(), op->state)));
      if (op->kind != "migrate")
        return Err(Status::Busy(fmt::format(
            "a {} operation cannot be cancelled once it began: it ends when the check does",
            op->kind)));
    }
    op->cancel = true;
    return op->Json();
  }
  return Err(Status::NotFound(fmt::format("no operation {}", id.ToString())));
}

Status Operations::CheckIdle(uint32_t volume) const {
  core::MutexLock lock(&mu_);
  for (const auto& op : ops_)
    if (op->volume == volume && op->Running())
      return Status::Busy(
          fmt::format("volume {} has a running {} operation ({}): cancel it with DELETE "
                      "/v1/operations/{} first",
                      volume, op->kind, op->id.ToString(), op->id.ToString()));
  return Status::OK();
}

}  // namespace dfrp::node
