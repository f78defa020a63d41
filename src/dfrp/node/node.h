// Node: the storage node behind dfrpd's API, free of HTTP types. It composes parts with one
// job each:
//
//   StoreWriter   the one writer Store (the process holds the store's writer lock while it
//                 runs) and the volume snapshot                          (store_writer.h)
//   WriteQueue    group commit of PUTs on one writer thread              (write_queue.h)
//   ReaderCache   the shared reader Store and recently opened shards, bounded by bytes
//                                                                        (reader_cache.h)
//   Operations    migrations and resumes at a new path, on threads of their own
//                                                                        (operations.h)
//   ScrubService  the background scrubber                                (scrub_service.h)
//   status_view   /v1/status and /metrics, read from all of them        (status_view.h)
//
// and adds what is left: whole-shard verification on a Store of its own, proofs, audits, and
// the short admin calls (pause, resume, retire-source).
//
// Lock order across the parts (a lock on the left may be held while taking one on the
// right, never the reverse): Operations::mu_ -> Op::mu; StoreWriter::mu_ ->
// StoreWriter::snapshot_mu_; StoreWriter::mu_ -> the vector index's mu_ (the writer Store's
// observer adds each stored shard; a search holds that mu_ alone and reads the hits'
// metadata after releasing it); ReaderCache::lru_mu_ -> ReaderCache::store_mu_;
// Node::verify_mu_ alone; WriteQueue::mu_ alone; ComputeService::mu_ -> FraudBook::mu_ (a paid
// job's JSON asks whether a fraud record names its escrow). No other part calls into another
// while holding its own lock, except that work run by StoreWriter::Run (under its mu_) may take
// the snapshot lock.
//
// Thread-safety: every public member may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dfrp/core/config.h"
#include "dfrp/core/status.h"
#include "dfrp/core/thread_annotations.h"
#include "dfrp/core/uuid.h"
#include "dfrp/economy/market.h"
#include "dfrp/economy/usage.h"
#include "dfrp/ledger/authority.h"
#include "dfrp/node/collateral_staker.h"
#include "dfrp/node/compute_service.h"
#include "dfrp/node/fraud_book.h"
#include "dfrp/node/ledger_sync_service.h"
#include "dfrp/node/mesh_service.h"
#include "dfrp/node/metrics.h"
#include "dfrp/node/operations.h"
#include "dfrp/node/provider_service.h"
#include "dfrp/node/reader_cache.h"
#include "dfrp/node/scrub_service.h"
#include "dfrp/node/store_writer.h"
#include "dfrp/node/token.h"
#include "dfrp/node/write_queue.h"
#include "dfrp/storage/proof.h"
#include "dfrp/storage/store.h"
#include "dfrp/vector/shard_vectors.h"

namespace dfrp::node {

struct NodeOptions {
  core::NodeConfig config;
  storage::StoreOptions store;
  // Pause between two full scrub passes.
  int64_t scrub_pass_interval_ms = 60'000;
  // What the kept shard readers may hold (ReaderCache).
  uint64_t reader_cache_bytes = 32ull << 20;
  // How often the market's epochs are checked for an end (prices move once per epoch).
  int64_t market_tick_ms = 1000;
  // How often a provider asks the committee for its escrows' open answer windows.
  int64_t provider_tick_ms = 500;
  // How often an authority reads its peers' logs for certificates it missed.
  int64_t ledger_sync_tick_ms = 1000;
  // The shard vector index is saved when this long passed since its last save with shards
  // added, or at once past this many unsaved shards (and when the node stops).
  int64_t vectors_save_interval_ms = 60'000;
  uint64_t vectors_save_after = 10'000;
};

class Node {
 public:
  ~Node();
  static core::Result<std::unique_ptr<Node>> Open(const NodeOptions& opt);
  // Asks every long job to end at its next check (migrations, the scrubber, checks of a
  // copy) without waiting; writes go on. Called as soon as dfrpd is told to stop.
  void BeginStop();
  // BeginStop, then answers the queued writes and joins every thread; idempotent.
  void Stop();
  bool stopping() const { return stopping_.load(); }

