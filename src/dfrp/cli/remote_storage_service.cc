#include "dfrp/cli/remote_storage_service.h"

#include <fmt/format.h>

#include <cstdlib>
#include <utility>

#include "dfrp/core/bytes.h"
#include "dfrp/core/uuid.h"
#include "dfrp/node/views.h"
#include "dfrp/storage/input_reader.h"

namespace dfrp::cli {

using core::Err;
using core::Result;
using core::Status;
using nlohmann::json;

namespace {

// An input of write-shard on its way to dfrpd: its length, and the stream to send (a regular
// file is opened only when its turn comes, so a long list never holds more than one file).
struct RemoteInput {
  std::string name;
  std::string path;  // a regular file, opened when its turn comes; or empty and:
  std::unique_ptr<core::SequentialFile> body;  // spooled, or standard input
  uint64_t size = 0;
};

// PUT needs the length first (Content-Length): standard input and pipes are copied to a file
// under $TMPDIR that is unlinked at once (the daemon may run as another user, so not
// STATE_DIR/tmp).
Status Spool(core::FileSystem* fs, core::Clock* clock, core::SequentialFile& from,
             const std::string& name, RemoteInput* in) {
  const char* tmpdir = std::getenv("TMPDIR");
  const std::string path =
      core::JoinPath(tmpdir && *tmpdir ? tmpdir : "/tmp",
                     "dfrp-spool-" + core::UuidGenerator(clock).NewV7().ToString());
  auto out = fs->CreateNew(path, /*private_mode=*/true);
  if (!out) return out.error().WithContext(fmt::format("cannot spool {}", name));
  auto back = fs->OpenSequential(path);
  (void)fs->RemoveFile(path);
  if (!back) return back.error().WithContext(fmt::format("cannot spool {}", name));
  std::string buf(1 << 20, '\0');
  for (;;) {
    DFRP_ASSIGN_OR_RETURN(size_t n, from.Read(buf.size(), buf.data()));
    if (n == 0) break;
    DFRP_RETURN_IF_ERROR((*out)->WriteAt(in->size, std::string_view(buf.data(), n)));
    in->size += n;
  }
  DFRP_RETURN_IF_ERROR((*out)->Close());
  in->body = std::move(*back);
  return Status::OK();
}

Result<RemoteInput> OpenRemoteInput(core::FileSystem* fs, core::Clock* clock, const WriteInput& w) {
  RemoteInput in;
  in.name = w.name;
  if (w.kind == WriteInput::Kind::kStdin) {
    auto stdin_file = core::SequentialFileFromFd(0, "standard input");
    if (stdin_file->KnownSize() >= 0) {  // a regular file: sent as it is
      in.size = static_cast<uint64_t>(stdin_file->KnownSize());
      in.body = std::move(stdin_file);
      return in;
    }
    DFRP_RETURN_IF_ERROR(Spool(fs, clock, *stdin_file, "standard input", &in));
    return in;
  }
  auto opened = fs->OpenSequential(w.name);
  if (!opened && opened.error().IsNotFound())
    return Err(Status::InvalidArgument(fmt::format("{} does not exist: check the path", w.name)));
  if (!opened) return Err(opened.error());
  if (w.kind == WriteInput::Kind::kStream) {
    DFRP_RETURN_IF_ERROR(Spool(fs, clock, **opened, w.name, &in));
    return in;
  }
  // It can be opened: open it again when its turn comes.
  in.path = w.name;
  in.size = static_cast<uint64_t>(w.size);
  return in;
}

// The query of PUT /v1/shards for the metadata (docs/API.md), less `name`.
std::string WriteQuery(const storage::ShardMetadata& m) {
  std::string q = "content_type=" + node::UrlEncode(m.content_type);
  if (!m.owner.empty()) q += "&owner=" + node::UrlEncode(m.owner);
  if (!m.vector.empty()) {
    std::string v;
    for (float f : m.vector) v += fmt::format("{}{}", v.empty() ? "" : ",", f);  // round-trips
    q += "&vector=" + node::UrlEncode(v);
  }
  if (m.leaf_size != 0) q += fmt::format("&leaf_size={}", m.leaf_size);
  for (const auto& [k, v] : m.tags) q += "&meta=" + node::UrlEncode(k + "=" + v);
  return q;
}

// A payload through GET /v1/shards/{id}, with a Range for a range.
class DownloadedPayload final : public PayloadSource {
 public:
  DownloadedPayload(Remote* remote, std::string target, node::HttpHeaders headers)
      : remote_(remote), target_(std::move(target)), headers_(std::move(headers)) {}
  Status ReadTo(const storage::SinkFn& sink) override {
    return remote_->Download(target_, headers_, sink);
  }

