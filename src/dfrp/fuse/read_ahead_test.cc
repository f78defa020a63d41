#include "dfrp/fuse/read_ahead.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "dfrp/storage/store_test_util.h"

namespace dfrp::fuse {
namespace {

using storage::testing::Pattern;

class ReadAheadTest : public storage::testing::StoreFixture {
 protected:
  void SetUp() override {
    StoreFixture::SetUp();
    config_ = Config({64 << 20});
    store_ = InitAndOpen(config_);
    ASSERT_TRUE(store_);
    payload_ = Pattern((3 << 20) + 5, 7);
    auto w = Put(*store_, {payload_});
    ASSERT_TRUE(w.has_value()) << w.error().ToString();
    auto r = store_->OpenShard((*w)[0].id);
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    reader_ = std::make_unique<storage::ShardReader>(std::move(*r));
  }

  // The bytes of one read through `stream`, or "error: " and why it failed.
  std::string Read(ShardStream& stream, uint64_t offset, size_t size) {
    std::string buf(size, '\0');
    auto got = stream.Read(offset, size, buf.data());
    if (!got) return "error: " + got.error().message();
    buf.resize(*got);
    return buf;
  }

  // Flips one payload byte on the drive.
  void Damage(uint64_t payload_offset) {
    std::fstream f(reader_->segment_path(), std::ios::in | std::ios::out | std::ios::binary);
    const auto at = static_cast<std::streamoff>(
        reader_->location().offset + reader_->prefix().header.payload_offset() + payload_offset);
    f.seekg(at);
    const char c = static_cast<char>(f.get() ^ 0x20);
    f.seekp(at);
    f.put(c);
  }

  core::NodeConfig config_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<storage::ShardReader> reader_;
  std::string payload_;
};

TEST_F(ReadAheadTest, ASequentialReaderIsServedFromReadAheadWithTheRightBytes) {
  VerifyPool pool(2);
  ShardStream stream(*reader_, pool, 2);
  constexpr size_t kPiece = 256 << 10;
  std::string all;
  int reads = 0;
  for (uint64_t off = 0;; off += kPiece, ++reads) {
    std::string got = Read(stream, off, kPiece);  // the last asks past the end
    ASSERT_FALSE(got.starts_with("error")) << got;
    if (got.empty()) break;
    all += got;
  }
  EXPECT_EQ(all, payload_);
  EXPECT_EQ(reads, 13);                      // 12 whole pieces and 5 bytes
  EXPECT_EQ(stream.read_ahead_hits(), 12u);  // every read after the first but the one past the end
}

TEST_F(ReadAheadTest, AReaderThatJumpsGetsTheBytesItAsksFor) {
  VerifyPool pool(2);
  ShardStream stream(*reader_, pool, 2);
  const std::pair<uint64_t, size_t> reads[] = {{0, 128 << 10},           {128 << 10, 128 << 10},
                                               {1 << 20, 128 << 10},     {4096, 100},
                                               {(3 << 20) + 1, 1 << 20}, {(1 << 20) + 7, 64 << 10}};
  for (auto [off, size] : reads)
    EXPECT_EQ(Read(stream, off, size), payload_.substr(off, size)) << off;
  EXPECT_EQ(stream.read_ahead_hits(), 1u);  // only the second read followed the first
}

TEST_F(ReadAheadTest, ADamagedLeafFailsOnlyTheReadsThatHoldIt) {
  Damage(100 * 4096 + 7);  // leaf 100, in the read at 384 KiB
  VerifyPool pool(2);
  ShardStream stream(*reader_, pool, 2);
  constexpr size_t kPiece = 128 << 10;
  for (uint64_t off = 0; off < payload_.size(); off += kPiece) {
    std::string got = Read(stream, off, kPiece);
    if (off == 3 * kPiece) {
      EXPECT_TRUE(got.starts_with("error")) << off;
      EXPECT_NE(got.find("leaf 100 "), std::string::npos) << got;
    } else {
      EXPECT_EQ(got, payload_.substr(off, kPiece)) << off;
    }
  }
  EXPECT_GT(stream.read_ahead_hits(), 20u);
}

TEST_F(ReadAheadTest, AStreamClosedWithReadsAheadInFlightIsSafe) {
  VerifyPool pool(1);
  for (int i = 0; i < 20; ++i) {
    ShardStream stream(*reader_, pool, 4);
    EXPECT_EQ(Read(stream, 0, 1 << 20), payload_.substr(0, 1 << 20));
  }  // each stream goes with up to four reads queued or running
}

}  // namespace
}  // namespace dfrp::fuse
