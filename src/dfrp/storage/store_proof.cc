// Store methods for verified random access (issue 4): proofs, range reads, the FUSE view and
// the scrubber build on these.
#include <fmt/format.h>

#include "dfrp/storage/format.h"
#include "dfrp/storage/store.h"
#include "dfrp/storage/store_internal.h"

namespace dfrp::storage {

using core::Err;
using core::Result;
using core::Status;

Result<ShardReader> Store::OpenShard(const core::Uuid& id) {
  DFRP_ASSIGN_OR_RETURN(ShardLocation loc, Locate(id));
  DFRP_ASSIGN_OR_RETURN(const core::RandomAccessFile* file, SegmentFile(loc.volume, loc.segment));
  auto context = [&](const Status& s) {
    return s.WithContext(fmt::format("shard {} (volume {}, {} at offset {})", id.ToString(),
                                     loc.volume, file->path(), loc.offset));
  };
  auto size = file->Size();
  if (!size) return Err(context(size.error()));
  auto prefix = ReadRecordPrefix(*file, loc.offset, *size);
  if (!prefix) return Err(context(prefix.error()));
  if (prefix->header.shard_id != id)
    return Err(context(Status::Corruption("the record at the indexed place is another shard's")));
  return ShardReader(file, loc, std::move(*prefix));
}

Status Store::ForEachShard(std::optional<uint32_t> volume,
                           const std::function<bool(const ShardLocation&)>& fn) {
  return index_->ForEach(volume, fn);
}

Result<std::vector<ShardLocation>> Store::ShardPage(uint32_t volume, DiskPlace after,
                                                    DiskPlace last, size_t limit) {
  return index_->Page(volume, after, last, limit);
}

Result<ShardSpan> Store::ShardSpanAfter(uint32_t volume, DiskPlace after) {
  return index_->SpanAfter(volume, after);
}

std::string Store::SegmentPathFor(uint32_t volume, uint64_t segment) const {
  if (volume >= volumes_.size() || !volumes_[volume] || !volumes_[volume]->configured) return "";
  return SegmentPath(volume, segment);
}

}  // namespace dfrp::storage
