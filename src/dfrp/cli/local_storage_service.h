// The storage service over the store opened in this process (storage/store.h), for when no
// dfrpd serves it. Every file goes through the FileSystem and every reading of the time
// through the Clock given at construction.
//
// The store is opened on first use and kept for the service's life (one open per command, as
// its notices are printed once); a call that needs the writer lock reopens it in write mode,
// and Migrate closes it (storage::MigrateVolume opens the store itself). A PayloadSource reads
// from the store open when it was made: use it before the next call of this service.
#pragma once

#include <memory>

#include "dfrp/cli/storage_service.h"
#include "dfrp/economy/policy.h"
#include "dfrp/economy/usage.h"
#include "dfrp/vector/shard_vectors.h"

namespace dfrp::cli {

class LocalStorageService final : public StorageService {
 public:
  LocalStorageService(core::NodeConfig config, core::FileSystem* fs, core::Clock* clock,
                      NoticeFn notice);
  ~LocalStorageService() override;

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
  // Opens the vector index over the open store (vector/shard_vectors.h), tells its notices,
  // and saves it when opening changed it (best effort: it is a cache). With `rebuild`, builds
  // it from the drives.
  core::Result<vector::ShardVectors*> OpenVectors(bool rebuild);
  // The open store, opened (or reopened for writing) as `mode` needs; its notices go out
  // once per open.
  core::Result<storage::Store*> Open(storage::Store::Mode mode);
  storage::StoreOptions Options() const;

  // Opens STATE_DIR/usage.db once (commands that count: writes, reads, proofs).
  core::Status OpenUsage(bool background_flush = false);
  // Counts a read or proof served here (the CLI's requests are "local").
  void CountRead(const core::Uuid& id, uint64_t bytes);
  void CountProof(const core::Uuid& id, uint64_t leaves);

  core::NodeConfig config_;
  core::FileSystem* fs_;
  core::Clock* clock_;
  NoticeFn notice_;
  // STATE_DIR/usage.db, opened with the store; declared first so the store (which points at
  // it as its observer) goes first. Epochs of 60 s until economic.toml reaches the config.
  std::unique_ptr<economy::UsageCounter> usage_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<vector::ShardVectors> vectors_;  // over store_; reset with it
  storage::Store::Mode mode_ = storage::Store::Mode::kRead;
};

}  // namespace dfrp::cli
