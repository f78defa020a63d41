// Recovery: finds records that the index does not know yet by scanning only the part of each
// segment past its `indexed_end` mark, and deals with a torn last record.
//
// A segment with a mark is scanned strictly: everything past the mark was written by batches
// whose index commit was lost, and only the last of them can be torn, so the scan stops at
// the first record that does not verify and (holding the writer lock) cuts the segment there:
// those bytes were never acknowledged. A segment without a mark (the index was lost) is
// scanned leniently: a damaged record is skipped by searching for the next valid header, and
// nothing is cut, because what looks damaged may be an acknowledged shard hit by bit rot.
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

struct ScanResult {
  std::vector<ShardLocation> found;
  uint64_t valid_end = 0;  // where a strict scan stopped (== end when all was valid)
  uint64_t skipped = 0;    // bytes a lenient scan skipped over
};

// The offset of the next record magic at or after `from` whose prefix checks out, or `end`.
uint64_t Resync(const core::RandomAccessFile& file, uint64_t from, uint64_t end) {
  constexpr size_t kWindow = 1 << 20;
  std::string buf;
  for (uint64_t pos = from; pos < end;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kWindow, end - pos));
    buf.resize(n);
    if (!file.ReadExact(pos, n, buf.data()).ok()) return end;
    for (size_t i = 0; i + kRecordMagic.size() <= n;) {
      auto* hit = static_cast<const char*>(
          memmem(buf.data() + i, n - i, kRecordMagic.data(), kRecordMagic.size()));
      if (hit == nullptr) break;
      uint64_t at = pos + static_cast<uint64_t>(hit - buf.data());
      if (ReadRecordPrefix(file, at, end)) return at;
      i = static_cast<size_t>(hit - buf.data()) + 1;
    }
    if (n < kWindow) break;
    pos += n - kRecordMagic.size() + 1;
  }
  return end;
}

ScanResult ScanSegment(const core::RandomAccessFile& file, uint32_t volume, uint64_t segment,
                       uint64_t start, uint64_t end, bool strict, int threads) {
  ScanResult r;
  uint64_t pos = start;
  while (pos < end) {
    auto prefix = ReadRecordPrefix(file, pos, end);
    if (prefix) {
      const RecordHeader& h = prefix->header;
      Status body = VerifyRecordBody(file, pos, *prefix, true, threads);
      bool keep = body.ok();
      if (!keep && !strict) {
        // Lenient: a damaged record followed by a valid one is an acknowledged shard with
        // bit rot; keep it indexed so verify reports it. The last one is a torn write.
        keep = pos + h.record_len() < end && ReadRecordPrefix(file, pos + h.record_len(), end);
      }
      if (keep) {
        ShardLocation loc{h.shard_id,     volume,        segment,     pos,
                          h.record_len(), h.payload_len, h.leaf_size, prefix->root};
        r.found.push_back(loc);
        pos += h.record_len();
        continue;
      }
    }
    if (strict) break;
    uint64_t next = Resync(file, pos + 1, end);
    r.skipped += next - pos;
    pos = next;
  }
  r.valid_end = strict ? pos : end;
  return r;
}

}  // namespace

Status Store::Recover(bool may_repair) {
  DFRP_ASSIGN_OR_RETURN(auto marks, index_->SegmentMarks());
  bool behind = false;
  for (const auto& vol : volumes_) {
    if (!vol || !vol->available()) continue;
    for (const auto& [seg, size] : vol->segments) {
      auto m = marks.find({uint32_t(vol->drive.index), seg});
      if (m == marks.end() || m->second != size) behind = true;
    }
  }
  if (!behind) return Status::OK();
  std::unique_ptr<core::FileLock> temporary_lock;
  if (!may_repair) {
    auto lock = fs_->TryLock(core::JoinPath(state_dir_, kLockFileName));
    if (!lock) return Status::OK();  // a writer is active and indexes its own batches
    temporary_lock = std::move(*lock);
  }
  std::vector<ShardLocation> found;
  std::map<SegmentKey, uint64_t> new_marks;
  for (const auto& vol : volumes_) {
    if (!vol || !vol->available()) continue;
    const uint32_t v = static_cast<uint32_t>(vol->drive.index);
    const uint64_t last = vol->segments.empty() ? 0 : vol->segments.rbegin()->first;
    for (auto it = vol->segments.begin(); it != vol->segments.end();) {
      const uint64_t seg = it->first;
      const uint64_t size = it->second;
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
        new_marks[{v, seg}] = size;
        ++it;
        continue;
      }
      DFRP_ASSIGN_OR_RETURN(auto file, fs_->OpenForRead(path));
      std::string head(kSegmentHeaderSize, '\0');
      bool header_ok = size >= kSegmentHeaderSize &&
                       file->ReadExact(0, kSegmentHeaderSize, head.data()).ok() &&
                       DecodeSegmentHeader(head, path).has_value();
      if (!header_ok && seg == last && size <= kSegmentHeaderSize) {
        // A segment whose creation a crash cut short: it never held a shard.
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
      ScanResult r = ScanSegment(*file, v, seg, start, size, have_mark, opt_.hash_threads);
      found.insert(found.end(), r.found.begin(), r.found.end());
      uint64_t end = r.valid_end;
      if (end < size) {
        auto w = fs_->OpenForWrite(path);
        if (!w) return w.error();
        DFRP_RETURN_IF_ERROR((*w)->Truncate(end));
        DFRP_RETURN_IF_ERROR((*w)->Sync());
        notices_.push_back(
            fmt::format("cut {} bytes of a torn, never-acknowledged record from the end of {}",
                        size - end, path));
        it->second = end;
      }
      if (r.skipped > 0)
        notices_.push_back(
            fmt::format("skipped {} damaged bytes in {}; run verify-shard --all", r.skipped, path));
      new_marks[{v, seg}] = end;
      ++it;
    }
  }
  DFRP_RETURN_IF_ERROR(index_->Commit(found, new_marks, /*durable=*/false));
  if (!found.empty())
    notices_.push_back(fmt::format("indexed {} shard(s) found past the index", found.size()));
  return Status::OK();
}

}  // namespace dfrp::storage
