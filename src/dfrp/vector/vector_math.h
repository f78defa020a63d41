// Vectors in the node's one vector space (VECTOR_DIM float32 components): the metric that
// measures them, the checks every vector from outside passes, and the exact distance that
// every approximate answer is measured against.
//
// Metrics (VECTOR_METRIC):
//   cosine  distance 1 - cos(a, b), in [0, 2]; a zero vector has no direction and is refused.
//           Indexes keep unit vectors, so the distance is 1 - dot(a, b).
//   l2      Euclidean distance |a - b|.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dfrp/core/status.h"

namespace dfrp::vector {

enum class Metric : uint8_t { kCosine = 0, kL2 = 1 };

const char* MetricName(Metric m);
// "cosine" or "l2"; InvalidArgument naming `what` (a config key, a flag) otherwise.
core::Result<Metric> ParseMetric(std::string_view text, std::string_view what = "VECTOR_METRIC");

// Checks a vector from outside: `dim` components, each finite, and not all zero under cosine.
// The error names `what` (a shard id, "--near") and the fix.
core::Status CheckVector(std::span<const float> v, uint32_t dim, Metric metric,
                         std::string_view what);
// Parses "f1,f2,..." (spaces around a number allowed) without checking its length or values;
// InvalidArgument naming `what` and the bad item otherwise.
core::Result<std::vector<float>> ParseNumbers(std::string_view csv, std::string_view what);
// ParseNumbers, then CheckVector.
core::Result<std::vector<float>> ParseVector(std::string_view csv, uint32_t dim, Metric metric,
                                             std::string_view what);

// The form an index keeps: unit length under cosine, unchanged under l2. `v` must have
// passed CheckVector.
std::vector<float> Prepare(std::span<const float> v, Metric metric);

// The distance between two prepared vectors of one length, as reported to users.
float Distance(std::span<const float> a, std::span<const float> b, Metric metric);
// A monotone stand-in for Distance that is cheaper to compute (squared L2 for l2): what
// searches compare; ReportedDistance turns it into Distance.
float RankingDistance(const float* a, const float* b, size_t dim, Metric metric);
float ReportedDistance(float ranking, Metric metric);

}  // namespace dfrp::vector
