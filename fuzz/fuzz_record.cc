// Fuzzes the on-disk record format the way recovery and reads meet it: the input is the bytes
// of a segment file, served through an in-memory RandomAccessFile.
//
// Each input is scanned up to three times (once when it needs no fixing), the way
// Store::Recover scans a segment without an index mark (lenient: a record that does not check
// out is skipped by searching for the next valid record magic):
//   1. as given;
//   2. with every record CRC (and the segment header CRC) recomputed, so that mutated header
//      fields and metadata get past the checksum and reach the range checks and the body;
//   3. as 2, with each record's Merkle root and stored tree recomputed from its payload too:
//      every such record must then read, verify and stream back exactly its payload.
// Properties checked on every record whose prefix reads back:
//   - the prefix re-encodes (EncodeRecordPrefix) to exactly the bytes on disk, and lies
//     inside the file;
//   - metadata that decodes re-encodes to the same bytes;
//   - VerifyRecordBody with the stored tree checked implies it without, and implies that
//     StreamVerifiedPayload succeeds; a stream that succeeds hands out exactly the payload
//     bytes of the file, and the payload's Merkle root is the stored one (no unverified byte
//     is ever handed out); a failing sink's error is passed back.
// The first 64 bytes also go through DecodeSegmentHeader and DecodeVolumeHeader.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "dfrp/core/bytes.h"
#include "dfrp/core/crc32c.h"
#include "dfrp/core/file_system.h"
#include "dfrp/core/status.h"
#include "dfrp/crypto/merkle.h"
#include "dfrp/storage/format.h"
#include "dfrp/storage/metadata.h"
#include "dfrp/storage/record_io.h"
#include "dfrp/storage/store_internal.h"
#include "fuzz_util.h"

namespace dfrp::fuzz {
namespace {

using core::Result;
using core::Status;
using storage::kRecordHeaderSize;
using storage::kRecordMagic;
using storage::kRecordPrefixSize;
using storage::kRootSize;
using storage::kSegmentHeaderSize;

class MemFile final : public core::RandomAccessFile {
 public:
  explicit MemFile(std::string_view data) : data_(data) {}
  Result<size_t> Read(uint64_t offset, size_t n, char* dst) const override {
    if (offset >= data_.size()) return size_t{0};
    const size_t k = static_cast<size_t>(std::min<uint64_t>(n, data_.size() - offset));
    if (k > 0) std::memcpy(dst, data_.data() + offset, k);
    return k;
  }
  Result<uint64_t> Size() const override { return uint64_t{data_.size()}; }
  const std::string& path() const override { return path_; }

