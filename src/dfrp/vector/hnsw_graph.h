// HnswGraph: an HNSW graph (hnswlib) over prepared vectors (vector_math.h), with what the
// indexes of this module need of it, including saving and loading through our own bytes
// (hnswlib's saveIndex and loadIndex use std::fstream, outside core::FileSystem).
//
// This is the one file that includes hnswlib: Debian's 0.6.2 defines functions in its
// headers, so a second translation unit including it would not link. Distances here are
// ranking distances (vector_math.h): 1 - dot under cosine, squared L2 under l2.
//
// Thread-safety: Add may run on several threads at once (hnswlib's own locks); Search may
// not run beside another Search (hnswlib keeps the candidate list size in the graph) nor
// beside Reserve or ReadFrom.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dfrp/core/bytes.h"
#include "dfrp/vector/vector_math.h"

namespace dfrp::vector {

class HnswGraph {
 public:
  HnswGraph(Metric metric, uint32_t dim, size_t capacity, uint32_t m, uint32_t ef_construction);
  ~HnswGraph();
  HnswGraph(const HnswGraph&) = delete;
  HnswGraph& operator=(const HnswGraph&) = delete;

  size_t size() const;  // nodes, removed ones included
  size_t capacity() const;
  // Grows the capacity to at least n.
  void Reserve(size_t n);
  // Adds `v` (dim floats) under `label`, or updates (and restores) the node of a label the
  // graph has. The capacity must have room (Reserve).
  void Add(const float* v, size_t label);
  // Leaves a label out of searches (a label the graph does not have is ignored).
  void Remove(size_t label);
  // The k nearest (ranking distance, label), nearest first, with a candidate list of ef.
  std::vector<std::pair<float, size_t>> Search(const float* q, size_t k, size_t ef) const;
  // Makes the first search as fast as the next ones: runs one, which allocates and clears
  // hnswlib's list of visited nodes (2 bytes per node of capacity).
  void Warm() const;
  // Node i (in insertion order): its vector and its label; for brute force over the graph.
  const float* VectorAt(size_t i) const;
  size_t LabelAt(size_t i) const;
  // Memory the graph holds (its arrays, links, locks and label map), approximately.
  uint64_t MemoryBytes() const;

  // Appends the graph's nodes, links and entry point (docs/FORMAT.md, vectors.idx).
  void AppendTo(std::string* out) const;
  // Replaces this (empty) graph's nodes with what AppendTo wrote for a graph of the same
  // metric, dim and m. Every link and label is checked, so that no search can read outside
  // the graph whatever the bytes held; "" on success, else what is wrong.
  std::string ReadFrom(core::Reader* r, size_t expected_nodes);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dfrp::vector
