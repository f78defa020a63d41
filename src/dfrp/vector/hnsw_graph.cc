#include "dfrp/vector/hnsw_graph.h"

#include <hnswlib/hnswlib.h>

#include <cstring>

namespace dfrp::vector {

namespace {
// hnswlib draws a node's level with P(level >= l) = M^-l: 64 is out of reach for any M >= 2.
constexpr uint32_t kMaxLevel = 64;

uint16_t ListCount(const char* list) {
  uint16_t n;
  std::memcpy(&n, list, sizeof(n));
  return n;
}

uint32_t ListEntry(const char* list, size_t j) {
  uint32_t v;
  std::memcpy(&v, list + sizeof(hnswlib::linklistsizeint) + j * sizeof(hnswlib::tableint),
              sizeof(v));
  return v;
}
}  // namespace

struct HnswGraph::Impl {
  std::unique_ptr<hnswlib::SpaceInterface<float>> space;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> g;
};

HnswGraph::HnswGraph(Metric metric, uint32_t dim, size_t capacity, uint32_t m,
                     uint32_t ef_construction)
    : impl_(std::make_unique<Impl>()) {
  if (metric == Metric::kL2)
    impl_->space = std::make_unique<hnswlib::L2Space>(dim);
  else
    impl_->space = std::make_unique<hnswlib::InnerProductSpace>(dim);
  impl_->g = std::make_unique<hnswlib::HierarchicalNSW<float>>(
      impl_->space.get(), std::max<size_t>(capacity, 16), m, ef_construction);
}

HnswGraph::~HnswGraph() = default;

size_t HnswGraph::size() const { return impl_->g->cur_element_count; }
size_t HnswGraph::capacity() const { return impl_->g->max_elements_; }

void HnswGraph::Reserve(size_t n) {
  if (n > impl_->g->max_elements_) impl_->g->resizeIndex(std::max(n, impl_->g->max_elements_ * 2));
}

void HnswGraph::Add(const float* v, size_t label) { impl_->g->addPoint(v, label); }

void HnswGraph::Remove(size_t label) {
  auto& g = *impl_->g;
  auto it = g.label_lookup_.find(label);
  if (it != g.label_lookup_.end() && !g.isMarkedDeleted(it->second)) g.markDelete(label);
}

std::vector<std::pair<float, size_t>> HnswGraph::Search(const float* q, size_t k, size_t ef) const {
  std::vector<std::pair<float, size_t>> out;
  if (impl_->g->cur_element_count == 0 || k == 0) return out;
  impl_->g->setEf(std::max(ef, k));
  auto best = impl_->g->searchKnn(q, k);
  out.resize(best.size());
  for (size_t i = best.size(); i-- > 0; best.pop()) out[i] = {best.top().first, best.top().second};
  return out;
}

void HnswGraph::Warm() const {
  if (impl_->g->cur_element_count > 0) (void)Search(VectorAt(0), 1, 1);
}

const float* HnswGraph::VectorAt(size_t i) const {
  return reinterpret_cast<const float*>(
      impl_->g->getDataByInternalId(static_cast<hnswlib::tableint>(i)));
}

size_t HnswGraph::LabelAt(size_t i) const {
  return impl_->g->getExternalLabel(static_cast<hnswlib::tableint>(i));
}

uint64_t HnswGraph::MemoryBytes() const {
  const auto& g = *impl_->g;
  uint64_t bytes = g.max_elements_ * (g.size_data_per_element_ + sizeof(void*) + sizeof(int) +
                                      sizeof(std::mutex) + sizeof(uint16_t));
  for (size_t i = 0; i < g.cur_element_count; ++i)
    bytes += uint64_t(g.element_levels_[i]) * g.size_links_per_element_;
  // An unordered_map node and a bucket per label.
  bytes += g.label_lookup_.size() * (sizeof(size_t) * 3 + sizeof(void*) * 2);
  return bytes;
}

void HnswGraph::AppendTo(std::string* out) const {
  const auto& g = *impl_->g;
  const size_t n = g.cur_element_count;
  core::PutU64(out, n);
  core::PutU64(out, g.size_data_per_element_);
  core::PutU64(out, g.size_links_per_element_);
  core::PutU32(out, static_cast<uint32_t>(g.maxlevel_));
  core::PutU32(out, n > 0 ? g.enterpoint_node_ : 0);
  out->append(g.data_level0_memory_, n * g.size_data_per_element_);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t level = static_cast<uint32_t>(g.element_levels_[i]);
    core::PutU32(out, level);
    if (level > 0) out->append(g.linkLists_[i], level * g.size_links_per_element_);
  }
}

