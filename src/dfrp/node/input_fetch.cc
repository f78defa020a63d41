#include "dfrp/node/input_fetch.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <set>

#include "dfrp/core/bytes.h"
#include "dfrp/crypto/merkle.h"
#include "dfrp/ledger/client.h"
#include "dfrp/node/client.h"

namespace dfrp::node {

using core::Status;

namespace {

// Hashes a payload's leaves as its bytes stream by, writing them to a file.
class LeafSink {
 public:
  LeafSink(core::WritableFile* file, uint32_t leaf_size, uint64_t size)
      : file_(file), leaf_size_(leaf_size), size_(size) {}

  Status Take(std::string_view piece) {
    if (piece.size() > size_ - received_)
      return Status::Corruption(fmt::format("it sent more than the input's {} bytes", size_));
    DFRP_RETURN_IF_ERROR(file_->WriteAt(received_, piece));
    received_ += piece.size();
    while (!piece.empty()) {
      const size_t n = std::min<size_t>(piece.size(), leaf_size_ - partial_.size());
      partial_.append(piece.substr(0, n));
      piece.remove_prefix(n);
      if (partial_.size() == leaf_size_) Flush();
    }
    return Status::OK();
  }

  uint64_t received() const { return received_; }

  crypto::Hash Root() {
    if (!partial_.empty()) Flush();
    return crypto::RootFromLeafHashes(leaves_);
  }

 private:
  void Flush() {
    leaves_.push_back(crypto::LeafHash(partial_));
    partial_.clear();
  }

  core::WritableFile* file_;
  uint32_t leaf_size_;
  uint64_t size_;
  uint64_t received_ = 0;
  std::string partial_;
  std::vector<crypto::Hash> leaves_;
};

// One source: Ok when `tmp` now holds the verified bytes; else why not, in words.
Status TryOne(core::FileSystem* fs, const compute::JobInput& in, const std::string& url,
              const std::string& tmp, const InputFetchOptions& opt) {
  DaemonInfo info;
  info.url = url;
  DFRP_ASSIGN_OR_RETURN(info.api_addr, ledger::HostPortOfUrl(url));
  ClientOptions co;
  co.connect_timeout_ms = opt.connect_timeout_ms;
  co.idle_timeout_ms = opt.idle_timeout_ms;
  Client client(info, co);
  (void)fs->RemoveFile(tmp);
  DFRP_ASSIGN_OR_RETURN(auto file, fs->CreateNew(tmp));
  LeafSink sink(file.get(), in.leaf_size, in.size);
  auto r = client.Download("/v1/shards/" + in.shard_id.ToString(), {},
                           [&](std::string_view piece) { return sink.Take(piece); });
  if (!r) return r.error();
  if (r->status == 404) return Status::NotFound("it does not hold the shard");
  if (r->status != 200) return StatusFromResponse(info, *r);
  if (sink.received() != in.size)
    return Status::Corruption(
        fmt::format("it sent {} bytes, the input has {}", sink.received(), in.size));
  const crypto::Hash root = sink.Root();
  if (root != in.root)
    return Status::Corruption(fmt::format("its bytes have the Merkle root {}, the job names {}",
                                          core::ToHex(root), core::ToHex(in.root)));
  DFRP_RETURN_IF_ERROR(file->Sync());
  return file->Close();
}

}  // namespace

Status FetchInput(core::FileSystem* fs, const compute::JobInput& in,
                  const std::vector<std::string>& sources, const std::string& path,
                  std::string* from, const InputFetchOptions& opt) {
  const std::string what = fmt::format("input shard {}", in.shard_id.ToString());
  if (in.leaf_size == 0) return Status::InvalidArgument(what + ": a leaf size of 0");
  const std::string tmp = path + ".part";
  std::vector<std::string> tried;
  bool mismatched = false;  // some source served bytes that do not verify
  std::set<std::string> seen;
  for (const auto& url : sources) {
    if (!seen.insert(url).second) continue;
    if (seen.size() > opt.max_sources) break;
    const Status s = TryOne(fs, in, url, tmp, opt);
    if (s.ok()) {
      DFRP_RETURN_IF_ERROR(fs->Rename(tmp, path));
      DFRP_RETURN_IF_ERROR(fs->SyncDir(core::DirName(path)));
      *from = url;
      return Status::OK();
    }
    (void)fs->RemoveFile(tmp);
    mismatched = mismatched || s.IsCorruption();
    tried.push_back(fmt::format("{}: {}", url, s.message()));
  }
  if (tried.empty())
    return Status::NotFound(what +
                            ": no node to fetch it from (the client named none, and "
                            "this node has no store or mesh peers)");
  const std::string list = fmt::format("{}", fmt::join(tried, "; "));
  if (mismatched)
    return Status::Corruption(
        fmt::format("{}: no source served bytes that verify against the job ({})", what, list));
  return Status::NotFound(fmt::format("{}: no source has it ({})", what, list));
}

}  // namespace dfrp::node
