// Recovery: finds what the index has not seen by scanning each segment from its
// `indexed_end` mark (from the segment header when there is no mark: a rebuild), and deals
// with a batch that a crash interrupted.
//
// The drives, not the index, say what was acknowledged: a batch appends its records, syncs
// them, then appends one commit record per segment and syncs again before it is
// acknowledged (store_write.cc). So the scan walks the chain of record prefixes (headers,
// roots and metadata; never payloads, so it costs the tail's prefixes, not its bytes) and
// indexes the records a valid commit record closes. Anything after a segment's last commit
// was never acknowledged:
//   - if no valid commit record lies anywhere after it, it is a torn batch, and a writer
//     cuts it off (a reader leaves it);
//   - if a valid commit lies further on, the chain is damaged in acknowledged data (bit rot
//     or a lost sector): nothing is cut, the segment is sealed against appends, and the
//     notice asks for verify-shard --all.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "dfrp/storage/format.h"
#include "dfrp/storage/record_io.h"
#include "dfrp/storage/store.h"
#include "dfrp/storage/store_internal.h"

namespace dfrp::storage {

using core::Err;
using core::Result;
using core::Status;

namespace {

struct TailScan {
  std::vector<ShardLocation> committed;
  uint64_t committed_end = 0;  // end of the last valid commit record (or the start)
  bool damaged = false;        // a valid commit lies beyond a break in the chain, or the
                               // tail could not be read: either way nothing may be cut
};

// The first offset in [from, end) where a valid commit record (and, with `records`, a valid
// record prefix) starts, or `end`. Reads the region in windows: it is damaged or torn, so
// its payload bytes are read too. *unreadable is set when a window could not be read.
uint64_t FindValid(const core::RandomAccessFile& file, uint64_t from, uint64_t end, bool records,
                   uint64_t* bytes_read, bool* unreadable) {
  constexpr size_t kWindow = 1 << 20;
  std::string buf;
  for (uint64_t pos = from; pos + 8 <= end;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kWindow, end - pos));
    buf.resize(n);
    if (!file.ReadExact(pos, n, buf.data()).ok()) {
      *unreadable = true;
      return end;
    }
    *bytes_read += n;
    for (size_t i = 0; i + 8 <= n; ++i) {
      if (buf[i] != 'D') continue;
      const uint64_t at = pos + i;
      if (std::memcmp(buf.data() + i, kCommitMagic.data(), 8) == 0) {
        char c[kCommitSize];
        if (at + kCommitSize <= end && file.ReadExact(at, kCommitSize, c).ok() &&
            DecodeCommit(std::string_view(c, kCommitSize)))
          return at;
      } else if (records && std::memcmp(buf.data() + i, kRecordMagic.data(), 8) == 0 &&
                 ReadRecordPrefix(file, at, end)) {
        return at;
      }
    }
    if (n < kWindow) break;
    pos += n - 7;
  }
  return end;
}

// True when a valid commit record starts anywhere in [from, end), or that cannot be told
// (never cut on doubt).
bool CommitFollows(const core::RandomAccessFile& file, uint64_t from, uint64_t end) {
  uint64_t read = 0;
  bool unreadable = false;
  return FindValid(file, from, end, /*records=*/false, &read, &unreadable) < end || unreadable;
}

// The recovery scan: the walk without the search past damage. A break followed by a valid
// commit is damage; without one it is a torn batch.
TailScan ScanTail(const core::RandomAccessFile& file, uint32_t volume, uint64_t segment,
                  uint64_t start, uint64_t end) {
  SegmentWalk w = WalkSegment(file, volume, segment, start, end, /*resync=*/false);
  TailScan r{std::move(w.committed), w.committed_end, w.read_error};
  r.damaged = r.damaged || (r.committed_end < end && CommitFollows(file, r.committed_end + 1, end));
  return r;
}

}  // namespace