std::string HnswGraph::ReadFrom(core::Reader* r, size_t expected_nodes) {
  auto& g = *impl_->g;
  if (g.cur_element_count != 0) return "the graph is not empty";
  uint64_t n = 0, per_element = 0, per_link = 0;
  uint32_t maxlevel = 0, enter = 0;
  if (!r->U64(&n) || !r->U64(&per_element) || !r->U64(&per_link) || !r->U32(&maxlevel) ||
      !r->U32(&enter))
    return "it is truncated";
  if (n != expected_nodes) return "its graph and its id table disagree";
  if (per_element != g.size_data_per_element_ || per_link != g.size_links_per_element_)
    return "its graph has another layout";
  std::string_view level0;
  if (n > r->remaining() / per_element || !r->Bytes(n * per_element, &level0))
    return "it is truncated";
  Reserve(n);
  std::memcpy(g.data_level0_memory_, level0.data(), level0.size());
  // Each node's upper levels. cur_element_count grows with them, so that the graph's own
  // destructor frees exactly what was allocated if a check below fails.
  for (uint64_t i = 0; i < n; ++i) {
    uint32_t level = 0;
    if (!r->U32(&level) || level > kMaxLevel) return "its graph is damaged (a level)";
    std::string_view links;
    if (level > 0 && (level > r->remaining() / per_link || !r->Bytes(level * per_link, &links)))
      return "it is truncated";
    g.element_levels_[i] = static_cast<int>(level);
    g.linkLists_[i] = nullptr;
    if (level > 0) {
      g.linkLists_[i] = static_cast<char*>(malloc(links.size()));
      if (!g.linkLists_[i]) return "it does not fit in memory";
      std::memcpy(g.linkLists_[i], links.data(), links.size());
    }
    g.cur_element_count = i + 1;
  }
  // Every link must name a node that has the level it is followed at, and every label must be
  // one of 0..n-1, once.
  for (uint64_t i = 0; i < n; ++i) {
    const size_t label = g.getExternalLabel(static_cast<hnswlib::tableint>(i));
    if (label >= n || g.label_lookup_.contains(label)) return "its graph is damaged (a label)";
    g.label_lookup_[label] = static_cast<hnswlib::tableint>(i);
    for (int level = 0; level <= g.element_levels_[i]; ++level) {
      const char* list = level == 0 ? g.data_level0_memory_ + i * per_element
                                    : g.linkLists_[i] + (level - 1) * per_link;
      const size_t cap = level == 0 ? g.maxM0_ : g.maxM_;
      const uint16_t size = ListCount(list);
      if (size > cap) return "its graph is damaged (a link count)";
      for (size_t j = 0; j < size; ++j) {
        const uint32_t to = ListEntry(list, j);
        if (to >= n || g.element_levels_[to] < level) return "its graph is damaged (a link)";
      }
    }
  }
  if (n > 0 && (enter >= n || g.element_levels_[enter] != static_cast<int>(maxlevel)))
    return "its graph is damaged (the entry point)";
  g.maxlevel_ = n > 0 ? static_cast<int>(maxlevel) : -1;
  g.enterpoint_node_ = n > 0 ? enter : static_cast<hnswlib::tableint>(-1);
  return std::string();
}

}  // namespace dfrp::vector
