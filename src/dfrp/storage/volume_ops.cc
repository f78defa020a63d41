// Volume operations: pause and resume, checking a copy of a volume, the store's side of a
// migration (begin, finish, retire the source), and marking a volume full when its file
// system runs out of space. Every change of a volume's state or place is one atomic rewrite
// of STATE_DIR/STORE (store_internal.h), so a crash leaves either the old state or the new.
#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "dfrp/core/bytes.h"
#include "dfrp/core/config.h"
#include "dfrp/storage/format.h"
#include "dfrp/storage/record_io.h"
#include "dfrp/storage/store.h"
#include "dfrp/storage/store_internal.h"

namespace dfrp::storage {

using core::Err;
using core::Result;
using core::Status;

namespace {

constexpr std::string_view kQuarantineDir = "quarantine";

bool IsTempHeader(std::string_view name) {
  return name.starts_with(std::string(kVolumeFileName) + ".tmp-");
}

// The folders of `path` from itself up to "/", by (device, inode); `path` must exist.
Result<std::vector<std::pair<uint64_t, uint64_t>>> Lineage(core::FileSystem* fs,
                                                           const std::string& path) {
  DFRP_ASSIGN_OR_RETURN(std::string real, fs->RealPath(path));
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (std::string p = real;; p = core::DirName(p)) {
    DFRP_ASSIGN_OR_RETURN(auto id, fs->FileIdentity(p));
    out.push_back(id);
    if (p == "/" || p.empty() || p == ".") break;
  }
  return out;
}

}  // namespace

// Folders no volume operation may write into, copy over or delete: every volume's folder
// (where it lives and what DRIVE_n names), migration destinations and old copies; for
// `volume` itself, its own pending migration destination is not one of them.
std::vector<std::pair<std::string, std::string>> Store::GuardedFolders(uint32_t volume) const {
  std::vector<std::pair<std::string, std::string>> g;
  for (size_t i = 0; i < volumes_.size(); ++i) {
    if (!volumes_[i]) continue;
    const Volume& v = *volumes_[i];
    if (!v.drive.path.empty()) g.emplace_back(v.drive.path, fmt::format("volume {}'s folder", i));
    if (!v.config_path.empty() && v.config_path != v.drive.path)
      g.emplace_back(v.config_path, fmt::format("DRIVE_{}", i));
  }
  for (const auto& [n, mv] : manifest_->moved)
    if (!mv.old.empty()) g.emplace_back(mv.old, fmt::format("the old copy of volume {}", n));
  for (const auto& [n, dest] : manifest_->migrating)
    if (n != volume) g.emplace_back(dest, fmt::format("volume {}'s migration destination", n));
  return g;
}

// Refuses a folder that is, lies inside, or contains a guarded folder, judged by (device,
// inode) so that no spelling ("..", a symlink, a trailing '/', a bind mount) gets past. A
// path that does not exist yet is judged by its nearest existing parent.
Status Store::CheckOutsideVolumes(const std::string& path, uint32_t volume, const char* what) {
  std::string existing = path;
  while (!fs_->Exists(existing) && existing != "/") existing = core::DirName(existing);
  DFRP_ASSIGN_OR_RETURN(auto mine, Lineage(fs_, existing));
  const auto self = mine.front();
  for (const auto& [folder, name] : GuardedFolders(volume)) {
    if (!fs_->Exists(folder)) continue;
    auto theirs = Lineage(fs_, folder);
    if (!theirs) continue;
    const auto id = theirs->front();
    const bool inside = std::find(mine.begin(), mine.end(), id) != mine.end();
    const bool around =
        existing == path && std::find(theirs->begin(), theirs->end(), self) != theirs->end();
    if (inside || around)
      return Status::InvalidArgument(fmt::format(
          "{} {} {} {} ({}): give a folder outside every volume; nothing was changed", what, path,
          inside ? (existing == path && id == self ? "is" : "lies inside") : "contains", name,
          folder));
  }
  return Status::OK();
}

Status Store::NeedWriter(const char* what) const {
  if (!lock_) return Status::Internal(fmt::format("{} needs the store opened for writing", what));
  return Status::OK();
}

Result<Store::Volume*> Store::VolumeFor(uint32_t volume, const char* what) {
  if (volume >= volumes_.size() || !volumes_[volume] || !volumes_[volume]->in_manifest)
    return Err(Status::NotFound(
        fmt::format("{}: there is no volume {} in this store (STATE_DIR {}): see `dfrp-storage "
                    "list-volumes`",
                    what, volume, state_dir_)));
  return volumes_[volume].get();
}

Status Store::UpdateManifest(const std::function<void(Manifest&)>& change) {
  Manifest m = *manifest_;
  change(m);
  DFRP_RETURN_IF_ERROR(WriteManifest(fs_, state_dir_, m));
  *manifest_ = std::move(m);
  return Status::OK();
}

void Store::ForgetOpenSegments(uint32_t volume) {
  for (auto it = open_segments_.begin(); it != open_segments_.end();)
    it = it->first.first == volume ? open_segments_.erase(it) : std::next(it);
}

// Back to the state the drive alone gives (active, or full when over quota), then the
// paused/full marks of the manifest on top.
static void ResetState(Store::Volume& v, uint32_t n) {
  if (!v.available()) return;
  v.state = VolumeState::kActive;
  v.problem.clear();
  if (v.used() > v.drive.quota) {
    v.state = VolumeState::kFull;
    v.problem = fmt::format("QUOTA_{} ({}) is below what volume {} already holds ({})", n,
                            core::FormatBytes(v.drive.quota), n, core::FormatBytes(v.used()));
  }
}

Status Store::Pause(uint32_t volume, const std::string& reason) {
  DFRP_RETURN_IF_ERROR(NeedWriter("pause"));
  DFRP_ASSIGN_OR_RETURN(Volume * v, VolumeFor(volume, "pause"));
  DFRP_RETURN_IF_ERROR(UpdateManifest([&](Manifest& m) { m.paused[volume] = reason; }));
  ResetState(*v, volume);
  ApplyVolumeStates();
  return Status::OK();
}

void Store::MarkFull(uint32_t volume, const Status& why) {
  if (volume >= volumes_.size() || !volumes_[volume]) return;
  Status s = UpdateManifest([&](Manifest& m) { m.full[volume] = why.message(); });
  if (!s.ok())
    notices_.push_back(fmt::format("could not record volume {} as full: {}", volume, s.message()));
  ResetState(*volumes_[volume], volume);
  if (!s.ok()) volumes_[volume]->state = VolumeState::kFull;
  ApplyVolumeStates();
}

Result<VolumeCheck> Store::Resume(uint32_t volume, const std::string& new_path,
                                  const ProgressFn& progress) {
  DFRP_RETURN_IF_ERROR(NeedWriter("resume"));
  DFRP_ASSIGN_OR_RETURN(Volume * v, VolumeFor(volume, "resume"));
  VolumeCheck check;
  check.volume = volume;
  check.path = v->drive.path;
  if (!new_path.empty() && (new_path.front() != '/' || !fs_->IsDirectory(new_path)))
    return Err(Status::InvalidArgument(fmt::format(
        "--path {} is not a folder: give the absolute path of the copy's folder", new_path)));
  const std::string to = new_path.empty() ? "" : core::NormalizePath(new_path);
  if (!to.empty() && to != v->drive.path) {
    DFRP_RETURN_IF_ERROR(CheckOutsideVolumes(to, volume, "--path"));
    if (!manifest_->paused.count(volume))
      return Err(Status::InvalidArgument(fmt::format(
          "volume {} is not paused: run `dfrp-storage pause {}` before copying it, then "
          "`dfrp-storage resume {} --path {}`",
          volume, volume, volume, to)));
    auto refused = [&](const Status& s) {
      return s.WithContext(fmt::format("the copy at {} was refused; volume {} stays at {}, paused",
                                       to, volume, v->drive.path));
    };
    auto verified = VerifyCopy(volume, to, progress);
    if (!verified) return Err(refused(verified.error()));
    check = *verified;
    // A copy made by another tool (cp, rsync) may still be only in the page cache: make it
    // durable before the volume depends on it.
    Status synced = SyncFolder(to);
    if (!synced.ok()) return Err(refused(synced));
    const std::string old = v->drive.path;
    DFRP_RETURN_IF_ERROR(UpdateManifest([&](Manifest& m) {
      m.moved[volume] = VolumeMove{v->config_path, to, old};
      m.paused.erase(volume);
      m.full.erase(volume);
      m.migrating.erase(volume);
    }));
    ForgetOpenSegments(volume);
    v->drive.path = to;
    v->moved_from = v->config_path != to ? v->config_path : "";
    DFRP_RETURN_IF_ERROR(LoadSegments(*v));
    DFRP_RETURN_IF_ERROR(CompletePendingMoves());
  } else {
    auto mig = manifest_->migrating.find(volume);
    const std::string abandoned = mig != manifest_->migrating.end() ? mig->second : "";
    DFRP_RETURN_IF_ERROR(UpdateManifest([&](Manifest& m) {
      m.paused.erase(volume);
      m.full.erase(volume);
      m.migrating.erase(volume);
    }));
    // A cancelled migration's copy will fall behind the volume: it must never pass for it.
    auto h = abandoned.empty() ? Result<VolumeHeader>(Err(Status::NotFound("")))
                               : ReadVolumeHeader(fs_, abandoned);
    if (h && h->store_id == store_id_ && h->volume == volume) {
      Status s = fs_->Rename(core::JoinPath(abandoned, kVolumeFileName),
                             core::JoinPath(abandoned, kAbandonedVolumeFileName));
      if (s.ok()) s = fs_->SyncDir(abandoned);
      if (!s.ok())
        notices_.push_back(
            fmt::format("the cancelled copy in {} keeps its volume header ({}); delete that folder",
                        abandoned, s.message()));
    }
  }
  ResetState(*v, volume);
  ApplyVolumeStates();
  return check;
}

// A source folder whose volume moved keeps its segments (until retire-source) but not its
// header: it must never be taken for the volume again. Finishes a move a crash interrupted.
Status Store::CompletePendingMoves() {
  for (const auto& [n, mv] : manifest_->moved) {
    if (mv.old.empty() || mv.old == mv.to) continue;
    auto h = ReadVolumeHeader(fs_, mv.old);
    if (!h || h->store_id != store_id_ || h->volume != n) continue;
    auto old_id = fs_->FileIdentity(mv.old);
    auto to_id = fs_->FileIdentity(mv.to);
    if (!old_id || !to_id || *old_id == *to_id) continue;  // never the live folder
    // The marker says where the volume went (init-storage reads it), then the header goes.
    nlohmann::json marker = {{"format", 1},
                             {"store_id", store_id_.ToString()},
                             {"volume", n},
                             {"moved_to", mv.to},
                             {"unix_ms", opt_.clock->NowUnixMillis()}};
    Status s = core::WriteFileAtomic(fs_, core::JoinPath(mv.old, kMovedVolumeFileName),
                                     marker.dump() + "\n");
    if (s.ok()) s = fs_->RemoveFile(core::JoinPath(mv.old, kVolumeFileName));
    if (s.ok()) s = fs_->SyncDir(mv.old);
    if (!s.ok())
      notices_.push_back(fmt::format(
          "volume {} moved to {}, but its old header in {} could not be retired ({}); remove "
          "{} by hand so the old copy is never used",
          n, mv.to, mv.old, s.message(), core::JoinPath(mv.old, kVolumeFileName)));
  }
  return Status::OK();
}

Result<VolumeCheck> Store::VerifyCopy(uint32_t volume, const std::string& path,
                                      const ProgressFn& progress) {
  DFRP_ASSIGN_OR_RETURN(Volume * v, VolumeFor(volume, "verify copy"));
  VolumeCheck check;
  check.volume = volume;
  check.path = path;
  if (!fs_->IsDirectory(path))
    return Err(Status::NotFound(fmt::format("{} is not a folder: give the copy's folder", path)));
  auto header = ReadVolumeHeader(fs_, path);
  if (!header)
    return Err(header.error().IsNotFound()
                   ? Status::Corruption(fmt::format(
                         "{} has no volume header ({}): the copy is incomplete; copy the whole "
                         "volume folder",
                         path, kVolumeFileName))
                   : header.error());
  if (header->store_id != store_id_ || header->volume != volume)
    return Err(Status::Corruption(
        fmt::format("{} holds volume {} of store {}, not volume {} of this store", path,
                    header->volume, header->store_id.ToString(), volume)));

  // The copy's segments, and the original's when it can still be read.
  std::map<uint64_t, uint64_t> copy;
  DFRP_ASSIGN_OR_RETURN(auto names, fs_->ListDir(path));
  for (const auto& name : names) {
    uint64_t seg;
    if (!ParseSegmentFileName(name, &seg)) continue;
    DFRP_ASSIGN_OR_RETURN(copy[seg], fs_->FileSize(core::JoinPath(path, name)));
  }
  std::map<uint64_t, uint64_t> original;
  const bool have_original = v->available() && v->drive.path != path;
  if (have_original) {
    DFRP_RETURN_IF_ERROR(LoadSegments(*v));
    original = v->segments;
  }
  if (!have_original) {
    // Without the original, the index's marks say how far each segment must reach.
    DFRP_ASSIGN_OR_RETURN(auto marks, index_->SegmentMarks());
    bool known = false;
    for (const auto& [key, end] : marks) {
      if (key.first != volume) continue;
      known = true;
      auto it = copy.find(key.second);
      if (it == copy.end() || it->second < end)
        return Err(Status::Corruption(fmt::format(
            "the copy's {} is {} than the {} bytes the index knows of: the copy is incomplete "
            "or older than the volume",
            SegmentFileName(key.second), it == copy.end() ? "missing, not longer" : "shorter",
            end)));
    }
    if (!known)
      return Err(Status::Corruption(fmt::format(
          "volume {}'s original is unreadable and the index knows nothing of it, so nothing "
          "can tell whether the copy is complete: restore the index (rebuild-index with the "
          "original drive attached) first",
          volume)));
  }
  for (const auto& [seg, size] : original) {
    auto it = copy.find(seg);
    if (it == copy.end())
      return Err(Status::Corruption(
          fmt::format("the copy lacks {} ({} at the original): copy the whole volume folder",
                      SegmentFileName(seg), core::FormatBytes(size))));
    if (it->second != size)
      return Err(Status::Corruption(fmt::format(
          "{} is {} bytes in the copy but {} at the original: the copy is incomplete or "
          "altered",
          SegmentFileName(seg), it->second, size)));
  }
  if (have_original)
    for (const auto& [seg, size] : copy)
      if (!original.count(seg))
        return Err(Status::Corruption(fmt::format(
            "the copy holds {}, which volume {} does not have: it is not a copy of this volume",
            SegmentFileName(seg), volume)));

  uint64_t total = 0, done = 0;
  for (const auto& [seg, size] : copy) total += size;
  // Records that fail in the copy are refused unless they fail the same way at the original
  // (bit rot copied faithfully is not the copy's fault; it is reported by verify-shard).
  // The damage the original's own walk finds, per segment (computed when first needed).
  std::map<uint64_t, std::set<uint64_t>> original_damage;
  auto same_at_original = [&](uint64_t seg, uint64_t offset) {
    if (!have_original) return false;
    auto f = fs_->OpenForRead(SegmentPath(volume, seg));
    if (!f) return false;
    if (!original_damage.count(seg)) {
      SegmentWalk w = WalkSegment(**f, volume, seg, kSegmentHeaderSize, original[seg]);
      original_damage[seg].insert(w.damage.begin(), w.damage.end());
    }
    if (original_damage[seg].count(offset)) return true;
    auto p = ReadRecordPrefix(**f, offset, original[seg]);
    return p && !VerifyRecordBody(**f, offset, *p, true, opt_.hash_threads).ok();
  };
  std::map<core::Uuid, ShardLocation> found;
  for (const auto& [seg, size] : copy) {
    DFRP_RETURN_IF_ERROR(CheckStop("the check of the copy"));
    const std::string seg_path = core::JoinPath(path, SegmentFileName(seg));
    DFRP_ASSIGN_OR_RETURN(auto file, fs_->OpenForRead(seg_path));
    std::string head(kSegmentHeaderSize, '\0');
    DFRP_RETURN_IF_ERROR(file->ReadExact(0, kSegmentHeaderSize, head.data()));
    DFRP_ASSIGN_OR_RETURN(SegmentHeader sh, DecodeSegmentHeader(head, seg_path));
    if (sh.store_id != store_id_ || sh.volume != volume || sh.segment != seg)
      return Err(Status::Corruption(
          fmt::format("{} has the header of another segment or store", seg_path)));
    SegmentWalk w = WalkSegment(*file, volume, seg, kSegmentHeaderSize, size);
    for (uint64_t at : w.damage)
      if (!same_at_original(seg, at))
        return Err(Status::Corruption(
            fmt::format("{} is damaged at offset {}, and the original is not", seg_path, at)));
    for (const ShardLocation& l : w.committed) {
      DFRP_RETURN_IF_ERROR(CheckStop("the check of the copy"));
      auto p = ReadRecordPrefix(*file, l.offset, size);
      Status ok = p ? VerifyRecordBody(*file, l.offset, *p, true, opt_.hash_threads,
                                       [&](uint64_t n) {
                                         if (progress) progress(done + n, total);
                                       })
                    : p.error();
      if (!ok.ok() && !same_at_original(seg, l.offset))
        return Err(ok.WithContext(
            fmt::format("shard {} in {} at offset {}", l.id.ToString(), seg_path, l.offset)));
      found[l.id] = l;
      check.shards += 1;
    }
    done += size;
    check.bytes += size;
    check.segments += 1;
    if (progress) progress(done, total);
  }
  // Every shard the index places on this volume must be in the copy, at the same place.
  Status missing;
  DFRP_RETURN_IF_ERROR(index_->ForEach(volume, [&](const ShardLocation& l) {
    auto it = found.find(l.id);
    if (it != found.end() && it->second.segment == l.segment && it->second.offset == l.offset &&
        it->second.root == l.root)
      return true;
    if (same_at_original(l.segment, l.offset)) return true;
    missing = Status::Corruption(fmt::format(
        "shard {} ({} at offset {}) is not in the copy: the copy is incomplete or older than "
        "the volume",
        l.id.ToString(), SegmentFileName(l.segment), l.offset));
    return false;
  }));
  DFRP_RETURN_IF_ERROR(missing);
  return check;
}

Result<MigrationSource> Store::BeginMigration(uint32_t volume, const std::string& to_arg) {
  DFRP_RETURN_IF_ERROR(NeedWriter("migrate"));
  DFRP_ASSIGN_OR_RETURN(Volume * v, VolumeFor(volume, "migrate"));
  MigrationSource src;
  src.volume = volume;
  src.from = v->drive.path;
  if (!v->available())
    return Err(Status::NotFound(
        fmt::format("volume {} is {}: {}; a volume that cannot be read cannot be copied", volume,
                    VolumeStateName(v->state), v->problem)));
  if (to_arg.empty() || to_arg.front() != '/')
    return Err(Status::InvalidArgument(fmt::format("--to {} must be an absolute path", to_arg)));
  const std::string to = core::NormalizePath(to_arg);
  src.to = to;
  auto mig = manifest_->migrating.find(volume);
  if (mig != manifest_->migrating.end() && mig->second != to)
    return Err(Status::InvalidArgument(fmt::format(
        "volume {} is already being migrated to {}: finish that (`dfrp-storage pause-migrate "
        "{} --to {}`) or cancel it (`dfrp-storage resume {}`)",
        volume, mig->second, volume, mig->second, volume)));
  if (to == v->drive.path) return src;  // already there: nothing to copy

  // The destination: an empty folder, or the copy an interrupted attempt at this same
  // migration left; never a volume's folder, inside one or around one.
  DFRP_RETURN_IF_ERROR(CheckOutsideVolumes(to, volume, "--to"));
  const bool resuming = mig != manifest_->migrating.end() && mig->second == to;
  if (!fs_->Exists(to)) {
    std::string top = to;  // the highest folder that will be created
    while (!fs_->Exists(core::DirName(top))) top = core::DirName(top);
    DFRP_RETURN_IF_ERROR(fs_->CreateDirRecursive(to));
    for (std::string d = to;; d = core::DirName(d)) {
      DFRP_RETURN_IF_ERROR(fs_->SyncDir(core::DirName(d)));
      if (d == top) break;
    }
  }
  if (!fs_->IsDirectory(to))
    return Err(Status::InvalidArgument(
        fmt::format("--to {} is a file, not a folder: give an empty folder on the new drive", to)));
  DFRP_ASSIGN_OR_RETURN(auto names, fs_->ListDir(to));
  std::map<std::string, uint64_t> existing;
  for (const auto& name : names) {
    uint64_t seg;
    const std::string p = core::JoinPath(to, name);
    if (name == "lost+found") continue;
    const Status not_empty = Status::InvalidArgument(
        fmt::format("--to {} is not empty (it holds {}{}): give an empty folder on the new drive",
                    to, name, resuming ? ", which is not part of this volume's copy" : ""));
    if (!resuming) return Err(not_empty);
    // Leftovers of the interrupted attempt: each must be this volume's.
    if (name == kVolumeFileName) {
      auto h = ReadVolumeHeader(fs_, to);
      if (!h || h->store_id != store_id_ || h->volume != volume) return Err(not_empty);
    } else if (ParseSegmentFileName(name, &seg)) {
      DFRP_ASSIGN_OR_RETURN(uint64_t size, fs_->FileSize(p));
      if (size >= kSegmentHeaderSize) {
        DFRP_ASSIGN_OR_RETURN(auto f, fs_->OpenForRead(p));
        std::string head(kSegmentHeaderSize, '\0');
        DFRP_RETURN_IF_ERROR(f->ReadExact(0, kSegmentHeaderSize, head.data()));
        auto sh = DecodeSegmentHeader(head, p);
        if (!sh || sh->store_id != store_id_ || sh->volume != volume || sh->segment != seg)
          return Err(not_empty);
      }
      existing[name] = size;
    } else if (!(name == kQuarantineDir || IsTempHeader(name))) {
      return Err(not_empty);
    }
  }

  // What to copy: the segments, the quarantined tails, and the volume header last, so that a
  // copy cut short is never taken for a volume.
  DFRP_RETURN_IF_ERROR(LoadSegments(*v));
  for (const auto& [seg, size] : v->segments) src.files.emplace_back(SegmentFileName(seg), size);
  const std::string qdir = core::JoinPath(v->drive.path, kQuarantineDir);
  if (fs_->IsDirectory(qdir)) {
    DFRP_ASSIGN_OR_RETURN(auto qnames, fs_->ListDir(qdir));
    for (const auto& q : qnames) {
      if (fs_->IsDirectory(core::JoinPath(qdir, q))) continue;  // only recovery's files
      DFRP_ASSIGN_OR_RETURN(uint64_t size, fs_->FileSize(core::JoinPath(qdir, q)));
      src.files.emplace_back(core::JoinPath(kQuarantineDir, q), size);
    }
  }
  src.files.emplace_back(std::string(kVolumeFileName), kVolumeHeaderSize);
  uint64_t reusable = 0;
  for (const auto& [name, size] : src.files) {
    src.bytes += size;
    if (auto it = existing.find(name); it != existing.end()) reusable += std::min(size, it->second);
  }
  if (auto space = fs_->Space(to); space && space->available_bytes + reusable < src.bytes)
    return Err(Status::NoSpace(fmt::format(
        "--to {} has {} free but volume {} needs {}: give a bigger drive; nothing was changed", to,
        core::FormatBytes(space->available_bytes), volume, core::FormatBytes(src.bytes))));
  DFRP_RETURN_IF_ERROR(UpdateManifest([&](Manifest& m) {
    m.paused[volume] = fmt::format("migration to {}", to);
    m.migrating[volume] = to;
  }));
  ResetState(*v, volume);
  ApplyVolumeStates();
  return src;
}

Status Store::FinishMigration(const MigrationSource& copied, bool resume) {
  DFRP_RETURN_IF_ERROR(NeedWriter("migrate"));
  const uint32_t volume = copied.volume;
  DFRP_ASSIGN_OR_RETURN(Volume * v, VolumeFor(volume, "migrate"));
  auto mig = manifest_->migrating.find(volume);
  if (mig == manifest_->migrating.end() || mig->second != copied.to)
    return Err(Status::InvalidArgument(
        fmt::format("no migration of volume {} to {} is under way (was it cancelled with resume?)",
                    volume, copied.to)));
  // Nothing may have changed at the source since the copy began (the volume was paused).
  DFRP_RETURN_IF_ERROR(LoadSegments(*v));
  std::map<std::string, uint64_t> now;
  for (const auto& [seg, size] : v->segments) now[SegmentFileName(seg)] = size;
  std::map<std::string, uint64_t> then;
  for (const auto& [name, size] : copied.files)
    if (uint64_t seg; ParseSegmentFileName(name, &seg)) then[name] = size;
  if (now != then)
    return Err(Status::Busy(fmt::format(
        "volume {} changed while it was being copied: run the same command again", volume)));
  const std::string old = v->drive.path;
  DFRP_RETURN_IF_ERROR(UpdateManifest([&](Manifest& m) {
    m.moved[volume] = VolumeMove{v->config_path, copied.to, old};
    m.migrating.erase(volume);
    if (resume) {
      m.paused.erase(volume);
      m.full.erase(volume);
    } else {
      m.paused[volume] = fmt::format("migrated from {}", old);
    }
  }));
  ForgetOpenSegments(volume);
  v->drive.path = copied.to;
  v->moved_from = v->config_path != copied.to ? v->config_path : "";
  DFRP_RETURN_IF_ERROR(LoadSegments(*v));
  DFRP_RETURN_IF_ERROR(CompletePendingMoves());
  ResetState(*v, volume);
  ApplyVolumeStates();
  return Status::OK();
}

Result<uint64_t> Store::RetireSource(uint32_t volume) {
  DFRP_RETURN_IF_ERROR(NeedWriter("retire-source"));
  DFRP_ASSIGN_OR_RETURN(Volume * v, VolumeFor(volume, "retire-source"));
  auto mv = manifest_->moved.find(volume);
  if (mv == manifest_->moved.end() || mv->second.old.empty())
    return Err(Status::InvalidArgument(fmt::format(
        "volume {} has no old copy to retire: it was not moved, or its old copy is gone", volume)));
  const std::string old = mv->second.old;
  if (old == v->drive.path || !v->available())
    return Err(Status::InvalidArgument(
        fmt::format("volume {} is not readable at {}: the old copy in {} is kept", volume,
                    v->drive.path, old)));
  DFRP_RETURN_IF_ERROR(CompletePendingMoves());
  // Judged from the disk, not from what this process believes: the old folder must not be
  // (or hold, or lie in) any volume's folder now, and must hold no live header.
  for (const auto& other : volumes_) {
    if (!other || other->drive.path.empty() || !fs_->Exists(other->drive.path) || !fs_->Exists(old))
      continue;
    DFRP_ASSIGN_OR_RETURN(auto theirs, Lineage(fs_, other->drive.path));
    DFRP_ASSIGN_OR_RETURN(auto mine, Lineage(fs_, old));
    if (std::find(mine.begin(), mine.end(), theirs.front()) != mine.end() ||
        std::find(theirs.begin(), theirs.end(), mine.front()) != theirs.end())
      return Err(Status::InvalidArgument(fmt::format(
          "the old copy's folder {} is (or overlaps) volume {}'s folder {}: nothing was deleted",
          old, other->drive.index, other->drive.path)));
  }
  if (auto h = ReadVolumeHeader(fs_, old))
    return Err(Status::InvalidArgument(fmt::format(
        "{} holds a live header of volume {} of store {}: it is not an old copy; nothing was "
        "deleted",
        old, h->volume, h->store_id.ToString())));
  uint64_t freed = 0;
  if (fs_->IsDirectory(old)) {
    DFRP_ASSIGN_OR_RETURN(auto names, fs_->ListDir(old));
    for (const auto& name : names) {
      uint64_t seg;
      const std::string p = core::JoinPath(old, name);
      if (ParseSegmentFileName(name, &seg)) {  // the marker stays: it says where the volume went
        if (auto size = fs_->FileSize(p)) freed += *size;
        DFRP_RETURN_IF_ERROR(fs_->RemoveFile(p));
      } else if (name == kQuarantineDir && fs_->IsDirectory(p)) {
        DFRP_ASSIGN_OR_RETURN(auto qnames, fs_->ListDir(p));
        for (const auto& q : qnames) {
          if (fs_->IsDirectory(core::JoinPath(p, q))) continue;
          if (auto size = fs_->FileSize(core::JoinPath(p, q))) freed += *size;
          DFRP_RETURN_IF_ERROR(fs_->RemoveFile(core::JoinPath(p, q)));
        }
      }
    }
    DFRP_RETURN_IF_ERROR(fs_->SyncDir(old));
  }
  DFRP_RETURN_IF_ERROR(UpdateManifest([&](Manifest& m) { m.moved[volume].old.clear(); }));
  return freed;
}

// fdatasync of every file of a volume folder (and its quarantine/), then of the folders.
Status Store::SyncFolder(const std::string& path) {
  for (const std::string& dir : {path, core::JoinPath(path, kQuarantineDir)}) {
    if (!fs_->IsDirectory(dir)) continue;
    DFRP_ASSIGN_OR_RETURN(auto names, fs_->ListDir(dir));
    for (const auto& name : names) {
      const std::string p = core::JoinPath(dir, name);
      if (fs_->IsDirectory(p)) continue;
      DFRP_ASSIGN_OR_RETURN(auto f, fs_->OpenForWrite(p));
      DFRP_RETURN_IF_ERROR(f->Sync());
      DFRP_RETURN_IF_ERROR(f->Close());
    }
    DFRP_RETURN_IF_ERROR(fs_->SyncDir(dir));
  }
  return Status::OK();
}

}  // namespace dfrp::storage
