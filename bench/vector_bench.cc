// dfrp-vector-bench: the vector module's speed against brute force and against faiss's HNSW
// (bench/vector_search.sh runs it; docs/BENCHMARKS.md, "Issue 14", keeps the figures).
//
//   shards   N vectors (random, or clustered), Q queries: exact top-10 by brute force (the
//            reference), then the HNSW graph the shard index uses (HnswGraph, M and
//            ef_construction as dfrp's) at several ef: recall@10 and queries per second on
//            one core; faiss's IndexHNSWFlat built with the same M and ef in the same run when
//            faiss is there; insert rate and bytes per vector.
//   nodes    the node index: N offers, a fee filter that a given share passes, k = 10:
//            decisions per second on one core by brute force and by HNSW post-filter, and the
//            post-filter's recall against brute force.
//
// Prints a table and, with --json, one JSON object per line.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "dfrp/vector/hnsw_graph.h"
#include "dfrp/vector/node_index.h"
#include "dfrp/vector/vector_math.h"

#ifdef DFRP_HAVE_FAISS
#include <faiss/IndexHNSW.h>
#include <omp.h>
#endif

using dfrp::vector::HnswGraph;
using dfrp::vector::Metric;

namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Data {
  size_t dim = 16;
  std::vector<float> base;     // n x dim, unit length (cosine)
  std::vector<float> queries;  // q x dim, unit length
  size_t n() const { return base.size() / dim; }
  size_t q() const { return queries.size() / dim; }
};

void Normalize(float* v, size_t dim) {
  double s = 0;
  for (size_t i = 0; i < dim; ++i) s += double(v[i]) * v[i];
  s = std::sqrt(s);
  for (size_t i = 0; i < dim; ++i) v[i] = static_cast<float>(v[i] / s);
}

// Random: every component normal. Clustered: 1,000 centres, points normal around them with
// a spread a tenth of the centres' (queries drawn the same way).
Data Make(size_t n, size_t q, size_t dim, bool clustered, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  Data d;
  d.dim = dim;
  std::vector<float> centres;
  if (clustered) {
    centres.resize(1000 * dim);
    for (float& x : centres) x = normal(rng);
  }
  auto fill = [&](std::vector<float>& out, size_t count) {
    out.resize(count * dim);
    for (size_t i = 0; i < count; ++i) {
      float* v = out.data() + i * dim;
      const float* c = clustered ? centres.data() + (rng() % 1000) * dim : nullptr;
      for (size_t j = 0; j < dim; ++j) v[j] = (c ? c[j] : 0.0f) + (c ? 0.1f : 1.0f) * normal(rng);
      Normalize(v, dim);
    }
  };
  fill(d.base, n);
  fill(d.queries, q);
  return d;
}

// The exact k nearest of each query (by 1 - dot), one core.
std::vector<std::vector<size_t>> BruteForce(const Data& d, size_t k, double* qps) {
  std::vector<std::vector<size_t>> out(d.q());
  const double t0 = Now();
  for (size_t qi = 0; qi < d.q(); ++qi) {
    const float* q = d.queries.data() + qi * d.dim;
    std::priority_queue<std::pair<float, size_t>> best;
    for (size_t i = 0; i < d.n(); ++i) {
      const float dist =
          dfrp::vector::RankingDistance(q, d.base.data() + i * d.dim, d.dim, Metric::kCosine);
      if (best.size() < k) {
        best.emplace(dist, i);
      } else if (dist < best.top().first) {
        best.pop();
        best.emplace(dist, i);
      }
    }
    for (; !best.empty(); best.pop()) out[qi].push_back(best.top().second);
  }
  *qps = d.q() / (Now() - t0);
  return out;
}

double Recall(const std::vector<std::vector<size_t>>& truth,
              const std::vector<std::vector<size_t>>& got) {
  double hit = 0, all = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    std::set<size_t> want(truth[i].begin(), truth[i].end());
    for (size_t id : got[i]) hit += want.contains(id);
    all += truth[i].size();
  }
  return hit / all;
}

struct Row {
  std::string set, engine;
  size_t ef = 0;
  double recall = 0, qps = 0;
};