SegmentWalk WalkSegment(const core::RandomAccessFile& file, uint32_t volume, uint64_t segment,
                        uint64_t start, uint64_t end, bool resync) {
  SegmentWalk w;
  w.committed_end = start;
  std::vector<ShardLocation> pending;
  uint64_t pending_bytes = 0, pos = start;
  bool after_damage = false;  // the records since the last commit may not be all of its batch
  auto broken = [&]() -> bool {
    // Damage if a valid commit lies further on; otherwise the end of a torn batch.
    if (!resync || !CommitFollows(file, pos + 1, end)) return false;
    w.damage.push_back(pos);
    bool unreadable = false;
    pos = FindValid(file, pos + 1, end, /*records=*/true, &w.bytes_read, &unreadable);
    after_damage = true;
    return pos < end;
  };
  while (pos + 8 <= end) {
    char magic[8];
    if (!file.ReadExact(pos, sizeof(magic), magic).ok()) {
      w.read_error = true;
      break;
    }
    w.bytes_read += sizeof(magic);
    if (std::string_view(magic, 8) == kCommitMagic) {
      char c[kCommitSize];
      if (pos + kCommitSize > end) break;  // a commit record cut short: a torn end
      if (!file.ReadExact(pos, kCommitSize, c).ok()) {
        w.read_error = true;
        break;
      }
      auto commit = DecodeCommit(std::string_view(c, kCommitSize));
      w.bytes_read += kCommitSize;
      if (commit &&
          (after_damage || (commit->records == pending.size() && commit->bytes == pending_bytes))) {
        if (after_damage)
          for (const ShardLocation& l : pending) w.after_damage.insert(l.id);
        w.committed.insert(w.committed.end(), pending.begin(), pending.end());
        pending.clear();
        pending_bytes = 0;
        pos += kCommitSize;
        w.committed_end = pos;
        after_damage = false;
        continue;
      }
      if (!broken()) break;
      continue;
    }
    auto prefix = ReadRecordPrefix(file, pos, end);
    if (!prefix) {
      if (!broken()) break;
      continue;
    }
    const RecordHeader& h = prefix->header;
    w.bytes_read += kRecordPrefixSize + h.metadata_len;
    pending.push_back({h.shard_id, volume, segment, pos, h.record_len(), h.payload_len, h.leaf_size,
                       prefix->root});
    pending_bytes += h.record_len();
    pos += h.record_len();
  }
  w.uncommitted = std::move(pending);
  return w;
}

Status Store::LoadSegments(Volume& v) {
  v.segments.clear();
  DFRP_ASSIGN_OR_RETURN(auto names, fs_->ListDir(v.drive.path));
  for (const auto& name : names) {
    uint64_t seg;
    if (!ParseSegmentFileName(name, &seg)) continue;
    DFRP_ASSIGN_OR_RETURN(uint64_t size, fs_->FileSize(core::JoinPath(v.drive.path, name)));
    v.segments[seg] = size;
  }
  return Status::OK();
}

