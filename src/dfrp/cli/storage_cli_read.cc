// dfrp-storage read-shard: a shard's payload (or a range of it), verified, to standard output
// or to -o PATH. A regular file (new, or one to replace) is written through a temporary file
// renamed into place only after the last byte verified, so a failed read leaves no file
// behind; anything else that can be opened for writing (a device such as /dev/null, a FIFO) is
// written straight through, as standard output is. Either way only verified bytes are written.
#include <fmt/format.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "dfrp/cli/storage_cli_extra.h"
#include "dfrp/cli/storage_cli_internal.h"
#include "dfrp/core/file_system.h"
#include "dfrp/core/uuid.h"

namespace dfrp::cli {

using core::Err;
using core::FileType;
using core::Result;
using core::Status;

namespace {

// The temporary file of a read in progress, removed if SIGINT or SIGTERM ends the process.
char g_partial_path[4096];

void RemovePartialAndExit(int sig) {
  // ::unlink, not FileSystem::RemoveFile: only async-signal-safe calls belong here.
  if (g_partial_path[0] != '\0') ::unlink(g_partial_path);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

enum class Output {
  kFile,    // a regular file, new or replaced: through a temporary file
  kStream,  // a device, FIFO or socket: straight through
};

// Which way -o PATH is written, or why it cannot be.
Result<Output> OutputFor(core::FileSystem* fs, const std::string& out_path) {
  auto target = fs->TypeOf(out_path, /*follow_links=*/true);
  if (target && *target == FileType::kDirectory)
    return Err(Status::InvalidArgument(fmt::format("-o {} is a folder: name a file", out_path)));
  auto self = fs->TypeOf(out_path, /*follow_links=*/false);
  if (self && *self == FileType::kSymlink && (!target || *target == FileType::kRegular))
    return Err(Status::InvalidArgument(fmt::format(
        "-o {} is a symbolic link{}: name the file itself or a new file (the file written is "
        "renamed into place, which would replace the link), or redirect standard output "
        "(read-shard ID > {})",
        out_path, target ? " to a file" : " that leads nowhere", out_path)));
  if (target && *target != FileType::kRegular) return Output::kStream;
  if (!target && !target.error().IsNotFound()) return Err(target.error());
  const std::string dir = core::DirName(out_path);
  if (!fs->IsDirectory(dir))
    return Err(Status::InvalidArgument(
        fmt::format("-o {}: the folder {} does not exist; create it first", out_path, dir)));
  return Output::kFile;
}

Status ReadToFile(Context& ctx, PayloadSource& payload, const std::string& out_path,
                  uint64_t* bytes) {
  core::FileSystem* fs = ctx.fs;
  const std::string tmp = fmt::format("{}.dfrp-partial-{}", out_path,
                                      core::UuidGenerator(ctx.clock).NewV7().ToString());
  if (tmp.size() >= sizeof(g_partial_path))
    return Status::InvalidArgument(fmt::format("-o {}: the path is too long", out_path));
  auto out = fs->CreateNew(tmp);
  if (!out) return out.error();
  std::memcpy(g_partial_path, tmp.c_str(), tmp.size() + 1);
  std::signal(SIGINT, RemovePartialAndExit);
  std::signal(SIGTERM, RemovePartialAndExit);
  uint64_t written = 0;
  Status s = payload.ReadTo([&](std::string_view chunk) {
    Status w = (*out)->WriteAt(written, chunk);
    written += chunk.size();
    return w;
  });
  if (s.ok()) s = (*out)->Sync();
  if (s.ok()) s = (*out)->Close();
  if (s.ok()) s = fs->Rename(tmp, out_path);
  if (!s.ok()) {
    out->reset();
    (void)fs->RemoveFile(tmp);
  }
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  g_partial_path[0] = '\0';
  if (!s.ok()) return s;
  *bytes = written;
  return fs->SyncDir(core::DirName(out_path));
}

// A device or FIFO: opened as it is (a FIFO waits for its reader) and written as the bytes
// verify; nothing to rename, sync or remove.
Status ReadToStream(Context& ctx, PayloadSource& payload, const std::string& out_path,
                    uint64_t* bytes) {
  DFRP_ASSIGN_OR_RETURN(auto out, ctx.fs->OpenOutputStream(out_path));
  uint64_t written = 0;
  Status s = payload.ReadTo([&](std::string_view chunk) {
    written += chunk.size();
    return out->Write(chunk);
  });
  Status closed = out->Close();
  if (s.ok()) s = closed;
  if (!s.ok()) return s;
  *bytes = written;
  return Status::OK();
}

}  // namespace

Status CmdRead(Context& ctx, const std::string& id_text, const std::string& out_path,
               const std::string& range) {
  DFRP_ASSIGN_OR_RETURN(core::Uuid id, ParseShardId(id_text));
  std::optional<ByteRange> r;
  if (!range.empty()) {
    DFRP_ASSIGN_OR_RETURN(auto parsed, ParseRange(range));
    r = ByteRange{parsed.first, parsed.second};
  }
  DFRP_ASSIGN_OR_RETURN(std::unique_ptr<PayloadSource> payload, ctx.service->OpenPayload(id, r));
  if (out_path.empty() || out_path == "-") {
    auto out = core::OutputStreamFromFd(1, "standard output");
    return payload->ReadTo([&](std::string_view chunk) { return out->Write(chunk); });
  }
  DFRP_ASSIGN_OR_RETURN(Output kind, OutputFor(ctx.fs, out_path));
  uint64_t bytes = 0;
  if (kind == Output::kStream) {
    DFRP_RETURN_IF_ERROR(ReadToStream(ctx, *payload, out_path, &bytes));
  } else {
    DFRP_RETURN_IF_ERROR(ReadToFile(ctx, *payload, out_path, &bytes));
  }
  if (ctx.g.json) PrintJson({{"shard_id", id.ToString()}, {"size", bytes}, {"path", out_path}});
  return Status::OK();
}

}  // namespace dfrp::cli
