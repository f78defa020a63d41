#include "dfrp/cli/local_storage_service.h"

#include <fmt/format.h>

#include <utility>

#include "dfrp/cli/storage_cli_internal.h"
#include "dfrp/node/token.h"
#include "dfrp/node/views.h"
#include "dfrp/storage/migrate.h"

namespace dfrp::cli {

using core::Err;
using core::Result;
using core::Status;
using nlohmann::json;
using storage::Store;

namespace {

json VolumesJson(const std::vector<storage::VolumeInfo>& vols) {
  json arr = json::array();
  for (const auto& v : vols) arr.push_back(node::VolumeJson(v));
  return arr;
}

// The whole payload, verified leaf by leaf before it is handed over (Store::Read).
class WholePayload final : public PayloadSource {
 public:
  WholePayload(Store* store, core::Uuid id, std::function<void(uint64_t)> count)
      : store_(store), id_(id), count_(std::move(count)) {}
  Status ReadTo(const storage::SinkFn& sink) override {
    uint64_t handed = 0;
    Status s = store_->Read(id_, [&](std::string_view piece) -> Status {
      Status s = sink(piece);
      if (s.ok()) handed += piece.size();
      return s;
    });
    count_(handed);
    return s;
  }

 private:
  Store* store_;
  core::Uuid id_;
  std::function<void(uint64_t)> count_;  // the verified bytes handed out
};

// A range: only the leaves it touches are read and verified (storage/shard_reader.h).
class RangePayload final : public PayloadSource {
 public:
  RangePayload(storage::ShardReader reader, ByteRange range, std::function<void(uint64_t)> count)
      : reader_(std::move(reader)), range_(range), count_(std::move(count)) {}
  Status ReadTo(const storage::SinkFn& sink) override {
    uint64_t handed = 0;
    Status s = reader_.ReadRange(
        range_.offset, range_.length,
        [&](std::string_view piece) -> Status {
          Status s = sink(piece);
          if (s.ok()) handed += piece.size();
          return s;
        },
        0);
    count_(handed);
    return s;
  }