// Copies [from, to) of a segment into DRIVE/quarantine/, durably, then cuts the segment at
// `from`. Nothing recovery removes is destroyed: what looks like an interrupted write could
// be acknowledged data behind damage no scan can tell apart, so an operator can still look.
Status Store::QuarantineTail(Volume& vol, uint64_t seg, const core::RandomAccessFile& file,
                             uint64_t from, uint64_t to) {
  const std::string dir = core::JoinPath(vol.drive.path, "quarantine");
  DFRP_RETURN_IF_ERROR(fs_->CreateDir(dir));
  DFRP_RETURN_IF_ERROR(fs_->SyncDir(vol.drive.path));
  const std::string path =
      core::JoinPath(dir, fmt::format("{}.from-{}.{}", SegmentFileName(seg), from,
                                      core::DefaultUuidGenerator()->NewV7().ToString()));
  DFRP_ASSIGN_OR_RETURN(auto out, fs_->CreateNew(path));
  std::string buf;
  for (uint64_t pos = from; pos < to;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(8 << 20, to - pos));
    buf.resize(n);
    DFRP_RETURN_IF_ERROR(file.ReadExact(pos, n, buf.data()));
    DFRP_RETURN_IF_ERROR(out->WriteAt(pos - from, buf));
    pos += n;
  }
  DFRP_RETURN_IF_ERROR(out->Sync());
  DFRP_RETURN_IF_ERROR(out->Close());
  DFRP_RETURN_IF_ERROR(fs_->SyncDir(dir));
  DFRP_ASSIGN_OR_RETURN(auto w, fs_->OpenForWrite(file.path()));
  DFRP_RETURN_IF_ERROR(w->Truncate(from));
  DFRP_RETURN_IF_ERROR(w->Sync());
  notices_.push_back(fmt::format(
      "moved {} bytes of an interrupted, never-acknowledged write from the end of {} to {}; "
      "delete it once you are sure nothing in it is needed",
      to - from, file.path(), path));
  return Status::OK();
}

Status Store::Recover(bool writer, bool holding_lock) {
  DFRP_ASSIGN_OR_RETURN(auto marks, index_->SegmentMarks());
  auto behind = [&] {
    for (const auto& vol : volumes_) {
      if (!vol || !vol->available()) continue;
      for (const auto& [seg, size] : vol->segments) {
        auto m = marks.find({uint32_t(vol->drive.index), seg});
        if (m == marks.end() || m->second != size) return true;
      }
    }
    return false;
  };
  if (!behind()) return Status::OK();
  std::unique_ptr<core::FileLock> temporary_lock;
  if (!holding_lock) {
    // A reader recovers only while no writer runs, and only from what it sees under the
    // lock: sizes and marks read before it may already be stale.
    auto lock = fs_->TryLock(core::JoinPath(state_dir_, kLockFileName));
    if (!lock) {
      // A writer is active (perhaps rebuilding the index): find the committed shards past the
      // marks without touching anything, and serve them from memory.
      for (const auto& vol : volumes_) {
        if (!vol || !vol->available()) continue;
        const uint32_t v = static_cast<uint32_t>(vol->drive.index);
        for (const auto& [seg, size] : vol->segments) {
          auto m = marks.find({v, seg});
          const uint64_t start =
              std::max<uint64_t>(m == marks.end() ? 0 : m->second, kSegmentHeaderSize);
          if (start >= size) continue;
          auto file = fs_->OpenForRead(SegmentPath(v, seg));
          if (!file) continue;
          TailScan r = ScanTail(**file, v, seg, start, size);
          for (const ShardLocation& l : r.committed) unindexed_[l.id] = l;
        }
      }
      return Status::OK();
    }
    temporary_lock = std::move(*lock);
    for (auto& vol : volumes_)
      if (vol && vol->available()) DFRP_RETURN_IF_ERROR(LoadSegments(*vol));
    DFRP_ASSIGN_OR_RETURN(marks, index_->SegmentMarks());
    if (!behind()) return Status::OK();
  }
  std::vector<ShardLocation> found;
  std::map<SegmentKey, uint64_t> new_marks;
  for (const auto& vol : volumes_) {
    if (!vol || !vol->available()) continue;
    const uint32_t v = static_cast<uint32_t>(vol->drive.index);
    const uint64_t newest = vol->segments.empty() ? 0 : vol->segments.rbegin()->first;
    for (auto it = vol->segments.begin(); it != vol->segments.end();) {
      const uint64_t seg = it->first, size = it->second;
      auto m = marks.find({v, seg});
      const bool have_mark = m != marks.end();
      if (have_mark && m->second == size) {
        ++it;
        continue;
      }
      const std::string path = SegmentPath(v, seg);
      if (have_mark && m->second > size) {
        notices_.push_back(fmt::format(
            "{} is {} bytes shorter than the index says: shards past byte {} are lost; run "
            "verify-shard --all",
            path, m->second - size, size));
        sealed_segments_.insert({v, seg});
        ++it;
        continue;
      }
      DFRP_ASSIGN_OR_RETURN(auto file, fs_->OpenForRead(path));
      std::string head(kSegmentHeaderSize, '\0');
      const bool header_ok = size >= kSegmentHeaderSize &&
                             file->ReadExact(0, kSegmentHeaderSize, head.data()).ok() &&
                             DecodeSegmentHeader(head, path).has_value();
      if (!header_ok && seg == newest && size < kSegmentHeaderSize + kRecordPrefixSize &&
          vol->state != VolumeState::kPaused) {
        // A segment whose creation a crash cut short: it never held a committed shard.
        file.reset();
        DFRP_RETURN_IF_ERROR(fs_->RemoveFile(path));
        DFRP_RETURN_IF_ERROR(fs_->SyncDir(vol->drive.path));
        notices_.push_back(fmt::format("removed {}, a segment cut short by a crash", path));
        it = vol->segments.erase(it);
        continue;
      }
      if (!header_ok)
        notices_.push_back(
            fmt::format("{} has a damaged segment header; scanning its records", path));
      const uint64_t start = std::max<uint64_t>(have_mark ? m->second : 0, kSegmentHeaderSize);
      TailScan r = ScanTail(*file, v, seg, start, size);
      found.insert(found.end(), r.committed.begin(), r.committed.end());
      new_marks[{v, seg}] = r.committed_end;
      if (r.committed_end < size && r.damaged) {
        sealed_segments_.insert({v, seg});
        notices_.push_back(fmt::format(
            "{} is damaged at offset {}: the shards after it are not found until `dfrp-storage "
            "rebuild-index`, which searches past the damage; then run verify-shard --all",
            path, r.committed_end));
      } else if (r.committed_end < size && writer && vol->state != VolumeState::kPaused) {
        // (A paused volume may be being copied: it is left as it is.)
        // Only a writer moves an interrupted write aside; a reader leaves it for the writer.
        Status moved = QuarantineTail(*vol, seg, *file, r.committed_end, size);
        if (moved.ok()) {
          it->second = r.committed_end;
        } else {
          sealed_segments_.insert({v, seg});
          notices_.push_back(fmt::format(
              "could not move the uncommitted end of {} aside ({}); the segment is sealed", path,
              moved.message()));
        }
      }
      ++it;
    }
  }
  DFRP_RETURN_IF_ERROR(index_->Commit(found, new_marks, /*durable=*/false));
  if (!found.empty())
    notices_.push_back(fmt::format("indexed {} shard(s) found past the index", found.size()));
  return Status::OK();
}

