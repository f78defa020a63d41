// Helpers for store tests: a temporary folder with drives, and short ways to write and read.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "dfrp/core/clock.h"
#include "dfrp/core/config.h"
#include "dfrp/core/file_system.h"
#include "dfrp/storage/store.h"

namespace dfrp::storage::testing {

inline std::string Pattern(size_t n, int seed = 0) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + seed * 7 + i / 977) % 251);
  return s;
}

inline std::string Slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
inline void Spit(const std::string& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << data;
}
inline void CopyDir(const std::string& from, const std::string& to) {
  std::filesystem::remove_all(to);
  std::filesystem::copy(from, to, std::filesystem::copy_options::recursive);
}

class StoreFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dfrp-store-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  core::NodeConfig Config(const std::vector<uint64_t>& quotas, const std::string& state = "state") {
    core::NodeConfig c;
    for (size_t i = 0; i < quotas.size(); ++i) {
      std::string p = dir_ + "/d" + std::to_string(i);
      std::filesystem::create_directories(p);
      c.drives.push_back({static_cast<int>(i), p, quotas[i]});
    }
    c.state_dir = dir_ + "/" + state;
    c.source = "test";
    return c;
  }

  std::unique_ptr<Store> InitAndOpen(const core::NodeConfig& c,
                                     Store::Mode mode = Store::Mode::kWrite) {
    auto r = Store::Init(c, opt_);
    EXPECT_TRUE(r.has_value()) << r.error().ToString();
    auto s = Store::Open(c, mode, opt_);
    EXPECT_TRUE(s.has_value()) << s.error().ToString();
    return s ? std::move(*s) : nullptr;
  }

  std::string FileWith(const std::string& content) {
    std::string p = dir_ + "/in-" + std::to_string(files_++);
    std::ofstream(p, std::ios::binary) << content;  // test input: no need for it to be durable
    return p;
  }

  core::Result<std::vector<WrittenShard>> Put(Store& s, const std::vector<std::string>& contents,
                                              uint32_t leaf_size = 0) {
    std::vector<WriteRequest> batch;
    for (const auto& c : contents) {
      WriteRequest r;
      r.path = FileWith(c);
      r.name = r.path;
      r.meta.leaf_size = leaf_size;
      batch.push_back(std::move(r));
    }
    return s.Write(batch);
  }

  core::Result<std::string> Get(Store& s, const core::Uuid& id) {
    std::string out;
    core::Status st = s.Read(id, [&](std::string_view c) {
      out.append(c);
      return core::Status::OK();
    });
    if (!st.ok()) return core::Err(st);
    return out;
  }

  std::string dir_;
  int files_ = 0;
  StoreOptions opt_ = RealOptions();

  static StoreOptions RealOptions() {
    StoreOptions o;
    o.fs = core::DefaultFileSystem();
    o.clock = core::SystemClock();
    return o;
  }
};

}  // namespace dfrp::storage::testing
