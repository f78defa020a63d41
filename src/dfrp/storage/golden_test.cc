// Golden files: a volume written by format version 1 (tests/data/golden-v1) must be read by
// every later version. The test copies the volume, lets init-storage adopt it (there is no
// STATE_DIR), which rebuilds the index from the drive alone, then checks every shard.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "dfrp/core/bytes.h"
#include "dfrp/storage/store.h"
#include "dfrp/storage/store_test_util.h"

namespace dfrp::storage {
namespace {

namespace fs = std::filesystem;

std::string Golden(const std::string& name) {
  const char* src = std::getenv("DFRP_SOURCE_DIR");
  return std::string(src ? src : ".") + "/tests/data/golden-v1/" + name;
}

class GoldenTest : public testing::StoreFixture {};

TEST_F(GoldenTest, Version1VolumeStillReads) {
  std::ifstream in(Golden("expected.json"));
  ASSERT_TRUE(in.good()) << Golden("expected.json");
  auto expected = nlohmann::json::parse(in);
  fs::copy(Golden("volume0"), dir_ + "/volume0", fs::copy_options::recursive);
  core::NodeConfig c;
  c.drives = {{0, dir_ + "/volume0", 1 << 20}};
  c.state_dir = dir_ + "/state";
  c.source = "golden";
  auto init = Store::Init(c, opt_);
  ASSERT_TRUE(init.has_value()) << init.error().ToString();
  EXPECT_TRUE(init->adopted);
  auto store = Store::Open(c, Store::Mode::kRead, opt_);
  ASSERT_TRUE(store.has_value()) << store.error().ToString();
  ASSERT_EQ((*store)->ListVolumes()[0].shards, expected["shards"].size());
  for (const auto& e : expected["shards"]) {
    auto id = core::Uuid::Parse(e["shard_id"].get<std::string>());
    ASSERT_TRUE(id.has_value());
    const size_t size = e["size"];
    std::string want(size, '\0');
    for (size_t i = 0; i < size; ++i) want[i] = static_cast<char>(i % 251);
    std::string got;
    ASSERT_TRUE((*store)
                    ->Read(*id,
                           [&](std::string_view d) {
                             got.append(d);
                             return core::Status::OK();
                           })
                    .ok());
    EXPECT_EQ(got, want);
    auto info = (*store)->Stat(*id);
    ASSERT_TRUE(info.has_value());
    EXPECT_EQ(core::ToHex(crypto::HashBytes(info->location.root)),
              e["merkle_root"].get<std::string>());
    EXPECT_EQ(info->metadata.leaf_size, e["leaf_size"].get<uint32_t>());
    if (e.contains("content_type")) {
      EXPECT_EQ(info->metadata.content_type, e["content_type"].get<std::string>());
    }
    if (e.contains("meta")) {
      EXPECT_EQ(nlohmann::json(info->metadata.tags), e["meta"]);
      EXPECT_EQ(info->metadata.owner, e["owner"].get<std::string>());
      EXPECT_EQ(nlohmann::json(info->metadata.vector), e["vector"]);
    }
    EXPECT_TRUE((*store)->Verify(*id).ok);
  }
}

}  // namespace
}  // namespace dfrp::storage
