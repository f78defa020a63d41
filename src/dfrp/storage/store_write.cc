// The write path: plan a whole batch (placement, quotas) before touching a drive, append the
// records, make them durable, then index them. Any failure before the sync completes undoes
// the batch: segments are cut back to their old size and new segment files removed.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "dfrp/core/bytes.h"
#include "dfrp/crypto/merkle.h"
#include "dfrp/storage/format.h"
#include "dfrp/storage/input_reader.h"
#include "dfrp/storage/record_io.h"
#include "dfrp/storage/store.h"
#include "dfrp/storage/store_internal.h"

namespace dfrp::storage {

using core::Err;
using core::Result;
using core::Status;
using crypto::Hash;

namespace {
// Records with a payload up to this size are built in memory and written in large batches;
// bigger ones are streamed.
constexpr uint64_t kInlinePayloadMax = 1 << 20;
// Small records are built in runs: up to this many records lying back to back in one
// segment, or this many bytes, read, hashed and laid out by a worker thread in one buffer.
constexpr size_t kRunRecords = 256;
constexpr uint64_t kRunBytes = 4 << 20;
constexpr size_t kRunsAhead = 16;  // runs built ahead of the writing thread (64 MiB at most)
constexpr uint64_t kSpoolChunk = 8 << 20;  // buffer for copying standard input aside
}  // namespace

class BatchWriter {
 public:
  explicit BatchWriter(Store* store) : s_(store), sealed_(store->sealed_segments_) {}
  ~BatchWriter() { Rollback(); }

  Result<std::vector<WrittenShard>> Run(std::vector<WriteRequest>& batch,
                                        const ProgressFn& progress);
  // The volume whose file system refused a write for lack of space, if one did.
  std::optional<uint32_t> no_space_volume() const { return no_space_volume_; }

 private:
  struct Planned {
    size_t request = 0;
    const std::string* name = nullptr;  // the request's
    RecordHeader header;
    std::string metadata;
    uint32_t volume = 0;
    uint64_t segment = 0;
    uint64_t offset = 0;
    Hash root{};
  };
  // Consecutive small records that lie back to back in one segment: planned_[first, last),
  // `bytes` long from `offset`.
  struct RecordRun {
    size_t first = 0, last = 0;
    uint64_t offset = 0, bytes = 0, payload_bytes = 0;
  };
  struct BuiltRun {
    Status status;
    std::unique_ptr<char[]> bytes;  // the run's records, as they go on disk
  };
  struct OpenSegment {
    std::unique_ptr<core::WritableFile> file;
    uint64_t original_size = 0;
    uint64_t planned_end = 0;
    bool created = false;
  };

  Status Describe(std::vector<WriteRequest>& batch);
  Status Plan();
  Status OpenSegments();
  Status WriteRecords(std::vector<WriteRequest>& batch, const ProgressFn& progress);
  std::vector<RecordRun> CutRuns() const;
  BuiltRun BuildRun(const RecordRun& run, std::vector<WriteRequest>& batch);
  Status ReadRunInputs(const RecordRun& run, std::vector<WriteRequest>& batch, char* buf);
  void LayOutRecord(Planned& p, char* record, std::vector<Hash>& leaves);
  Status WriteStreamed(Planned& p, WriteRequest& req, const std::function<void(uint64_t)>& moved);
  Status SyncAll();
  void Rollback();
  Result<std::unique_ptr<core::SequentialFile>> OpenInput(WriteRequest& req);
  // Passes s through, noting the volume when it is the file system saying it is full.
  Status OnVolume(uint32_t volume, Status s) {
    if (s.IsNoSpace() && !no_space_volume_) no_space_volume_ = volume;
    return s;
  }

