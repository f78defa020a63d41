// The node's parts on a real store in a temporary folder: the memory budget, bodies held in
// pieces, the bounded pools, the reader cache's byte bound, the write queue's group commit,
// an operation that a node stop cancels, the lock-free metrics, and the compute queue's order.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "dfrp/node/body_buffer.h"
#include "dfrp/node/compute_service.h"
#include "dfrp/node/memory_budget.h"
#include "dfrp/node/metrics.h"
#include "dfrp/node/node.h"
#include "dfrp/node/work_pool.h"
#include "dfrp/storage/store_test_util.h"

namespace dfrp::node {
namespace {

using storage::testing::Pattern;

// The compute queue runs funded jobs first, then by the sigmoid weighting, earliest on a tie.
TEST(ComputeQueueTest, FundedFirstThenHighestWeightThenEarliest) {
  EXPECT_EQ(NextJob({{false, 0.5}}), 0u);
  EXPECT_EQ(NextJob({{false, 0.5}, {false, 0.83}, {false, 0.6}}), 1u);
  EXPECT_EQ(NextJob({{false, 0.9}, {true, 0.1}, {true, 0.4}}), 2u);
  EXPECT_EQ(NextJob({{true, 0.5}, {false, 0.99}, {true, 0.5}}), 0u);  // a tie: the earliest
  EXPECT_EQ(NextJob({{false, 0.3}, {false, 0.3}, {false, 0.3}}), 0u);
  // An offer at the ask weighs 0.5, one 20% over it about 0.83 (s = 8, m = 1).
  economy::RewardPolicy r;
  const double at_ask = economy::RequestWeight(r, 1000, 1000, 1.0, 0);
  const double over = economy::RequestWeight(r, 1200, 1000, 1.0, 0);
  const double far = economy::RequestWeight(r, 1200, 1000, 0.5, 0);
  EXPECT_NEAR(at_ask, 0.5, 1e-9);
  EXPECT_NEAR(over, 0.832, 1e-3);
  EXPECT_EQ(NextJob({{false, at_ask}, {false, over}, {false, far}}), 1u);
}

TEST(MemoryBudgetTest, HoldsGiveBackWhatTheyTook) {
  MemoryBudget b(100);
  auto a = b.TryReserve(60);
  ASSERT_TRUE(a);
  EXPECT_EQ(b.used(), 60u);
  EXPECT_FALSE(b.TryReserve(41));
  auto c = b.TryReserve(40);
  ASSERT_TRUE(c);
  EXPECT_FALSE(b.TryReserve(1));
  auto copy = a;
  a.reset();
  EXPECT_EQ(b.used(), 100u);  // a copy still holds it
  copy.reset();
  EXPECT_EQ(b.used(), 40u);
  EXPECT_FALSE(b.TryReserve(UINT64_MAX));
  c.reset();
  EXPECT_EQ(b.used(), 0u);
}

TEST(BodyBufferTest, AllocatesOnlyAsBytesArrive) {
  const uint64_t size = 3 * BodyBuffer::kPiece + 100;
  const std::string data = Pattern(size);
  BodyBuffer b(size);
  EXPECT_EQ(b.allocated(), 0u);
  // One byte at a time at first (a slow client): one piece, not the whole body.
  std::span<char> s = b.Space();
  s[0] = data[0];
  b.Commit(1);
  EXPECT_EQ(b.allocated(), BodyBuffer::kFirstPiece);
  uint64_t at = 1;
  while (!b.complete()) {
    s = b.Space();
    const size_t n = std::min<size_t>(s.size(), 70'000);
    std::memcpy(s.data(), data.data() + at, n);
    b.Commit(n);
    at += n;
    EXPECT_LE(b.allocated(), std::max<uint64_t>(2 * at, at + BodyBuffer::kPiece));
  }
  EXPECT_EQ(b.allocated(), size);
  EXPECT_TRUE(b.Space().empty());
  std::string back(size, '\0');
  EXPECT_EQ(b.ReadAt(0, back.data(), size), size);
  EXPECT_EQ(back, data);
  char tail[300];
  EXPECT_EQ(b.ReadAt(size - 100, tail, sizeof tail), 100u);
  EXPECT_EQ(std::string(tail, 100), data.substr(size - 100));
  // Reads that cross every piece boundary, as the store reads a body.
  std::string pieces;
  char chunk[7777];
  for (uint64_t off = 0; off < size;) {
    const size_t got = b.ReadAt(off, chunk, sizeof chunk);
    ASSERT_GT(got, 0u) << off;
    pieces.append(chunk, got);
    off += got;
  }
  EXPECT_EQ(pieces, data);
  EXPECT_EQ(b.ReadAt(size, chunk, sizeof chunk), 0u);
}

TEST(MetricsTest, RouteStatsCountEveryObservationFromManyThreads) {
  Metrics m;
  RouteStats* get = m.Route("GET /x");
  EXPECT_EQ(m.Route("GET /x"), get) << "one RouteStats per label, for the Metrics' life";
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([get] {
      for (int i = 0; i < 10000; ++i) get->Observe(i % 2 ? 200 : 404, 300'000);  // 0.3 ms
    });
  for (auto& t : threads) t.join();
  m.ObserveRequest("unmatched", 999, 2'000'000'000);  // an odd status counts as 0
  m.ObserveRequest(get, 200, 300'000);
  EXPECT_EQ(m.requests.load(), 2u) << "Metrics::ObserveRequest counts every request it sees";
  const std::string text = m.Render();
  // Each expected line, whole, in the rendered text.
  auto has = [&text](const std::string& line) {
    return text.find(line + "\n") != std::string::npos;
  };
  EXPECT_TRUE(has("dfrp_http_requests_total{route=\"GET /x\",code=\"200\"} 20001")) << text;
  EXPECT_TRUE(has("dfrp_http_requests_total{route=\"GET /x\",code=\"404\"} 20000"));
  EXPECT_TRUE(has("dfrp_http_requests_total{route=\"unmatched\",code=\"0\"} 1"));
  // 0.3 ms is above the 0.25 ms bound and within 0.5 ms.
  const std::string latency = "dfrp_http_request_duration_seconds";
  EXPECT_TRUE(has(latency + "_bucket{route=\"GET /x\",le=\"0.00025\"} 0"));
  EXPECT_TRUE(has(latency + "_bucket{route=\"GET /x\",le=\"0.0005\"} 40001"));
  EXPECT_TRUE(has(latency + "_count{route=\"GET /x\"} 40001"));
  EXPECT_TRUE(has(latency + "_sum{route=\"GET /x\"} 12.0003"));
  EXPECT_TRUE(has(latency + "_bucket{route=\"unmatched\",le=\"5\"} 1"));
}

TEST(MetricsTest, ThroughputSeriesKeepsTenMinutesOfIntervals) {
  ThroughputSeries s;
  const int64_t step = ThroughputSeries::kIntervalSeconds * 1000;
  const int64_t t0 = 1'800'000'000'000;  // an interval's start
  s.Add(t0 + 10, 100, 0);
  s.Add(t0 + step - 1, 0, 7);
  s.Add(t0 + 3 * step, 5, 0);
  auto v = s.Samples(t0 + 3 * step + 1);
  ASSERT_EQ(v.size(), ThroughputSeries::kSamples);
  EXPECT_EQ(v.back().t_unix_ms, t0 + 3 * step);
  EXPECT_EQ(v.back().read_bytes, 5u);
  const auto& first = v[v.size() - 4];
  EXPECT_EQ(first.t_unix_ms, t0);
  EXPECT_EQ(first.read_bytes, 100u);
  EXPECT_EQ(first.write_bytes, 7u);
  EXPECT_EQ(v[v.size() - 3].read_bytes + v[v.size() - 3].write_bytes, 0u) << "a quiet interval";
  // A whole ring later the slot of t0 is reused: its old bytes must not show as new ones.
  const int64_t later = t0 + static_cast<int64_t>(ThroughputSeries::kSamples + 1) * step;
  s.Add(later, 1, 0);
  v = s.Samples(later);
  EXPECT_EQ(v.back().t_unix_ms, later);
  EXPECT_EQ(v.back().read_bytes, 1u);
  EXPECT_EQ(v.back().write_bytes, 0u);
  for (size_t i = 0; i + 1 < v.size(); ++i) {
    // Within these ten minutes only t0 + 3 steps carried bytes.
    const uint64_t want = v[i].t_unix_ms == t0 + 3 * step ? 5 : 0;
    EXPECT_EQ(v[i].read_bytes + v[i].write_bytes, want) << "interval " << i;
  }
}

TEST(WorkPoolTest, RefusesBeyondItsQueue) {
  WorkPool pool("test", 1, 2);
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::atomic<int> ran{0};
  std::promise<void> started;
  ASSERT_TRUE(pool.TrySubmit([&, gate] {
    started.set_value();
    gate.wait();
    ++ran;
  }));
  started.get_future().wait();  // the one thread is busy; now the queue fills
  EXPECT_TRUE(pool.TrySubmit([&] { ++ran; }));
  EXPECT_TRUE(pool.TrySubmit([&] { ++ran; }));
  EXPECT_FALSE(pool.TrySubmit([&] { ++ran; }));
  EXPECT_EQ(pool.refused(), 1u);
  release.set_value();
  pool.Stop();  // runs what was queued
  EXPECT_EQ(ran.load(), 3);
  EXPECT_FALSE(pool.TrySubmit([&] { ++ran; }));
}

class NodePartsTest : public storage::testing::StoreFixture {
 protected:
  std::unique_ptr<Node> OpenNode(uint64_t cache_bytes = 32ull << 20) {
    NodeOptions o;
    o.store = opt_;
    o.config = Config({64ull << 20, 64ull << 20});
    o.config.scrub_rate = 0;
    o.reader_cache_bytes = cache_bytes;
    EXPECT_TRUE(storage::Store::Init(o.config, opt_).has_value());
    auto n = Node::Open(o);
    EXPECT_TRUE(n.has_value()) << n.error().ToString();
    return n ? std::move(*n) : nullptr;
  }

  // Writes through the queue and waits for the answer.
  WriteOutcome Write(Node& n, const std::string& data) {
    PutShard p;
    p.size = data.size();
    p.name = "t";
    p.body = std::make_unique<BodyBuffer>(data.size());
    while (!p.body->complete()) {
      std::span<char> s = p.body->Space();
      std::memcpy(s.data(), data.data() + p.body->received(), s.size());
      p.body->Commit(s.size());
    }
    std::promise<WriteOutcome> done;
    n.writes().Submit(std::move(p), [&](WriteOutcome o) { done.set_value(std::move(o)); });
    return done.get_future().get();
  }
};

TEST_F(NodePartsTest, ReaderCacheIsBoundedByBytes) {
  auto node = OpenNode(/*cache_bytes=*/8 << 10);
  ASSERT_TRUE(node);
  std::vector<core::Uuid> ids;
  for (int i = 0; i < 40; ++i) {
    WriteOutcome o = Write(*node, Pattern(1000, i));
    ASSERT_TRUE(o.status.ok()) << o.status.ToString();
    ids.push_back(o.shard.id);
  }
  for (const auto& id : ids) {
    auto s = node->OpenShard(id);
    ASSERT_TRUE(s.has_value());
    EXPECT_LE(node->readers().bytes(), 8u << 10);
  }
  const size_t kept = node->readers().entries();
  EXPECT_GT(kept, 0u);
  EXPECT_LT(kept, ids.size());  // the oldest went first
  EXPECT_GE(node->readers().bytes(),
            kept * ReaderCache::CostOf(*node->OpenShard(ids.back())->reader));
  // A refresh (a volume moved) drops them all; reads still work.
  ASSERT_TRUE(node->readers().Refresh().ok());
  EXPECT_EQ(node->readers().entries(), 0u);
  auto again = node->OpenShard(ids.front());
  ASSERT_TRUE(again.has_value());
  std::string back;
  ASSERT_TRUE(again->reader
                  ->ReadRange(0, 1000,
                              [&](std::string_view p) {
                                back.append(p);
                                return core::Status::OK();
                              })
                  .ok());
  EXPECT_EQ(back, Pattern(1000, 0));
}

TEST_F(NodePartsTest, WritesQueuedTogetherAreAnsweredAfterTheirBatch) {
  auto node = OpenNode();
  ASSERT_TRUE(node);
  std::vector<std::thread> writers;
  std::vector<WriteOutcome> outcomes(16);
  for (int i = 0; i < 16; ++i)
    writers.emplace_back([&, i] { outcomes[i] = Write(*node, Pattern(5000 + i, i)); });
  for (auto& t : writers) t.join();
  for (int i = 0; i < 16; ++i) {
    ASSERT_TRUE(outcomes[i].status.ok()) << outcomes[i].status.ToString();
    auto s = node->OpenShard(outcomes[i].shard.id);
    ASSERT_TRUE(s.has_value());
    EXPECT_EQ(s->reader->size(), 5000u + i);
  }
  node->Stop();
  // After Stop, a write is refused (Busy), never lost silently.
  WriteOutcome late = Write(*node, "late");
  EXPECT_TRUE(late.status.IsBusy()) << late.status.ToString();
}

TEST_F(NodePartsTest, StopCancelsARunningMigrationAndPutsTheVolumeBack) {
  auto node = OpenNode();
  ASSERT_TRUE(node);
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(Write(*node, Pattern(2 << 20, i)).status.ok());
  auto op = node->operations().StartMigrate(0, dir_ + "/new0", /*resume=*/true, false);
  ASSERT_TRUE(op.has_value()) << op.error().ToString();
  node->Stop();  // cancels and joins
  auto after = node->operations().Get(core::Uuid::Parse((*op)["id"].get<std::string>()).value());
  ASSERT_TRUE(after.has_value());
  const std::string state = (*after)["state"];
  // A 16 MiB copy may finish before the stop arrives; either way it ended, and the volume is
  // at exactly one place that reads.
  EXPECT_TRUE(state == "cancelled" || state == "succeeded") << after->dump();
  auto vols = node->writer().Snapshot();
  ASSERT_FALSE(vols.empty());
  EXPECT_EQ(vols[0].state, storage::VolumeState::kActive) << after->dump();
}

}  // namespace
}  // namespace dfrp::node
