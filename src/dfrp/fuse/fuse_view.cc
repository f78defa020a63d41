#define FUSE_USE_VERSION 312
#include "dfrp/fuse/fuse_view.h"

#include <errno.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fuse.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdarg>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "dfrp/core/bytes.h"
#include "dfrp/fuse/read_ahead.h"

namespace dfrp::fuse {

using core::Status;
using storage::ShardLocation;
using storage::ShardReader;

namespace {

constexpr blksize_t kPreferredRead = 1 << 20;

struct Entry {
  ShardLocation loc;
  std::unique_ptr<ShardReader> reader;  // opened on first use
  std::optional<std::string> meta;      // the JSON file, built on first use
};

// What a path names.
struct Node {
  enum Kind { kNone, kDir, kPayload, kMeta } kind = kNone;
  Entry* entry = nullptr;
  std::optional<uint32_t> volume;  // for /volumes/<n>
};

class View {
 public:
  View(storage::Store& store, const FuseViewOptions& opt)
      : store_(store),
        opt_(opt),
        pool_(opt.direct_io ? std::max(2u, std::thread::hardware_concurrency()) : 1) {}

  Status Load() {
    for (const auto& v : store_.ListVolumes()) volumes_.push_back(v.index);
    return store_.ForEachShard(std::nullopt, [&](const ShardLocation& l) {
      auto [it, fresh] = entries_.emplace(l.id.ToString(), Entry{});
      it->second.loc = l;
      return true;
    });
  }

  Node Resolve(std::string_view path) {
    std::vector<std::string_view> parts;
    for (size_t pos = 1; pos <= path.size();) {
      size_t slash = path.find('/', pos);
      if (slash == std::string_view::npos) slash = path.size();
      if (slash > pos) parts.push_back(path.substr(pos, slash - pos));
      pos = slash + 1;
    }
    Node n;
    if (parts.empty()) return {Node::kDir, nullptr, std::nullopt};
    if (parts.size() == 1 && (parts[0] == "shards" || parts[0] == "meta" || parts[0] == "volumes"))
      return {Node::kDir, nullptr, std::nullopt};
    if (parts.size() == 2 && parts[0] == "shards") return Find(parts[1], Node::kPayload, {});
    if (parts.size() == 2 && parts[0] == "meta" && parts[1].ends_with(".json"))
      return Find(parts[1].substr(0, parts[1].size() - 5), Node::kMeta, {});
    if (parts[0] != "volumes" || parts.size() > 3) return n;
    std::optional<uint32_t> vol = ParseVolume(parts[1]);
    if (!vol) return n;
    if (parts.size() == 2) return {Node::kDir, nullptr, vol};
    return Find(parts[2], Node::kPayload, vol);
  }

  int GetAttr(const char* path, struct stat* st) {
    Node n = Resolve(path);
    std::memset(st, 0, sizeof(*st));
    if (n.kind == Node::kNone) return -ENOENT;
    if (n.kind == Node::kDir) {
      st->st_mode = S_IFDIR | 0555;
      st->st_nlink = 2;
      return 0;
    }
    st->st_mode = S_IFREG | 0444;
    st->st_nlink = 1;
    const int64_t ms = static_cast<int64_t>(n.entry->loc.id.unix_millis());
    st->st_mtim = st->st_ctim = st->st_atim = {ms / 1000, (ms % 1000) * 1'000'000};
    if (n.kind == Node::kPayload) {
      st->st_size = static_cast<off_t>(n.entry->loc.payload_len);
      // Programs size their reads by this: 1 MiB reads are verified on every core, and with
      // direct I/O each read() is one request.
      st->st_blksize = kPreferredRead;
      return 0;
    }
    const std::string* meta = Meta(*n.entry);
    if (meta == nullptr) return -EIO;
    st->st_size = static_cast<off_t>(meta->size());
    return 0;
  }