void Print(const Row& r, bool json, double brute_qps) {
  if (json)
    std::printf(
        "{\"set\":\"%s\",\"engine\":\"%s\",\"ef\":%zu,\"recall_at_10\":%.4f,\"qps\":%.0f,"
        "\"vs_brute_force\":%.1f}\n",
        r.set.c_str(), r.engine.c_str(), r.ef, r.recall, r.qps, r.qps / brute_qps);
  else
    std::printf("  %-10s %-8s ef %4zu  recall@10 %.4f  %9.0f q/s  %7.1fx brute force\n",
                r.set.c_str(), r.engine.c_str(), r.ef, r.recall, r.qps, r.qps / brute_qps);
}

void RunShards(size_t n, size_t nq, bool clustered, int threads, bool json) {
  const std::string name = clustered ? "clustered" : "random";
  const size_t k = 10, m = 16, efc = 200;
  Data d = Make(n, nq, 16, clustered, clustered ? 2 : 1);
  double brute_qps = 0;
  const auto truth = BruteForce(d, k, &brute_qps);
  if (json)
    std::printf("{\"set\":\"%s\",\"engine\":\"brute_force\",\"n\":%zu,\"qps\":%.1f}\n",
                name.c_str(), n, brute_qps);
  else
    std::printf("%s: %zu vectors of 16, %zu queries; brute force %.1f q/s (one core)\n",
                name.c_str(), n, nq, brute_qps);

  HnswGraph g(Metric::kCosine, 16, n, m, efc);
  double t0 = Now();
  {
    std::atomic<size_t> next{0};
    auto work = [&] {
      for (size_t i = next++; i < n; i = next++) g.Add(d.base.data() + i * 16, i);
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
  }
  const double build = Now() - t0;
  std::string saved;
  g.AppendTo(&saved);
  const double mem_per = double(g.MemoryBytes()) / n;
  const double disk_per = double(saved.size() + 16 * n) / n;  // plus the id table
  if (json)
    std::printf(
        "{\"set\":\"%s\",\"engine\":\"dfrp\",\"build_seconds\":%.1f,\"threads\":%d,"
        "\"inserts_per_second\":%.0f,\"memory_bytes_per_vector\":%.0f,"
        "\"disk_bytes_per_vector\":%.0f}\n",
        name.c_str(), build, threads, n / build, mem_per, disk_per);
  else
    std::printf(
        "  dfrp (hnswlib) build %.1f s on %d threads = %.0f inserts/s; %.0f B/vector in "
        "memory, %.0f B on disk\n",
        build, threads, n / build, mem_per, disk_per);

#ifdef DFRP_HAVE_FAISS
  omp_set_num_threads(threads);
  faiss::IndexHNSWFlat fx(16, m, faiss::METRIC_INNER_PRODUCT);
  fx.hnsw.efConstruction = efc;
  t0 = Now();
  fx.add(n, d.base.data());
  const double fbuild = Now() - t0;
  if (json)
    std::printf(
        "{\"set\":\"%s\",\"engine\":\"faiss\",\"build_seconds\":%.1f,\"threads\":%d,"
        "\"inserts_per_second\":%.0f}\n",
        name.c_str(), fbuild, threads, n / fbuild);
  else
    std::printf("  faiss IndexHNSWFlat build %.1f s on %d threads = %.0f inserts/s\n", fbuild,
                threads, n / fbuild);
  omp_set_num_threads(1);  // queries on one core, as ours
#endif

  for (size_t qi = 0; qi < std::min<size_t>(nq, 200); ++qi)  // warm the caches up first
    (void)g.Search(d.queries.data() + qi * 16, k, 64);
  for (size_t ef : {16, 32, 64, 128, 256}) {
    std::vector<std::vector<size_t>> got(nq);
    t0 = Now();
    for (size_t qi = 0; qi < nq; ++qi)
      for (const auto& [dist, label] : g.Search(d.queries.data() + qi * 16, k, ef))
        got[qi].push_back(label);
    Print({name, "dfrp", ef, Recall(truth, got), nq / (Now() - t0)}, json, brute_qps);
#ifdef DFRP_HAVE_FAISS
    fx.hnsw.efSearch = static_cast<int>(ef);
    std::vector<float> dist(k);
    std::vector<faiss::Index::idx_t> labels(k);
    std::vector<std::vector<size_t>> fgot(nq);
    t0 = Now();
    for (size_t qi = 0; qi < nq; ++qi) {  // one query at a time, as a node answers them
      fx.search(1, d.queries.data() + qi * 16, k, dist.data(), labels.data());
      for (faiss::Index::idx_t l : labels)
        if (l >= 0) fgot[qi].push_back(static_cast<size_t>(l));
    }
    Print({name, "faiss", ef, Recall(truth, fgot), nq / (Now() - t0)}, json, brute_qps);
#endif
  }
}

void RunNodes(size_t n, double pass, bool json) {
  using dfrp::vector::NodeIndex;
  std::mt19937 rng(11);
  std::normal_distribution<float> normal;
  // Prices on one resource decide the fee: a max_fee at the pass-quantile of prices lets that
  // share of offers through.
  NodeIndex index({.dim = 16, .resources = 4, .brute_force_below = SIZE_MAX});
  std::vector<uint64_t> unit_prices;
  for (size_t i = 0; i < n; ++i) {
    dfrp::vector::Offer o;
    o.node = "node-" + std::to_string(i);
    o.vector.resize(16);
    for (float& x : o.vector) x = normal(rng);
    o.prices = {rng() % 1'000'000 + 1, 0, 0, 0};
    o.trust = 1.0;
    unit_prices.push_back(o.prices[0]);
    (void)index.Upsert(o);
  }
  std::sort(unit_prices.begin(), unit_prices.end());
  const uint64_t max_unit = unit_prices[static_cast<size_t>(pass * (n - 1))];
  index.BuildGraph();
  std::vector<dfrp::vector::RouteRequest> reqs(2000);
  for (auto& r : reqs) {
    r.vector.resize(16);
    for (float& x : r.vector) x = normal(rng);
    r.quantities = {100, 0, 0, 0};
    r.max_fee = max_unit * 100;
    r.k = 10;
  }
  auto rate = [&](bool post) {
    const double t0 = Now();
    for (const auto& r : reqs)
      if (!(post ? index.RankPostFilter(r) : index.RankExact(r))) std::abort();
    return reqs.size() / (Now() - t0);
  };
  const double brute = rate(false);
  const double post = rate(true);
  double hit = 0, all = 0;
  for (const auto& r : reqs) {
    auto e = index.RankExact(r);
    auto p = index.RankPostFilter(r);
    std::set<std::string> want;
    for (const auto& o : e->offers) want.insert(o.node);
    for (const auto& o : p->offers) hit += want.contains(o.node);
    all += e->offers.size();
  }
  const double recall = all > 0 ? hit / all : 1.0;
  if (json)
    std::printf(
        "{\"set\":\"nodes\",\"offers\":%zu,\"pass\":%.2f,\"brute_force_per_second\":%.0f,"
        "\"post_filter_per_second\":%.0f,\"post_filter_recall_at_10\":%.4f}\n",
        n, pass, brute, post, recall);
  else
    std::printf(
        "nodes: %zu offers, %.0f%% pass the fee filter: brute force %.0f decisions/s "
        "(exact), HNSW post-filter %.0f decisions/s (recall@10 %.4f), one core\n",
        n, pass * 100, brute, post, recall);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dfrp's vector search against brute force and faiss"};
  size_t n = 1'000'000, q = 1000, offers = 10'000;
  int threads = 2;
  double pass = 0.1;
  bool json = false;
  std::vector<std::string> sets = {"random", "clustered", "nodes"};
  app.add_option("--n", n, "vectors per set");
  app.add_option("--queries", q);
  app.add_option("--threads", threads, "threads that build the graphs (queries use one)");
  app.add_option("--offers", offers, "offers in the node index");
  app.add_option("--pass", pass, "share of offers the fee filter lets through");
  app.add_option("--sets", sets, "random, clustered, nodes");
  app.add_flag("--json", json);
  CLI11_PARSE(app, argc, argv);
  for (const auto& s : sets) {
    if (s == "random" || s == "clustered") RunShards(n, q, s == "clustered", threads, json);
    if (s == "nodes") RunNodes(offers, pass, json);
  }
  return 0;
}
