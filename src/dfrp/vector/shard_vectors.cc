#include "dfrp/vector/shard_vectors.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <queue>
#include <thread>

#include "dfrp/core/bytes.h"
#include "dfrp/crypto/sha256.h"

namespace dfrp::vector {

using core::Err;
using core::Result;
using core::Status;

namespace {
// vectors.idx (docs/FORMAT.md): magic, format, then the fields below, the id table, the graph,
// and a SHA-256 of everything before it.
constexpr std::string_view kMagic = "DFRPVEC1";
constexpr uint32_t kFormat = 1;
constexpr size_t kHashSize = 32;
}  // namespace

ShardVectorsOptions ShardVectorsOptionsFor(const core::NodeConfig& config) {
  ShardVectorsOptions o;
  o.dim = config.vector_dim;
  o.metric = config.vector_metric == "l2" ? Metric::kL2 : Metric::kCosine;
  return o;
}

ShardVectors::ShardVectors(core::FileSystem* fs, std::string path, core::Uuid store_id,
                           const ShardVectorsOptions& opt)
    : fs_(fs), path_(std::move(path)), store_id_(store_id), opt_(opt) {}

ShardVectors::~ShardVectors() = default;

void ShardVectors::Reset(size_t capacity) {
  graph_.reset();
  graph_ = std::make_unique<HnswGraph>(opt_.metric, opt_.dim, std::max<size_t>(capacity, 1024),
                                       opt_.m, opt_.ef_construction);
  ids_.clear();
  coverage_.clear();
}

Result<std::unique_ptr<ShardVectors>> ShardVectors::Open(storage::Store* store,
                                                         const std::string& state_dir,
                                                         const ShardVectorsOptions& opt,
                                                         bool rebuild,
                                                         const storage::ProgressFn& progress) {
  if (opt.dim == 0 || opt.m < 2 || opt.ef_construction == 0)
    return Err(
        Status::InvalidArgument("vector index: VECTOR_DIM, M and ef_construction must be "
                                "positive (M at least 2)"));
  std::unique_ptr<ShardVectors> v(new ShardVectors(
      store->fs(), core::JoinPath(state_dir, kShardVectorsFileName), store->store_id(), opt));
  core::MutexLock lock(&v->mu_);
  std::string why = rebuild ? "a rebuild was asked for" : v->Load();
  if (why.empty()) {
    DFRP_ASSIGN_OR_RETURN(std::string stale, v->CatchUp(store, progress));
    why = stale;
  }
  if (!why.empty()) {
    v->report_ = ShardVectorsReport{};
    v->report_.built = true;
    v->report_.why_built = why;
    v->Reset(0);
    DFRP_ASSIGN_OR_RETURN(std::string stale, v->CatchUp(store, progress));
    if (!stale.empty())  // the store changed under a reader: what was read is still valid
      v->report_.notices.push_back("the store changed while the vector index was built: " + stale);
    v->unsaved_ = std::max<uint64_t>(v->unsaved_, 1);  // a built index is worth saving
  }
  v->graph_->Warm();  // part of opening, not of the first search
  return v;
}

// A reason the snapshot cannot be used, or "" once it is loaded. On a reason, Open rebuilds
// (which resets whatever Decode left).
std::string ShardVectors::Load() {
  if (!fs_->Exists(path_)) return "no saved index";
  auto bytes = core::ReadWholeFile(fs_, path_);
  if (!bytes) return fmt::format("{} could not be read ({})", path_, bytes.error().message());
  return Decode(*bytes);
}

void ShardVectors::Insert(std::vector<std::pair<core::Uuid, std::vector<float>>> items) {
  if (items.empty()) return;
  const size_t base = ids_.size();
  graph_->Reserve(base + items.size());
  for (const auto& [id, v] : items) ids_.push_back(id);
  int threads = opt_.build_threads > 0 ? opt_.build_threads
                                       : static_cast<int>(std::thread::hardware_concurrency());
  if (items.size() < 10'000) threads = 1;  // not worth the threads
  threads = std::max(1, threads);
  // hnswlib's addPoint may run on several threads at once (per-node locks); labels are given
  // here, so the graph's labels do not depend on which thread inserted what.
  std::atomic<size_t> next{0};
  HnswGraph* graph = graph_.get();
  auto work = [&] {
    for (size_t i = next++; i < items.size(); i = next++)
      graph->Add(items[i].second.data(), base + i);
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
}

Result<std::string> ShardVectors::CatchUp(storage::Store* store,
                                          const storage::ProgressFn& progress) {
  const std::vector<storage::VolumeInfo> volumes = store->ListVolumes();
  std::map<uint32_t, const storage::VolumeInfo*> by_index;
  for (const auto& vi : volumes) by_index[vi.index] = &vi;
  for (const auto& [volume, cov] : coverage_)
    if (cov.scanned > 0 && !by_index.contains(volume))
      return fmt::format("it covers volume {}, which the store no longer has", volume);
  // First the checks and what there is to read, so that progress has a total.
  std::map<uint32_t, storage::ShardSpan> spans;
  uint64_t total = 0;
  for (const auto& [volume, info] : by_index) {
    const Coverage cov = coverage_.contains(volume) ? coverage_[volume] : Coverage{};
    DFRP_ASSIGN_OR_RETURN(storage::ShardSpan span, store->ShardSpanAfter(volume, cov.last));
    if (info->shards < span.shards || info->shards - span.shards != cov.scanned)
      return fmt::format(
          "it saw {} shards on volume {} up to segment {} offset {}, where the store's index "
          "now has {}",
          cov.scanned, volume, cov.last.segment, cov.last.offset,
          info->shards >= span.shards ? info->shards - span.shards : 0);
    spans[volume] = span;
    total += span.shards;
  }
  std::vector<std::pair<core::Uuid, std::vector<float>>> items;
  uint64_t done = 0;
  for (const auto& [volume, span] : spans) {
    if (!span.last) continue;
    Coverage& cov = coverage_[volume];
    const storage::VolumeInfo& info = *by_index[volume];
    if (info.state == storage::VolumeState::kMissing ||
        info.state == storage::VolumeState::kUninitialized) {
      report_.notices.push_back(fmt::format(
          "volume {} is unavailable ({}): the vectors of its {} newest shards are not searchable "
          "until it is back",
          volume, info.problem, span.shards));
      continue;
    }
    bool stop = false;
    while (!stop) {
      DFRP_ASSIGN_OR_RETURN(std::vector<storage::ShardLocation> page,
                            store->ShardPage(volume, cov.last, *span.last, 1024));
      if (page.empty()) break;
      for (const storage::ShardLocation& loc : page) {
        auto meta = store->ReadMetadata(loc);
        if (!meta) {
          report_.notices.push_back(fmt::format(
              "shard {} on volume {} could not be read ({}): it and the shards after it on that "
              "volume are left out until the next open",
              loc.id.ToString(), volume, meta.error().message()));
          stop = true;
          break;
        }
        cov.last = {loc.segment, loc.offset};
        ++cov.scanned;
        ++report_.scanned;
        ++unsaved_;
        if (progress && (++done % 4096 == 0)) progress(done, total);
        if (meta->vector.empty()) continue;
        Status ok = CheckVector(meta->vector, opt_.dim, opt_.metric,
                                fmt::format("the vector of shard {}", loc.id.ToString()));
        if (!ok.ok()) {
          ++report_.skipped;
          if (report_.notices.size() < 20)
            report_.notices.push_back(ok.message() + "; it is not searchable");
          continue;
        }
        items.emplace_back(loc.id, Prepare(meta->vector, opt_.metric));
      }
    }
  }
  report_.added += items.size();
  Insert(std::move(items));
  if (progress) progress(total, total);
  return std::string();
}

void ShardVectors::Add(const core::Uuid& id, uint32_t volume, storage::DiskPlace place,
                       std::span<const float> vector) {
  core::MutexLock lock(&mu_);
  Coverage& cov = coverage_[volume];
  if (cov.scanned > 0 && place <= cov.last) return;  // seen already
  cov.last = place;
  ++cov.scanned;
  ++unsaved_;
  if (vector.empty() || !CheckVector(vector, opt_.dim, opt_.metric, "").ok()) return;
  const std::vector<float> v = Prepare(vector, opt_.metric);
  graph_->Reserve(ids_.size() + 1);
  graph_->Add(v.data(), ids_.size());
  ids_.push_back(id);
}

Result<std::vector<Hit>> ShardVectors::Search(std::span<const float> query, const SearchOptions& o,
                                              std::string_view what) const {
  DFRP_RETURN_IF_ERROR(CheckVector(query, opt_.dim, opt_.metric, what));
  if (o.k == 0) return std::vector<Hit>();
  const std::vector<float> q = Prepare(query, opt_.metric);
  core::MutexLock lock(&mu_);
  std::vector<std::pair<float, size_t>> found;  // (ranking distance, label)
  if (o.exact) {
    std::priority_queue<std::pair<float, size_t>> best;  // the k best so far, worst on top
    for (size_t i = 0, n = graph_->size(); i < n; ++i) {
      const float d = RankingDistance(q.data(), graph_->VectorAt(i), opt_.dim, opt_.metric);
      if (best.size() < o.k) {
        best.emplace(d, graph_->LabelAt(i));
      } else if (d < best.top().first) {
        best.pop();
        best.emplace(d, graph_->LabelAt(i));
      }
    }
    for (; !best.empty(); best.pop()) found.push_back(best.top());
  } else {
    found = graph_->Search(q.data(), o.k, o.ef ? o.ef : opt_.ef_search);
  }
  std::vector<Hit> hits;
  hits.reserve(found.size());
  for (const auto& [d, label] : found)
    hits.push_back({ids_[label], ReportedDistance(d, opt_.metric)});
  std::sort(hits.begin(), hits.end(), [](const Hit& a, const Hit& b) {
    return a.distance != b.distance ? a.distance < b.distance : a.id < b.id;
  });
  return hits;
}

uint64_t ShardVectors::size() const {
  core::MutexLock lock(&mu_);
  return ids_.size();
}

uint64_t ShardVectors::unsaved() const {
  core::MutexLock lock(&mu_);
  return unsaved_;
}

Status ShardVectors::Save() {
  std::string bytes;
  uint64_t saved;
  {
    core::MutexLock lock(&mu_);
    if (unsaved_ == 0) return Status::OK();
    bytes = Encode();
    saved = unsaved_;
  }
  DFRP_RETURN_IF_ERROR(
      core::WriteFileAtomic(fs_, path_, bytes)
          .WithContext("saving the vector index (a cache: the next open rebuilds what it lacks)"));
  core::MutexLock lock(&mu_);
  unsaved_ -= std::min(unsaved_, saved);
  return Status::OK();
}

std::string ShardVectors::Encode() const {
  std::string out;
  out.reserve(256 + ids_.size() * 256);
  out.append(kMagic);
  core::PutU32(&out, kFormat);
  out.append(store_id_.AsBytes());
  core::PutU32(&out, opt_.dim);
  core::PutU8(&out, static_cast<uint8_t>(opt_.metric));
  core::PutU32(&out, opt_.m);
  core::PutU32(&out, opt_.ef_construction);
  core::PutU32(&out, static_cast<uint32_t>(coverage_.size()));
  for (const auto& [volume, cov] : coverage_) {
    core::PutU32(&out, volume);
    core::PutU64(&out, cov.last.segment);
    core::PutU64(&out, cov.last.offset);
    core::PutU64(&out, cov.scanned);
  }
  core::PutU64(&out, ids_.size());
  for (const core::Uuid& id : ids_) out.append(id.AsBytes());
  graph_->AppendTo(&out);
  const crypto::Hash h = crypto::Sha256Of(out);
  out.append(reinterpret_cast<const char*>(h.data()), h.size());
  return out;
}

std::string ShardVectors::Decode(std::string_view bytes) {
  if (bytes.size() < kMagic.size() + kHashSize || bytes.substr(0, kMagic.size()) != kMagic)
    return "it is not a vector index file";
  const std::string_view body = bytes.substr(0, bytes.size() - kHashSize);
  const crypto::Hash h = crypto::Sha256Of(body);
  if (std::memcmp(h.data(), bytes.data() + body.size(), kHashSize) != 0)
    return "it fails its checksum (damaged)";
  core::Reader r(body.substr(kMagic.size()));
  uint32_t format = 0, dim = 0, m = 0, efc = 0, nvol = 0;
  uint8_t metric = 0;
  std::string_view store;
  if (!r.U32(&format) || format != kFormat) return fmt::format("it has format {}", format);
  if (!r.Bytes(16, &store) || !r.U32(&dim) || !r.U8(&metric) || !r.U32(&m) || !r.U32(&efc) ||
      !r.U32(&nvol))
    return "it is truncated";
  if (core::Uuid::FromBytes(store) != store_id_) return "it belongs to another store";
  if (dim != opt_.dim) return fmt::format("it holds {}-dimensional vectors", dim);
  if (metric != static_cast<uint8_t>(opt_.metric))
    return fmt::format("it was built for VECTOR_METRIC = {}",
                       MetricName(static_cast<Metric>(metric & 1)));
  if (m != opt_.m || efc != opt_.ef_construction)
    return fmt::format("it was built with M = {}, ef_construction = {}", m, efc);
  std::map<uint32_t, Coverage> coverage;
  for (uint32_t i = 0; i < nvol; ++i) {
    uint32_t volume = 0;
    Coverage c;
    if (!r.U32(&volume) || !r.U64(&c.last.segment) || !r.U64(&c.last.offset) || !r.U64(&c.scanned))
      return "it is truncated";
    coverage[volume] = c;
  }
  uint64_t count = 0;
  if (!r.U64(&count) || count > r.remaining() / 16) return "it is truncated";
  std::vector<core::Uuid> ids;
  ids.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    std::string_view b;
    (void)r.Bytes(16, &b);
    ids.push_back(core::Uuid::FromBytes(b));
  }
  Reset(count);
  std::string why = graph_->ReadFrom(&r, count);
  if (!why.empty()) return why;
  if (r.remaining() != 0) return "it has bytes past its graph";
  ids_ = std::move(ids);
  coverage_ = std::move(coverage);
  unsaved_ = 0;
  return std::string();
}

}  // namespace dfrp::vector