  int ReadDir(const char* path, void* buf, fuse_fill_dir_t fill) {
    Node n = Resolve(path);
    if (n.kind != Node::kDir) return n.kind == Node::kNone ? -ENOENT : -ENOTDIR;
    fill(buf, ".", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
    fill(buf, "..", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
    const std::string_view p(path);
    auto add = [&](const std::string& name) {
      fill(buf, name.c_str(), nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
    };
    if (p == "/") {
      for (const char* d : {"shards", "meta", "volumes"}) add(d);
    } else if (p == "/volumes") {
      for (uint32_t v : volumes_) add(std::to_string(v));
    } else {
      const bool meta = p == "/meta";
      for (const auto& [id, e] : entries_)
        if (!n.volume || e.loc.volume == *n.volume) add(meta ? id + ".json" : id);
    }
    return 0;
  }

  int Open(const char* path, struct fuse_file_info* fi) {
    if ((fi->flags & O_ACCMODE) != O_RDONLY) return -EROFS;
    Node n = Resolve(path);
    if (n.kind == Node::kNone) return -ENOENT;
    if (n.kind == Node::kDir) return -EISDIR;
    fi->fh = 0;
    if (n.kind == Node::kMeta) return Meta(*n.entry) ? 0 : -EIO;
    std::lock_guard<std::mutex> lock(mu_);
    if (!n.entry->reader) {
      auto r = store_.OpenShard(n.entry->loc.id);
      if (!r) {
        Log(fmt::format("cannot open shard {}: {}", n.entry->loc.id.ToString(),
                        r.error().message()));
        return -EIO;
      }
      n.entry->reader = std::make_unique<ShardReader>(std::move(*r));
    }
    // One stream per open file, so each reader gets its own read-ahead; freed in Release.
    // Read-ahead only with direct I/O: through the page cache the kernel reads ahead itself.
    auto file = std::make_unique<OpenFile>();
    file->id = n.entry->loc.id;
    file->stream = std::make_unique<ShardStream>(*n.entry->reader, pool_,
                                                 opt_.direct_io ? opt_.read_ahead : 0);
    fi->fh = reinterpret_cast<uint64_t>(file.get());
    streams_.emplace(file.get(), std::move(file));
    fi->direct_io = opt_.direct_io;
    return 0;
  }

  void Release(struct fuse_file_info* fi) {
    if (fi->fh == 0) return;  // a metadata file
    std::lock_guard<std::mutex> lock(mu_);
    auto it = streams_.find(reinterpret_cast<OpenFile*>(fi->fh));
    if (it != streams_.end()) {
      CountRead(*it->second);
      streams_.erase(it);
    }
    fi->fh = 0;
  }

  ~View() {
    for (const auto& [handle, file] : streams_) CountRead(*file);
  }

  int Read(const char* path, char* buf, size_t size, off_t off, struct fuse_file_info* fi) {
    auto* file = reinterpret_cast<OpenFile*>(fi->fh);
    if (file == nullptr) {  // a metadata file
      Node n = Resolve(path);
      if (n.kind != Node::kMeta) return n.kind == Node::kNone ? -ENOENT : -EIO;
      const std::string* meta = Meta(*n.entry);
      if (meta == nullptr) return -EIO;
      if (static_cast<uint64_t>(off) >= meta->size()) return 0;
      const size_t len = std::min(size, meta->size() - static_cast<size_t>(off));
      std::memcpy(buf, meta->data() + off, len);
      return static_cast<int>(len);
    }
    auto got = file->stream->Read(static_cast<uint64_t>(off), size, buf);
    if (!got) {
      Log(fmt::format("read of {} bytes at offset {} failed, returning EIO: {}", size, off,
                      got.error().message()));
      return -EIO;
    }
    file->bytes.fetch_add(*got, std::memory_order_relaxed);
    return static_cast<int>(*got);
  }

  void Log(const std::string& line) const {
    if (opt_.log) opt_.log(line);
  }

 private:
  // An open payload file: its stream and the verified bytes served from it, counted as one
  // read (IoObserver::OnRead) when the file is released, as dfrpd counts one per GET.
  struct OpenFile {
    std::unique_ptr<ShardStream> stream;
    core::Uuid id;
    std::atomic<uint64_t> bytes{0};
  };

  void CountRead(const OpenFile& file) const {
    const uint64_t bytes = file.bytes.load(std::memory_order_relaxed);
    if (opt_.observer && bytes > 0) opt_.observer->OnRead(core::RequestContext{}, file.id, bytes);
  }

  Node Find(std::string_view id, Node::Kind kind, std::optional<uint32_t> volume) {
    auto it = entries_.find(std::string(id));
    if (it == entries_.end() || (volume && it->second.loc.volume != *volume)) return {};
    return {kind, &it->second, volume};
  }

  std::optional<uint32_t> ParseVolume(std::string_view s) const {
    if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string_view::npos)
      return std::nullopt;
    const uint32_t v = static_cast<uint32_t>(std::stoul(std::string(s)));
    for (uint32_t have : volumes_)
      if (have == v) return v;
    return std::nullopt;
  }

  // The metadata file of a shard; null (and a log line) if it cannot be read.
  const std::string* Meta(Entry& e) {
    std::lock_guard<std::mutex> lock(mu_);
    if (e.meta) return &*e.meta;
    auto info = store_.Stat(e.loc.id);
    if (!info) {
      Log(fmt::format("cannot read the metadata of shard {}: {}", e.loc.id.ToString(),
                      info.error().message()));
      return nullptr;
    }
    const auto& m = info->metadata;
    nlohmann::json j = {{"shard_id", e.loc.id.ToString()},
                        {"merkle_root", core::ToHex(info->location.root)},
                        {"size", m.size},
                        {"leaf_size", m.leaf_size},
                        {"volume", info->location.volume},
                        {"segment", info->segment_path},
                        {"offset", info->location.offset},
                        {"content_type", m.content_type},
                        {"created_unix_ms", m.created_unix_ms},
                        {"meta", m.tags}};
    j["owner"] = m.owner.empty() ? nlohmann::json(nullptr) : nlohmann::json(m.owner);
    j["vector"] = m.vector.empty() ? nlohmann::json(nullptr) : nlohmann::json(m.vector);
    e.meta = j.dump(2) + "\n";
    return &*e.meta;
  }

  storage::Store& store_;
  const FuseViewOptions& opt_;
  std::mutex mu_;  // guards store_, the lazily filled parts of entries, and streams_
  std::map<std::string, Entry> entries_;
  std::vector<uint32_t> volumes_;
  VerifyPool pool_;  // after entries_: its threads stop before the readers they use go
  // Every open payload file's stream, by the handle given to the kernel. A file closed just
  // before the view stops may never get its release (libfuse does not release what is still
  // open when its loop ends), so the view owns them; last, so they go before the pool.
  std::map<OpenFile*, std::unique_ptr<OpenFile>> streams_;
};

View* Self() { return static_cast<View*>(fuse_get_context()->private_data); }

void* OnInit(struct fuse_conn_info*, struct fuse_config* cfg) {
  cfg->entry_timeout = cfg->attr_timeout = 60;  // nothing in the view changes while mounted
  cfg->negative_timeout = 1;
  return fuse_get_context()->private_data;
}

struct fuse_operations MakeOps() {
  struct fuse_operations ops = {};
  ops.init = OnInit;
  ops.getattr = [](const char* path, struct stat* st, struct fuse_file_info*) {
    return Self()->GetAttr(path, st);
  };
  ops.readdir = [](const char* path, void* buf, fuse_fill_dir_t fill, off_t, struct fuse_file_info*,
                   enum fuse_readdir_flags) { return Self()->ReadDir(path, buf, fill); };
  ops.open = [](const char* path, struct fuse_file_info* fi) { return Self()->Open(path, fi); };
  ops.read = [](const char* path, char* buf, size_t size, off_t off, struct fuse_file_info* fi) {
    return Self()->Read(path, buf, size, off, fi);
  };
  ops.release = [](const char*, struct fuse_file_info* fi) {
    Self()->Release(fi);
    return 0;
  };
  return ops;
}

// libfuse's own messages go to the same log as ours.
std::function<void(const std::string&)>* g_log = nullptr;
void FuseLog(enum fuse_log_level level, const char* fmt, va_list ap) {
  if (g_log == nullptr || level > FUSE_LOG_ERR) return;
  char line[1024];
  std::vsnprintf(line, sizeof(line), fmt, ap);
  std::string s(line);
  while (!s.empty() && s.back() == '\n') s.pop_back();
  (*g_log)(fmt::format("libfuse: {}", s));
}

Status CheckDevice(const std::string& device) {
  const int fd = ::open(device.c_str(), O_RDWR | O_CLOEXEC);
  if (fd >= 0) {
    ::close(fd);
    return Status::OK();
  }
  const int err = errno;
  std::string msg = fmt::format(
      "cannot open the FUSE device {} ({}): load the fuse kernel module (modprobe fuse), or "
      "give the container the device (docker run --device /dev/fuse --cap-add SYS_ADMIN)",
      device, ::strerror(err));
  return err == ENOENT ? Status::NotFound(msg) : Status::IOError(msg);
}

}  // namespace

Status RunFuseView(storage::Store& store, const FuseViewOptions& opt) {
  DFRP_RETURN_IF_ERROR(CheckDevice(opt.device));
  if (!store.fs()->IsDirectory(opt.mountpoint))
    return Status::InvalidArgument(fmt::format(
        "mount point {} is not a folder: create an empty folder to mount on", opt.mountpoint));
  View view(store, opt);
  DFRP_RETURN_IF_ERROR(view.Load());
  std::function<void(const std::string&)> log = opt.log;
  g_log = &log;
  fuse_set_log_func(FuseLog);
  struct fuse_args args = FUSE_ARGS_INIT(0, nullptr);
  for (const char* a : {"dfrp-storage", "-o", "ro,default_permissions,fsname=dfrp,subtype=dfrp"})
    fuse_opt_add_arg(&args, a);
  const struct fuse_operations ops = MakeOps();
  struct fuse* f = fuse_new(&args, &ops, sizeof(ops), &view);
  Status result;
  if (f == nullptr) {
    result = Status::IOError("libfuse could not start (see the message above)");
  } else if (fuse_mount(f, opt.mountpoint.c_str()) != 0) {
    result = Status::IOError(
        fmt::format("cannot mount on {}: is something mounted there already (fusermount3 -u {})?",
                    opt.mountpoint, opt.mountpoint));
  } else {
    struct fuse_session* se = fuse_get_session(f);
    // libfuse only takes over signals left at their default; a server started in the
    // background by a shell inherits SIGINT ignored, and must still stop on it.
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
    fuse_set_signal_handlers(se);
    if (opt.on_mounted) opt.on_mounted();
    struct fuse_loop_config* cfg = fuse_loop_cfg_create();
    fuse_loop_cfg_set_max_threads(cfg, opt.max_threads);
    const int rc = fuse_loop_mt(f, cfg);
    fuse_loop_cfg_destroy(cfg);
    fuse_remove_signal_handlers(se);
    fuse_unmount(f);
    // A signal ends the loop with its number; that is the normal way to stop.
    if (rc < 0) result = Status::IOError(fmt::format("the FUSE loop failed: {}", ::strerror(-rc)));
  }
  if (f != nullptr) fuse_destroy(f);
  fuse_opt_free_args(&args);
  g_log = nullptr;
  return result;
}

}  // namespace dfrp::fuse
