// The storage service through a running dfrpd's HTTP API (docs/API.md; README, "Beside a
// running dfrpd"), so that two processes never write one store. Each call is one or a few
// requests to the daemon, and returns what LocalStorageService returns for the same store,
// with these differences (the README's list):
//
// - Write stores each input as its own PUT /v1/shards, in order: an input that fails leaves
//   the earlier ones stored (WriteOutcome has both). Standard input and pipes are spooled to
//   an unlinked file under $TMPDIR first (an upload needs its length).
// - VerifyAll and Init's report read the drives directly (read-only, which is safe beside the
//   daemon): a LocalStorageService does that part.
// - Init, when it would lay out a new volume, RebuildIndex, AddDrive, Scrub and Mount fail
//   with Busy naming the daemon (pid, URL) and how to stop it.
// - Admin calls send STATE_DIR/api-token; a wrong or unreadable one is "dfrpd refused" (2).
#pragma once

#include <memory>

#include "dfrp/cli/local_storage_service.h"
#include "dfrp/cli/remote.h"
#include "dfrp/cli/storage_service.h"
#include "dfrp/node/client.h"

namespace dfrp::cli {

class RemoteStorageService final : public StorageService {
 public:
  RemoteStorageService(node::DaemonInfo daemon, core::NodeConfig config, core::FileSystem* fs,
                       core::Clock* clock, NoticeFn notice);
  ~RemoteStorageService() override;

  core::Result<InitOutcome> Init(bool create_missing_folders) override;
  WriteOutcome Write(const std::vector<WriteInput>& inputs, const storage::ShardMetadata& base,
                     const storage::ProgressFn& progress) override;
  core::Result<std::unique_ptr<PayloadSource>> OpenPayload(
      const core::Uuid& id, const std::optional<ByteRange>& range) override;
  core::Result<nlohmann::json> Stat(const core::Uuid& id) override;
  core::Result<nlohmann::json> SearchShards(const node::SearchQuery& query) override;
  core::Status Verify(const std::vector<core::Uuid>& ids, const VerifyEach& each,
                      const storage::ProgressFn& progress) override;
  core::Status VerifyAll(const VerifyEach& each, const storage::ProgressFn& progress) override;
  core::Result<storage::ProofSet> Prove(const core::Uuid& id, uint64_t leaf) override;
  core::Result<storage::ProofSet> Audit(const core::Uuid& id, const std::string& seed,
                                        uint32_t challenges) override;
  core::Result<nlohmann::json> ListVolumes() override;
  core::Result<std::vector<uint32_t>> Pause(std::optional<uint32_t> volume,
                                            const std::string& reason) override;
  core::Result<std::vector<uint32_t>> Resume(std::optional<uint32_t> volume) override;
  core::Result<nlohmann::json> ResumeAt(uint32_t volume, const std::string& path,
                                        const PhaseProgress& progress) override;
  core::Result<nlohmann::json> Migrate(uint32_t volume, const std::string& to, bool resume,
                                       bool delete_source, const PhaseProgress& progress) override;
  core::Result<uint64_t> RetireSource(uint32_t volume) override;
  core::Result<storage::RebuildReport> RebuildIndex(const storage::ProgressFn& progress) override;
  core::Result<nlohmann::json> AddDrive(const AddDriveRequest& request) override;
  core::Result<storage::ScrubReport> Scrub(const storage::ScrubOptions& options) override;
  core::Status Mount(const fuse::FuseViewOptions& options) override;

 private:
  // POST /v1/volumes/{n}/{action}.
  core::Result<nlohmann::json> VolumePost(uint32_t volume, std::string_view action,
                                          const nlohmann::json* body = nullptr);
  core::Result<storage::ProofSet> ProofFrom(const std::string& target);
  // `volume`, or the volumes a pause or resume of all acts on (VolumesToPauseOrResume).
  core::Result<std::vector<uint32_t>> Targets(std::optional<uint32_t> volume, bool resuming);

  Remote remote_;
  LocalStorageService local_;  // what is read from the drives directly
  core::NodeConfig config_;
  core::FileSystem* fs_;
  core::Clock* clock_;
};

}  // namespace dfrp::cli
