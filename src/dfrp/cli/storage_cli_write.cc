// dfrp-storage write-shard: files (or standard input) stored as shards: in one batch when the
// store is opened here, one PUT /v1/shards per file through dfrpd (storage_service.h).
#include <fmt/format.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dfrp/cli/progress.h"
#include "dfrp/cli/storage_cli_internal.h"
#include "dfrp/cli/storage_service.h"
#include "dfrp/core/file_system.h"
#include "dfrp/node/views.h"
#include "dfrp/storage/metadata.h"

namespace dfrp::cli {

using core::Err;
using core::Result;
using core::Status;
using nlohmann::json;

namespace {

Result<storage::ShardMetadata> MetadataFrom(const WriteOptions& w) {
  storage::ShardMetadata m;
  m.content_type = w.content_type;
  m.owner = w.owner;
  if (w.leaf_size != 0) {
    DFRP_RETURN_IF_ERROR(node::CheckLeafSize(w.leaf_size, "--leaf-size"));
    m.leaf_size = w.leaf_size;
  } else {
    m.leaf_size = 0;  // the store's LEAF_SIZE
  }
  if (!w.vector.empty()) {
    DFRP_ASSIGN_OR_RETURN(m.vector, vector::ParseNumbers(w.vector, "--vector"));
  }
  for (const std::string& kv : w.meta) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      return Err(Status::InvalidArgument(
          fmt::format("--meta '{}' is not key=value: write it like --meta project=alpha", kv)));
    std::string key = kv.substr(0, eq);
    if (m.tags.count(key))
      return Err(Status::InvalidArgument(fmt::format("--meta {} is given twice; keep one", key)));
    m.tags[key] = kv.substr(eq + 1);
  }
  return m;
}

Result<std::vector<std::string>> InputList(core::FileSystem* fs, const WriteOptions& w) {
  std::vector<std::string> files = w.files;
  if (!w.files_from.empty()) {
    auto text = core::ReadWholeFile(fs, w.files_from);
    if (!text)
      return Err(Status::InvalidArgument(
          fmt::format("--files-from {}: {}", w.files_from, text.error().message())));
    size_t pos = 0;
    while (pos < text->size()) {
      size_t nl = text->find('\n', pos);
      if (nl == std::string::npos) nl = text->size();
      if (nl > pos) files.push_back(text->substr(pos, nl - pos));
      pos = nl + 1;
    }
  }
  if (files.empty())
    return Err(Status::InvalidArgument(
        "write-shard needs FILE arguments, - for standard input, or --files-from LIST"));
  return files;
}

// What one input of write-shard is. The same checks, with the same messages, whether the
// store is written here or through dfrpd.
Result<WriteInput> ClassifyInput(core::FileSystem* fs, const std::string& f, int* stdin_uses) {
  WriteInput in;
  in.name = f;
  if (f == "-") {
    if (++*stdin_uses > 1)
      return Err(Status::InvalidArgument("- (standard input) can be given only once"));
    in.kind = WriteInput::Kind::kStdin;
    return in;
  }
  auto type = fs->TypeOf(f, /*follow_links=*/true);
  if (!type) {  // named when its size is read
    in.kind = WriteInput::Kind::kMissing;
    return in;
  }
  if (*type == core::FileType::kDirectory)
    return Err(Status::InvalidArgument(fmt::format("{} is a folder: give the files inside it", f)));
  // A pipe or device (such as <(command)): read it once, like standard input.
  if (*type != core::FileType::kRegular) {
    in.kind = WriteInput::Kind::kStream;
    return in;
  }
  auto size = fs->FileSize(f);
  if (!size) {
    in.kind = WriteInput::Kind::kMissing;
    return in;
  }
  in.kind = WriteInput::Kind::kFile;
  in.size = static_cast<int64_t>(*size);
  return in;
}

// write-shard's output, from the JSON elements of the written shards (node::WrittenJson, or
// the answers of PUT /v1/shards).
void PrintWritten(const Context& ctx, const json& written) {
  if (ctx.g.json) {
    PrintJson(written);
  } else if (!ctx.g.quiet) {
    for (const auto& s : written)
      std::printf("%s  %s  %llu  volume %u  %s\n", s["shard_id"].get<std::string>().c_str(),
                  s["merkle_root"].get<std::string>().c_str(),
                  static_cast<unsigned long long>(s["size"].get<uint64_t>()),
                  s["volume"].get<uint32_t>(), s["file"].get<std::string>().c_str());
  } else {
    for (const auto& s : written) std::printf("%s\n", s["shard_id"].get<std::string>().c_str());
  }
}

}  // namespace

Status CmdWrite(Context& ctx, const WriteOptions& w) {
  DFRP_ASSIGN_OR_RETURN(std::vector<std::string> files, InputList(ctx.fs, w));
  DFRP_ASSIGN_OR_RETURN(storage::ShardMetadata base, MetadataFrom(w));
  int stdin_uses = 0;
  std::vector<WriteInput> inputs;
  inputs.reserve(files.size());
  for (const std::string& f : files) {
    DFRP_ASSIGN_OR_RETURN(WriteInput in, ClassifyInput(ctx.fs, f, &stdin_uses));
    inputs.push_back(std::move(in));
  }
  ProgressBar bar("writing", ctx.progress, ctx.clock);
  WriteOutcome out =
      ctx.service->Write(inputs, base, [&](uint64_t d, uint64_t t) { bar.Update(d, t); });
  bar.Finish();
  // Through dfrpd the shards stored before a failure stay stored: printed, then the error.
  if (out.status.ok() || !out.written.empty()) PrintWritten(ctx, out.written);
  return out.status;
}

}  // namespace dfrp::cli
