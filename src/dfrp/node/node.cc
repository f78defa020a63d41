#include "dfrp/node/node.h"

#include <fmt/format.h>

#include <chrono>
#include <cstring>

#include "dfrp/core/bytes.h"
#include "dfrp/core/file_system.h"
#include "dfrp/node/views.h"
#include "dfrp/storage/migrate.h"
#include "dfrp/storage/scrubber.h"

namespace dfrp::node {

using core::Err;
using core::Result;
using core::Status;
using nlohmann::json;
using storage::Store;

namespace {

constexpr size_t kMaxBatchItems = 256;
constexpr uint64_t kMaxBatchBytes = 64ull << 20;
constexpr size_t kKeptOperations = 50;
// Kept apart from the store's own proof limits: an audit answer the API builds in memory.
constexpr uint64_t kMaxAuditAnswerBytes = 64ull << 20;

double Since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

struct Node::Op {
  core::Uuid id;
  std::string kind;
  uint32_t volume = 0;
  json params;
  std::atomic<bool> cancel{false};
  // Guarded by mu.
  mutable std::mutex mu;
  std::string state = "running";
  std::string phase = "copy";
  uint64_t done = 0, total = 0;
  double bytes_per_sec = 0;
  int64_t started_ms = 0, finished_ms = 0;
  std::chrono::steady_clock::time_point phase_start = std::chrono::steady_clock::now();
  json error = nullptr, result = nullptr;