  Store* s_;
  std::vector<Planned> planned_;
  std::map<SegmentKey, OpenSegment> segments_;
  std::vector<std::string> spooled_;  // temporary copies of unsized inputs
  std::set<SegmentKey> sealed_;       // segments recovery found damaged: never appended to
  bool committed_ = false;
  std::optional<uint32_t> no_space_volume_;
};

Result<std::unique_ptr<core::SequentialFile>> BatchWriter::OpenInput(WriteRequest& req) {
  if (req.input) return std::move(req.input);
  return s_->fs_->OpenSequential(req.path);
}

// Sizes every input (spooling unsized streams to STATE_DIR/tmp) and builds its metadata.
Status BatchWriter::Describe(std::vector<WriteRequest>& batch) {
  const int64_t now = s_->opt_.clock->NowUnixMillis();
  // Size the named files first, on two threads: a batch of 100,000 small files spends much
  // of its time in stat(2) path lookups.
  std::vector<uint64_t> sizes(batch.size(), 0);
  std::vector<Status> size_errors(batch.size());
  auto size_range = [&](size_t from, size_t step) {
    for (size_t i = from; i < batch.size(); i += step) {
      if (batch[i].input) continue;
      if (batch[i].size_hint >= 0) {  // a file that changes later is caught when it is read
        sizes[i] = static_cast<uint64_t>(batch[i].size_hint);
        continue;
      }
      auto sz = s_->fs_->FileSize(batch[i].path);
      if (sz)
        sizes[i] = *sz;
      else
        size_errors[i] = sz.error();
    }
  };
  if (batch.size() >= 1024) {
    std::jthread helper(size_range, 1, 2);
    size_range(0, 2);
  } else {
    size_range(0, 1);
  }
  planned_.reserve(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    WriteRequest& req = batch[i];
    uint64_t size = 0;
    if (req.input && req.input->KnownSize() < 0) {
      DFRP_RETURN_IF_ERROR(s_->fs_->CreateDirRecursive(core::JoinPath(s_->state_dir_, "tmp")));
      std::string tmp = core::JoinPath(
          s_->state_dir_, "tmp/spool-" + core::DefaultUuidGenerator()->NewV7().ToString());
      DFRP_ASSIGN_OR_RETURN(auto out, s_->fs_->CreateNew(tmp));
      spooled_.push_back(tmp);
      std::string buf(kSpoolChunk, '\0');
      for (;;) {
        DFRP_ASSIGN_OR_RETURN(size_t n, req.input->Read(buf.size(), buf.data()));
        if (n == 0) break;
        DFRP_RETURN_IF_ERROR(out->WriteAt(size, std::string_view(buf.data(), n)));
        size += n;
      }
      DFRP_RETURN_IF_ERROR(out->Close());
      req.input.reset();
      req.path = tmp;
    } else if (req.input) {
      size = static_cast<uint64_t>(req.input->KnownSize());
    } else {
      if (!size_errors[i].ok())
        return size_errors[i].IsNotFound() ? Status::InvalidArgument(fmt::format(
                                                 "{} does not exist: check the path", req.name))
                                           : size_errors[i];
      size = sizes[i];
    }
    ShardMetadata& m = req.meta;
    if (m.leaf_size == 0) m.leaf_size = s_->leaf_size_;
    m.size = size;
    m.created_unix_ms = now;
    DFRP_RETURN_IF_ERROR(
        ValidateMetadata(m, s_->vector_dim_, s_->nonzero_vectors_).WithContext(req.name));
    Planned p;
    p.request = i;
    p.name = &req.name;
    p.metadata = EncodeMetadata(m);
    p.header.shard_id = core::DefaultUuidGenerator()->NewV7();
    p.header.metadata_len = static_cast<uint32_t>(p.metadata.size());
    p.header.payload_len = size;
    p.header.leaf_size = m.leaf_size;
    p.header.tree_len = TreeSectionSize(size, m.leaf_size);
    p.header.flags = p.header.tree_len > 0 ? kFlagTree : 0;
    planned_.push_back(std::move(p));
  }
  return Status::OK();
}

// Linear placement: each record goes to the lowest-numbered active volume with room.
Status BatchWriter::Plan() {
  struct Room {
    uint64_t used, quota, fs_free, last_segment, last_size;
    bool has_segment;
  };
  std::vector<std::optional<Room>> rooms(s_->volumes_.size());
  for (size_t v = 0; v < s_->volumes_.size(); ++v) {
    const auto& vol = s_->volumes_[v];
    if (!vol || vol->state != VolumeState::kActive) continue;
    auto space = s_->fs_->Space(vol->drive.path);
    Room r{vol->used(), vol->drive.quota, space ? space->available_bytes : UINT64_MAX, 0, 0, false};
    if (!vol->segments.empty()) {
      r.has_segment = true;
      r.last_segment = vol->segments.rbegin()->first;
      r.last_size = vol->segments.rbegin()->second;
    }
    rooms[v] = r;
  }
  std::set<SegmentKey> touched;  // segments this batch appends to (each gets a commit record)
  for (Planned& p : planned_) {
    const uint64_t len = p.header.record_len();
    bool placed = false;
    for (size_t v = 0; v < rooms.size() && !placed; ++v) {
      if (!rooms[v]) continue;
      Room& r = *rooms[v];
      const bool append = r.has_segment && !sealed_.count({uint32_t(v), r.last_segment}) &&
                          r.last_size >= kSegmentHeaderSize &&
                          (r.last_size == kSegmentHeaderSize ||
                           r.last_size + len + kCommitSize <= s_->opt_.segment_target_size);
      const bool first_touch = !append || !touched.count({uint32_t(v), r.last_segment});
      const uint64_t need =
          len + (append ? 0 : kSegmentHeaderSize) + (first_touch ? kCommitSize : 0);
      if (r.used + need > r.quota || need > r.fs_free) continue;
      if (!append) {
        r.last_segment = r.has_segment ? r.last_segment + 1 : 1;
        r.last_size = kSegmentHeaderSize;
        r.has_segment = true;
      }
      touched.insert({uint32_t(v), r.last_segment});
      p.volume = static_cast<uint32_t>(v);
      p.segment = r.last_segment;
      p.offset = r.last_size;
      r.last_size += len;
      r.used += need;
      r.fs_free -= need;
      placed = true;
    }
    if (!placed) {
      uint64_t best = 0;
      for (const auto& r : rooms)
        if (r)
          best = std::max(best, std::min(r->quota > r->used ? r->quota - r->used : 0, r->fs_free));
      std::vector<std::string> held;  // volumes that could take it but for a pause or ENOSPC
      for (const auto& vol : s_->volumes_)
        if (vol && (vol->state == VolumeState::kPaused ||
                    (vol->state == VolumeState::kFull && vol->used() <= vol->drive.quota)))
          held.push_back(fmt::format("{} ({})", vol->drive.index, VolumeStateName(vol->state)));
      if (!held.empty())
        return Status::NoSpace(
            fmt::format("no active volume has room for {} ({}); volume(s) {} take no writes until "
                        "`dfrp-storage resume`; nothing was written",
                        *p.name, core::FormatBytes(p.header.payload_len), fmt::join(held, ", ")));
      return Status::NoSpace(fmt::format(
          "no volume has room for {} ({} as a record of {} bytes; the most any active volume "
          "has left is {}): add a drive (DRIVE_n and QUOTA_n, then init-storage) or raise a "
          "QUOTA_n; nothing was written",
          *p.name, core::FormatBytes(p.header.payload_len), len, core::FormatBytes(best)));
    }
  }
  return Status::OK();
}

Status BatchWriter::OpenSegments() {
  std::map<SegmentKey, uint64_t> new_marks;
  for (const Planned& p : planned_) {
    SegmentKey key{p.volume, p.segment};
    OpenSegment& seg = segments_[key];
    seg.planned_end = std::max(seg.planned_end, p.offset + p.header.record_len());
    if (seg.file) continue;
    const auto& vol = *s_->volumes_[p.volume];
    const std::string path = s_->SegmentPath(p.volume, p.segment);
    if (vol.segments.count(p.segment)) {
      DFRP_ASSIGN_OR_RETURN(seg.file, s_->fs_->OpenForWrite(path));
      seg.original_size = vol.segments.at(p.segment);
      continue;
    }
    auto created = s_->fs_->CreateNew(path);
    if (!created) return OnVolume(p.volume, created.error());
    seg.file = std::move(*created);
    seg.created = true;
    SegmentHeader h{p.volume, s_->store_id_, p.segment};
    DFRP_RETURN_IF_ERROR(OnVolume(p.volume, seg.file->WriteAt(0, EncodeSegmentHeader(h))));
    DFRP_RETURN_IF_ERROR(OnVolume(p.volume, seg.file->Sync()));
    new_marks[key] = kSegmentHeaderSize;
  }
  // A new segment's header and folder entry are durable before its mark is.
  std::set<uint32_t> new_dirs;
  for (const auto& [key, mark] : new_marks) new_dirs.insert(key.first);
  for (uint32_t v : new_dirs) DFRP_RETURN_IF_ERROR(s_->fs_->SyncDir(s_->volumes_[v]->drive.path));
  // Reserve the space up front, commit record included: a full file system fails here,
  // before any record is written.
  for (auto& [key, seg] : segments_) {
    uint64_t from = seg.created ? 0 : seg.original_size;
    DFRP_RETURN_IF_ERROR(
        OnVolume(key.first, seg.file->Allocate(from, seg.planned_end + kCommitSize - from)));
  }
  // New segments get a mark before records go in, so recovery after a crash mid-batch scans
  // them from the mark (see recovery.cc).
  if (!new_marks.empty()) DFRP_RETURN_IF_ERROR(s_->index_->Commit({}, new_marks, /*durable=*/true));
  return Status::OK();
}

namespace {
std::string_view HashesAsBytes(const std::vector<Hash>& hashes) {
  return std::string_view(reinterpret_cast<const char*>(hashes.data()),
                          hashes.size() * sizeof(Hash));
}
}  // namespace

std::vector<BatchWriter::RecordRun> BatchWriter::CutRuns() const {
  std::vector<RecordRun> runs;
  for (size_t i = 0; i < planned_.size(); ++i) {
    const Planned& p = planned_[i];
    if (p.header.payload_len > kInlinePayloadMax) continue;
    const uint64_t len = p.header.record_len();
    if (runs.empty() || runs.back().last != i ||
        runs.back().last - runs.back().first >= kRunRecords ||
        runs.back().bytes + len > kRunBytes || planned_[runs.back().first].volume != p.volume ||
        planned_[runs.back().first].segment != p.segment ||
        runs.back().offset + runs.back().bytes != p.offset)
      runs.push_back(RecordRun{i, i, p.offset, 0, 0});
    RecordRun& r = runs.back();
    r.last = i + 1;
    r.bytes += len;
    r.payload_bytes += p.header.payload_len;
  }
  return runs;
}

// Reads each record's payload straight into its place in `buf` (the run's bytes): files in
// one FileSystem::ReadFiles call, streams one after the other. A file is read up to one byte
// past its size, to tell one that grew; that byte lands where the record's tree or the next
// record's prefix goes, which are written after (LayOutRecord), and past the last record in
// the spare byte at the end of `buf`.
Status BatchWriter::ReadRunInputs(const RecordRun& run, std::vector<WriteRequest>& batch,
                                  char* buf) {
  std::vector<core::FileRead> reads;
  std::vector<size_t> read_of;  // planned_ index of each read
  reads.reserve(run.last - run.first);
  read_of.reserve(run.last - run.first);
  for (size_t i = run.first; i < run.last; ++i) {
    const Planned& p = planned_[i];
    WriteRequest& req = batch[p.request];
    char* dst = buf + (p.offset - run.offset) + p.header.payload_offset();
    const uint64_t size = p.header.payload_len;
    if (req.input) {
      DFRP_RETURN_IF_ERROR(ReadInputExact(*req.input, req.name, size, 0, size, dst));
      DFRP_RETURN_IF_ERROR(CheckAtEnd(*req.input, req.name, size));
      continue;
    }
    core::FileRead& r = reads.emplace_back();
    r.path = &req.path;
    r.dst = dst;
    r.limit = static_cast<size_t>(size) + 1;
    read_of.push_back(i);
  }
  s_->fs_->ReadFiles(reads);
  for (size_t k = 0; k < reads.size(); ++k) {
    DFRP_RETURN_IF_ERROR(reads[k].status);
    const Planned& p = planned_[read_of[k]];
    if (reads[k].got != p.header.payload_len)
      return ChangedWhileReading(*p.name, p.header.payload_len, reads[k].got);
  }
  return Status::OK();
}

// Hashes the payload already in place in `record`, and writes the tree after it and the
// prefix (which holds the root) before it.
void BatchWriter::LayOutRecord(Planned& p, char* record, std::vector<Hash>& leaves) {
  const RecordHeader& h = p.header;
  leaves.resize(crypto::LeafCount(h.payload_len, h.leaf_size));
  crypto::HashLeaves(std::string_view(record + h.payload_offset(), h.payload_len), h.leaf_size,
                     leaves, 1);
  const std::vector<Hash> tree = crypto::TreeLevels(leaves, &p.root);
  const std::string_view tree_bytes = HashesAsBytes(tree);
  // A one-leaf payload has no tree to store (and memcpy may not be given its null data()).
  if (!tree_bytes.empty())
    std::memcpy(record + h.tree_offset(), tree_bytes.data(), tree_bytes.size());
  const std::string prefix = EncodeRecordPrefix(h, p.root, p.metadata);
  std::memcpy(record, prefix.data(), prefix.size());
}

// On a worker thread: the run's records, laid out as they go on disk. Each worker touches
// only its own runs' Planned entries (their roots).
BatchWriter::BuiltRun BatchWriter::BuildRun(const RecordRun& run,
                                            std::vector<WriteRequest>& batch) {
  BuiltRun out;
  out.bytes = std::make_unique_for_overwrite<char[]>(run.bytes + 1);
  out.status = ReadRunInputs(run, batch, out.bytes.get());
  if (!out.status.ok()) return out;
  std::vector<Hash> leaves;
  for (size_t i = run.first; i < run.last; ++i)
    LayOutRecord(planned_[i], out.bytes.get() + (planned_[i].offset - run.offset), leaves);
  return out;
}

Status BatchWriter::WriteStreamed(Planned& p, WriteRequest& req,
                                  const std::function<void(uint64_t)>& moved) {
  const RecordHeader& h = p.header;
  core::WritableFile& out = *segments_.at({p.volume, p.segment}).file;
  DFRP_ASSIGN_OR_RETURN(auto in, OpenInput(req));
  std::vector<Hash> leaves(crypto::LeafCount(h.payload_len, h.leaf_size));
  const uint64_t chunk = PayloadChunkBytes(h.leaf_size);
  std::string buf(static_cast<size_t>(std::min(chunk, h.payload_len)), '\0');
  for (uint64_t done = 0; done < h.payload_len;) {
    const size_t n = static_cast<size_t>(std::min(chunk, h.payload_len - done));
    DFRP_RETURN_IF_ERROR(ReadInputExact(*in, req.name, h.payload_len, done, n, buf.data()));
    crypto::HashLeaves(std::string_view(buf.data(), n), h.leaf_size,
                       std::span<Hash>(leaves).subspan(done / h.leaf_size), s_->opt_.hash_threads);
    const uint64_t at = p.offset + h.payload_offset() + done;
    DFRP_RETURN_IF_ERROR(OnVolume(p.volume, out.WriteAt(at, std::string_view(buf.data(), n))));
    out.StartWriteback(at, n);  // start the disk early so the final sync has little left
    done += n;
    moved(n);
  }
  DFRP_RETURN_IF_ERROR(CheckAtEnd(*in, req.name, h.payload_len));
  std::vector<Hash> tree = crypto::TreeLevels(leaves, &p.root);
  DFRP_RETURN_IF_ERROR(
      OnVolume(p.volume, out.WriteAt(p.offset + h.tree_offset(), HashesAsBytes(tree))));
  return OnVolume(p.volume, out.WriteAt(p.offset, EncodeRecordPrefix(h, p.root, p.metadata)));
}

// Small records are read, hashed and laid out ahead on two worker threads, a run at a time,
// from as soon as they are placed: the workers start while this thread creates the new
// segments and waits for their syncs. This thread writes the runs in order, and streams the
// large records itself. Nothing is written to a segment before OpenSegments is done.
Status BatchWriter::WriteRecords(std::vector<WriteRequest>& batch, const ProgressFn& progress) {
  const std::vector<RecordRun> runs = CutRuns();
  OrderedPipeline<BuiltRun> built(
      runs.size(), [&](size_t r) { return BuildRun(runs[r], batch); }, 2, kRunsAhead);
  DFRP_RETURN_IF_ERROR(OpenSegments());
  uint64_t total = 0, done = 0;
  for (const Planned& p : planned_) total += p.header.payload_len;
  auto moved = [&](uint64_t n) {
    done += n;
    if (progress) progress(done, total);
  };
  size_t next_run = 0;
  for (size_t i = 0; i < planned_.size();) {
    Planned& p = planned_[i];
    if (next_run < runs.size() && runs[next_run].first == i) {
      const RecordRun& run = runs[next_run++];
      BuiltRun b = built.Next();
      DFRP_RETURN_IF_ERROR(b.status);
      core::WritableFile& out = *segments_.at({p.volume, p.segment}).file;
      DFRP_RETURN_IF_ERROR(
          OnVolume(p.volume, out.WriteAt(run.offset, std::string_view(b.bytes.get(), run.bytes))));
      out.StartWriteback(run.offset, run.bytes);
      moved(run.payload_bytes);
      i = run.last;
    } else {
      DFRP_RETURN_IF_ERROR(WriteStreamed(p, batch[p.request], moved));
      ++i;
    }
  }
  return Status::OK();
}

// Makes the batch durable in two steps: the records, then one commit record per segment.
// Because the records are synced before any commit record is written, a commit on disk
// proves the records before it are whole; recovery relies on that (recovery.cc).
Status BatchWriter::SyncAll() {
  for (auto& [key, seg] : segments_) DFRP_RETURN_IF_ERROR(OnVolume(key.first, seg.file->Sync()));
  for (auto& [key, seg] : segments_) {
    CommitRecord c{0, 0};
    for (const Planned& p : planned_) {
      if (p.volume != key.first || p.segment != key.second) continue;
      c.records += 1;
      c.bytes += p.header.record_len();
    }
    DFRP_RETURN_IF_ERROR(OnVolume(key.first, seg.file->WriteAt(seg.planned_end, EncodeCommit(c))));
    seg.planned_end += kCommitSize;
  }
  for (auto& [key, seg] : segments_) DFRP_RETURN_IF_ERROR(OnVolume(key.first, seg.file->Sync()));
  return Status::OK();
}

void BatchWriter::Rollback() {
  for (const std::string& tmp : spooled_) (void)s_->fs_->RemoveFile(tmp);
  spooled_.clear();
  if (committed_) return;
  std::set<uint32_t> dirs;
  for (auto& [key, seg] : segments_) {
    if (!seg.file) continue;
    if (seg.created) {
      (void)seg.file->Close();
      (void)s_->fs_->RemoveFile(s_->SegmentPath(key.first, key.second));
      dirs.insert(key.first);
    } else {
      (void)seg.file->Truncate(seg.original_size);
      (void)seg.file->Sync();
    }
  }
  for (uint32_t v : dirs) (void)s_->fs_->SyncDir(s_->volumes_[v]->drive.path);
  committed_ = true;
}

Result<std::vector<WrittenShard>> BatchWriter::Run(std::vector<WriteRequest>& batch,
                                                   const ProgressFn& progress) {
  DFRP_RETURN_IF_ERROR(Describe(batch));
  DFRP_RETURN_IF_ERROR(Plan());
  DFRP_RETURN_IF_ERROR(WriteRecords(batch, progress));  // creates the new segments first
  std::map<SegmentKey, uint64_t> marks;
  for (const auto& [key, seg] : segments_) marks[key] = seg.planned_end + kCommitSize;
  // While the disk syncs, another thread prepares the index rows (committed only once the
  // sync is done) and the list of written shards: both only read planned_ and batch.
  Status staged, synced;
  std::vector<WrittenShard> out;
  {
    std::jthread indexer([&] {
      std::vector<ShardLocation> locs;
      locs.reserve(planned_.size());
      out.reserve(planned_.size());
      for (const Planned& p : planned_) {
        const RecordHeader& h = p.header;
        locs.push_back({h.shard_id, p.volume, p.segment, p.offset, h.record_len(), h.payload_len,
                        h.leaf_size, p.root});
      }
      staged = s_->index_->Stage(locs, marks);
      for (const Planned& p : planned_)
        out.push_back({p.header.shard_id, p.root, p.header.payload_len, p.header.leaf_size,
                       p.volume, *p.name, p.segment, p.offset});
    });
    synced = SyncAll();
  }
  if (!synced.ok()) {
    if (staged.ok()) (void)s_->index_->FinishStaged(false);
    return Err(synced);
  }
  committed_ = true;  // durable from here on: never undo
  for (const auto& [key, seg] : segments_)
    s_->volumes_[key.first]->segments[key.second] = seg.planned_end;
  Rollback();  // removes spooled inputs only, now that committed_ is set
  Status indexed = staged.ok() ? s_->index_->FinishStaged(true) : staged;
  if (!indexed.ok()) {
    // The batch is durable and committed on the drives: report it as written, with a notice;
    // the next open finds it past the index marks.
    s_->notices_.push_back(fmt::format(
        "the shards are stored durably but the index could not be updated ({}); they will be "
        "indexed when the store is next opened",
        indexed.message()));
  }
  return out;
}

Result<std::vector<WrittenShard>> Store::Write(std::vector<WriteRequest>& batch,
                                               const ProgressFn& progress,
                                               const core::RequestContext& ctx) {
  if (!lock_) return Err(Status::Internal("Store::Write needs a store opened with Mode::kWrite"));
  if (!config_problems_.empty()) return Err(Status::InvalidArgument(config_problems_.front()));
  if (batch.empty()) return std::vector<WrittenShard>();
  std::optional<Result<std::vector<WrittenShard>>> result;
  std::optional<uint32_t> full;
  {
    BatchWriter writer(this);  // rolls a failed batch back when it goes out of scope
    result.emplace(writer.Run(batch, progress));
    full = writer.no_space_volume();
  }
  if (!*result && result->error().IsNoSpace() && full) {
    // The file system itself is full (not the quota): stop placing writes there.
    MarkFull(*full, result->error());
    return Err(Status::NoSpace(fmt::format(
        "volume {} ran out of disk space ({}); nothing was written. The volume is now marked "
        "full, so the next write goes to the next volume with room; once there is free space "
        "on it again, run `dfrp-storage resume {}`",
        *full, result->error().message(), *full)));
  }
  if (*result && observer_) {
    // The batch is durable: every shard of it is counted (a crash before this line is made
    // up for by the observer's own reconciliation against the store).
    for (size_t i = 0; i < (*result)->size() && i < batch.size(); ++i) {
      const WrittenShard& w = (**result)[i];
      observer_->OnWrite(batch[i].ctx ? *batch[i].ctx : ctx, w.id, w.size);
      observer_->OnStored(w.id, w.volume, w.segment, w.offset, batch[i].meta);
    }
    observer_->OnWriteBatchDone();
  }
  return std::move(*result);
}

}  // namespace dfrp::storage
