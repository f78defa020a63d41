#include "dfrp/storage/store.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "dfrp/core/bytes.h"
#include "dfrp/storage/format.h"
#include "dfrp/storage/record_io.h"
#include "dfrp/storage/store_internal.h"

namespace dfrp::storage {

using core::Err;
using core::Result;
using core::Status;
using core::Uuid;

const char* VolumeStateName(VolumeState s) {
  switch (s) {
    case VolumeState::kActive:
      return "active";
    case VolumeState::kFull:
      return "full";
    case VolumeState::kPaused:
      return "paused";
    case VolumeState::kMissing:
      return "missing";
    case VolumeState::kUninitialized:
      return "uninitialized";
  }
  return "unknown";
}

Result<std::optional<Manifest>> ReadManifest(core::FileSystem* fs, const std::string& state_dir) {
  const std::string path = core::JoinPath(state_dir, kManifestFileName);
  if (!fs->Exists(path)) return std::optional<Manifest>();
  DFRP_ASSIGN_OR_RETURN(std::string text, core::ReadWholeFile(fs, path));
  auto doc = nlohmann::json::parse(text, nullptr, false);
  Manifest m;
  std::optional<Uuid> id;
  if (!doc.is_discarded() && doc.is_object() && doc.value("format", 0) == 1 &&
      doc.contains("store_id") && doc["store_id"].is_string())
    id = Uuid::Parse(doc["store_id"].get<std::string>());
  if (!id || !doc.contains("volumes") || !doc["volumes"].is_array())
    return Err(Status::Corruption(fmt::format(
        "store manifest {} is damaged: restore it, or remove it and run init-storage to adopt "
        "the store from its drives",
        path)));
  m.store_id = *id;
  for (const auto& v : doc["volumes"])
    if (v.is_number_unsigned()) m.volumes.push_back(v.get<uint32_t>());
  std::sort(m.volumes.begin(), m.volumes.end());
  if (doc.contains("vector_dim") && doc["vector_dim"].is_number_unsigned())
    m.vector_dim = doc["vector_dim"].get<uint32_t>();
  // Per-volume states: objects keyed by the volume number.
  auto each = [&](const char* key, const std::function<void(uint32_t, const nlohmann::json&)>& fn) {
    if (!doc.contains(key) || !doc[key].is_object()) return;
    for (const auto& [k, v] : doc[key].items()) {
      uint64_t n;
      if (core::ParseDecimal(k, &n) && n <= UINT32_MAX) fn(static_cast<uint32_t>(n), v);
    }
  };
  each("paused", [&](uint32_t n, const nlohmann::json& v) {
    m.paused[n] = v.is_string() ? v.get<std::string>() : "";
  });
  each("full", [&](uint32_t n, const nlohmann::json& v) {
    m.full[n] = v.is_string() ? v.get<std::string>() : "";
  });
  each("migrating", [&](uint32_t n, const nlohmann::json& v) {
    if (v.is_string()) m.migrating[n] = v.get<std::string>();
  });
  each("moved", [&](uint32_t n, const nlohmann::json& v) {
    if (v.is_object() && v.contains("from") && v["from"].is_string() && v.contains("to") &&
        v["to"].is_string())
      m.moved[n] = VolumeMove{v["from"].get<std::string>(), v["to"].get<std::string>(),
                              v.value("old", std::string())};
  });
  return std::optional<Manifest>(m);
}

Status WriteManifest(core::FileSystem* fs, const std::string& state_dir, const Manifest& m) {
  nlohmann::json doc = {{"format", 1}, {"store_id", m.store_id.ToString()}, {"volumes", m.volumes}};
  if (m.vector_dim != 0) doc["vector_dim"] = m.vector_dim;
  auto put = [&](const char* key, const std::map<uint32_t, std::string>& values) {
    if (values.empty()) return;
    nlohmann::json o = nlohmann::json::object();
    for (const auto& [n, v] : values) o[std::to_string(n)] = v;
    doc[key] = o;
  };
  put("paused", m.paused);
  put("full", m.full);
  put("migrating", m.migrating);
  if (!m.moved.empty()) {
    nlohmann::json o = nlohmann::json::object();
    for (const auto& [n, mv] : m.moved)
      o[std::to_string(n)] = {{"from", mv.from}, {"to", mv.to}, {"old", mv.old}};
    doc["moved"] = o;
  }
  return core::WriteFileAtomic(fs, core::JoinPath(state_dir, kManifestFileName),
                               doc.dump(1) + "\n");
}

std::string ResolveDrivePath(const Manifest& m, const core::DriveConfig& d) {
  auto mv = m.moved.find(static_cast<uint32_t>(d.index));
  if (mv != m.moved.end() && (d.path == mv->second.from || d.path == mv->second.to))
    return mv->second.to;
  return d.path;
}

std::optional<std::string> MovedTo(core::FileSystem* fs, const std::string& drive) {
  const std::string path = core::JoinPath(drive, kMovedVolumeFileName);
  if (!fs->Exists(path)) return std::nullopt;
  auto text = core::ReadWholeFile(fs, path);
  if (!text) return std::string("(unreadable marker)");
  auto doc = nlohmann::json::parse(*text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("moved_to") ||
      !doc["moved_to"].is_string())
    return std::string("(unreadable marker)");
  return doc["moved_to"].get<std::string>();
}

Result<VolumeHeader> ReadVolumeHeader(core::FileSystem* fs, const std::string& drive) {
  const std::string path = core::JoinPath(drive, kVolumeFileName);
  if (!fs->Exists(path)) return Err(Status::NotFound(fmt::format("{} is absent", path)));
  DFRP_ASSIGN_OR_RETURN(std::string bytes, core::ReadWholeFile(fs, path));
  return DecodeVolumeHeader(bytes, path);
}

namespace {

// The one-writer lock of a store; Busy with a plain message when another process holds it.
Result<std::unique_ptr<core::FileLock>> AcquireWriterLock(core::FileSystem* fs,
                                                          const std::string& state_dir) {
  auto lock = fs->TryLock(core::JoinPath(state_dir, kLockFileName));
  if (!lock && lock.error().IsBusy())
    return Err(Status::Busy(fmt::format(
        "store at {} is busy: another dfrp process is writing to it; wait for it to finish",
        state_dir)));
  return lock;
}

// Checks a configured drive before init lays it out; returns its header if it has one.
Result<std::optional<VolumeHeader>> InspectDrive(core::FileSystem* fs, const core::DriveConfig& d,
                                                 bool create_folder) {
  if (!fs->IsDirectory(d.path)) {
    if (fs->Exists(d.path))
      return Err(Status::InvalidArgument(
          fmt::format("DRIVE_{} ({}) is a file, not a folder: point DRIVE_{} at the drive's folder",
                      d.index, d.path, d.index)));
    if (!create_folder)
      return Err(Status::InvalidArgument(fmt::format(
          "DRIVE_{} ({}) does not exist: mount the drive there or create the folder, then run "
          "init-storage again (or pass --create)",
          d.index, d.path)));
    DFRP_RETURN_IF_ERROR(fs->CreateDirRecursive(d.path));
    DFRP_RETURN_IF_ERROR(fs->SyncDir(core::DirName(d.path)));
  }
  auto header = ReadVolumeHeader(fs, d.path);
  if (header) return std::optional<VolumeHeader>(*header);
  if (!header.error().IsNotFound()) return Err(header.error());
  if (auto to = MovedTo(fs, d.path))
    return Err(Status::InvalidArgument(
        fmt::format("DRIVE_{} ({}) held a volume that was moved to {} ({}): point DRIVE_{} at {}",
                    d.index, d.path, *to, kMovedVolumeFileName, d.index, *to)));
  return std::optional<VolumeHeader>();
}

bool HasSegmentFiles(core::FileSystem* fs, const std::string& drive) {
  auto names = fs->ListDir(drive);
  if (!names) return false;
  uint64_t n;
  for (const auto& name : *names)
    if (ParseSegmentFileName(name, &n)) return true;
  return false;
}

// Options without a file system or a clock are a bug of the caller's (store.h).
Status CheckOptions(const StoreOptions& opt) {
  if (opt.fs && opt.clock) return Status::OK();
  return Status::Internal("StoreOptions lacks its file system or clock: the caller must pass them");
}

}  // namespace

namespace {
// VECTOR_DIM is fixed when a store is made: every shard vector and every index built from
// them has that many components.
Status CheckVectorDim(const Manifest& m, const core::NodeConfig& config) {
  if (m.vector_dim == 0 || m.vector_dim == config.vector_dim) return Status::OK();
  return Status::InvalidArgument(fmt::format(
      "{}: VECTOR_DIM = {}, but the store in {} was made with VECTOR_DIM = {}, which is fixed "
      "for its life (every shard vector has that many components): set VECTOR_DIM = {}",
      config.source, config.vector_dim, config.state_dir, m.vector_dim, m.vector_dim));
}
}  // namespace

Result<InitReport> Store::Init(const core::NodeConfig& config, const StoreOptions& opt) {
  DFRP_RETURN_IF_ERROR(CheckOptions(opt));
  core::FileSystem* fs = opt.fs;
  DFRP_RETURN_IF_ERROR(fs->CreateDirRecursive(config.state_dir));
  DFRP_ASSIGN_OR_RETURN(auto lock, AcquireWriterLock(fs, config.state_dir));
  DFRP_ASSIGN_OR_RETURN(std::optional<Manifest> manifest, ReadManifest(fs, config.state_dir));
  InitReport report;

  // Inspect every drive before changing anything. A volume a migration moved is looked for
  // where it lives now.
  std::vector<std::optional<VolumeHeader>> headers;
  std::map<std::string, int> real_paths;
  core::NodeConfig resolved = config;
  if (manifest)
    for (auto& d : resolved.drives) d.path = ResolveDrivePath(*manifest, d);
  for (const auto& d : resolved.drives) {
    bool known = manifest && std::binary_search(manifest->volumes.begin(), manifest->volumes.end(),
                                                uint32_t(d.index));
    auto h = InspectDrive(fs, d, opt.create_missing_drive_folders && !known);
    if (!h) return Err(h.error());
    headers.push_back(*h);
    DFRP_ASSIGN_OR_RETURN(std::string real, fs->RealPath(d.path));
    if (auto [it, fresh] = real_paths.emplace(real, d.index); !fresh)
      return Err(Status::InvalidArgument(fmt::format(
          "DRIVE_{} ({}) is the same folder as DRIVE_{} ({}): give each drive its own folder",
          d.index, d.path, it->second, real)));
  }
  if (!manifest) {  // a new store, or one whose STATE_DIR was lost: adopt it from its drives
    std::set<Uuid> ids;
    for (const auto& h : headers)
      if (h) ids.insert(h->store_id);
    if (ids.size() > 1)
      return Err(Status::InvalidArgument(
          "the configured drives belong to different stores: give each store its own config"));
    manifest = Manifest();
    manifest->store_id = ids.empty() ? core::DefaultUuidGenerator()->NewV7() : *ids.begin();
    report.new_store = ids.empty();
    report.adopted = !ids.empty();
    for (const auto& h : headers)
      if (h) manifest->volumes.push_back(h->volume);
  }
  report.store_id = manifest->store_id;
  DFRP_RETURN_IF_ERROR(CheckVectorDim(*manifest, config));
  manifest->vector_dim = config.vector_dim;
  std::vector<size_t> to_create;
  for (size_t i = 0; i < resolved.drives.size(); ++i) {
    const auto& d = resolved.drives[i];
    const auto& h = headers[i];
    bool known =
        std::binary_search(manifest->volumes.begin(), manifest->volumes.end(), uint32_t(d.index));
    if (h && h->store_id != manifest->store_id)
      return Err(Status::InvalidArgument(fmt::format(
          "DRIVE_{} ({}) belongs to another store ({}): point DRIVE_{} at a drive of this store "
          "or an empty folder",
          d.index, d.path, h->store_id.ToString(), d.index)));
    if (h && h->volume != uint32_t(d.index))
      return Err(Status::InvalidArgument(
          fmt::format("DRIVE_{} ({}) holds volume {} of this store: fix the DRIVE_n numbering",
                      d.index, d.path, h->volume)));
    if (h) {
      report.already.push_back(d.index);
      continue;
    }
    if (known)
      return Err(Status::NotFound(fmt::format(
          "volume {} at {} has lost its header {} (is the drive unmounted?): mount the drive "
          "or fix DRIVE_{}; it is not treated as empty",
          d.index, d.path, kVolumeFileName, d.index)));
    if (HasSegmentFiles(fs, d.path))
      return Err(Status::InvalidArgument(fmt::format(
          "DRIVE_{} ({}) holds dfrp segment files but no volume header: restore {} from a "
          "backup of this drive, or use an empty folder",
          d.index, d.path, kVolumeFileName)));
    if (!fs->IsWritable(d.path))
      return Err(Status::InvalidArgument(fmt::format(
          "DRIVE_{} ({}) is not writable by this user: fix its permissions", d.index, d.path)));
    to_create.push_back(i);
  }
  for (size_t i : to_create) {
    const auto& d = resolved.drives[i];
    VolumeHeader vh{uint32_t(d.index), manifest->store_id, opt.clock->NowUnixMillis()};
    DFRP_RETURN_IF_ERROR(
        core::WriteFileAtomic(fs, core::JoinPath(d.path, kVolumeFileName), EncodeVolumeHeader(vh)));
    manifest->volumes.push_back(uint32_t(d.index));
    report.initialized.push_back(d.index);
  }
  std::sort(manifest->volumes.begin(), manifest->volumes.end());
  manifest->volumes.erase(std::unique(manifest->volumes.begin(), manifest->volumes.end()),
                          manifest->volumes.end());
  DFRP_RETURN_IF_ERROR(WriteManifest(fs, config.state_dir, *manifest));
  return report;
}

Store::~Store() = default;

Result<std::unique_ptr<Store>> Store::Open(const core::NodeConfig& config, Mode mode,
                                           const StoreOptions& opt) {
  DFRP_RETURN_IF_ERROR(CheckOptions(opt));
  std::unique_ptr<Store> s(new Store());
  s->opt_ = opt;
  s->fs_ = opt.fs;
  s->state_dir_ = config.state_dir;
  s->leaf_size_ = config.leaf_size;
  s->vector_dim_ = config.vector_dim;
  s->nonzero_vectors_ = config.vector_metric == "cosine";
  if (mode == Mode::kWrite && s->fs_->IsDirectory(config.state_dir)) {
    // The manifest is read under the lock, so a writer never acts on a stale one.
    DFRP_ASSIGN_OR_RETURN(s->lock_, AcquireWriterLock(s->fs_, config.state_dir));
  }
  auto manifest = ReadManifest(s->fs_, config.state_dir);
  if (!manifest) return Err(manifest.error());
  if (!*manifest)
    return Err(Status::InvalidArgument(
        fmt::format("no store in {} (from {}): run `dfrp-storage init-storage` first",
                    config.state_dir, config.source)));
  s->store_id_ = (*manifest)->store_id;
  DFRP_RETURN_IF_ERROR(CheckVectorDim(**manifest, config));
  s->manifest_ = std::make_unique<Manifest>(**manifest);
  if (mode == Mode::kWrite && !s->lock_) {
    DFRP_ASSIGN_OR_RETURN(s->lock_, AcquireWriterLock(s->fs_, config.state_dir));
  }
  bool reset = false;
  const std::string index_path = core::JoinPath(config.state_dir, kIndexFileName);
  auto index = Index::Open(index_path, s->store_id_, s->lock_ != nullptr, &reset, opt.sync_index);
  if (!index && index.error().IsBusy() && !s->lock_) {
    // A reader found an index to rebuild: it may, while no writer runs.
    auto lock = s->fs_->TryLock(core::JoinPath(config.state_dir, kLockFileName));
    if (!lock) return Err(index.error());
    s->lock_ = std::move(*lock);
    index = Index::Open(index_path, s->store_id_, true, &reset, opt.sync_index);
  }
  if (!index) return Err(index.error());
  s->index_ = std::move(*index);
  if (reset) s->notices_.push_back("the index was empty or damaged; rebuilding it from the drives");
  for (uint32_t v : (*manifest)->volumes) {
    auto vol = std::make_unique<Volume>();
    vol->drive.index = static_cast<int>(v);
    vol->in_manifest = true;
    vol->configured = false;
    s->volumes_.resize(std::max<size_t>(s->volumes_.size(), v + 1));
    s->volumes_[v] = std::move(vol);
  }
  DFRP_RETURN_IF_ERROR(s->LoadVolumes(config));
  if (mode == Mode::kWrite) DFRP_RETURN_IF_ERROR(s->CompletePendingMoves());
  DFRP_RETURN_IF_ERROR(s->Recover(mode == Mode::kWrite, s->lock_ != nullptr));
  if (mode == Mode::kWrite) s->RemoveStaleSpools();
  if (mode == Mode::kWrite && s->manifest_->vector_dim == 0) {
    // A store from before VECTOR_DIM was kept: it is fixed now, at its current value.
    DFRP_RETURN_IF_ERROR(s->UpdateManifest([&](Manifest& m) { m.vector_dim = config.vector_dim; }));
  }
  if (mode == Mode::kRead) s->lock_.reset();  // a reader held it only to rebuild the index
  return s;
}

Status Store::LoadVolumes(const core::NodeConfig& config) {
  for (const auto& d : config.drives) {
    if (volumes_.size() <= size_t(d.index)) volumes_.resize(d.index + 1);
    if (!volumes_[d.index]) volumes_[d.index] = std::make_unique<Volume>();
    Volume& v = *volumes_[d.index];
    v.drive = d;
    v.config_path = d.path;
    v.configured = true;
    v.drive.path = ResolveDrivePath(*manifest_, d);
    if (v.drive.path != d.path) v.moved_from = d.path;
  }
  for (size_t i = 0; i < volumes_.size(); ++i) {
    if (!volumes_[i]) continue;
    Volume& v = *volumes_[i];
    if (!v.configured) {
      v.state = VolumeState::kMissing;
      v.problem = fmt::format(
          "volume {} holds shards but DRIVE_{} is not in the config: add it back", i, i);
      continue;
    }
    if (!v.in_manifest) {
      v.state = VolumeState::kUninitialized;
      v.problem = "run `dfrp-storage init-storage` to lay this drive out";
      continue;
    }
    auto h = ReadVolumeHeader(fs_, v.drive.path);
    if (!h && h.error().IsCorruption() &&
        SegmentsIdentify(v.drive.path, static_cast<uint32_t>(i))) {
      // A damaged header (bit rot) on a drive whose segment headers name this store and
      // volume: the volume is there. A writer rewrites the header.
      h = VolumeHeader{static_cast<uint32_t>(i), store_id_, opt_.clock->NowUnixMillis()};
      if (lock_) {
        Status fixed = core::WriteFileAtomic(fs_, core::JoinPath(v.drive.path, kVolumeFileName),
                                             EncodeVolumeHeader(*h));
        notices_.push_back(
            fixed.ok() ? fmt::format("rewrote the damaged volume header of volume {} in {} from "
                                     "its segment headers",
                                     i, v.drive.path)
                       : fmt::format("the volume header of volume {} in {} is damaged and could "
                                     "not be rewritten ({}); its segments are read as usual",
                                     i, v.drive.path, fixed.message()));
      }
    }
    if (!h || h->store_id != store_id_ || h->volume != i) {
      v.state = VolumeState::kMissing;
      auto moved = !h ? MovedTo(fs_, v.drive.path) : std::nullopt;
      v.problem = moved ? fmt::format("it was moved to {} ({} in {}): point DRIVE_{} at {}", *moved,
                                      kMovedVolumeFileName, v.drive.path, i, *moved)
                  : !h  ? fmt::format("{} (is the drive mounted?): mount it or fix DRIVE_{}",
                                      h.error().message(), i)
                        : fmt::format("{} holds {} of another store: fix DRIVE_{}", v.drive.path,
                                     h->store_id != store_id_ ? "a volume" : "another volume", i);
      continue;
    }
    DFRP_RETURN_IF_ERROR(LoadSegments(v));
    v.state = VolumeState::kActive;
    if (manifest_->paused.count(static_cast<uint32_t>(i)) ||
        manifest_->full.count(static_cast<uint32_t>(i)))
      continue;  // ApplyVolumeStates says why
    if (v.used() > v.drive.quota) {
      // Reads go on; writes are refused until the config is fixed (see Write).
      v.state = VolumeState::kFull;
      v.problem = fmt::format(
          "QUOTA_{} ({}) is below what volume {} already holds ({}): raise QUOTA_{} to at least {}",
          i, core::FormatBytes(v.drive.quota), i, core::FormatBytes(v.used()), i,
          core::FormatBytes(v.used()));
      config_problems_.push_back(v.problem);
    }
  }
  ApplyVolumeStates();
  return Status::OK();
}

// Paused and full states from the manifest, on volumes whose drive is there.
void Store::ApplyVolumeStates() {
  for (size_t i = 0; i < volumes_.size(); ++i) {
    if (!volumes_[i] || !volumes_[i]->available()) continue;
    Volume& v = *volumes_[i];
    const uint32_t n = static_cast<uint32_t>(i);
    if (auto it = manifest_->paused.find(n); it != manifest_->paused.end()) {
      v.state = VolumeState::kPaused;
      auto mig = manifest_->migrating.find(n);
      v.problem = mig != manifest_->migrating.end()
                      ? fmt::format(
                            "a migration to {} has not finished: run `dfrp-storage "
                            "pause-migrate {} --to {}` again to finish it, or `dfrp-storage "
                            "resume {}` to cancel it",
                            mig->second, n, mig->second, n)
                      : fmt::format(
                            "paused ({}): writes go to other volumes until "
                            "`dfrp-storage resume {}`",
                            it->second, n);
    } else if (auto f = manifest_->full.find(n); f != manifest_->full.end()) {
      v.state = VolumeState::kFull;
      v.problem = fmt::format(
          "its file system ran out of space ({}): free space on the drive, then run "
          "`dfrp-storage resume {}`",
          f->second, n);
    }
  }
}

// True when the drive's first segment has a valid header naming this store and `volume`.
bool Store::SegmentsIdentify(const std::string& drive, uint32_t volume) {
  auto names = fs_->ListDir(drive);
  if (!names) return false;
  for (const auto& name : *names) {
    uint64_t seg;
    if (!ParseSegmentFileName(name, &seg)) continue;
    auto f = fs_->OpenForRead(core::JoinPath(drive, name));
    std::string head(kSegmentHeaderSize, '\0');
    if (!f || !(*f)->ReadExact(0, kSegmentHeaderSize, head.data()).ok()) return false;
    auto sh = DecodeSegmentHeader(head, name);
    return sh && sh->store_id == store_id_ && sh->volume == volume;
  }
  return false;
}

void Store::RemoveStaleSpools() {
  // Standard input spooled by a write-shard that was killed; only the writer makes them.
  const std::string tmp = core::JoinPath(state_dir_, "tmp");
  auto names = fs_->ListDir(tmp);
  if (!names) return;
  for (const auto& n : *names)
    if (n.starts_with("spool-")) (void)fs_->RemoveFile(core::JoinPath(tmp, n));
}

std::string Store::SegmentPath(uint32_t volume, uint64_t segment) const {
  return core::JoinPath(volumes_[volume]->drive.path, SegmentFileName(segment));
}

std::vector<VolumeInfo> Store::ListVolumes() {
  std::map<uint32_t, VolumeCounts> counts;
  if (auto c = index_->Counts()) counts = *c;
  std::vector<VolumeInfo> out;
  for (size_t i = 0; i < volumes_.size(); ++i) {
    if (!volumes_[i]) continue;
    const Volume& v = *volumes_[i];
    VolumeInfo info;
    info.index = static_cast<uint32_t>(i);
    info.path = v.configured ? v.drive.path : "";
    info.quota = v.drive.quota;
    info.used = v.used();
    info.free = info.quota > info.used ? info.quota - info.used : 0;
    if (v.state == VolumeState::kActive) {
      if (auto space = fs_->Space(v.drive.path))
        info.free = std::min(info.free, space->available_bytes);
    } else if (!v.available()) {
      info.free = 0;
    }
    info.shards = counts[info.index].shards;
    info.payload_bytes = counts[info.index].payload_bytes;
    info.segments = v.segments.size();
    info.state = v.state;
    info.moved_from = v.moved_from;
    if (auto mig = manifest_->migrating.find(info.index); mig != manifest_->migrating.end())
      info.migrating_to = mig->second;
    // A volume that cannot take even an empty record is full.
    if (info.state == VolumeState::kActive && info.free < kRecordPrefixSize + 64)
      info.state = VolumeState::kFull;
    info.problem = v.problem;
    out.push_back(std::move(info));
  }
  return out;
}

Status Store::CheckVolumeReadable(uint32_t volume) const {
  if (volume >= volumes_.size() || !volumes_[volume])
    return Status::NotFound(fmt::format("volume {} is not part of this store", volume));
  const Volume& v = *volumes_[volume];
  if (!v.available())
    return Status::NotFound(
        fmt::format("volume {} is {}: {}", volume, VolumeStateName(v.state), v.problem));
  return Status::OK();
}

Result<ShardLocation> Store::Locate(const Uuid& id) {
  DFRP_ASSIGN_OR_RETURN(std::optional<ShardLocation> loc, index_->Find(id));
  if (!loc) {
    auto it = unindexed_.find(id);
    if (it != unindexed_.end()) loc = it->second;
  }
  if (!loc)
    return Err(Status::NotFound(
        fmt::format("shard {} is not in this store (STATE_DIR {}): check the id and the --config",
                    id.ToString(), state_dir_)));
  Status readable = CheckVolumeReadable(loc->volume);
  if (!readable.ok())
    return Err(Status::NotFound(
        fmt::format("shard {} is unavailable: {}", id.ToString(), readable.message())));
  return *loc;
}

Result<const core::RandomAccessFile*> Store::SegmentFile(uint32_t volume, uint64_t segment) {
  auto it = open_segments_.find({volume, segment});
  if (it != open_segments_.end()) return it->second.get();
  const std::string path = SegmentPath(volume, segment);
  auto f = fs_->OpenForRead(path);
  if (!f) {
    if (f.error().IsNotFound())
      return Err(Status::Corruption(fmt::format(
          "segment {} is gone from volume {}: restore the drive from a copy", path, volume)));
    return Err(f.error());
  }
  const core::RandomAccessFile* raw = f->get();
  open_segments_[{volume, segment}] = std::move(*f);
  return raw;
}

namespace {
// Re-reads a located record's prefix and checks it is the shard the index promised.
Result<RecordPrefix> ReadLocated(const core::RandomAccessFile& file, const ShardLocation& loc) {
  DFRP_ASSIGN_OR_RETURN(uint64_t size, file.Size());
  auto p = ReadRecordPrefix(file, loc.offset, size);
  if (!p) return Err(p.error());
  if (p->header.shard_id != loc.id)
    return Err(Status::Corruption("the record at the indexed place is another shard's"));
  return p;
}

std::string Where(const std::string& segment_path, uint64_t offset) {
  return fmt::format("{} at offset {}", segment_path, offset);
}
}  // namespace

Status Store::Read(const Uuid& id, const SinkFn& sink) {
  DFRP_ASSIGN_OR_RETURN(ShardLocation loc, Locate(id));
  DFRP_ASSIGN_OR_RETURN(const core::RandomAccessFile* file, SegmentFile(loc.volume, loc.segment));
  auto context = [&](const Status& s) {
    return s.WithContext(fmt::format("shard {} (volume {}, {})", id.ToString(), loc.volume,
                                     Where(file->path(), loc.offset)));
  };
  auto prefix = ReadLocated(*file, loc);
  if (!prefix) return context(prefix.error());
  Status s = StreamVerifiedPayload(*file, loc.offset, *prefix, opt_.hash_threads, sink);
  return s.IsCorruption() ? context(s) : s;
}

Result<ShardInfo> Store::Stat(const Uuid& id) {
  DFRP_ASSIGN_OR_RETURN(ShardLocation loc, Locate(id));
  DFRP_ASSIGN_OR_RETURN(ShardMetadata meta, ReadMetadata(loc));
  return ShardInfo{loc, std::move(meta), volumes_[loc.volume]->drive.path,
                   SegmentPath(loc.volume, loc.segment)};
}

Result<ShardMetadata> Store::ReadMetadata(const ShardLocation& loc) {
  DFRP_RETURN_IF_ERROR(CheckVolumeReadable(loc.volume));
  DFRP_ASSIGN_OR_RETURN(const core::RandomAccessFile* file, SegmentFile(loc.volume, loc.segment));
  auto prefix = ReadLocated(*file, loc);
  if (!prefix)
    return Err(prefix.error().WithContext(
        fmt::format("shard {} ({})", loc.id.ToString(), Where(file->path(), loc.offset))));
  return DecodeMetadata(prefix->metadata);
}

VerifyResult Store::Verify(const Uuid& id, const ProgressFn& progress) {
  VerifyResult r;
  r.id = id;
  auto loc = Locate(id);
  if (!loc) {
    r.status = loc.error();
    return r;
  }
  r.location = *loc;
  r.segment_path = SegmentPath(loc->volume, loc->segment);
  auto file = SegmentFile(loc->volume, loc->segment);
  if (!file) {
    r.status = file.error();
    return r;
  }
  auto prefix = ReadLocated(**file, *loc);
  if (!prefix) {
    r.status = prefix.error();
    return r;
  }
  auto meta = DecodeMetadata(prefix->metadata);
  if (!meta) {
    r.status = meta.error();
    return r;
  }
  if (meta->size != prefix->header.payload_len || meta->leaf_size != prefix->header.leaf_size) {
    r.status = Status::Corruption("metadata disagrees with the record header");
    return r;
  }
  uint64_t done = 0;
  r.status =
      VerifyRecordBody(**file, loc->offset, *prefix, true, opt_.hash_threads, [&](uint64_t n) {
        done += n;
        if (progress) progress(done, prefix->header.payload_len);
      });
  r.ok = r.status.ok();
  return r;
}

Status Store::CheckStop(const char* what) const {
  if (opt_.should_stop && opt_.should_stop())
    return Status::Busy(fmt::format("{} was stopped before its end", what));
  return Status::OK();
}

Status Store::VerifyAll(const std::function<void(const VerifyResult&)>& fn,
                        const ProgressFn& progress) {
  std::vector<Uuid> ids;
  uint64_t total_bytes = 0;
  DFRP_RETURN_IF_ERROR(index_->ForEach(std::nullopt, [&](const ShardLocation& l) {
    ids.push_back(l.id);
    total_bytes += l.payload_len;
    return true;
  }));
  uint64_t done_before = 0;
  for (const Uuid& id : ids) {
    DFRP_RETURN_IF_ERROR(CheckStop("verifying every shard"));
    VerifyResult r = Verify(id, [&](uint64_t done, uint64_t) {
      if (progress) progress(done_before + done, total_bytes);
    });
    done_before += r.location.payload_len;
    if (progress) progress(done_before, total_bytes);
    fn(r);
  }
  return Status::OK();
}

}  // namespace dfrp::storage