  const core::NodeConfig& config() const { return opt_.config; }
  const std::string& token() const { return token_; }
  const core::Uuid& store_id() const { return writer_->store_id(); }
  core::FileSystem* fs() const { return opt_.store.fs; }
  core::Clock* clock() const { return opt_.store.clock; }
  Metrics& metrics() { return metrics_; }
  // What opening the node noticed (a recovered tail, a token file others can read, ...), for
  // the log.
  const std::vector<std::string>& notices() const { return notices_; }
  int64_t NowMs() const { return opt_.store.clock->NowUnixMillis(); }
  double UptimeSeconds() const { return static_cast<double>(NowMs() - started_ms_) / 1000.0; }
  int64_t started_ms() const { return started_ms_; }

  StoreWriter& writer() { return *writer_; }
  ReaderCache& readers() { return *readers_; }
  WriteQueue& writes() { return *writes_; }
  Operations& operations() { return *ops_; }
  const ScrubService& scrub() const { return *scrub_; }

  // --- Reads.
  core::Result<OpenedShard> OpenShard(const core::Uuid& id);
  core::Result<storage::ShardInfo> Stat(const core::Uuid& id) { return readers_->Stat(id); }
  // The same check as `dfrp-storage verify-shard`: the whole record, its stored tree and
  // metadata, on a Store of its own.
  storage::VerifyResult Verify(const core::Uuid& id) EXCLUDES(verify_mu_);
  // A proof or audit answered is counted for `ctx` (usage.db).
  core::Result<storage::ProofSet> Prove(const core::Uuid& id, uint64_t leaf,
                                        const core::RequestContext& ctx = {});
  core::Result<storage::ProofSet> Audit(const core::Uuid& id, const std::string& seed,
                                        uint32_t challenges, const core::RequestContext& ctx = {});
  // What each wallet made this node do (STATE_DIR/usage.db); writes are counted by the writer
  // Store, downloads by their route once sent, proofs by Prove and Audit.
  economy::UsageCounter& usage() { return *usage_; }
  // The node's market: economic.toml, the price oracle (its epochs run on a thread of the
  // node), quotes and the usage views (economy/market.h).
  economy::Market& market() { return *market_; }
  // The policy the node runs (economic.toml, validated at start).
  const economy::EconomicPolicy& policy() const { return *policy_; }
  // This node's seat in the ledger's committee (ROLES has authority); null otherwise.
  ledger::Authority* authority() { return authority_.get(); }
  // The node's wallet key (WALLET); null when none is configured.
  const crypto::bls::SecretKey* wallet_key() const { return wallet_key_.get(); }
  // Answers the audits of the escrows this wallet provides; null without a wallet or committee.
  const ProviderService* provider() const { return provider_.get(); }
  // Admits reads paid from read escrows this wallet provides (node/read_desk.h); null without
  // a wallet or committee.
  ReadDesk* read_desk() { return read_desk_.get(); }
  const LedgerSyncService* ledger_sync() const { return ledger_sync_.get(); }
  // The mesh membership (a node with a WALLET); null without one.
  MeshService* mesh() const { return mesh_.get(); }
  // The compute listener (ROLES compute and a WALLET); null otherwise.
  ComputeService* compute() const { return compute_.get(); }
  // The certified fraud records this node keeps and spreads (fraud_book.h); null when the
  // policy has no committee.
  FraudBook* fraud() const { return fraud_.get(); }
  // Begins the gossip rounds once the API listens at `bound_url` (ADVERTISE_URL wins).
  void StartMesh(const std::string& bound_url);
  // The shard vector index (GET /v1/shards?near=), fed by the writer as shards are stored.
  const vector::ShardVectors& vectors() const { return *vectors_; }
  std::vector<storage::VolumeInfo> Volumes() { return writer_->Volumes(); }
  uint64_t WritableBytes() const { return writer_->WritableBytes(); }

