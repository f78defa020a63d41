// dfrp-fill-store: fills a store with COUNT generated shards through the library, in batches,
// for benchmarks that need a big store quickly (bench/open_store.sh, bench/search_shards.sh).
// With --vectors each shard carries a random vector of VECTOR_DIM (seeded, normal
// components). Prints the last id.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>

#include "dfrp/core/clock.h"
#include "dfrp/core/config.h"
#include "dfrp/core/file_system.h"
#include "dfrp/storage/store.h"

int main(int argc, char** argv) {
  CLI::App app{"fill a dfrp store with generated shards"};
  std::string config_path;
  uint64_t count = 1000, size = 64, batch_size = 100000;
  app.add_option("--config", config_path)->required();
  app.add_option("--count", count);
  app.add_option("--size", size);
  app.add_option("--batch", batch_size);
  bool vectors = false;
  app.add_flag("--vectors", vectors, "give every shard a random vector of VECTOR_DIM");
  std::mt19937 rng(42);
  std::normal_distribution<float> normal;
  CLI11_PARSE(app, argc, argv);
  dfrp::core::ConfigOptions opt;
  opt.explicit_path = config_path;
  auto config = dfrp::core::LoadConfig(opt);
  if (!config) return std::fprintf(stderr, "%s\n", config.error().message().c_str()), 2;
  dfrp::storage::StoreOptions sopt;
  sopt.fs = dfrp::core::DefaultFileSystem();
  sopt.clock = dfrp::core::SystemClock();
  auto store = dfrp::storage::Store::Open(*config, dfrp::storage::Store::Mode::kWrite, sopt);
  if (!store) return std::fprintf(stderr, "%s\n", store.error().message().c_str()), 2;
  std::string last;
  for (uint64_t done = 0; done < count;) {
    std::vector<dfrp::storage::WriteRequest> batch;
    for (uint64_t i = 0; i < batch_size && done + i < count; ++i) {
      std::string data(size, '\0');
      std::snprintf(data.data(), data.size(), "shard %llu",
                    static_cast<unsigned long long>(done + i));
      dfrp::storage::WriteRequest r;
      r.name = "generated";
      r.input = dfrp::core::SequentialFileFromString(std::move(data), "generated");
      if (vectors) {
        r.meta.vector.resize(config->vector_dim);
        for (float& x : r.meta.vector) x = normal(rng);
      }
      batch.push_back(std::move(r));
    }
    auto written = (*store)->Write(batch);
    if (!written) return std::fprintf(stderr, "%s\n", written.error().message().c_str()), 1;
    done += written->size();
    last = written->back().id.ToString();
    std::fprintf(stderr, "\r%llu / %llu", static_cast<unsigned long long>(done),
                 static_cast<unsigned long long>(count));
  }
  std::fprintf(stderr, "\n");
  std::printf("%s\n", last.c_str());
  return 0;
}
