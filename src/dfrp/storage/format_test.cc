#include "dfrp/storage/format.h"

#include <gtest/gtest.h>

#include "dfrp/crypto/merkle.h"

namespace dfrp::storage {
namespace {

RecordHeader SampleHeader() {
  RecordHeader h;
  h.shard_id = *core::Uuid::Parse("017f22e2-79b0-7cc3-98c4-dc0c0c07398f");
  h.metadata_len = 5;
  h.payload_len = 10000;
  h.leaf_size = 4096;
  h.tree_len = TreeSectionSize(h.payload_len, h.leaf_size);
  h.flags = kFlagTree;
  return h;
}

TEST(FormatTest, RecordPrefixRoundTrip) {
  RecordHeader h = SampleHeader();
  crypto::Hash root = crypto::Sha256Of("root");
  std::string prefix = EncodeRecordPrefix(h, root, "meta!");
  ASSERT_EQ(prefix.size(), kRecordPrefixSize + 5);
  auto d = DecodeRecordHeader(std::string_view(prefix).substr(0, kRecordHeaderSize));
  ASSERT_TRUE(d.has_value()) << d.error().ToString();
  EXPECT_EQ(d->shard_id, h.shard_id);
  EXPECT_EQ(d->payload_len, 10000u);
  EXPECT_EQ(d->tree_len, 5u * 32);  // 3 leaves: levels of 3 and 2 nodes
  EXPECT_EQ(d->record_len(), kRecordPrefixSize + 5 + 10000 + d->tree_len);
  EXPECT_TRUE(CheckRecordCrc(std::string_view(prefix).substr(0, 64),
                             std::string_view(prefix).substr(64, 32), "meta!"));
  EXPECT_FALSE(CheckRecordCrc(std::string_view(prefix).substr(0, 64),
                              std::string_view(prefix).substr(64, 32), "meta?"));
}

TEST(FormatTest, TreeSectionHoldsEveryLevelBelowTheRoot) {
  EXPECT_EQ(TreeSectionSize(0, 4096), 0u);
  EXPECT_EQ(TreeSectionSize(4096, 4096), 0u);       // one leaf: the root says it all
  EXPECT_EQ(TreeSectionSize(4097, 4096), 2u * 32);  // leaves only
  EXPECT_EQ(TreeSectionSize(5 * 4096, 4096), (5u + 3 + 2) * 32);
}

TEST(FormatTest, DecodeRejectsEveryDamagedField) {
  RecordHeader h = SampleHeader();
  std::string prefix = EncodeRecordPrefix(h, crypto::Sha256Of("r"), "meta!");
  std::string header = prefix.substr(0, kRecordHeaderSize);
  auto mutate = [&](size_t at, char v) {
    std::string b = header;
    b[at] = v;
    return DecodeRecordHeader(b);
  };
  EXPECT_FALSE(mutate(0, 'X').has_value());  // magic
  EXPECT_FALSE(mutate(8, 2).has_value());    // version
  EXPECT_FALSE(mutate(9, 1).has_value());    // reserved
  EXPECT_FALSE(mutate(10, 4).has_value());   // unknown flag
  EXPECT_FALSE(mutate(14, 1).has_value());   // metadata length beyond the limit
  EXPECT_FALSE(mutate(41, 3).has_value());   // leaf size not a power of two
  EXPECT_FALSE(mutate(48, 1).has_value());   // tree length disagrees with payload
  EXPECT_FALSE(DecodeRecordHeader(header.substr(0, 63)).has_value());
}

TEST(FormatTest, VolumeAndSegmentHeaders) {
  VolumeHeader v{3, *core::Uuid::Parse("017f22e2-79b0-7cc3-98c4-dc0c0c07398f"), 1234};
  std::string b = EncodeVolumeHeader(v);
  ASSERT_EQ(b.size(), kVolumeHeaderSize);
  auto d = DecodeVolumeHeader(b, "x");
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->volume, 3u);
  EXPECT_EQ(d->store_id, v.store_id);
  EXPECT_EQ(d->created_unix_ms, 1234);
  b[20] ^= 1;
  EXPECT_TRUE(DecodeVolumeHeader(b, "x").error().IsCorruption());
  SegmentHeader s{1, v.store_id, 42};
  auto ds = DecodeSegmentHeader(EncodeSegmentHeader(s), "y");
  ASSERT_TRUE(ds.has_value());
  EXPECT_EQ(ds->segment, 42u);
}

TEST(FormatTest, SegmentFileNames) {
  EXPECT_EQ(SegmentFileName(7), "segment-000000000007.dfrp");
  uint64_t n = 0;
  EXPECT_TRUE(ParseSegmentFileName("segment-000000000007.dfrp", &n));
  EXPECT_EQ(n, 7u);
  EXPECT_FALSE(ParseSegmentFileName("segment-7.dfrp", &n));
  EXPECT_FALSE(ParseSegmentFileName("segment-00000000000x.dfrp", &n));
  EXPECT_FALSE(ParseSegmentFileName("DFRP-VOLUME", &n));
}

}  // namespace
}  // namespace dfrp::storage
