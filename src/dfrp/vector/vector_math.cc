#include "dfrp/vector/vector_math.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace dfrp::vector {

using core::Err;
using core::Result;
using core::Status;

const char* MetricName(Metric m) { return m == Metric::kL2 ? "l2" : "cosine"; }

Result<Metric> ParseMetric(std::string_view text, std::string_view what) {
  if (text == "cosine") return Metric::kCosine;
  if (text == "l2") return Metric::kL2;
  return Err(Status::InvalidArgument(
      fmt::format("{} = '{}' is not a metric: use cosine (the default) or l2", what, text)));
}

Status CheckVector(std::span<const float> v, uint32_t dim, Metric metric, std::string_view what) {
  if (v.size() != dim)
    return Status::InvalidArgument(
        fmt::format("{} has {} components but VECTOR_DIM is {}: give {} comma-separated numbers",
                    what, v.size(), dim, dim));
  bool all_zero = true;
  for (size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i]))
      return Status::InvalidArgument(
          fmt::format("{}: component {} is not a finite number", what, i + 1));
    if (v[i] != 0.0f) all_zero = false;
  }
  if (all_zero && metric == Metric::kCosine)
    return Status::InvalidArgument(
        fmt::format("{} is the zero vector, which has no direction under the cosine metric: give a "
                    "non-zero vector (or set VECTOR_METRIC = \"l2\")",
                    what));
  return Status::OK();
}

Result<std::vector<float>> ParseNumbers(std::string_view csv, std::string_view what) {
  std::vector<float> v;
  size_t pos = 0;
  while (true) {
    const size_t comma = csv.find(',', pos);
    std::string_view part =
        csv.substr(pos, comma == std::string_view::npos ? csv.npos : comma - pos);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    float f = 0;
    auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), f);
    if (part.empty() || ec != std::errc() || end != part.data() + part.size())
      return Err(Status::InvalidArgument(
          fmt::format("{}: '{}' (component {}) is not a number; write the vector as "
                      "comma-separated numbers, such as 0.5,-1,2e-3",
                      what, part, v.size() + 1)));
    v.push_back(f);
    if (v.size() > 65536)
      return Err(Status::InvalidArgument(fmt::format("{} has too many components", what)));
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return v;
}

Result<std::vector<float>> ParseVector(std::string_view csv, uint32_t dim, Metric metric,
                                       std::string_view what) {
  DFRP_ASSIGN_OR_RETURN(std::vector<float> v, ParseNumbers(csv, what));
  DFRP_RETURN_IF_ERROR(CheckVector(v, dim, metric, what));
  return v;
}

std::vector<float> Prepare(std::span<const float> v, Metric metric) {
  std::vector<float> out(v.begin(), v.end());
  if (metric != Metric::kCosine) return out;
  double norm = 0;
  for (float x : v) norm += double(x) * double(x);
  norm = std::sqrt(norm);
  if (norm > 0)
    for (float& x : out) x = static_cast<float>(x / norm);
  return out;
}

float RankingDistance(const float* a, const float* b, size_t dim, Metric metric) {
  size_t i = 0;
  float acc = 0;
#if defined(__SSE2__)
  // Four lanes at a time (every x86-64 has SSE2), then the rest one by one.
  __m128 sum = _mm_setzero_ps();
  for (; i + 4 <= dim; i += 4) {
    const __m128 x = _mm_loadu_ps(a + i), y = _mm_loadu_ps(b + i);
    if (metric == Metric::kCosine) {
      sum = _mm_add_ps(sum, _mm_mul_ps(x, y));
    } else {
      const __m128 d = _mm_sub_ps(x, y);
      sum = _mm_add_ps(sum, _mm_mul_ps(d, d));
    }
  }
  float lanes[4];
  _mm_storeu_ps(lanes, sum);
  acc = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
#endif
  for (; i < dim; ++i) {
    if (metric == Metric::kCosine) {
      acc += a[i] * b[i];
    } else {
      const float d = a[i] - b[i];
      acc += d * d;
    }
  }
  return metric == Metric::kCosine ? 1.0f - acc : acc;
}

float ReportedDistance(float ranking, Metric metric) {
  if (metric == Metric::kL2) return std::sqrt(std::max(ranking, 0.0f));
  return ranking;
}

float Distance(std::span<const float> a, std::span<const float> b, Metric metric) {
  return ReportedDistance(RankingDistance(a.data(), b.data(), std::min(a.size(), b.size()), metric),
                          metric);
}

}  // namespace dfrp::vector
