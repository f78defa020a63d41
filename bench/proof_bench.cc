// Library benchmarks for proofs of storage and verified range reads (issue 4), on one large
// shard in a real store (page cache warm), each beside its baseline:
//   BM_RehashShard        Store::Verify of the whole shard: what a proof would cost without
//                         the stored tree (the baseline for BM_ProveLeaf)
//   BM_ProveLeaf          ShardReader::ProveLeaf of a random leaf: read the leaf and its path
//                         off the stored tree, check it against the root
//   BM_VerifyProof        VerifyProofSet of one proof (what verify-proof does after parsing)
//   BM_DecodeAndVerify    the same from the binary encoding
//   BM_Audit16            answering a 16-challenge audit
//   BM_ReadRange4K        a verified 4 KiB read at a random leaf (the FUSE view's unit of work)
//
//   DFRP_BENCH_SHARD_MB=1024 build/bench/proof_bench --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true
// The store lives in a fresh folder under /var/tmp (DFRP_BENCH_DIR) and is removed at exit.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>

#include "dfrp/core/clock.h"
#include "dfrp/core/file_system.h"
#include "dfrp/crypto/merkle.h"
#include "dfrp/storage/proof.h"
#include "dfrp/storage/store.h"

namespace {

using dfrp::storage::ShardReader;
using dfrp::storage::Store;

struct Fixture {
  std::string dir;
  std::unique_ptr<Store> store;
  std::unique_ptr<ShardReader> reader;
  dfrp::core::Uuid id;

  Fixture() {
    const char* base = std::getenv("DFRP_BENCH_DIR");
    std::string tmpl = std::string(base ? base : "/var/tmp") + "/dfrp-proof-bench-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) std::abort();
    dir = tmpl;
    const char* mb_env = std::getenv("DFRP_BENCH_SHARD_MB");
    const uint64_t mb = mb_env ? std::strtoull(mb_env, nullptr, 10) : 1024;
    const std::string input = dir + "/input";
    {
      // Pseudo-random content, written in 8 MiB pieces.
      std::FILE* f = std::fopen(input.c_str(), "wb");
      std::mt19937_64 rng(42);
      std::string buf(8 << 20, '\0');
      for (uint64_t done = 0; done < (mb << 20); done += buf.size()) {
        for (size_t i = 0; i < buf.size(); i += 8) {
          const uint64_t v = rng();
          std::memcpy(buf.data() + i, &v, 8);
        }
        std::fwrite(buf.data(), 1, std::min<uint64_t>(buf.size(), (mb << 20) - done), f);
      }
      std::fclose(f);
    }
    dfrp::core::NodeConfig c;
    std::filesystem::create_directories(dir + "/d0");
    c.drives.push_back({0, dir + "/d0", (mb + 64) << 20});
    c.state_dir = dir + "/state";
    c.source = "bench";
    dfrp::storage::StoreOptions opt;
    opt.fs = dfrp::core::DefaultFileSystem();
    opt.clock = dfrp::core::SystemClock();
    if (!Store::Init(c, opt)) std::abort();
    auto s = Store::Open(c, Store::Mode::kWrite, opt);
    if (!s) std::abort();
    store = std::move(*s);
    std::vector<dfrp::storage::WriteRequest> batch(1);
    batch[0].path = batch[0].name = input;
    auto w = store->Write(batch);
    if (!w) std::abort();
    id = (*w)[0].id;
    std::filesystem::remove(input);
    auto r = store->OpenShard(id);
    if (!r) std::abort();
    reader = std::make_unique<ShardReader>(std::move(*r));
    (void)store->Verify(id);  // warm the page cache
  }
  ~Fixture() { std::filesystem::remove_all(dir); }
};

Fixture& F() {
  static Fixture f;
  return f;
}

void BM_RehashShard(benchmark::State& state) {
  for (auto _ : state) {
    auto r = F().store->Verify(F().id);
    if (!r.ok) state.SkipWithError(r.status.ToString().c_str());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * F().reader->size()));
}
BENCHMARK(BM_RehashShard)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

void BM_ProveLeaf(benchmark::State& state) {
  std::mt19937_64 rng(7);
  const uint64_t n = F().reader->leaves();
  for (auto _ : state) {
    auto p = F().reader->ProveLeaf(rng() % n);
    if (!p) state.SkipWithError(p.error().ToString().c_str());
    benchmark::DoNotOptimize(p);
  }
}
BENCHMARK(BM_ProveLeaf)->Unit(benchmark::kMicrosecond)->UseRealTime();

dfrp::storage::ProofSet OneProof() {
  const uint64_t leaf[] = {F().reader->leaves() / 3};
  return *F().reader->Prove(leaf);
}

void BM_VerifyProof(benchmark::State& state) {
  const auto p = OneProof();
  for (auto _ : state)
    if (!dfrp::storage::VerifyProofSet(p, p.root).ok()) state.SkipWithError("did not verify");
}
BENCHMARK(BM_VerifyProof)->Unit(benchmark::kMicrosecond);

void BM_DecodeAndVerify(benchmark::State& state) {
  const auto p = OneProof();
  const std::string bin = dfrp::storage::EncodeProofBinary(p);
  for (auto _ : state) {
    auto d = dfrp::storage::DecodeProof(bin);
    if (!d || !dfrp::storage::VerifyProofSet(*d, p.root).ok()) state.SkipWithError("failed");
  }
}
BENCHMARK(BM_DecodeAndVerify)->Unit(benchmark::kMicrosecond);

void BM_Audit16(benchmark::State& state) {
  uint64_t seed = 0;
  for (auto _ : state) {
    const std::string s(reinterpret_cast<const char*>(&++seed), 8);
    auto idx = dfrp::storage::ChallengeIndices(s, F().id, F().reader->leaves(), 16);
    auto p = F().reader->Prove(idx, s);
    if (!p) state.SkipWithError(p.error().ToString().c_str());
  }
}
BENCHMARK(BM_Audit16)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_ReadRange4K(benchmark::State& state) {
  std::mt19937_64 rng(9);
  const uint64_t n = F().reader->leaves();
  char buf[4096];
  for (auto _ : state) {
    auto got = F().reader->ReadAt((rng() % n) * 4096, sizeof(buf), buf);
    if (!got) state.SkipWithError(got.error().ToString().c_str());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_ReadRange4K)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
