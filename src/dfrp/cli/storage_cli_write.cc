// dfrp-storage write-shard: files (or standard input) stored as shards, in one batch when the
// store is opened directly, or one PUT /v1/shards per file while dfrpd serves the store.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dfrp/cli/progress.h"
#include "dfrp/cli/remote.h"
#include "dfrp/cli/storage_cli_internal.h"
#include "dfrp/core/clock.h"
#include "dfrp/core/file_system.h"
#include "dfrp/node/client.h"
#include "dfrp/node/views.h"
#include "dfrp/storage/input_reader.h"
#include "dfrp/storage/metadata.h"
#include "dfrp/storage/store.h"

namespace dfrp::cli {

using core::Err;
using core::Result;
using core::Status;
using nlohmann::json;
using storage::Store;

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
    DFRP_ASSIGN_OR_RETURN(m.vector, node::ParseVectorText(w.vector, "--vector"));
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

Result<std::vector<std::string>> InputList(const WriteOptions& w) {
  std::vector<std::string> files = w.files;
  if (!w.files_from.empty()) {
    auto text = core::ReadWholeFile(core::DefaultFileSystem(), w.files_from);
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
// store is written directly or through dfrpd.
enum class InputKind { kFile, kStdin, kStream, kMissing };

Result<InputKind> ClassifyInput(const std::string& f, int* stdin_uses, int64_t* size) {
  *size = -1;
  if (f == "-") {
    if (++*stdin_uses > 1)
      return Err(Status::InvalidArgument("- (standard input) can be given only once"));
    return InputKind::kStdin;
  }
  struct stat st;
  if (::stat(f.c_str(), &st) != 0) return InputKind::kMissing;  // named when its size is read
  if (S_ISDIR(st.st_mode))
    return Err(Status::InvalidArgument(fmt::format("{} is a folder: give the files inside it", f)));
  // A pipe or device (such as <(command)): read it once, like standard input.
  if (!S_ISREG(st.st_mode)) return InputKind::kStream;
  *size = static_cast<int64_t>(st.st_size);
  return InputKind::kFile;
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

// An input of write-shard on its way to dfrpd: an open file and its length.
struct RemoteInput {
  std::string name;
  int fd = -1;       // spooled or standard input; -1 for a regular file (`path`)
  std::string path;  // a regular file, opened only when its turn comes (so a long list
                     // never holds more than one descriptor)
  uint64_t size = 0;
  RemoteInput() = default;
  RemoteInput(RemoteInput&& o) noexcept
      : name(std::move(o.name)), fd(o.fd), path(std::move(o.path)), size(o.size) {
    o.fd = -1;
  }
  ~RemoteInput() {
    if (fd >= 0) ::close(fd);
  }
};

// PUT needs the length first (Content-Length): standard input and pipes are copied to an
// unlinked file under $TMPDIR (the daemon may run as another user, so not STATE_DIR/tmp).
Status Spool(int from, const std::string& name, RemoteInput* in) {
  const char* tmpdir = std::getenv("TMPDIR");
  std::string tmpl = fmt::format("{}/dfrp-spool-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
  in->fd = ::mkstemp(tmpl.data());
  if (in->fd < 0) return Status::FromErrno(errno, "cannot create a spool file for", name);
  ::unlink(tmpl.c_str());
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(from, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "cannot read", name);
    if (n == 0) break;
    DFRP_RETURN_IF_ERROR(WriteAllToFd(in->fd, std::string_view(buf.data(), n)));
    in->size += static_cast<uint64_t>(n);
  }
  if (::lseek(in->fd, 0, SEEK_SET) != 0) return Status::FromErrno(errno, "cannot rewind", tmpl);
  return Status::OK();
}

Result<RemoteInput> OpenRemoteInput(const std::string& f, InputKind kind, int64_t size) {
  RemoteInput in;
  in.name = f;
  if (kind == InputKind::kStdin) {
    struct stat st;
    if (::fstat(0, &st) == 0 && S_ISREG(st.st_mode)) {
      in.fd = ::dup(0);
      in.size = static_cast<uint64_t>(st.st_size);
      return in;
    }
    DFRP_RETURN_IF_ERROR(Spool(0, "standard input", &in));
    return in;
  }
  const int fd = ::open(f.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT)
    return Err(Status::InvalidArgument(fmt::format("{} does not exist: check the path", f)));
  if (fd < 0) return Err(Status::FromErrno(errno, "cannot open", f));
  if (kind == InputKind::kStream) {
    Status s = Spool(fd, f, &in);
    ::close(fd);
    DFRP_RETURN_IF_ERROR(s);
    return in;
  }
  ::close(fd);  // it can be opened: open it again when its turn comes
  in.path = f;
  in.size = static_cast<uint64_t>(size);
  return in;
}

// The query of PUT /v1/shards for write-shard's options (docs/API.md), less `name`.
std::string WriteQuery(const WriteOptions& w) {
  std::string q = "content_type=" + node::UrlEncode(w.content_type);
  if (!w.owner.empty()) q += "&owner=" + node::UrlEncode(w.owner);
  if (!w.vector.empty()) q += "&vector=" + node::UrlEncode(w.vector);
  if (w.leaf_size != 0) q += fmt::format("&leaf_size={}", w.leaf_size);
  for (const auto& kv : w.meta) q += "&meta=" + node::UrlEncode(kv);
  return q;
}

// write-shard through dfrpd: one PUT per input, in order. Every input is opened (standard
// input spooled) and its metadata checked before the first PUT, so a bad argument stores
// nothing, as on the direct path; but each PUT is its own shard, so a failure later (no space)
// leaves the earlier ones stored: they are printed, then the error.
Status WriteThroughDaemon(Context& ctx, const WriteOptions& w,
                          const std::vector<std::string>& files,
                          const storage::ShardMetadata& base) {
  int stdin_uses = 0;
  std::vector<RemoteInput> inputs;
  uint64_t total = 0;
  for (const std::string& f : files) {
    int64_t size = -1;
    DFRP_ASSIGN_OR_RETURN(InputKind kind, ClassifyInput(f, &stdin_uses, &size));
    DFRP_ASSIGN_OR_RETURN(RemoteInput in, OpenRemoteInput(f, kind, size));
    total += in.size;
    inputs.push_back(std::move(in));
  }
  for (const auto& in : inputs) {
    storage::ShardMetadata m = base;
    if (m.leaf_size == 0) m.leaf_size = ctx.config.leaf_size;
    m.size = in.size;
    m.created_unix_ms = core::SystemClock()->NowUnixMillis();
    DFRP_RETURN_IF_ERROR(storage::ValidateMetadata(m, ctx.config.vector_dim).WithContext(in.name));
  }
  const std::string query = WriteQuery(w);
  ProgressBar bar("writing", ctx.progress);
  json written = json::array();
  Status failure;
  uint64_t before = 0;
  for (auto& in : inputs) {
    if (!in.path.empty()) {
      in.fd = ::open(in.path.c_str(), O_RDONLY | O_CLOEXEC);
      struct stat st;
      if (in.fd < 0) {
        failure = Status::FromErrno(errno, "cannot open", in.path);
        break;
      }
      if (::fstat(in.fd, &st) != 0 || static_cast<uint64_t>(st.st_size) != in.size) {
        failure = storage::ChangedWhileReading(in.name, in.size, static_cast<uint64_t>(st.st_size));
        break;
      }
    }
    auto r =
        ctx.remote->Upload("/v1/shards?" + query + "&name=" + node::UrlEncode(in.name), in.fd,
                           in.size, [&](uint64_t d, uint64_t) { bar.Update(before + d, total); });
    if (!r) {
      failure = r.error().WithContext(in.name);  // the daemon's answer does not name the file
      break;
    }
    if (!in.path.empty()) {
      ::close(in.fd);
      in.fd = -1;
    }
    before += in.size;
    written.push_back(std::move(*r));
  }
  bar.Finish();
  if (failure.ok() || !written.empty()) PrintWritten(ctx, written);
  if (!failure.ok() && !written.empty())
    return failure.WithContext(fmt::format(
        "{} of {} file(s) were stored before this (printed above; through dfrpd each file is "
        "its own write)",
        written.size(), inputs.size()));
  return failure;
}

}  // namespace

Status CmdWrite(Context& ctx, const WriteOptions& w) {
  DFRP_ASSIGN_OR_RETURN(std::vector<std::string> files, InputList(w));
  DFRP_ASSIGN_OR_RETURN(storage::ShardMetadata base, MetadataFrom(w));
  if (ctx.remote) return WriteThroughDaemon(ctx, w, files, base);
  int stdin_uses = 0;
  std::vector<storage::WriteRequest> batch;
  batch.reserve(files.size());
  for (const std::string& f : files) {
    storage::WriteRequest req;
    req.name = f;
    req.meta = base;
    int64_t size = -1;
    DFRP_ASSIGN_OR_RETURN(InputKind kind, ClassifyInput(f, &stdin_uses, &size));
    if (kind == InputKind::kStdin) {
      req.input = core::SequentialFileFromFd(0, "standard input");
    } else if (kind == InputKind::kStream) {
      auto stream = core::DefaultFileSystem()->OpenSequential(f);
      if (!stream) return stream.error();
      req.input = std::move(*stream);
    } else {
      req.size_hint = size;
    }
    if (kind != InputKind::kStdin) req.path = f;
    batch.push_back(std::move(req));
  }
  DFRP_ASSIGN_OR_RETURN(auto store, OpenStore(ctx, Store::Mode::kWrite));
  const size_t notices_before = store->notices().size();
  ProgressBar bar("writing", ctx.progress);
  DFRP_ASSIGN_OR_RETURN(auto written,
                        store->Write(batch, [&](uint64_t d, uint64_t t) { bar.Update(d, t); }));
  bar.Finish();
  for (size_t i = notices_before; i < store->notices().size(); ++i) ctx.Notice(store->notices()[i]);
  json arr = json::array();
  for (const auto& s : written) arr.push_back(node::WrittenJson(s));
  PrintWritten(ctx, arr);
  return Status::OK();
}

}  // namespace dfrp::cli