Result<RebuildReport> Store::RebuildIndex(const ProgressFn& progress) {
  DFRP_RETURN_IF_ERROR(NeedWriter("rebuild-index"));
  RebuildReport report;
  uint64_t total = 0, done = 0;
  std::set<uint32_t> scanned;
  for (size_t i = 0; i < volumes_.size(); ++i) {
    const auto& vol = volumes_[i];
    if (!vol || !vol->in_manifest) continue;
    if (!vol->available()) {
      report.skipped.push_back(
          fmt::format("volume {} was not scanned ({}: {}); its index entries are kept as they were",
                      i, VolumeStateName(vol->state), vol->problem));
      continue;
    }
    DFRP_RETURN_IF_ERROR(LoadSegments(*vol));
    for (const auto& [seg, size] : vol->segments) total += size;
    scanned.insert(static_cast<uint32_t>(i));
  }
  // Shard id -> place, and whether it was found by searching past damage (less trusted: a
  // payload may hold bytes that look like a record).
  std::map<core::Uuid, std::pair<ShardLocation, bool>> by_id;
  std::set<core::Uuid> conflicted;
  std::map<SegmentKey, uint64_t> marks;
  for (uint32_t v : scanned) {
    const auto& vol = volumes_[v];
    report.volumes += 1;
    for (const auto& [seg, size] : vol->segments) {
      const std::string path = SegmentPath(v, seg);
      DFRP_ASSIGN_OR_RETURN(auto file, fs_->OpenForRead(path));
      std::string head(kSegmentHeaderSize, '\0');
      if (size < kSegmentHeaderSize || !file->ReadExact(0, kSegmentHeaderSize, head.data()).ok() ||
          !DecodeSegmentHeader(head, path))
        report.damage.push_back(fmt::format("{}: damaged segment header", path));
      report.bytes_read += std::min<uint64_t>(size, kSegmentHeaderSize);
      SegmentWalk w = WalkSegment(*file, v, seg, kSegmentHeaderSize, size);
      report.bytes_read += w.bytes_read;
      for (uint64_t at : w.damage)
        report.damage.push_back(fmt::format(
            "{} at offset {}: the record chain is broken; the records after it were found "
            "again, the damaged ones are not indexed",
            path, at));
      if (!w.uncommitted.empty() || w.committed_end < size)
        report.notes.push_back(fmt::format(
            "{}: {} bytes after offset {} were never acknowledged (an interrupted write); "
            "they are not indexed, and the next write moves them to quarantine/",
            path, size - w.committed_end, w.committed_end));
      for (const ShardLocation& l : w.committed) {
        const bool tentative = w.after_damage.count(l.id) > 0;
        auto [it, fresh] = by_id.emplace(l.id, std::make_pair(l, tentative));
        if (fresh) continue;
        auto& [kept, kept_tentative] = it->second;
        auto where = [&](const ShardLocation& x) {
          return fmt::format("{} at offset {}", SegmentPath(x.volume, x.segment), x.offset);
        };
        if (kept_tentative && !tentative) {
          report.damage.push_back(fmt::format(
              "shard {} is also claimed by a record found inside damaged data ({}); that one "
              "is ignored",
              l.id.ToString(), where(kept)));
          it->second = {l, false};
        } else if (!kept_tentative && tentative) {
          report.damage.push_back(fmt::format(
              "shard {} is also claimed by a record found inside damaged data ({}); that one "
              "is ignored",
              l.id.ToString(), where(l)));
        } else {
          report.damage.push_back(fmt::format("shard {} is stored twice ({} and {}){}",
                                              l.id.ToString(), where(kept), where(l),
                                              tentative ? "; neither is indexed" : ""));
          if (tentative) conflicted.insert(l.id);
        }
      }
      // A torn end past the mark is moved aside by the next writer's recovery, as usual.
      marks[{v, seg}] = w.committed_end;
      report.segments += 1;
      done += size;
      if (progress) progress(done, total);
    }
  }
  std::vector<ShardLocation> all;
  all.reserve(by_id.size());
  for (const auto& [id, entry] : by_id) {
    if (conflicted.count(id)) continue;
    all.push_back(entry.first);
    report.payload_bytes += entry.first.payload_len;
  }
  report.shards = all.size();
  Status replaced = index_->Replace(all, marks, scanned);
  if (replaced.IsCorruption()) {
    // The index file itself is damaged: start a new one (it is only a cache). The entries of
    // volumes that could not be scanned are lost with it; their next scan restores them.
    const std::string path = core::JoinPath(state_dir_, kIndexFileName);
    index_.reset();
    for (const char* suffix : {"", "-wal", "-shm"}) (void)fs_->RemoveFile(path + suffix);
    bool reset = false;
    DFRP_ASSIGN_OR_RETURN(index_, Index::Open(path, store_id_, true, &reset, opt_.sync_index));
    replaced = index_->Replace(all, marks, scanned);
  }
  DFRP_RETURN_IF_ERROR(replaced);
  unindexed_.clear();
  return report;
}

}  // namespace dfrp::storage
