// Fuzzes the vector module's parsers of outside bytes: a vector as given on the command line
// or in a query (ParseVector), and the graph section of a vectors.idx (HnswGraph::ReadFrom,
// which must refuse anything that could make a search read outside the graph: the file's
// checksum is checked before it, but the checks must hold on their own). Modes, by the first
// byte: 0 parses text; 1 reads the rest as a graph; 2 builds a small graph from the input's
// numbers, saves it, damages the saved bytes where the input says, and reads that back.
// Checks: nothing crashes; a parsed vector has the dimension and finite components; a graph
// read back answers searches with labels it holds.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "dfrp/core/bytes.h"
#include "dfrp/vector/hnsw_graph.h"
#include "dfrp/vector/vector_math.h"
#include "fuzz_util.h"

using dfrp::vector::HnswGraph;
using dfrp::vector::Metric;

namespace {

constexpr uint32_t kDim = 4;

void SearchAll(const HnswGraph& g) {
  const float q[kDim] = {0.5f, 0.5f, 0.5f, 0.5f};
  for (const auto& [d, label] : g.Search(q, 5, 10)) DFRP_FUZZ_CHECK(label < g.size());
  for (size_t i = 0; i < g.size(); ++i) DFRP_FUZZ_CHECK(g.LabelAt(i) < g.size());
}

void ReadBack(std::string_view bytes) {
  HnswGraph g(Metric::kCosine, kDim, 16, 4, 16);
  dfrp::core::Reader r(bytes);
  uint64_t n = 0;
  if (bytes.size() >= 8) std::memcpy(&n, bytes.data(), 8);
  if (g.ReadFrom(&r, n).empty()) SearchAll(g);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest = dfrp::fuzz::AsView(data + 1, size - 1);
  switch (data[0] % 3) {
    case 0: {
      auto v = dfrp::vector::ParseVector(rest, kDim, Metric::kCosine, "--near");
      if (v) {
        DFRP_FUZZ_CHECK(v->size() == kDim);
        for (float x : *v) DFRP_FUZZ_CHECK(std::isfinite(x));
      }
      break;
    }
    case 1:
      ReadBack(rest);
      break;
    case 2: {
      // Up to 24 points from the input's bytes, then up to 8 damaged bytes.
      HnswGraph g(Metric::kCosine, kDim, 32, 4, 16);
      size_t pos = 0, label = 0;
      for (; label < 24 && pos + kDim <= rest.size() && rest[pos] != '!'; pos += kDim, ++label) {
        float v[kDim];
        for (uint32_t j = 0; j < kDim; ++j) v[j] = static_cast<float>(int8_t(rest[pos + j])) + 0.5f;
        auto p = dfrp::vector::Prepare(v, Metric::kCosine);
        g.Add(p.data(), label);
      }
      std::string saved;
      g.AppendTo(&saved);
      for (++pos; pos + 3 <= rest.size() && !saved.empty(); pos += 3) {
        const size_t at = (uint8_t(rest[pos]) | uint8_t(rest[pos + 1]) << 8) % saved.size();
        saved[at] ^= rest[pos + 2];
      }
      ReadBack(saved);
      break;
    }
  }
  return 0;
}
