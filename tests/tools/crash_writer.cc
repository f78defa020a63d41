// dfrp-crash-writer: the victim and the judge of tests/storage/kill9_loop.sh.
//
//   dfrp-crash-writer write --config C --seed N [--segment-size BYTES]
//       opens the store for writing and stores generated shards in a loop, in batches of one
//       to four, forever. After each batch is acknowledged (Store::Write returned) it prints
//       one line per shard, "ACK <id> <sha256 of the payload> <size>", and flushes.
//   dfrp-crash-writer check --config C --acks FILE [--sample N]
//       opens the store for reading and reads back every acknowledged shard (or the last N
//       and a random N of the others), comparing SHA-256. Exit 0 when all match; 1 with
//       the shard named otherwise. A torn last line in FILE (the writer was killed while
//       printing it) is ignored: it was never a complete acknowledgement.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "dfrp/core/bytes.h"
#include "dfrp/core/clock.h"
#include "dfrp/core/config.h"
#include "dfrp/core/file_system.h"
#include "dfrp/crypto/sha256.h"
#include "dfrp/storage/store.h"

namespace {

using dfrp::storage::Store;

// The real file system and clock (a test tool's own edge).
dfrp::storage::StoreOptions RealOptions() {
  dfrp::storage::StoreOptions opt;
  opt.fs = dfrp::core::DefaultFileSystem();
  opt.clock = dfrp::core::SystemClock();
  return opt;
}

std::string Sha256Hex(std::string_view data) {
  return dfrp::core::ToHex(dfrp::crypto::HashBytes(dfrp::crypto::Sha256Of(data)));
}

int Write(const dfrp::core::NodeConfig& config, uint64_t seed, uint64_t segment_size) {
  dfrp::storage::StoreOptions opt = RealOptions();
  if (segment_size > 0) opt.segment_target_size = segment_size;
  auto store = Store::Open(config, Store::Mode::kWrite, opt);
  if (!store) return std::fprintf(stderr, "open: %s\n", store.error().ToString().c_str()), 2;
  std::mt19937_64 rng(seed);
  for (;;) {
    std::vector<dfrp::storage::WriteRequest> batch;
    std::vector<std::string> sums;
    const int n = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < n; ++i) {
      // Mostly small shards, now and then one of a few MiB (streamed, several chunks).
      const size_t size = rng() % 64 == 0 ? 1 + rng() % (3 << 19) : rng() % 16000;
      std::string data(size, '\0');
      for (size_t k = 0; k < size; k += 8) {
        const uint64_t v = rng();
        std::memcpy(data.data() + k, &v, std::min<size_t>(8, size - k));
      }
      sums.push_back(Sha256Hex(data));
      dfrp::storage::WriteRequest r;
      r.name = "generated";
      r.meta.leaf_size = rng() % 2 ? 1024 : 0;
      r.input = dfrp::core::SequentialFileFromString(std::move(data), "generated");
      batch.push_back(std::move(r));
    }
    auto written = (*store)->Write(batch);
    if (!written) {
      std::fprintf(stderr, "write: %s\n", written.error().ToString().c_str());
      return 1;
    }
    std::string lines;
    for (size_t i = 0; i < written->size(); ++i)
      lines += "ACK " + (*written)[i].id.ToString() + " " + sums[i] + " " +
               std::to_string((*written)[i].size) + "\n";
    std::fwrite(lines.data(), 1, lines.size(), stdout);  // one write(2) per batch
    std::fflush(stdout);
  }
}

int Check(const dfrp::core::NodeConfig& config, const std::string& acks_path, size_t sample) {
  struct Ack {
    dfrp::core::Uuid id;
    std::string sum;
    uint64_t size;
  };
  std::vector<Ack> acks;
  std::ifstream in(acks_path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string tag, id, sum;
    uint64_t size = 0;
    if (!(ls >> tag >> id >> sum >> size) || tag != "ACK" || sum.size() != 64) continue;
    auto uuid = dfrp::core::Uuid::Parse(id);
    if (uuid) acks.push_back({*uuid, sum, size});
  }
  std::vector<size_t> which;
  if (sample == 0 || acks.size() <= 2 * sample) {
    for (size_t i = 0; i < acks.size(); ++i) which.push_back(i);
  } else {
    std::mt19937_64 rng(acks.size());
    for (size_t i = acks.size() - sample; i < acks.size(); ++i) which.push_back(i);
    for (size_t i = 0; i < sample; ++i) which.push_back(rng() % (acks.size() - sample));
  }
  auto store = Store::Open(config, Store::Mode::kRead, RealOptions());
  if (!store) return std::fprintf(stderr, "open: %s\n", store.error().ToString().c_str()), 1;
  for (size_t i : which) {
    const Ack& a = acks[i];
    std::string got;
    auto s = (*store)->Read(a.id, [&](std::string_view c) {
      got.append(c);
      return dfrp::core::Status::OK();
    });
    if (!s.ok() || got.size() != a.size || Sha256Hex(got) != a.sum) {
      std::fprintf(stderr, "acknowledged shard %s is not intact: %s (%zu of %llu bytes)\n",
                   a.id.ToString().c_str(), s.ok() ? "content differs" : s.ToString().c_str(),
                   got.size(), static_cast<unsigned long long>(a.size));
      return 1;
    }
  }
  std::printf("%zu acknowledged, %zu checked, all intact\n", acks.size(), which.size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dfrp-crash-writer: kill -9 test helper"};
  app.require_subcommand(1);
  std::string config_path, acks;
  uint64_t seed = 1, segment_size = 0;
  size_t sample = 0;
  auto* write = app.add_subcommand("write", "store shards in a loop, printing ACK lines");
  write->add_option("--config", config_path)->required();
  write->add_option("--seed", seed);
  write->add_option("--segment-size", segment_size);
  auto* check = app.add_subcommand("check", "read back acknowledged shards");
  check->add_option("--config", config_path)->required();
  check->add_option("--acks", acks)->required();
  check->add_option("--sample", sample);
  CLI11_PARSE(app, argc, argv);
  dfrp::core::ConfigOptions opt;
  opt.explicit_path = config_path;
  auto config = dfrp::core::LoadConfig(opt);
  if (!config) return std::fprintf(stderr, "%s\n", config.error().message().c_str()), 2;
  if (*write) return Write(*config, seed, segment_size);
  return Check(*config, acks, sample);
}