  void Progress(const std::string& p, uint64_t d, uint64_t t) {
    std::lock_guard lock(mu);
    if (p != phase) {
      phase = p;
      phase_start = std::chrono::steady_clock::now();
    }
    done = d;
    total = t;
    const double secs = Since(phase_start);
    bytes_per_sec = secs > 0 ? static_cast<double>(d) / secs : 0;
  }
};

Node::~Node() { Stop(); }

Result<std::unique_ptr<Node>> Node::Open(const NodeOptions& opt) {
  std::unique_ptr<Node> n(new Node(opt));
  n->started_ms_ = opt.store.clock->NowUnixMillis();
  DFRP_ASSIGN_OR_RETURN(n->token_, EnsureApiToken(opt.config.state_dir));
  DFRP_ASSIGN_OR_RETURN(n->writer_, Store::Open(opt.config, Store::Mode::kWrite, opt.store));
  n->store_id_ = n->writer_->store_id();
  DFRP_RETURN_IF_ERROR(n->RefreshReader());
  {
    std::lock_guard lock(n->writer_mu_);
    n->RefreshVolumes();
  }
  // PUT bodies a crash left in the spool folder.
  core::FileSystem* fs = opt.store.fs;
  const std::string spool = core::JoinPath(opt.config.state_dir, "tmp");
  if (auto names = fs->ListDir(spool))
    for (const auto& name : *names)
      if (name.starts_with("put-")) (void)fs->RemoveFile(core::JoinPath(spool, name));
  n->scrub_ = {{"enabled", opt.config.scrub_rate > 0},
               {"rate_bytes_per_sec", opt.config.scrub_rate},
               {"running", false},
               {"bytes_verified", 0},
               {"shards_verified", 0},
               {"corrupt_found", 0},
               {"last_pass_unix_ms", nullptr},
               {"last_finding", nullptr},
               {"progress", nullptr},
               {"note", nullptr}};
  Node* self = n.get();
  n->writer_thread_ = std::jthread([self](std::stop_token st) { self->WriterLoop(st); });
  if (opt.config.scrub_rate > 0)
    n->scrub_thread_ = std::jthread([self](std::stop_token st) { self->ScrubLoop(st); });
  return n;
}

void Node::Stop() {
  {
    std::lock_guard lock(queue_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  if (writer_thread_.joinable()) {
    writer_thread_.request_stop();
    writer_thread_.join();
  }
  if (scrub_thread_.joinable()) {
    scrub_thread_.request_stop();
    scrub_thread_.join();
  }
  std::vector<std::jthread> threads;
  {
    std::lock_guard lock(ops_mu_);
    for (auto& op : ops_) op->cancel = true;
    threads.swap(op_threads_);
  }
  threads.clear();  // joins
}

Status Node::RefreshReader() {
  DFRP_ASSIGN_OR_RETURN(std::unique_ptr<Store> fresh,
                        Store::Open(opt_.config, Store::Mode::kRead, opt_.store));
  std::shared_ptr<Store> shared(std::move(fresh));
  std::lock_guard clock(open_cache_mu_);
  std::lock_guard lock(reader_mu_);
  reader_ = std::move(shared);
  open_cache_.clear();
  generation_.fetch_add(1);
  return Status::OK();
}

std::shared_ptr<Store> Node::Reader() {
  std::lock_guard lock(reader_mu_);
  return reader_;
}

void Node::RefreshVolumes() {
  auto vols = writer_->ListVolumes();
  std::lock_guard lock(volumes_mu_);
  volumes_ = std::move(vols);
}

std::vector<storage::VolumeInfo> Node::Volumes() {
  // The snapshot is refreshed after every write batch and every change of a volume; take a
  // fresher one only when the writer lock is free (never wait behind a long write or check).
  if (std::unique_lock lock(writer_mu_, std::try_to_lock); lock.owns_lock()) RefreshVolumes();
  std::lock_guard vlock(volumes_mu_);
  return volumes_;
}

uint64_t Node::WritableBytes() {
  std::lock_guard lock(volumes_mu_);
  uint64_t best = 0;
  for (const auto& v : volumes_)
    if (v.state == storage::VolumeState::kActive) best = std::max(best, v.free);
  return best;
}

// --- Reads.

size_t Node::IdHash::operator()(const core::Uuid& id) const {
  uint64_t a, b;  // UUIDv7: the random half varies the most
  std::memcpy(&a, id.bytes.data(), 8);
  std::memcpy(&b, id.bytes.data() + 8, 8);
  return static_cast<size_t>(b ^ (a * 0x9e3779b97f4a7c15ull));
}

Result<OpenedShard> Node::OpenShard(const core::Uuid& id) {
  {
    std::lock_guard lock(open_cache_mu_);
    if (auto it = open_cache_.find(id); it != open_cache_.end()) return it->second;
  }
  OpenedShard out;
  {
    std::lock_guard lock(reader_mu_);
    out.store = reader_;
    DFRP_ASSIGN_OR_RETURN(storage::ShardReader r, reader_->OpenShard(id));
    out.reader = std::make_shared<const storage::ShardReader>(std::move(r));
  }
  std::lock_guard lock(open_cache_mu_);
  std::lock_guard rlock(reader_mu_);
  if (out.store != reader_) return out;  // a volume moved meanwhile: do not keep it
  if (open_cache_.size() >= kOpenCacheEntries) open_cache_.clear();
  open_cache_.emplace(id, out);
  return out;
}

Result<storage::ShardInfo> Node::Stat(const core::Uuid& id) {
  std::lock_guard lock(reader_mu_);
  return reader_->Stat(id);
}

storage::VerifyResult Node::Verify(const core::Uuid& id) {
  // The same check as `dfrp-storage verify-shard` (Store::Verify: the whole record, its stored
  // tree and metadata), on a store of its own so that it never holds the readers' lock.
  std::lock_guard lock(verify_mu_);
  const uint64_t gen = generation_.load();
  if (!verify_store_ || verify_generation_ != gen) {
    auto fresh = Store::Open(opt_.config, Store::Mode::kRead, opt_.store);
    if (!fresh) {
      storage::VerifyResult r;
      r.id = id;
      r.status = fresh.error();
      return r;
    }
    verify_store_ = std::move(*fresh);
    verify_generation_ = gen;
  }
  storage::VerifyResult r = verify_store_->Verify(id);
  if (!r.ok && r.status.IsCorruption()) metrics_.verification_failures.fetch_add(1);
  return r;
}

Result<storage::ProofSet> Node::Prove(const core::Uuid& id, uint64_t leaf) {
  DFRP_ASSIGN_OR_RETURN(OpenedShard s, OpenShard(id));
  const uint64_t leaves[] = {leaf};
  auto p = s.reader->Prove(leaves);
  if (!p && p.error().IsCorruption()) metrics_.verification_failures.fetch_add(1);
  return p;
}

Result<storage::ProofSet> Node::Audit(const core::Uuid& id, const std::string& seed,
                                      uint32_t challenges) {
  if (seed.empty() || seed.size() > storage::kMaxSeedBytes)
    return Err(Status::InvalidArgument(
        fmt::format("seed must be 1 to {} bytes of hex", storage::kMaxSeedBytes)));
  if (challenges == 0 || challenges > storage::kMaxAuditChallenges)
    return Err(Status::InvalidArgument(fmt::format("challenges={} is not between 1 and {}",
                                                   challenges, storage::kMaxAuditChallenges)));
  DFRP_ASSIGN_OR_RETURN(OpenedShard s, OpenShard(id));
  const storage::ShardReader& reader = *s.reader;
  if (reader.leaves() == 0)
    return Err(Status::InvalidArgument(
        fmt::format("shard {} is empty: it has no leaf to audit", id.ToString())));
  if (uint64_t{challenges} * reader.leaf_size() > kMaxAuditAnswerBytes)
    return Err(Status::InvalidArgument(fmt::format(
        "challenges={} of {}-byte leaves make an answer over {} MiB: ask for at most {}",
        challenges, reader.leaf_size(), kMaxAuditAnswerBytes >> 20,
        kMaxAuditAnswerBytes / reader.leaf_size())));
  const auto indices = storage::ChallengeIndices(seed, id, reader.leaves(), challenges);
  auto p = reader.Prove(indices, seed);
  if (!p && p.error().IsCorruption()) metrics_.verification_failures.fetch_add(1);
  return p;
}

// --- Writes.

std::string Node::SpoolPath() {
  const std::string dir = core::JoinPath(opt_.config.state_dir, "tmp");
  (void)opt_.store.fs->CreateDirRecursive(dir);
  return core::JoinPath(dir, "put-" + core::DefaultUuidGenerator()->NewV7().ToString());
}

void Node::SubmitWrite(PutShard put, std::function<void(WriteOutcome)> done) {
  {
    std::lock_guard lock(queue_mu_);
    if (!stopping_) {
      queue_.push_back({std::move(put), std::move(done)});
      queue_cv_.notify_one();
      return;
    }
  }
  if (!put.spool_path.empty()) (void)opt_.store.fs->RemoveFile(put.spool_path);
  done({Status::Busy("dfrpd is shutting down: send the write again once it is back"), {}});
}

namespace {

// A PUT body held in memory, read by the store without a copy of its own (the body stays
// with the PutShard, which outlives the write and any retry of it alone).
class BodyStream final : public core::SequentialFile {
 public:
  BodyStream(const std::string& body, const std::string& name) : body_(body), name_(name) {}
  Result<size_t> Read(size_t n, char* dst) override {
    const size_t k = std::min(n, body_.size() - pos_);
    std::memcpy(dst, body_.data() + pos_, k);
    pos_ += k;
    return k;
  }
  const std::string& path() const override { return name_; }
  int64_t KnownSize() const override { return static_cast<int64_t>(body_.size()); }

 private:
  const std::string& body_;
  std::string name_;
  size_t pos_ = 0;
};

storage::WriteRequest RequestFor(const PutShard& p) {
  storage::WriteRequest req;
  req.name = p.name;
  req.meta = p.meta;
  if (!p.spool_path.empty()) {
    req.path = p.spool_path;
    req.size_hint = static_cast<int64_t>(p.size);
  } else {
    req.input = std::make_unique<BodyStream>(p.body, p.name);
  }
  return req;
}

}  // namespace

void Node::WriterLoop(std::stop_token st) {
  for (;;) {
    std::vector<PendingWrite> batch;
    {
      std::unique_lock lock(queue_mu_);
      queue_cv_.wait(lock, [&] { return !queue_.empty() || stopping_; });
      if (queue_.empty()) return;  // stopping, and every write queued before was answered
      uint64_t bytes = 0;
      while (!queue_.empty() && batch.size() < kMaxBatchItems &&
             (batch.empty() || bytes + queue_.front().put.size <= kMaxBatchBytes)) {
        bytes += queue_.front().put.size;
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    auto write = [&](size_t from, size_t to) -> Status {
      std::vector<storage::WriteRequest> reqs;
      for (size_t i = from; i < to; ++i) reqs.push_back(RequestFor(batch[i].put));
      std::lock_guard lock(writer_mu_);
      auto written = writer_->Write(reqs);
      RefreshVolumes();
      if (!written) return written.error();
      const int64_t now = NowMs();
      for (size_t i = from; i < to; ++i) {
        metrics_.AddWrite(now, batch[i].put.size);
        batch[i].done({Status::OK(), (*written)[i - from]});
      }
      return Status::OK();
    };
    Status s = write(0, batch.size());
    if (!s.ok()) {
      if (batch.size() == 1) {
        batch[0].done({s, {}});
      } else {
        // One bad request must not fail the others: write each alone.
        for (size_t i = 0; i < batch.size(); ++i) {
          Status one = write(i, i + 1);
          if (!one.ok()) batch[i].done({one, {}});
        }
      }
    }
    for (const auto& p : batch)
      if (!p.put.spool_path.empty()) (void)opt_.store.fs->RemoveFile(p.put.spool_path);
  }
}

// --- Admin.

Result<storage::VolumeInfo> Node::Pause(uint32_t volume, const std::string& reason) {
  std::lock_guard lock(writer_mu_);
  DFRP_RETURN_IF_ERROR(writer_->Pause(volume, reason.empty() ? "paused through the API" : reason));
  RefreshVolumes();
  std::lock_guard vlock(volumes_mu_);
  for (const auto& v : volumes_)
    if (v.index == volume) return v;
  return Err(Status::NotFound(fmt::format("volume {} is not part of this store", volume)));
}

Result<storage::VolumeInfo> Node::Resume(uint32_t volume) {
  {
    std::lock_guard lock(ops_mu_);
    for (const auto& op : ops_) {
      std::lock_guard olock(op->mu);
      if (op->volume == volume && op->state == "running")
        return Err(Status::Busy(
            fmt::format("volume {} has a running {} operation ({}): cancel it with DELETE "
                        "/v1/operations/{} first",
                        volume, op->kind, op->id.ToString(), op->id.ToString())));
    }
  }
  std::lock_guard lock(writer_mu_);
  DFRP_RETURN_IF_ERROR(writer_->Resume(volume, "").status());
  RefreshVolumes();
  std::lock_guard vlock(volumes_mu_);
  for (const auto& v : volumes_)
    if (v.index == volume) return v;
  return Err(Status::NotFound(fmt::format("volume {} is not part of this store", volume)));
}

Result<uint64_t> Node::RetireSource(uint32_t volume) {
  std::lock_guard lock(writer_mu_);
  auto freed = writer_->RetireSource(volume);
  RefreshVolumes();
  return freed;
}

Result<std::shared_ptr<Node::Op>> Node::NewOp(const std::string& kind, uint32_t volume,
                                              json params) {
  auto op = std::make_shared<Op>();
  op->id = core::DefaultUuidGenerator()->NewV7();
  op->kind = kind;
  op->volume = volume;
  op->params = std::move(params);
  op->started_ms = NowMs();
  std::lock_guard lock(ops_mu_);
  for (const auto& o : ops_) {
    std::lock_guard olock(o->mu);
    if (o->state == "running")
      return Err(Status::Busy(fmt::format(
          "a {} operation ({}) of volume {} is running: wait for it (GET /v1/operations/{}) or "
          "cancel it (DELETE)",
          o->kind, o->id.ToString(), o->volume, o->id.ToString())));
  }
  ops_.push_front(op);
  while (ops_.size() > kKeptOperations) ops_.pop_back();
  return op;
}

void Node::Finish(const std::shared_ptr<Op>& op, const Status& s, json result) {
  std::lock_guard lock(op->mu);
  op->finished_ms = NowMs();
  op->phase = "done";
  // An ended operation's speed is over its whole length, not over its last phase.
  const double secs = static_cast<double>(op->finished_ms - op->started_ms) / 1000.0;
  op->bytes_per_sec = secs > 0 ? static_cast<double>(op->done) / secs : 0;
  if (s.ok()) {
    op->state = "succeeded";
    op->result = std::move(result);
  } else {
    op->state = op->cancel ? "cancelled" : "failed";
    op->error = ErrorJson(s)["error"];
    if (op->cancel) op->result = std::move(result);
  }
  if (op->kind == "migrate") {
    if (s.ok())
      metrics_.migrations_succeeded.fetch_add(1);
    else if (op->cancel)
      metrics_.migrations_cancelled.fetch_add(1);
    else
      metrics_.migrations_failed.fetch_add(1);
  }
}

Result<json> Node::StartMigrate(uint32_t volume, const std::string& to, bool resume,
                                bool delete_source) {
  if (to.empty() || to[0] != '/')
    return Err(Status::InvalidArgument(fmt::format(
        "\"to\" must be an absolute folder path on the daemon's machine; got '{}'", to)));
  auto lock = opt_.store.fs->TryLock(core::JoinPath(opt_.config.state_dir, "MIGRATE.lock"));
  if (!lock)
    return Err(lock.error().IsBusy()
                   ? Status::Busy("another migration of this store is running: wait for it to "
                                  "finish, then ask again")
                   : lock.error());
  DFRP_ASSIGN_OR_RETURN(
      std::shared_ptr<Op> op,
      NewOp("migrate", volume, {{"to", to}, {"resume", resume}, {"delete_source", delete_source}}));
  {
    std::lock_guard olock(ops_mu_);
    migrate_lock_ = std::move(*lock);
    op_threads_.emplace_back(
        [this, op, to, resume, delete_source] { RunMigrate(op, to, resume, delete_source); });
  }
  return OpJson(*op);
}

void Node::RunMigrate(std::shared_ptr<Op> op, std::string to, bool resume, bool delete_source) {
  const uint32_t volume = op->volume;
  const auto start = std::chrono::steady_clock::now();
  json report = {{"volume", volume},        {"to", to},
                 {"already_there", false},  {"resumed", false},
                 {"source_deleted", false}, {"source_bytes_deleted", 0}};
  auto release = [&] {
    std::lock_guard lock(ops_mu_);
    migrate_lock_.reset();
  };
  auto fail = [&](const Status& s) {
    Status final = s;
    if (op->cancel) {
      // Cancelled: the volume goes back to its old path and the partial copy's header is
      // retired (as `dfrp-storage resume N`); `migrate` (resume: false) leaves it paused.
      std::lock_guard lock(writer_mu_);
      Status undo = writer_->Resume(volume, "").status();
      if (undo.ok() && !resume) undo = writer_->Pause(volume, "a cancelled migration");
      RefreshVolumes();
      final = Status::Busy(fmt::format("the migration of volume {} was cancelled; {}", volume,
                                       undo.ok() ? "the volume is back at its old path"
                                                 : "undoing it failed: " + undo.message()));
    }
    Finish(op, final, report);
    release();
  };
  storage::MigrationSource src;
  {
    std::lock_guard lock(writer_mu_);
    auto begun = writer_->BeginMigration(volume, to);
    RefreshVolumes();
    if (!begun) return fail(begun.error());
    src = *begun;
  }
  report["from"] = src.from;
  if (src.from == src.to) {
    report["already_there"] = true;
    std::lock_guard lock(writer_mu_);
    Status s;
    if (resume) s = writer_->Resume(volume, "").status();
    report["resumed"] = resume && s.ok();
    if (s.ok() && delete_source) {
      if (auto freed = writer_->RetireSource(volume)) {
        report["source_deleted"] = true;
        report["source_bytes_deleted"] = *freed;
      }
    }
    RefreshVolumes();
    report["total_seconds"] = Since(start);
    Finish(op, s, report);
    return release();
  }
  report["files"] = src.files.size();
  report["bytes"] = src.bytes;
  auto paused = [&](const Status& s) {
    return s.WithContext(fmt::format(
        "the migration of volume {} to {} stopped; the volume stays at {}, paused (ask again to "
        "finish it, or resume the volume to cancel)",
        volume, to, src.from));
  };
  const auto copy_start = std::chrono::steady_clock::now();
  Status copied = storage::CopyVolumeFiles(
      opt_.store.fs, src, [&](uint64_t d, uint64_t t) { op->Progress("copy", d, t); },
      [&] { return op->cancel.load(); });
  if (!copied.ok()) return fail(op->cancel ? copied : paused(copied));
  report["copy_seconds"] = Since(copy_start);
  const auto verify_start = std::chrono::steady_clock::now();
  {
    op->Progress("verify", 0, src.bytes);
    auto checker = Store::Open(opt_.config, Store::Mode::kRead, opt_.store);
    if (!checker) return fail(paused(checker.error()));
    auto check = (*checker)->VerifyCopy(
        volume, to, [&](uint64_t d, uint64_t t) { op->Progress("verify", d, t); });
    if (!check) {
      if (check.error().IsCorruption()) metrics_.verification_failures.fetch_add(1);
      return fail(check.error().WithContext(fmt::format(
          "the copy at {} did not verify; volume {} stays at {}, paused", to, volume, src.from)));
    }
    report["shards_verified"] = check->shards;
  }
  report["verify_seconds"] = Since(verify_start);
  if (op->cancel) return fail(Status::Busy("cancelled before the switch"));
  op->Progress("switch", src.bytes, src.bytes);
  {
    std::lock_guard lock(writer_mu_);
    Status s = writer_->FinishMigration(src, resume);
    RefreshVolumes();
    if (!s.ok()) return fail(paused(s));
  }
  report["resumed"] = resume;
  // New reads go to the new folder before the old one can be deleted; reads in flight keep
  // their open files (and the old store) until they finish.
  Status refreshed = RefreshReader();
  if (delete_source && refreshed.ok()) {
    std::lock_guard lock(writer_mu_);
    auto freed = writer_->RetireSource(volume);
    RefreshVolumes();
    if (freed) {
      report["source_deleted"] = true;
      report["source_bytes_deleted"] = *freed;
    }
  }
  report["total_seconds"] = Since(start);
  Finish(op, refreshed, report);
  release();
}

Result<json> Node::StartResumeAt(uint32_t volume, const std::string& path) {
  if (path.empty() || path[0] != '/')
    return Err(Status::InvalidArgument(fmt::format(
        "\"path\" must be an absolute folder path on the daemon's machine; got '{}'", path)));
  DFRP_ASSIGN_OR_RETURN(std::shared_ptr<Op> op, NewOp("resume", volume, {{"path", path}}));
  op->Progress("verify", 0, 0);
  std::lock_guard lock(ops_mu_);
  op_threads_.emplace_back([this, op, path] { RunResumeAt(op, path); });
  return OpJson(*op);
}

void Node::RunResumeAt(std::shared_ptr<Op> op, std::string path) {
  Status s;
  json result;
  {
    // Store::Resume with a path verifies the copy under the writer lock (writes wait).
    std::lock_guard lock(writer_mu_);
    auto check = writer_->Resume(op->volume, path,
                                 [&](uint64_t d, uint64_t t) { op->Progress("verify", d, t); });
    RefreshVolumes();
    if (check) {
      result = {{"volume", check->volume},
                {"path", check->path},
                {"segments", check->segments},
                {"shards", check->shards},
                {"bytes", check->bytes}};
    } else {
      s = check.error();
      if (s.IsCorruption()) metrics_.verification_failures.fetch_add(1);
    }
  }
  if (s.ok()) s = RefreshReader();
  Finish(op, s, result);
}

json Node::OpJson(const Op& op) const {
  std::lock_guard lock(op.mu);
  return {{"id", op.id.ToString()},
          {"kind", op.kind},
          {"volume", op.volume},
          {"state", op.state},
          {"phase", op.phase},
          {"done", op.done},
          {"total", op.total},
          {"bytes_per_sec", op.bytes_per_sec},
          {"started_unix_ms", op.started_ms},
          {"finished_unix_ms", op.finished_ms ? json(op.finished_ms) : json(nullptr)},
          {"error", op.error},
          {"result", op.result},
          {"params", op.params}};
}

Result<json> Node::Operation(const core::Uuid& id) {
  std::lock_guard lock(ops_mu_);
  for (const auto& op : ops_)
    if (op->id == id) return OpJson(*op);
  return Err(Status::NotFound(fmt::format("no operation {} (this daemon keeps its last {})",
                                          id.ToString(), kKeptOperations)));
}

json Node::Operations() {
  json arr = json::array();
  std::lock_guard lock(ops_mu_);
  for (const auto& op : ops_) arr.push_back(OpJson(*op));
  return arr;
}

Result<json> Node::Cancel(const core::Uuid& id) {
  std::lock_guard lock(ops_mu_);
  for (const auto& op : ops_) {
    if (op->id != id) continue;
    {
      std::lock_guard olock(op->mu);
      if (op->state != "running")
        return Err(
            Status::Busy(fmt::format("operation {} already ended ({})", id.ToString(), op->state)));
      if (op->kind != "migrate")
        return Err(Status::Busy(fmt::format(
            "a {} operation cannot be cancelled once it began: it ends when the check does",
            op->kind)));
    }
    op->cancel = true;
    return OpJson(*op);
  }
  return Err(Status::NotFound(fmt::format("no operation {}", id.ToString())));
}

// --- Background scrubbing.

void Node::ScrubLoop(std::stop_token st) {
  auto set = [&](const char* key, json v) {
    std::lock_guard lock(scrub_mu_);
    scrub_[key] = std::move(v);
  };
  auto wait = [&](int64_t ms) {
    std::mutex m;
    std::condition_variable_any cv;
    std::unique_lock lock(m);
    cv.wait_for(lock, st, std::chrono::milliseconds(ms), [] { return false; });
  };
  wait(2000);  // let the daemon settle first
  while (!st.stop_requested()) {
    const uint64_t gen = generation_.load();
    auto store = Store::Open(opt_.config, Store::Mode::kRead, opt_.store);
    std::unique_ptr<storage::Scrubber> scrubber;
    if (store) {
      auto sc = storage::Scrubber::Open(**store, opt_.config.state_dir, opt_.store.fs);
      if (sc)
        scrubber = std::move(*sc);
      else
        set("note", sc.error().message());
    } else {
      set("note", store.error().message());
    }
    if (!scrubber) {
      wait(opt_.scrub_pass_interval_ms);
      continue;
    }
    set("note", nullptr);
    set("running", true);
    storage::ScrubOptions so;
    so.rate_bytes_per_sec = static_cast<double>(opt_.config.scrub_rate);
    // A volume that moves ends the pass; the next one opens the store afresh.
    so.should_stop = [&] { return st.stop_requested() || generation_.load() != gen; };
    uint64_t last_bytes = 0;
    so.progress = [&](const storage::ScrubProgress& p) {
      if (p.bytes_done > last_bytes) {
        metrics_.scrub_bytes.fetch_add(p.bytes_done - last_bytes);
        last_bytes = p.bytes_done;
      }
      std::lock_guard lock(scrub_mu_);
      scrub_["bytes_verified"] = metrics_.scrub_bytes.load();
      scrub_["progress"] =
          p.bytes_total ? static_cast<double>(p.bytes_done) / static_cast<double>(p.bytes_total)
                        : 1.0;
    };
    so.on_finding = [&](const storage::ScrubFinding& f) {
      if (!f.status.IsCorruption()) return;
      metrics_.scrub_corrupt.fetch_add(1);
      metrics_.verification_failures.fetch_add(1);
      std::lock_guard lock(scrub_mu_);
      scrub_["corrupt_found"] = metrics_.scrub_corrupt.load();
      scrub_["last_finding"] = {{"shard_id", f.id.ToString()}, {"volume", f.volume},
                                {"segment", f.segment_path},   {"offset", f.offset},
                                {"error", f.status.message()}, {"unix_ms", NowMs()}};
    };
    auto report = scrubber->Run(so);
    scrubber.reset();
    set("running", false);
    if (report) {
      metrics_.scrub_shards.fetch_add(report->shards_verified);
      set("shards_verified", metrics_.scrub_shards.load());
      bool completed = !report->stopped;
      for (const auto& v : report->volumes)
        completed = completed && (v.pass_completed || !v.skipped.empty());
      if (completed) set("last_pass_unix_ms", NowMs());
    } else {
      set("note", report.error().message());
    }
    if (!report || !report->stopped) wait(opt_.scrub_pass_interval_ms);
  }
}

// --- Status and metrics.

json Node::StatusJson(const std::string& api_addr) {
  const int64_t now = NowMs();
  uint64_t shards = 0, payload = 0;
  {
    std::lock_guard lock(volumes_mu_);
    for (const auto& v : volumes_) {
      shards += v.shards;
      payload += v.payload_bytes;
    }
  }
  json samples = json::array();
  for (const auto& s : metrics_.throughput.Samples(now))
    samples.push_back(
        {{"t_unix_ms", s.t_unix_ms}, {"read_bytes", s.read_bytes}, {"write_bytes", s.write_bytes}});
  json scrub;
  {
    std::lock_guard lock(scrub_mu_);
    scrub = scrub_;
  }
  return {{"version", kVersion},
          {"uptime_seconds", UptimeSeconds()},
          {"store_id", store_id_.ToString()},
          {"state_dir", opt_.config.state_dir},
          {"api_addr", api_addr},
          {"started_unix_ms", started_ms_},
          {"shards", shards},
          {"payload_bytes", payload},
          {"counters",
           {{"bytes_written", metrics_.bytes_written.load()},
            {"bytes_read", metrics_.bytes_read.load()},
            {"shards_written", metrics_.shards_written.load()},
            {"shards_read", metrics_.shards_read.load()},
            {"verification_failures", metrics_.verification_failures.load()},
            {"requests", metrics_.requests.load()}}},
          {"throughput",
           {{"interval_seconds", ThroughputSeries::kIntervalSeconds}, {"samples", samples}}},
          {"scrub", scrub},
          {"operations", Operations()}};
}

std::string Node::MetricsText() {
  std::string out = fmt::format(
      "# HELP dfrp_build_info The daemon's version.\n# TYPE dfrp_build_info gauge\n"
      "dfrp_build_info{{version=\"{}\"}} 1\n"
      "# HELP dfrp_uptime_seconds Seconds since the daemon started.\n"
      "# TYPE dfrp_uptime_seconds gauge\ndfrp_uptime_seconds {}\n",
      kVersion, UptimeSeconds());
  std::vector<storage::VolumeInfo> vols;
  {
    std::lock_guard lock(volumes_mu_);
    vols = volumes_;
  }
  auto gauge = [&](const char* name, const char* help, auto value) {
    out += fmt::format("# HELP {} {}\n# TYPE {} gauge\n", name, help, name);
    for (const auto& v : vols)
      out += fmt::format("{}{{volume=\"{}\",state=\"{}\"}} {}\n", name, v.index,
                         storage::VolumeStateName(v.state), value(v));
  };
  gauge("dfrp_volume_quota_bytes", "Each volume's quota.", [](const auto& v) { return v.quota; });
  gauge("dfrp_volume_used_bytes", "Bytes of each volume's segment files.",
        [](const auto& v) { return v.used; });
  gauge("dfrp_volume_shards", "Shards on each volume.", [](const auto& v) { return v.shards; });
  {
    std::lock_guard lock(scrub_mu_);
    out += "# HELP dfrp_scrub_pass_progress Fraction of the current scrub pass done.\n";
    out += "# TYPE dfrp_scrub_pass_progress gauge\n";
    out += fmt::format("dfrp_scrub_pass_progress {}\n",
                       scrub_["progress"].is_number() ? scrub_["progress"].get<double>() : 0.0);
  }
  out += metrics_.Render();
  return out;
}

}  // namespace dfrp::node
