#include "dfrp/mesh/trust.h"

#include <algorithm>
#include <cmath>

namespace dfrp::mesh {

double LocalTrust(const PeerEvidence& e) {
  if (e.fraud_records > 0 || e.equivocations > 0) return 0;
  const double net =
      static_cast<double>(e.proofs_passed) - 2.0 * static_cast<double>(e.proofs_missed);
  if (!(net > 0)) return 0;
  double t = net;
  if (e.answers + e.failures > 0)  // first-hand uptime
    t *= static_cast<double>(e.answers + 1) / static_cast<double>(e.answers + e.failures + 2);
  if (e.rtt_ms > kLatencyReferenceMs) t *= kLatencyReferenceMs / e.rtt_ms;
  return t;
}

std::vector<OpinionEntry> OpinionFromLocal(
    const std::vector<std::pair<ledger::KeyBytes, double>>& local) {
  std::vector<std::pair<ledger::KeyBytes, double>> pos;
  for (const auto& [k, v] : local)
    if (std::isfinite(v) && v > 0) pos.emplace_back(k, v);
  std::sort(pos.begin(), pos.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  if (pos.size() > kMaxOpinion) pos.resize(kMaxOpinion);
  double sum = 0;
  for (const auto& p : pos) sum += p.second;
  std::vector<OpinionEntry> out;
  for (const auto& [k, v] : pos) {
    const double share = std::round(65535.0 * v / sum);
    out.push_back({k, static_cast<uint16_t>(std::clamp(share, 1.0, 65535.0))});
  }
  return out;
}

TrustResult ComputeGlobalTrust(size_t n,
                               const std::vector<std::vector<std::pair<uint32_t, double>>>& rows,
                               const std::vector<uint32_t>& pretrusted, const TrustOptions& opt) {
  TrustResult res;
  if (n == 0) return res;
  std::vector<double> p(n, 0.0);
  size_t np = 0;
  for (uint32_t i : pretrusted)
    if (i < n && p[i] == 0) {
      p[i] = 1;
      ++np;
    }
  if (np == 0) {  // nobody to start from: every node alike
    std::fill(p.begin(), p.end(), 1.0);
    np = n;
  }
  for (double& v : p) v /= static_cast<double>(np);
  // The normalised rows; an empty one follows p.
  std::vector<std::vector<std::pair<uint32_t, double>>> c(n);
  for (size_t i = 0; i < n && i < rows.size(); ++i) {
    double sum = 0;
    for (const auto& [j, w] : rows[i])
      if (j < n && j != i && std::isfinite(w) && w > 0) sum += w;
    if (!(sum > 0) || !std::isfinite(sum)) continue;
    for (const auto& [j, w] : rows[i])
      if (j < n && j != i && std::isfinite(w) && w > 0) c[i].emplace_back(j, w / sum);
  }
  const double a = std::clamp(opt.pretrust_weight, 0.0, 1.0);
  std::vector<double> t = p, next(n);
  for (res.iterations = 0; res.iterations < opt.max_iterations;) {
    std::fill(next.begin(), next.end(), 0.0);
    double follow_p = 0;  // the trust held by nodes with no opinion
    for (size_t i = 0; i < n; ++i) {
      if (t[i] == 0) continue;
      if (c[i].empty()) {
        follow_p += t[i];
        continue;
      }
      for (const auto& [j, w] : c[i]) next[j] += t[i] * w;
    }
    double change = 0;
    for (size_t j = 0; j < n; ++j) {
      const double v = (1 - a) * (next[j] + follow_p * p[j]) + a * p[j];
      change += std::abs(v - t[j]);
      t[j] = v;
    }
    ++res.iterations;
    res.residual = change;
    if (change < opt.epsilon) break;
  }
  res.global = std::move(t);
  return res;
}

}  // namespace dfrp::mesh