 private:
  storage::ShardReader reader_;
  ByteRange range_;
  std::function<void(uint64_t)> count_;
};

}  // namespace

LocalStorageService::LocalStorageService(core::NodeConfig config, core::FileSystem* fs,
                                         core::Clock* clock, NoticeFn notice)
    : config_(std::move(config)), fs_(fs), clock_(clock), notice_(std::move(notice)) {}

LocalStorageService::~LocalStorageService() {
  store_.reset();  // before the counter it points at
  if (usage_) (void)usage_->Close();
}

Status LocalStorageService::OpenUsage(bool background_flush) {
  if (usage_) return Status::OK();
  // The epochs are the policy's, as dfrpd's (economic.toml is validated here too).
  DFRP_ASSIGN_OR_RETURN(
      economy::EconomicPolicy policy,
      economy::LoadEconomicPolicy(fs_, config_.economic_policy, config_.config_dir));
  economy::UsageOptions uo{.path = economy::UsagePath(config_.state_dir),
                           .epoch_seconds = policy.pricing.epoch_seconds,
                           .clock = clock_,
                           // else flushed when the command ends
                           .background_flush = background_flush};
  DFRP_ASSIGN_OR_RETURN(usage_, economy::UsageCounter::Open(uo));
  return Status::OK();
}

void LocalStorageService::CountRead(const core::Uuid& id, uint64_t bytes) {
  if (usage_ && bytes > 0) usage_->OnRead(core::RequestContext{}, id, bytes);
}

void LocalStorageService::CountProof(const core::Uuid& id, uint64_t leaves) {
  if (usage_) usage_->OnProof(core::RequestContext{}, id, leaves);
}

storage::StoreOptions LocalStorageService::Options() const {
  storage::StoreOptions opt;
  opt.fs = fs_;
  opt.clock = clock_;
  return opt;
}

Result<Store*> LocalStorageService::Open(Store::Mode mode) {
  if (store_ && (mode_ == Store::Mode::kWrite || mode == Store::Mode::kRead)) return store_.get();
  vectors_.reset();
  store_.reset();  // a reader gives way to a writer
  DFRP_ASSIGN_OR_RETURN(store_, Store::Open(config_, mode, Options()));
  mode_ = mode;
  for (const auto& n : store_->notices()) notice_(n);
  if (mode == Store::Mode::kWrite) {
    DFRP_RETURN_IF_ERROR(OpenUsage());
    // Only the writer reconciles: a reader could count a writer's shard before its row.
    DFRP_RETURN_IF_ERROR(usage_->Reconcile(*store_).status());
    store_->SetObserver(usage_.get());
  }
  return store_.get();
}

Result<InitOutcome> LocalStorageService::Init(bool create_missing_folders) {
  storage::StoreOptions opt = Options();
  opt.create_missing_drive_folders = create_missing_folders;
  InitOutcome out;
  DFRP_ASSIGN_OR_RETURN(out.report, Store::Init(config_, opt));
  // The admin token dfrpd's API asks for (docs/API.md), readable by this user only.
  DFRP_RETURN_IF_ERROR(node::EnsureApiToken(fs_, config_.state_dir).status());
  DFRP_ASSIGN_OR_RETURN(out.volumes, ListVolumes());
  return out;
}

WriteOutcome LocalStorageService::Write(const std::vector<WriteInput>& inputs,
                                        const storage::ShardMetadata& base,
                                        const storage::ProgressFn& progress) {
  WriteOutcome out;
  std::vector<storage::WriteRequest> batch;
  batch.reserve(inputs.size());
  for (const WriteInput& in : inputs) {
    storage::WriteRequest req;
    req.name = in.name;
    req.meta = base;
    if (in.kind == WriteInput::Kind::kStdin) {
      req.input = core::SequentialFileFromFd(0, "standard input");
    } else if (in.kind == WriteInput::Kind::kStream) {
      auto stream = fs_->OpenSequential(in.name);
      if (!stream) {
        out.status = stream.error();
        return out;
      }
      req.input = std::move(*stream);
    } else {
      req.size_hint = in.size;
    }
    if (in.kind != WriteInput::Kind::kStdin) req.path = in.name;
    batch.push_back(std::move(req));
  }
  auto store = Open(Store::Mode::kWrite);
  if (!store) {
    out.status = store.error();
    return out;
  }
  const size_t notices_before = (*store)->notices().size();
  auto written = (*store)->Write(batch, progress);
  if (!written) {
    out.status = written.error();
    return out;
  }
  for (size_t i = notices_before; i < (*store)->notices().size(); ++i)
    notice_((*store)->notices()[i]);
  for (const auto& s : *written) out.written.push_back(node::WrittenJson(s));
  return out;
}

Result<std::unique_ptr<PayloadSource>> LocalStorageService::OpenPayload(
    const core::Uuid& id, const std::optional<ByteRange>& range) {
  DFRP_ASSIGN_OR_RETURN(Store * store, Open(Store::Mode::kRead));
  DFRP_RETURN_IF_ERROR(OpenUsage());  // a damaged usage.db is refused before the work
  auto count = [this, id](uint64_t bytes) { CountRead(id, bytes); };
  if (!range) return std::unique_ptr<PayloadSource>(new WholePayload(store, id, count));
  DFRP_ASSIGN_OR_RETURN(storage::ShardReader reader, store->OpenShard(id));
  return std::unique_ptr<PayloadSource>(new RangePayload(std::move(reader), *range, count));
}

Result<json> LocalStorageService::Stat(const core::Uuid& id) {
  DFRP_ASSIGN_OR_RETURN(Store * store, Open(Store::Mode::kRead));
  DFRP_ASSIGN_OR_RETURN(storage::ShardInfo info, store->Stat(id));
  return node::ShardInfoJson(id, info);
}

Status LocalStorageService::Verify(const std::vector<core::Uuid>& ids, const VerifyEach& each,
                                   const storage::ProgressFn& progress) {
  DFRP_ASSIGN_OR_RETURN(Store * store, Open(Store::Mode::kRead));
  for (const auto& id : ids) each(node::VerifyJson(store->Verify(id, progress)));
  return Status::OK();
}

Status LocalStorageService::VerifyAll(const VerifyEach& each, const storage::ProgressFn& progress) {
  DFRP_ASSIGN_OR_RETURN(Store * store, Open(Store::Mode::kRead));
  return store->VerifyAll([&](const storage::VerifyResult& r) { each(node::VerifyJson(r)); },
                          progress);
}

Result<storage::ProofSet> LocalStorageService::Prove(const core::Uuid& id, uint64_t leaf) {
  DFRP_ASSIGN_OR_RETURN(Store * store, Open(Store::Mode::kRead));
  DFRP_RETURN_IF_ERROR(OpenUsage());  // a damaged usage.db is refused before the work
  DFRP_ASSIGN_OR_RETURN(storage::ShardReader reader, store->OpenShard(id));
  const uint64_t leaves[] = {leaf};
  auto proof = reader.Prove(leaves);
  if (proof) CountProof(id, 1);
  return proof;
}

Result<storage::ProofSet> LocalStorageService::Audit(const core::Uuid& id, const std::string& seed,
                                                     uint32_t challenges) {
  DFRP_ASSIGN_OR_RETURN(Store * store, Open(Store::Mode::kRead));
  DFRP_RETURN_IF_ERROR(OpenUsage());  // a damaged usage.db is refused before the work
  DFRP_ASSIGN_OR_RETURN(storage::ShardReader reader, store->OpenShard(id));
  if (reader.leaves() == 0)
    return Err(Status::InvalidArgument(
        fmt::format("shard {} is empty: it has no leaf to audit", id.ToString())));
  // Keep the answer well inside what verify-proof reads (kMaxProofFileBytes, hex in JSON).
  if (uint64_t{challenges} * reader.leaf_size() > kMaxProofFileBytes / 4)
    return Err(Status::InvalidArgument(fmt::format(
        "--challenges {} of {}-byte leaves make an answer over {} MiB: ask for at most {}",
        challenges, reader.leaf_size(), kMaxProofFileBytes / 4 >> 20,
        kMaxProofFileBytes / 4 / reader.leaf_size())));
  const auto indices = storage::ChallengeIndices(seed, id, reader.leaves(), challenges);
  auto answer = reader.Prove(indices, seed);
  if (answer) CountProof(id, indices.size());
  return answer;
}

Result<json> LocalStorageService::ListVolumes() {
  DFRP_ASSIGN_OR_RETURN(Store * store, Open(Store::Mode::kRead));
  return VolumesJson(store->ListVolumes());
}

Result<std::vector<uint32_t>> LocalStorageService::Pause(std::optional<uint32_t> volume,
                                                         const std::string& reason) {
  DFRP_ASSIGN_OR_RETURN(Store * store, Open(Store::Mode::kWrite));
  const std::vector<uint32_t> targets =
      volume ? std::vector<uint32_t>{*volume}
             : VolumesToPauseOrResume(VolumesJson(store->ListVolumes()), false);
  for (uint32_t v : targets) DFRP_RETURN_IF_ERROR(store->Pause(v, reason));
  return targets;
}

Result<std::vector<uint32_t>> LocalStorageService::Resume(std::optional<uint32_t> volume) {
  DFRP_ASSIGN_OR_RETURN(Store * store, Open(Store::Mode::kWrite));
  const std::vector<uint32_t> targets =
      volume ? std::vector<uint32_t>{*volume}
             : VolumesToPauseOrResume(VolumesJson(store->ListVolumes()), true);
  for (uint32_t v : targets) DFRP_RETURN_IF_ERROR(store->Resume(v, "").status());
  return targets;
}

Result<json> LocalStorageService::ResumeAt(uint32_t volume, const std::string& path,
                                           const PhaseProgress& progress) {
  DFRP_ASSIGN_OR_RETURN(Store * store, Open(Store::Mode::kWrite));
  DFRP_ASSIGN_OR_RETURN(
      storage::VolumeCheck check,
      store->Resume(volume, path, [&](uint64_t d, uint64_t t) { progress("verify", d, t); }));
  return json{{"volume", check.volume},
              {"path", check.path},
              {"segments", check.segments},
              {"shards_verified", check.shards},
              {"bytes", check.bytes}};
}

Result<json> LocalStorageService::Migrate(uint32_t volume, const std::string& to, bool resume,
                                          bool delete_source, const PhaseProgress& progress) {
  store_.reset();  // MigrateVolume takes the writer lock itself, at its start and its end
  storage::MigrateOptions mo;
  mo.resume = resume;
  mo.delete_source = delete_source;
  mo.progress = progress;
  mo.retry_hint = fmt::format(
      "run the command again to finish it, or `dfrp-storage resume {}` to cancel", volume);
  DFRP_ASSIGN_OR_RETURN(storage::MigrateReport r,
                        storage::MigrateVolume(config_, Options(), volume, to, mo));
  return node::MigrateReportJson(r);
}

Result<uint64_t> LocalStorageService::RetireSource(uint32_t volume) {
  DFRP_ASSIGN_OR_RETURN(Store * store, Open(Store::Mode::kWrite));
  return store->RetireSource(volume);
}

Result<storage::RebuildReport> LocalStorageService::RebuildIndex(
    const storage::ProgressFn& progress) {
  DFRP_ASSIGN_OR_RETURN(Store * store, Open(Store::Mode::kWrite));
  DFRP_ASSIGN_OR_RETURN(storage::RebuildReport report, store->RebuildIndex(progress));
  // The vector index is built from the drives too, from the records the new index lists.
  DFRP_RETURN_IF_ERROR(OpenVectors(true).status());
  return report;
}

Result<vector::ShardVectors*> LocalStorageService::OpenVectors(bool rebuild) {
  DFRP_ASSIGN_OR_RETURN(Store * store, Open(mode_));
  if (vectors_ && !rebuild) return vectors_.get();
  vectors_.reset();
  DFRP_ASSIGN_OR_RETURN(
      vectors_, vector::ShardVectors::Open(store, config_.state_dir,
                                           vector::ShardVectorsOptionsFor(config_), rebuild));
  const vector::ShardVectorsReport& r = vectors_->report();
  if (r.built)
    notice_(fmt::format("vector index: built from the drives ({}): {} shard vectors", r.why_built,
                        vectors_->size()));
  for (const auto& n : r.notices) notice_("vector index: " + n);
  if (vectors_->unsaved() > 0) {
    Status saved = vectors_->Save();
    if (!saved.ok()) notice_("vector index: " + saved.message());
  }
  return vectors_.get();
}

Result<json> LocalStorageService::SearchShards(const node::SearchQuery& query) {
  DFRP_ASSIGN_OR_RETURN(vector::ShardVectors * index, OpenVectors(false));
  Store* store = store_.get();
  return node::SearchShardsJson(
      *index, query, [store](const core::Uuid& id) { return store->Stat(id); }, clock_);
}

// The daemon, when one runs, holds the store open with the drives it started with: a new
// drive needs a restart anyway, so only this implementation adds one.
Result<json> LocalStorageService::AddDrive(const AddDriveRequest& request) {
  const core::NodeConfig& cfg = config_;
  if (cfg.source == "environment")
    return Err(Status::InvalidArgument(
        "the drives come from the environment (DRIVE_n variables): add DRIVE_n and QUOTA_n "
        "there, then run init-storage"));
  auto bytes = core::ParseByteSize(request.quota);
  if (!bytes || *bytes == 0)
    return Err(Status::InvalidArgument(
        fmt::format("'{}' is not a quota: write bytes or a number with K, M, G or T, such as 500G",
                    request.quota)));
  if (request.path.find_first_of("\"\\\n\r") != std::string::npos)
    return Err(Status::InvalidArgument(fmt::format(
        "the drive path '{}' holds a quote, backslash or line break, which the config file "
        "cannot hold as written: use a path without them",
        request.path)));
  const std::string drive = AbsolutePath(request.path);
  for (const auto& d : cfg.drives)
    if (d.path == drive)
      return Err(Status::InvalidArgument(
          fmt::format("{} is already DRIVE_{}: give the new drive's folder", drive, d.index)));
  const int n = static_cast<int>(cfg.drives.size());
  // Lay it out first, so that a bad drive never reaches the config file.
  core::NodeConfig next = cfg;
  next.drives.push_back({n, drive, *bytes});
  storage::StoreOptions opt = Options();
  opt.create_missing_drive_folders = request.create;
  store_.reset();
  DFRP_ASSIGN_OR_RETURN(storage::InitReport init, Store::Init(next, opt));
  std::string file, text;
  const bool toml = cfg.is_embedded_default || cfg.source.ends_with(".toml");
  if (cfg.is_embedded_default) {
    // The embedded default has no file: write ./dfrp.toml with its drives and the new one.
    file = AbsolutePath("dfrp.toml");
    text = "# written by `dfrp-storage add-drive`: the embedded default plus new drives\n";
    text += fmt::format("STATE_DIR = \"{}\"\n", cfg.state_dir);
    for (const auto& d : cfg.drives)
      text += fmt::format("DRIVE_{} = \"{}\"\nQUOTA_{} = {}\n", d.index, d.path, d.index, d.quota);
  } else {
    file = cfg.source;
    DFRP_ASSIGN_OR_RETURN(text, core::ReadWholeFile(fs_, file));
    if (!text.empty() && text.back() != '\n') text += '\n';
  }
  text += toml ? fmt::format("DRIVE_{} = \"{}\"\nQUOTA_{} = \"{}\"\n", n, drive, n, request.quota)
               : fmt::format("DRIVE_{}={}\nQUOTA_{}={}\n", n, drive, n, request.quota);
  Status written = core::WriteFileAtomic(fs_, file, text);
  if (!written.ok())
    return Err(Status::IOError(fmt::format(
        "volume {} is laid out at {}, but {} could not be updated ({}): add DRIVE_{} and "
        "QUOTA_{} to it by hand",
        n, drive, file, written.message(), n, n)));
  return json{{"volume", n},
              {"path", drive},
              {"quota", *bytes},
              {"config", file},
              {"store_id", init.store_id.ToString()}};
}

Result<storage::ScrubReport> LocalStorageService::Scrub(const storage::ScrubOptions& options) {
  DFRP_ASSIGN_OR_RETURN(Store * store, Open(Store::Mode::kRead));
  DFRP_ASSIGN_OR_RETURN(auto scrubber, storage::Scrubber::Open(*store, config_.state_dir, fs_));
  return scrubber->Run(options);
}

Status LocalStorageService::Mount(const fuse::FuseViewOptions& options) {
  DFRP_ASSIGN_OR_RETURN(Store * store, Open(Store::Mode::kRead));
  // The view serves for as long as it is mounted: its reads are flushed each second.
  DFRP_RETURN_IF_ERROR(OpenUsage(/*background_flush=*/true));
  fuse::FuseViewOptions with_usage = options;
  with_usage.observer = usage_.get();
  return fuse::RunFuseView(*store, with_usage);
}

}  // namespace dfrp::cli
