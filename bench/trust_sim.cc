// Trust vectors at mesh scale (mesh/trust.h): how much of the global trust a Sybil set takes,
// and what one computation costs, for meshes of 1,000 and 10,000 nodes simulated in-process.
//
// N nodes, a share of them Sybils; node 0 evaluates, pre-trusting itself and a committee of 4
// (nodes 1..4). Sybils vouch only for Sybils (16 each, at random). Two designs:
// - "uptime": every node vouches for 16 peers it exchanges gossip with, chosen at random among
//   all nodes (Sybils answer gossip like anyone). The design this project rejected.
// - "paid": only paid work for trusted payers is evidence (the design built): the committee's
//   authorities vouch for 64 providers each that trusted payers paid, of which a given share
//   are Sybils that did that work; other honest nodes publish no opinion.
// Printed: the Sybils' share of the trust vector, beside their share of the nodes and of the
// paid work; and the time of one ComputeGlobalTrust (a node does one every 5 gossip rounds).
//
// Usage: dfrp-trust-sim [--nodes N]... (default 1000 and 10000)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "dfrp/mesh/trust.h"

namespace {

using Rows = std::vector<std::vector<std::pair<uint32_t, double>>>;

struct Outcome {
  double sybil_share = 0;
  double ms = 0;
  int iterations = 0;
};

Outcome Run(uint32_t n, double sybil_fraction, bool paid, double sybil_work, uint32_t seed) {
  std::mt19937 rng(seed);
  const auto sybils = static_cast<uint32_t>(n * sybil_fraction);
  const uint32_t honest = n - sybils;  // indices [0, honest) honest, the rest Sybils
  std::uniform_int_distribution<uint32_t> any(0, n - 1);
  std::uniform_real_distribution<double> coin(0, 1);
  Rows rows(n);
  for (uint32_t i = 0; i < n; ++i) {
    const bool sybil = i >= honest;
    if (!sybil && paid && (i == 0 || i > 4)) continue;  // no ledger, no opinion
    const size_t want = !sybil && paid ? 64 : dfrp::mesh::kMaxOpinion;
    while (rows[i].size() < want) {
      uint32_t j = any(rng);
      if (sybil && sybils > 1) {
        j = honest + (j % sybils);
      } else if (paid) {  // an authority: a provider trusted payers paid
        j = coin(rng) < sybil_work && sybils > 0 ? honest + (j % sybils) : 5 + j % (honest - 5);
      }
      if (j == i) continue;
      rows[i].emplace_back(j, 1.0);
    }
  }
  const auto t0 = std::chrono::steady_clock::now();
  const dfrp::mesh::TrustResult r = dfrp::mesh::ComputeGlobalTrust(n, rows, {0, 1, 2, 3, 4}, {});
  const auto t1 = std::chrono::steady_clock::now();
  Outcome o;
  for (uint32_t i = honest; i < n; ++i) o.sybil_share += r.global[i];
  o.ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
  o.iterations = r.iterations;
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<uint32_t> sizes;
  for (int i = 1; i + 1 < argc; i += 2)
    if (std::string(argv[i]) == "--nodes") sizes.push_back(std::strtoul(argv[i + 1], nullptr, 10));
  if (sizes.empty()) sizes = {1000, 10000};
  std::printf("%-7s %-7s %-7s %-11s %-12s %-11s %s\n", "nodes", "design", "sybils", "sybil work",
              "sybil trust", "ms/compute", "iterations");
  for (uint32_t n : sizes)
    for (bool paid : {false, true})
      for (double f : {0.1, 0.3, 0.5})
        for (double w : paid ? std::vector<double>{0.0, 0.1} : std::vector<double>{0.0}) {
          const Outcome o = Run(n, f, paid, w, 42);
          std::printf("%-7u %-7s %-7.2f %-11.2f %-12.4f %-11.2f %d\n", n, paid ? "paid" : "uptime",
                      f, w, o.sybil_share, o.ms, o.iterations);
        }
  return 0;
}