 private:
  std::string_view data_;
  std::string path_ = "fuzz/segment-000000000001.dfrp";
};

void CheckFixedHeaders(std::string_view bytes) {
  if (bytes.size() < kSegmentHeaderSize) return;
  std::string_view head = bytes.substr(0, kSegmentHeaderSize);
  if (auto s = storage::DecodeSegmentHeader(head, "segment")) {
    auto again = storage::DecodeSegmentHeader(storage::EncodeSegmentHeader(*s), "segment");
    DFRP_FUZZ_CHECK(again.has_value());
    DFRP_FUZZ_CHECK(again->volume == s->volume && again->store_id == s->store_id &&
                    again->segment == s->segment);
  }
  if (auto v = storage::DecodeVolumeHeader(head, "volume")) {
    auto again = storage::DecodeVolumeHeader(storage::EncodeVolumeHeader(*v), "volume");
    DFRP_FUZZ_CHECK(again.has_value());
    DFRP_FUZZ_CHECK(again->volume == v->volume && again->store_id == v->store_id &&
                    again->created_unix_ms == v->created_unix_ms);
  }
}

struct Outcome {
  bool prefix_ok = false;
  bool body_ok = false;    // VerifyRecordBody with check_tree
  bool stream_ok = false;  // StreamVerifiedPayload
  uint64_t record_len = 0;
};

Outcome CheckRecordAt(const MemFile& file, std::string_view bytes, uint64_t pos) {
  Outcome out;
  auto prefix = storage::ReadRecordPrefix(file, pos, bytes.size());
  if (!prefix) return out;
  out.prefix_ok = true;
  const storage::RecordHeader& h = prefix->header;
  out.record_len = h.record_len();
  DFRP_FUZZ_CHECK(h.record_len() >= kRecordPrefixSize);
  DFRP_FUZZ_CHECK(pos + h.record_len() <= bytes.size());
  DFRP_FUZZ_CHECK(storage::EncodeRecordPrefix(h, prefix->root, prefix->metadata) ==
                  bytes.substr(pos, kRecordPrefixSize + h.metadata_len));

  if (auto m = storage::DecodeMetadata(prefix->metadata))
    DFRP_FUZZ_CHECK(storage::EncodeMetadata(*m) == prefix->metadata);

  uint64_t counted = 0;
  Status body = storage::VerifyRecordBody(file, pos, *prefix, /*check_tree=*/true, /*threads=*/1,
                                          [&](uint64_t n) { counted += n; });
  Status body_root_only = storage::VerifyRecordBody(file, pos, *prefix, false, 1);
  if (body.ok()) {
    DFRP_FUZZ_CHECK(body_root_only.ok());
    DFRP_FUZZ_CHECK(counted == h.payload_len);
  }

  const std::string_view payload = bytes.substr(pos + h.payload_offset(), h.payload_len);
  std::string streamed;
  Status st = storage::StreamVerifiedPayload(file, pos, *prefix, 1, [&](std::string_view s) {
    streamed.append(s);
    return Status::OK();
  });
  if (st.ok()) {
    DFRP_FUZZ_CHECK(streamed == payload);
    DFRP_FUZZ_CHECK(body_root_only.ok());
    // (Single-leaf records only: each multi-leaf stream costs a 512 KiB buffer.)
    if (h.payload_len > 0 && h.payload_len <= h.leaf_size) {
      Status refused = storage::StreamVerifiedPayload(
          file, pos, *prefix, 1, [](std::string_view) { return Status::IOError("sink refused"); });
      DFRP_FUZZ_CHECK(!refused.ok());
    }
  }
  if (body.ok()) DFRP_FUZZ_CHECK(st.ok());
  out.body_ok = body.ok();
  out.stream_ok = st.ok();
  return out;
}

// The next offset after `from` holding a record magic whose prefix checks out, or the end.
uint64_t Resync(const MemFile& file, std::string_view bytes, uint64_t from) {
  for (size_t at = bytes.find(kRecordMagic, from); at != std::string_view::npos;
       at = bytes.find(kRecordMagic, at + 1)) {
    if (storage::ReadRecordPrefix(file, at, bytes.size())) return at;
  }
  return bytes.size();
}

// storage::WalkSegment (rebuild-index, checking a copy of a volume) over the same bytes:
// every record it reports lies inside the file, in order, without overlaps, and reads back
// there as the shard it names; committed records end at or before committed_end.
void Walk(std::string_view bytes) {
  MemFile file(bytes);
  const uint64_t start = std::min<uint64_t>(kSegmentHeaderSize, bytes.size());
  storage::SegmentWalk w = storage::WalkSegment(file, 0, 1, start, bytes.size());
  DFRP_FUZZ_CHECK(w.committed_end >= start && w.committed_end <= bytes.size());
  uint64_t end = start;
  auto check = [&](const storage::ShardLocation& l) {
    DFRP_FUZZ_CHECK(l.offset >= end && l.offset + l.record_len <= bytes.size());
    auto p = storage::ReadRecordPrefix(file, l.offset, bytes.size());
    DFRP_FUZZ_CHECK(p && p->header.shard_id == l.id && p->root == l.root &&
                    p->header.record_len() == l.record_len);
    end = l.offset + l.record_len;
  };
  for (const auto& l : w.committed) check(l);
  DFRP_FUZZ_CHECK(end <= w.committed_end);
  for (const auto& l : w.uncommitted) check(l);
}

// Lenient scan from the end of the segment header; every offset in `must_verify` (ascending)
// must hold a record that reads, verifies and streams.
void Scan(std::string_view bytes, const std::vector<uint64_t>& must_verify) {
  MemFile file(bytes);
  auto want = must_verify.begin();
  uint64_t pos = kSegmentHeaderSize;
  while (pos < bytes.size()) {
    Outcome o = CheckRecordAt(file, bytes, pos);
    if (want != must_verify.end() && *want == pos) {
      DFRP_FUZZ_CHECK(o.prefix_ok && o.body_ok && o.stream_ok);
      ++want;
    }
    bool keep = o.prefix_ok && o.body_ok;
    if (o.prefix_ok && !keep) {
      // A damaged record followed by a valid one is kept (bit rot), as recovery does.
      const uint64_t next = pos + o.record_len;
      keep = next < bytes.size() && storage::ReadRecordPrefix(file, next, bytes.size());
    }
    if (keep) {
      pos += o.record_len;
      continue;
    }
    pos = Resync(file, bytes, pos + 1);
  }
  DFRP_FUZZ_CHECK(want == must_verify.end());
  Walk(bytes);
}

// Recomputes the segment header CRC and, walking the records from offset 64 while their
// headers decode and fit, each record's CRC (and with fix_body its Merkle root and tree).
// Returns the offsets of the records it fixed.
std::vector<uint64_t> FixUp(std::string* b, bool fix_body) {
  std::vector<uint64_t> fixed;
  if (b->size() < kSegmentHeaderSize) return fixed;
  core::EncodeU32(b->data() + kSegmentHeaderSize - 4,
                  core::Crc32c(std::string_view(b->data(), kSegmentHeaderSize - 4)));
  uint64_t pos = kSegmentHeaderSize;
  while (pos + kRecordPrefixSize <= b->size()) {
    char* rec = b->data() + pos;
    auto h = storage::DecodeRecordHeader(std::string_view(rec, kRecordHeaderSize));
    if (!h || h->record_len() > b->size() - pos) break;
    if (fix_body) {
      std::string_view payload(rec + h->payload_offset(), h->payload_len);
      std::vector<crypto::Hash> leaves(crypto::LeafCount(h->payload_len, h->leaf_size));
      crypto::HashLeaves(payload, h->leaf_size, leaves, 1);
      crypto::Hash root;
      std::vector<crypto::Hash> levels = crypto::TreeLevels(leaves, &root);
      DFRP_FUZZ_CHECK(levels.size() * kRootSize == h->tree_len);
      std::memcpy(rec + kRecordHeaderSize, root.data(), kRootSize);
      for (size_t i = 0; i < levels.size(); ++i)
        std::memcpy(rec + h->tree_offset() + i * kRootSize, levels[i].data(), kRootSize);
    }
    uint32_t crc = core::Crc32cExtend(0, rec, kRecordHeaderSize - 4);
    crc = core::Crc32cExtend(crc, rec + kRecordHeaderSize, kRootSize + h->metadata_len);
    core::EncodeU32(rec + kRecordHeaderSize - 4, crc);
    fixed.push_back(pos);
    pos += h->record_len();
  }
  return fixed;
}

}  // namespace
}  // namespace dfrp::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dfrp::fuzz;
  const std::string_view input = AsView(data, size);
  CheckFixedHeaders(input);

  std::string all_fixed(input);
  const std::vector<uint64_t> fixed = FixUp(&all_fixed, /*fix_body=*/true);
  if (all_fixed == input) {  // already a well-formed segment (or nothing to fix): one pass
    Scan(input, fixed);
    return 0;
  }
  Scan(input, {});
  std::string crc_fixed(input);
  FixUp(&crc_fixed, /*fix_body=*/false);
  if (crc_fixed != input && crc_fixed != all_fixed) Scan(crc_fixed, {});
  CheckFixedHeaders(all_fixed);
  Scan(all_fixed, fixed);
  return 0;
}
