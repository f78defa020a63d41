// Library benchmarks for the hot paths of the storage core. Each raw primitive sits beside
// the dfrp function built on it, so the ratio is visible in one run:
//   BM_Sha256Flat        SHA-256 of a buffer in one pass (the floor for any hashing)
//   BM_MerkleRoot/T      dfrp's Merkle root of the same buffer on T threads
//   BM_Crc32c            the checksum on every record prefix
#include <benchmark/benchmark.h>

#include <string>

#include "dfrp/core/crc32c.h"
#include "dfrp/crypto/merkle.h"
#include "dfrp/storage/metadata.h"

namespace {

const std::string& Buffer() {
  static const std::string b = [] {
    std::string s(64 << 20, '\0');
    for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>(i * 2654435761u >> 24);
    return s;
  }();
  return b;
}

void BM_Sha256Flat(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(dfrp::crypto::Sha256Of(Buffer()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * Buffer().size()));
}
BENCHMARK(BM_Sha256Flat)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_MerkleRoot(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(dfrp::crypto::MerkleRoot(Buffer(), 4096, threads));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * Buffer().size()));
}
BENCHMARK(BM_MerkleRoot)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Crc32c(benchmark::State& state) {
  std::string_view s(Buffer().data(), 4096);
  for (auto _ : state) benchmark::DoNotOptimize(dfrp::core::Crc32c(s));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * s.size()));
}
BENCHMARK(BM_Crc32c);

void BM_MetadataRoundTrip(benchmark::State& state) {
  dfrp::storage::ShardMetadata m;
  m.size = 4096;
  m.vector.assign(16, 0.5f);
  m.tags = {{"project", "alpha"}, {"tier", "cold"}};
  for (auto _ : state) {
    auto d = dfrp::storage::DecodeMetadata(dfrp::storage::EncodeMetadata(m));
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_MetadataRoundTrip);

}  // namespace

BENCHMARK_MAIN();