 private:
  Remote* remote_;
  std::string target_;
  node::HttpHeaders headers_;
};

class EmptyPayload final : public PayloadSource {
 public:
  Status ReadTo(const storage::SinkFn&) override { return Status::OK(); }
};

}  // namespace

RemoteStorageService::RemoteStorageService(node::DaemonInfo daemon, core::NodeConfig config,
                                           core::FileSystem* fs, core::Clock* clock,
                                           NoticeFn notice)
    : remote_(std::move(daemon)),
      local_(config, fs, clock, std::move(notice)),
      config_(std::move(config)),
      fs_(fs),
      clock_(clock) {}

RemoteStorageService::~RemoteStorageService() = default;

// The store exists, so init-storage has nothing to do when every configured drive is
// already one of its volumes; it says so as it would without the daemon (a read-only open is
// safe beside it). Laying out a new volume is a write: refused.
Result<InitOutcome> RemoteStorageService::Init(bool /*create_missing_folders*/) {
  InitOutcome out;
  {
    storage::StoreOptions opt;
    opt.fs = fs_;
    opt.clock = clock_;
    DFRP_ASSIGN_OR_RETURN(auto store,
                          storage::Store::Open(config_, storage::Store::Mode::kRead, opt));
    const auto vols = store->ListVolumes();
    out.report.store_id = store->store_id();
    for (const auto& d : config_.drives) {
      bool there = false;
      for (const auto& v : vols)
        there = there || (static_cast<int>(v.index) == d.index && v.path == d.path &&
                          v.state != storage::VolumeState::kUninitialized &&
                          v.state != storage::VolumeState::kMissing);
      if (!there)
        return Err(remote_.Refuse(
            "init-storage",
            fmt::format("it would lay out DRIVE_{} ({}) as a new volume", d.index, d.path)));
      out.report.already.push_back(static_cast<uint32_t>(d.index));
    }
  }
  // The daemon wrote the admin token when it started.
  DFRP_ASSIGN_OR_RETURN(out.volumes, local_.ListVolumes());
  return out;
}

// One PUT per input, in order. Every input is opened (standard input spooled) and its metadata
// checked before the first PUT, so a bad argument stores nothing, as on the direct path; but
// each PUT is its own shard, so a failure later (no space) leaves the earlier ones stored.
WriteOutcome RemoteStorageService::Write(const std::vector<WriteInput>& inputs,
                                         const storage::ShardMetadata& base,
                                         const storage::ProgressFn& progress) {
  WriteOutcome out;
  std::vector<RemoteInput> opened;
  uint64_t total = 0;
  for (const WriteInput& w : inputs) {
    auto in = OpenRemoteInput(fs_, clock_, w);
    if (!in) {
      out.status = in.error();
      return out;
    }
    total += in->size;
    opened.push_back(std::move(*in));
  }
  for (const auto& in : opened) {
    storage::ShardMetadata m = base;
    if (m.leaf_size == 0) m.leaf_size = config_.leaf_size;
    m.size = in.size;
    m.created_unix_ms = clock_->NowUnixMillis();
    out.status = storage::ValidateMetadata(m, config_.vector_dim, config_.vector_metric == "cosine")
                     .WithContext(in.name);
    if (!out.status.ok()) return out;
  }
  const std::string query = WriteQuery(base);
  uint64_t before = 0;
  for (auto& in : opened) {
    if (!in.path.empty()) {
      auto body = fs_->OpenSequential(in.path);
      if (!body) {
        out.status = body.error();
        break;
      }
      if ((*body)->KnownSize() != static_cast<int64_t>(in.size)) {
        out.status = storage::ChangedWhileReading(in.name, in.size,
                                                  static_cast<uint64_t>((*body)->KnownSize()));
        break;
      }
      in.body = std::move(*body);
    }
    auto r = remote_.Upload("/v1/shards?" + query + "&name=" + node::UrlEncode(in.name), *in.body,
                            in.size, [&](uint64_t d, uint64_t) {
                              if (progress) progress(before + d, total);
                            });
    in.body.reset();
    if (!r) {
      out.status = r.error().WithContext(in.name);  // the daemon's answer does not name the file
      break;
    }
    before += in.size;
    out.written.push_back(std::move(*r));
  }
  if (!out.status.ok() && !out.written.empty())
    out.status = out.status.WithContext(fmt::format(
        "{} of {} file(s) were stored before this (printed above; through dfrpd each file is "
        "its own write)",
        out.written.size(), opened.size()));
  return out;
}

// The range is checked against the shard's size first (its metadata), so that a range past
// the end fails as the direct path fails, rather than as HTTP clamps it.
Result<std::unique_ptr<PayloadSource>> RemoteStorageService::OpenPayload(
    const core::Uuid& id, const std::optional<ByteRange>& range) {
  const std::string target = "/v1/shards/" + id.ToString();
  node::HttpHeaders headers;
  if (range) {
    DFRP_ASSIGN_OR_RETURN(json meta, remote_.Call("GET", target + "/meta"));
    const uint64_t size = meta.value("size", uint64_t{0});
    if (range->offset > size || range->length > size - range->offset)
      return Err(Status::InvalidArgument(fmt::format(
          "range {}:{} runs past the end of shard {} ({} bytes): give OFFSET:LENGTH within it",
          range->offset, range->length, id.ToString(), size)));
    if (range->length == 0) return std::unique_ptr<PayloadSource>(new EmptyPayload());
    headers.emplace_back(
        "Range", fmt::format("bytes={}-{}", range->offset, range->offset + range->length - 1));
  }
  return std::unique_ptr<PayloadSource>(new DownloadedPayload(&remote_, target, headers));
}

Result<json> RemoteStorageService::Stat(const core::Uuid& id) {
  return remote_.Call("GET", "/v1/shards/" + id.ToString() + "/meta");
}

Result<json> RemoteStorageService::SearchShards(const node::SearchQuery& q) {
  std::string target = fmt::format("/v1/shards?near={}&k={}", node::UrlEncode(q.near), q.k);
  if (q.ef > 0) target += fmt::format("&ef={}", q.ef);
  if (q.exact) target += "&exact=1";
  return remote_.Call("GET", target);
}

// A shard the daemon cannot locate (404 for an unknown one) or that does not verify (500) is
// a result, as the direct path reports it; the next id is verified.
Status RemoteStorageService::Verify(const std::vector<core::Uuid>& ids, const VerifyEach& each,
                                    const storage::ProgressFn& /*progress*/) {
  for (const auto& id : ids) {
    DFRP_ASSIGN_OR_RETURN(node::HttpResponse r,
                          remote_.Exchange("POST", "/v1/shards/" + id.ToString() + "/verify"));
    if (r.status == 200) {
      json j = json::parse(r.body, nullptr, false);
      if (j.is_object() && j.contains("ok")) {
        each(std::move(j));
        continue;
      }
    }
    const Status s = remote_.StatusOf(r);
    if (r.status != 404 && r.status != 500) return s;
    each(json{{"shard_id", id.ToString()},
              {"ok", false},
              {"error", s.message()},
              {"error_code", node::StatusCodeName(s)}});
  }
  return Status::OK();
}

Status RemoteStorageService::VerifyAll(const VerifyEach& each,
                                       const storage::ProgressFn& progress) {
  return local_.VerifyAll(each, progress);
}

// A proof or audit answer from dfrpd, decoded as verify-proof decodes one: the same ProofSet
// the direct path builds.
Result<storage::ProofSet> RemoteStorageService::ProofFrom(const std::string& target) {
  DFRP_ASSIGN_OR_RETURN(std::string text, remote_.GetText(target));
  auto p = storage::DecodeProof(text);
  if (!p)
    return Err(
        Status::IOError(fmt::format("dfrpd at {} answered {} with a proof that does not "
                                    "decode: {}",
                                    remote_.info().url, target, p.error().message())));
  return std::move(*p);
}

Result<storage::ProofSet> RemoteStorageService::Prove(const core::Uuid& id, uint64_t leaf) {
  return ProofFrom(fmt::format("/v1/shards/{}/proof?leaf={}", id.ToString(), leaf));
}

Result<storage::ProofSet> RemoteStorageService::Audit(const core::Uuid& id, const std::string& seed,
                                                      uint32_t challenges) {
  return ProofFrom(fmt::format("/v1/shards/{}/audit?seed={}&challenges={}", id.ToString(),
                               core::ToHex(seed), challenges));
}

Result<json> RemoteStorageService::ListVolumes() {
  DFRP_ASSIGN_OR_RETURN(json j, remote_.Call("GET", "/v1/volumes"));
  return j.value("volumes", json::array());
}

Result<json> RemoteStorageService::VolumePost(uint32_t volume, std::string_view action,
                                              const json* body) {
  return remote_.Call("POST", fmt::format("/v1/volumes/{}/{}", volume, action), body);
}

Result<std::vector<uint32_t>> RemoteStorageService::Targets(std::optional<uint32_t> volume,
                                                            bool resuming) {
  if (volume) return std::vector<uint32_t>{*volume};
  DFRP_ASSIGN_OR_RETURN(json vols, ListVolumes());
  return VolumesToPauseOrResume(vols, resuming);
}

Result<std::vector<uint32_t>> RemoteStorageService::Pause(std::optional<uint32_t> volume,
                                                          const std::string& reason) {
  DFRP_ASSIGN_OR_RETURN(std::vector<uint32_t> targets, Targets(volume, false));
  const json body = {{"reason", reason}};
  for (uint32_t v : targets) DFRP_RETURN_IF_ERROR(VolumePost(v, "pause", &body).status());
  return targets;
}

Result<std::vector<uint32_t>> RemoteStorageService::Resume(std::optional<uint32_t> volume) {
  DFRP_ASSIGN_OR_RETURN(std::vector<uint32_t> targets, Targets(volume, true));
  for (uint32_t v : targets) DFRP_RETURN_IF_ERROR(VolumePost(v, "resume").status());
  return targets;
}

Result<json> RemoteStorageService::ResumeAt(uint32_t volume, const std::string& path,
                                            const PhaseProgress& progress) {
  const json body = {{"path", path}};
  DFRP_ASSIGN_OR_RETURN(json op, VolumePost(volume, "resume", &body));
  DFRP_ASSIGN_OR_RETURN(json check, remote_.Follow(op, progress));
  return json{
      {"volume", check.value("volume", 0u)},
      {"path", check.value("path", "")},
      {"segments", check.value("segments", uint64_t{0})},
      // dfrpd's resume operation says "shards" (VolumeCheck's name).
      {"shards_verified", check.value("shards_verified", check.value("shards", uint64_t{0}))},
      {"bytes", check.value("bytes", uint64_t{0})}};
}

Result<json> RemoteStorageService::Migrate(uint32_t volume, const std::string& to, bool resume,
                                           bool delete_source, const PhaseProgress& progress) {
  const json body = {{"to", to}, {"resume", resume}, {"delete_source", delete_source}};
  DFRP_ASSIGN_OR_RETURN(json op, VolumePost(volume, "migrate", &body));
  return remote_.Follow(op, progress);
}

Result<uint64_t> RemoteStorageService::RetireSource(uint32_t volume) {
  DFRP_ASSIGN_OR_RETURN(json j, VolumePost(volume, "retire-source"));
  return j.value("bytes_deleted", uint64_t{0});
}

Result<storage::RebuildReport> RemoteStorageService::RebuildIndex(const storage::ProgressFn&) {
  return Err(remote_.Refuse("rebuild-index"));
}

Result<json> RemoteStorageService::AddDrive(const AddDriveRequest&) {
  // The daemon holds the store open with the drives it started with: a new one needs a
  // restart anyway.
  return Err(remote_.Refuse("add-drive"));
}

Result<storage::ScrubReport> RemoteStorageService::Scrub(const storage::ScrubOptions&) {
  // The daemon runs its own scrubber (SCRUB_RATE), and scrub.sqlite has one writer.
  return Err(remote_.Refuse("scrub",
                            "dfrpd scrubs in the background (SCRUB_RATE; GET /v1/status shows "
                            "its progress and findings)"));
}

Status RemoteStorageService::Mount(const fuse::FuseViewOptions&) {
  // The view would read beside the daemon, but it lives as long as the mount, across
  // migrations the daemon runs: serve shards from the daemon's API instead.
  return remote_.Refuse("mount", "read shards through the daemon (GET /v1/shards/{id})");
}

}  // namespace dfrp::cli