  // --- Admin.
  core::Result<storage::VolumeInfo> Pause(uint32_t volume, const std::string& reason);
  core::Result<storage::VolumeInfo> Resume(uint32_t volume);
  core::Result<uint64_t> RetireSource(uint32_t volume);

  // Where PUT bodies too large to keep in memory are spooled (STATE_DIR/tmp).
  std::string SpoolDir() const;

 private:
  explicit Node(const NodeOptions& opt) : opt_(opt) {}
  core::Result<storage::VolumeInfo> VolumeAfter(uint32_t volume, const core::Status& s);
  // Unlocks WALLET (WALLET_PASSPHRASE_FILE, else DFRP_PASSPHRASE).
  core::Status OpenWallet();
  // Takes this node's seat in the committee (ROLES has authority): its wallet's.
  core::Status OpenAuthority();
  // The mesh membership: the node key, its delegation by the wallet, the peer table.
  core::Status OpenMesh();
  // The compute listener: the catalog, dfrp-jobrun, the job folders.
  core::Status OpenCompute();
  // The wallet's identity vector, or one derived from its key when it has none of VECTOR_DIM.
  std::vector<float> IdentityVector() const;

  NodeOptions opt_;
  std::atomic<bool> stopping_{false};
  std::string token_;
  std::vector<std::string> notices_;
  int64_t started_ms_ = 0;
  Metrics metrics_;

  // Before writer_: its Store points at them (observers_ tells usage_ and the vector index).
  std::unique_ptr<economy::UsageCounter> usage_;
  std::unique_ptr<vector::ShardVectors> vectors_;
  std::unique_ptr<vector::ShardVectorsObserver> vectors_observer_;
  storage::ObserverList observers_;
  int64_t vectors_saved_ms_ = 0;  // used by the market thread only
  void MaybeSaveVectors(bool now);
  std::unique_ptr<StoreWriter> writer_;
  std::unique_ptr<ReaderCache> readers_;
  std::unique_ptr<WriteQueue> writes_;
  std::unique_ptr<Operations> ops_;
  std::unique_ptr<ScrubService> scrub_;
  std::unique_ptr<economy::Market> market_;
  std::unique_ptr<economy::EconomicPolicy> policy_;
  std::unique_ptr<CollateralStaker> staker_;  // a compute node's stakes; outlives compute_
  std::unique_ptr<crypto::bls::SecretKey> wallet_key_;  // before authority_, which uses it
  std::unique_ptr<ledger::Authority> authority_;
  std::unique_ptr<ReadDesk> read_desk_;  // before provider_, which uses it
  std::unique_ptr<ProviderService> provider_;
  std::unique_ptr<LedgerSyncService> ledger_sync_;
  std::unique_ptr<FraudBook> fraud_;  // before mesh_, whose peer list counts its records
  std::unique_ptr<MeshService> mesh_;
  std::unique_ptr<ComputeService> compute_;
  // The API's bound URL (StartMesh sets it), where a compute job's inputs are read from this
  // node's own store.
  core::Mutex self_url_mu_;
  std::string self_url_ GUARDED_BY(self_url_mu_);
  std::vector<float> wallet_vector_;  // the keystore's identity vector
  // Ends the market's epochs: wakes every market_tick_ms until the node stops.
  void MarketLoop() EXCLUDES(market_mu_);
  core::Mutex market_mu_;
  core::CondVar market_cv_;
  bool market_stop_ GUARDED_BY(market_mu_) = false;
  std::thread market_thread_;

  core::Mutex verify_mu_;  // guards verify_store_ and the calls made on it
  std::unique_ptr<storage::Store> verify_store_ GUARDED_BY(verify_mu_);
  uint64_t verify_generation_ GUARDED_BY(verify_mu_) = 0;
};

}  // namespace dfrp::node
