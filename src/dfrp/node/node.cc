#include "dfrp/node/node.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <map>
#include <memory>

#include "dfrp/core/file_system.h"
#include "dfrp/node/input_fetch.h"
#include "dfrp/wallet/address.h"
#include "dfrp/wallet/keystore.h"
#include "dfrp/wallet/passphrase.h"
#include "dfrp/wallet/wallet.h"

namespace dfrp::node {

using core::Err;
using core::Result;
using core::Status;
using storage::Store;

namespace {

// Kept apart from the store's own proof limits: an audit answer the API builds in memory.
constexpr uint64_t kMaxAuditAnswerBytes = 64ull << 20;

// While an authority is busy, a signature check waits up to this long for others to batch
// with (crypto/group_verifier.h). Measured with bench/ledger_throughput.sh on 2 cores:
// batches grow from 1.3 to about 1.7 signatures and the peak by 10 to 15%; 3 ms gained a
// little more but pushed the p99 at half the peak towards 45 ms (docs/BENCHMARKS.md).
constexpr std::chrono::microseconds kLedgerVerifyGather{2000};

}  // namespace

Node::~Node() { Stop(); }

Result<std::unique_ptr<Node>> Node::Open(const NodeOptions& opt) {
  std::unique_ptr<Node> n(new Node(opt));
  Node* self = n.get();
  // Every Store of the node (the writer, the readers, a migration's checker) ends its long
  // loops once the node is told to stop.
  n->opt_.store.should_stop = [self] { return self->stopping(); };
  const storage::StoreOptions& so = n->opt_.store;
  n->started_ms_ = so.clock->NowUnixMillis();
  std::string token_warning;
  DFRP_ASSIGN_OR_RETURN(n->token_, EnsureApiToken(so.fs, opt.config.state_dir, &token_warning));
  if (!token_warning.empty()) n->notices_.push_back(token_warning);
  DFRP_ASSIGN_OR_RETURN(auto writer, Store::Open(opt.config, Store::Mode::kWrite, so));
  DFRP_ASSIGN_OR_RETURN(
      economy::EconomicPolicy policy,
      economy::LoadEconomicPolicy(so.fs, opt.config.economic_policy, opt.config.config_dir));
  economy::UsageOptions uo{.path = economy::UsagePath(opt.config.state_dir),
                           .epoch_seconds = policy.pricing.epoch_seconds,
                           .clock = so.clock};
  DFRP_ASSIGN_OR_RETURN(n->usage_, economy::UsageCounter::Open(uo));
  // Shards a crash committed before their usage rows were written are counted now, once.
  DFRP_ASSIGN_OR_RETURN(uint64_t recounted, n->usage_->Reconcile(*writer));
  if (recounted > 0)
    n->notices_.push_back(fmt::format(
        "usage: counted {} shards the store committed before a crash as written by local",
        recounted));
  // The shard vector index: loaded, caught up with the store (or rebuilt), then fed by the
  // writer as shards are stored.
  DFRP_ASSIGN_OR_RETURN(n->vectors_,
                        vector::ShardVectors::Open(writer.get(), opt.config.state_dir,
                                                   vector::ShardVectorsOptionsFor(opt.config)));
  const vector::ShardVectorsReport& vr = n->vectors_->report();
  if (vr.built || vr.scanned > 0)
    n->notices_.push_back(
        fmt::format("vector index: {} shard vectors ({}; {} records read)", n->vectors_->size(),
                    vr.built ? "rebuilt: " + vr.why_built : "caught up", vr.scanned));
  for (const auto& notice : vr.notices) n->notices_.push_back("vector index: " + notice);
  n->vectors_observer_ = std::make_unique<vector::ShardVectorsObserver>(n->vectors_.get());
  n->observers_.Add(n->usage_.get());
  n->observers_.Add(n->vectors_observer_.get());
  writer->SetObserver(&n->observers_);
  n->vectors_saved_ms_ = so.clock->NowMonotonicNanos() / 1'000'000;
  n->writer_ = std::make_unique<StoreWriter>(std::move(writer));
  for (auto& notice : n->writer_->notices()) n->notices_.push_back(std::move(notice));
  n->readers_ = std::make_unique<ReaderCache>(opt.config, so, opt.reader_cache_bytes);
  DFRP_RETURN_IF_ERROR(n->readers_->Refresh());
  // PUT bodies a crash left in the spool folder.
  const std::string spool = n->SpoolDir();
  if (auto names = so.fs->ListDir(spool))
    for (const auto& name : *names)
      if (name.starts_with("put-")) (void)so.fs->RemoveFile(core::JoinPath(spool, name));
  n->writes_ = std::make_unique<WriteQueue>(*n->writer_, n->metrics_, so.fs, so.clock);
  n->ops_ = std::make_unique<Operations>(opt.config, so, *n->writer_, *n->readers_, n->metrics_);
  n->scrub_ = std::make_unique<ScrubService>(opt.config, so, *n->readers_, n->metrics_,
                                             opt.scrub_pass_interval_ms);
  economy::MarketOptions mo;
  mo.state_dir = opt.config.state_dir;
  mo.fs = so.fs;
  mo.clock = so.clock;
  mo.usage = n->usage_.get();
  mo.vector_dim = opt.config.vector_dim;
  // The mesh's nearest peers' prices (none until the mesh runs: mesh_ is set before the
  // market's thread starts, and never changes after).
  mo.neighbours =
      [self]() -> std::array<std::vector<economy::NeighbourPrice>, economy::kResourceCount> {
    if (!self->mesh_) return {};
    return self->mesh_->NeighbourPrices(self->policy_->pricing.neighbour_count);
  };
  mo.stored = [self]() {
    uint64_t stored = 0, quota = 0;
    for (const auto& v : self->writer_->Snapshot()) {  // never waits for the writer
      stored += v.payload_bytes;
      quota += v.quota;
    }
    return std::make_pair(stored, quota);
  };
  DFRP_ASSIGN_OR_RETURN(n->market_, economy::Market::Open(policy, mo));
  if (!n->market_->capacity_note().empty())
    n->notices_.push_back("market: " + n->market_->capacity_note());
  n->policy_ = std::make_unique<economy::EconomicPolicy>(policy);
  if (!opt.config.wallet.empty()) DFRP_RETURN_IF_ERROR(n->OpenWallet());
  if (opt.config.HasRole("authority")) {
    DFRP_RETURN_IF_ERROR(n->OpenAuthority());
    if (n->authority_->committee().size() > 1) {
      // Certificates this authority missed (down, cut off) are pulled from its peers' logs.
      DFRP_ASSIGN_OR_RETURN(ledger::LedgerClient client, ledger::LedgerClient::Make(policy));
      n->ledger_sync_ = std::make_unique<LedgerSyncService>(
          self, so.clock, std::move(client), n->authority_->index(), opt.ledger_sync_tick_ms);
    }
  }
  if (!policy.genesis.committee.empty()) {
    // Certified fraud records: kept here, spread to the mesh's alive peers.
    DFRP_ASSIGN_OR_RETURN(ledger::LedgerClient client, ledger::LedgerClient::Make(policy));
    FraudBookOptions fo;
    fo.fs = so.fs;
    fo.clock = so.clock;
    fo.dir = core::JoinPath(opt.config.state_dir, "compute/fraud");
    fo.committee = client.committee();
    fo.network_id = policy.network_id;
    fo.peers = [self] {
      return self->mesh_ ? self->mesh_->AliveUrls() : std::vector<std::string>{};
    };
    DFRP_ASSIGN_OR_RETURN(n->fraud_, FraudBook::Open(std::move(fo)));
    for (const auto& note : n->fraud_->notes()) n->notices_.push_back("compute: " + note);
  }
  if (n->wallet_key_) DFRP_RETURN_IF_ERROR(n->OpenMesh());
  if (n->wallet_key_ && opt.config.HasRole("compute")) DFRP_RETURN_IF_ERROR(n->OpenCompute());
  if (n->wallet_key_ && (opt.config.HasRole("storage") || opt.config.HasRole("compute")) &&
      !policy.genesis.committee.empty()) {
    // This wallet is paid for the escrows it provides: answer each period's audit, release
    // each compute escrow of a job it ran.
    DFRP_ASSIGN_OR_RETURN(ledger::LedgerClient client, ledger::LedgerClient::Make(policy));
    // Reads paid by the read escrows it provides are admitted on their receipts.
    DFRP_ASSIGN_OR_RETURN(
        n->read_desk_,
        ReadDesk::Open(core::JoinPath(opt.config.state_dir, std::string(kReadReceiptsFileName)),
                       client, n->wallet_key_->GetPublicKey().bytes(), n->policy_.get(), so.clock));
    n->provider_ = std::make_unique<ProviderService>(self, so.clock, std::move(client),
                                                     n->wallet_key_->GetPublicKey().bytes(),
                                                     opt.provider_tick_ms, n->read_desk_.get());
  }
  n->writes_->Start();
  n->scrub_->Start();
  if (n->provider_) n->provider_->Start();
  if (n->ledger_sync_) n->ledger_sync_->Start();
  n->market_thread_ = std::thread([self] { self->MarketLoop(); });
  if (n->compute_) n->compute_->Start();
  if (n->fraud_) n->fraud_->Start();
  return n;
}

core::Status Node::OpenWallet() {
  const core::NodeConfig& cfg = opt_.config;
  core::FileSystem* fs = opt_.store.fs;
  DFRP_ASSIGN_OR_RETURN(wallet::Keystore ks, wallet::LoadKeystore(fs, cfg.wallet));
  wallet::PassphraseSource src{.file = cfg.wallet_passphrase_file,
                               .env_name = "DFRP_PASSPHRASE",
                               .getenv = [](const std::string& name) -> std::optional<std::string> {
                                 const char* v = std::getenv(name.c_str());
                                 if (!v) return std::nullopt;
                                 return std::string(v);
                               },
                               .prompt = nullptr};
  DFRP_ASSIGN_OR_RETURN(wallet::SecretString pass,
                        wallet::ReadPassphrase(fs, src, "the node's wallet (WALLET)", false));
  DFRP_ASSIGN_OR_RETURN(crypto::bls::SecretKey key,
                        wallet::UnlockKeystore(ks, pass.view(), cfg.wallet));
  wallet_key_ = std::make_unique<crypto::bls::SecretKey>(std::move(key));
  wallet_vector_ = ks.pub.vector;
  notices_.push_back(
      fmt::format("wallet: {} ({})", wallet::AddressOf(wallet_key_->GetPublicKey()), cfg.wallet));
  return core::Status::OK();
}

std::vector<float> Node::IdentityVector() const {
  const uint32_t dim = opt_.config.vector_dim;
  return wallet_vector_.size() == dim
             ? wallet_vector_
             : wallet::DefaultIdentityVector(wallet_key_->GetPublicKey(), dim);
}

core::Status Node::OpenCompute() {
  const core::NodeConfig& cfg = opt_.config;
  core::FileSystem* fs = opt_.store.fs;
  ComputeServiceOptions co;
  co.fs = fs;
  co.clock = opt_.store.clock;
  co.dir = core::JoinPath(cfg.state_dir, "compute/jobs");
  co.policy = policy_.get();
  co.wallet_key = wallet_key_.get();
  co.vector = IdentityVector();
  co.prices = [this] { return market_->oracle().Current().prices; };
  co.has_gpu = market_->oracle().capacity().figures.gpu_tflops.has_value();
  const std::string libexec = compute::DefaultLibexecDir(*fs);
  DFRP_ASSIGN_OR_RETURN(co.apps, compute::LoadCatalog(*fs, cfg.compute_apps, libexec));
  if (cfg.compute_client_binaries) {
    if (compute::FindApp(co.apps, "client") != nullptr)
      return core::Status::InvalidArgument(
          "COMPUTE_CLIENT_BINARIES = true adds the app 'client', and COMPUTE_APPS names an app "
          "'client' too: rename that one");
    co.apps.push_back(compute::ClientBinaryApp());
  }
  co.exec.jobrun = core::JoinPath(libexec, "dfrp-jobrun");
  co.exec.job_user = cfg.compute_job_user;
  co.exec.hostfile = cfg.compute_hostfile;
  co.exec.rsh_agent = cfg.compute_rsh_agent;
  co.slots = cfg.compute_slots;
  if (fraud_) co.disputed = [this](const crypto::Hash& id) { return fraud_->HasEscrow(id); };
  if (!policy_->genesis.committee.empty()) {
    // Paid jobs: their compute escrows are looked up at the committee.
    DFRP_ASSIGN_OR_RETURN(ledger::LedgerClient client, ledger::LedgerClient::Make(*policy_));
    co.escrow_of = [client](const crypto::Hash& id) mutable { return client.Escrow(id); };
    // Stakes on the jobs it takes, from its own wallet (node/collateral_staker.h).
    staker_ = std::make_unique<CollateralStaker>(fs, cfg.wallet, wallet_key_.get(), policy_.get(),
                                                 client);
    co.stake = [this](const crypto::Hash& id, uint64_t amount) {
      return staker_->Stake(id, amount);
    };
    co.balance = [this] { return staker_->Balance(); };
  }
  // Inputs: this node's own store first (when it is a storage node), then the nodes the client
  // named, then the mesh's live storage peers; each source's bytes are verified (input_fetch.h).
  co.fetch_input = [this, fs, storage = cfg.HasRole("storage")](
                       const compute::JobInput& in, const std::vector<std::string>& hints,
                       const std::string& path, std::string* from) {
    std::vector<std::string> sources;
    if (storage) {
      core::MutexLock lock(&self_url_mu_);
      if (!self_url_.empty()) sources.push_back(self_url_);
    }
    sources.insert(sources.end(), hints.begin(), hints.end());
    if (mesh_) {
      const std::vector<std::string> peers = mesh_->AliveStorageUrls();
      sources.insert(sources.end(), peers.begin(), peers.end());
    }
    return FetchInput(fs, in, sources, path, from);
  };
  const size_t apps = co.apps.size();
  const uint32_t slots = co.slots;
  DFRP_ASSIGN_OR_RETURN(compute_, ComputeService::Open(std::move(co)));
  notices_.push_back(fmt::format("compute: {} slots, {} apps, jobs run as {} when dfrpd is root",
                                 slots, apps, cfg.compute_job_user));
  return core::Status::OK();
}

core::Status Node::OpenMesh() {
  const core::NodeConfig& cfg = opt_.config;
  for (const auto& u : cfg.peers)
    DFRP_RETURN_IF_ERROR(SplitPeerUrl(u).status().WithContext("PEERS"));
  if (!cfg.advertise_url.empty())
    DFRP_RETURN_IF_ERROR(SplitPeerUrl(cfg.advertise_url).status().WithContext("ADVERTISE_URL"));
  const economy::GossipPolicy& g = policy_->gossip;
  MeshOptions mo;
  mo.policy = policy_.get();
  mo.network_id = policy_->network_id;
  mo.policy_version = policy_->version;
  mo.bootstrap = cfg.peers;
  mo.roles = static_cast<uint8_t>((cfg.HasRole("storage") ? mesh::kRoleStorage : 0) |
                                  (cfg.HasRole("authority") ? mesh::kRoleAuthority : 0) |
                                  (cfg.HasRole("compute") ? mesh::kRoleCompute : 0));
  mo.vector = IdentityVector();
  mo.interval_ms = g.interval_ms;
  mo.record_ttl_ms = static_cast<int64_t>(g.record_ttl_seconds) * 1000;
  mo.suspect_timeout_ms = g.suspect_timeout_ms;
  mo.request_timeout_ms = std::max<int64_t>(g.probe_timeout_ms, 250);
  mo.indirect_probes = g.indirect_probes;
  mo.prices = [this] {
    const auto cur = market_->oracle().Current();
    return std::vector<uint64_t>(cur.prices.begin(), cur.prices.end());
  };
  mo.capacity = [this] {
    const economy::OracleCapacity& c = market_->oracle().capacity();
    mesh::RecordCapacity rc;
    rc.sha256_per_sec = c.figures.cpu_hashes_per_sec_one_core * c.cores;
    rc.gpu_tflops = c.figures.gpu_tflops.value_or(0);
    rc.read_mb_per_sec = c.figures.read_mb_per_sec;
    rc.write_mb_per_sec = c.figures.write_mb_per_sec;
    rc.read_iops = c.figures.read_iops;
    // Room for a new shard: the most any one volume taking writes has free (a shard lives on
    // one volume), rounded down to a power of two no more than a 32nd of it (at least 1 MiB),
    // so that writes re-sign the record only when the room moves by about 3%.
    uint64_t free = 0, quota = 0;
    for (const storage::VolumeInfo& v : Volumes()) {
      quota += v.quota;
      if (v.state == storage::VolumeState::kActive)
        free = std::max(free, std::min(v.free, v.quota));
    }
    const uint64_t step = std::max<uint64_t>(uint64_t{1} << 20, std::bit_floor(free / 32));
    rc.storage_quota_bytes = quota;
    rc.storage_free_bytes = std::min(quota, free / step * step);
    return rc;
  };
  if (fraud_) mo.fraud_records = [this](const ledger::KeyBytes& k) { return fraud_->CountFor(k); };
  // Trust starts from this node, its TRUSTED_PEERS and the committee (mesh/trust.h).
  for (const std::string& a : cfg.trusted_peers) {
    auto key = wallet::PublicKeyFromAddress(a);
    if (!key)
      return key.error().WithContext(
          fmt::format("TRUSTED_PEERS: '{}' is not a wallet address (give dfrp1... addresses, "
                      "comma-separated)",
                      a.substr(0, 64)));
    mo.pretrusted.push_back(key->bytes());
  }
  for (const economy::Authority& a : policy_->genesis.committee)
    if (auto key = crypto::bls::PublicKey::FromHex(a.public_key_hex))
      mo.pretrusted.push_back(key->bytes());
  if (authority_) {
    // Read from the ledger at most every 10 gossip rounds (1 to 30 s: the query scans the
    // settlements under the authority's lock), the pre-trusted payers' pairs first so no flood
    // of others crowds them out.
    struct Cache {
      core::Mutex mu;
      int64_t read_ms GUARDED_BY(mu) = 0;
      std::vector<mesh::PayerOutcome> outcomes GUARDED_BY(mu);
      std::map<ledger::KeyBytes, size_t> equivocators GUARDED_BY(mu);
    };
    auto cache = std::make_shared<Cache>();
    const int64_t every_ms = std::clamp<int64_t>(10 * int64_t{g.interval_ms}, 1000, 30'000);
    mo.proof_outcomes = [this, cache, every_ms, first = mo.pretrusted] {
      core::MutexLock lock(&cache->mu);
      const int64_t now = opt_.store.clock->NowUnixMillis();
      if (cache->read_ms != 0 && now - cache->read_ms < every_ms) return cache->outcomes;
      auto got = authority_->ProofOutcomes(100'000, first);
      if (!got) return cache->outcomes;  // the last good read
      cache->outcomes.clear();
      for (const auto& o : *got)
        cache->outcomes.push_back({o.payer, o.provider, o.released, o.refunded});
      if (auto eq = authority_->Equivocations()) {
        cache->equivocators.clear();
        for (const ledger::Equivocation& e : *eq) ++cache->equivocators[e.sender];
      }
      cache->read_ms = now;
      return cache->outcomes;
    };
    mo.equivocations = [cache](const ledger::KeyBytes& k) -> size_t {
      core::MutexLock lock(&cache->mu);
      auto it = cache->equivocators.find(k);
      return it == cache->equivocators.end() ? 0 : it->second;
    };
  }
  DFRP_ASSIGN_OR_RETURN(mesh_, MeshService::Open(opt_.store.fs, opt_.store.clock, cfg.state_dir,
                                                 *wallet_key_, std::move(mo)));
  return core::Status::OK();
}

void Node::StartMesh(const std::string& bound_url) {
  {
    core::MutexLock lock(&self_url_mu_);
    self_url_ = bound_url;
  }
  if (!mesh_) return;
  const std::string& url =
      opt_.config.advertise_url.empty() ? bound_url : opt_.config.advertise_url;
  if (url.starts_with("http://0.0.0.0:") || url.starts_with("http://[::]:")) {
    notices_.push_back(fmt::format(
        "mesh: NOT joining: the API listens on every address ({}), so peers cannot be told "
        "where to reach this node: set ADVERTISE_URL (such as http://10.0.0.4:7480)",
        url));
    return;
  }
  mesh_->Start(url);
  notices_.push_back(fmt::format("mesh: node key {}…, reachable at {}, {} bootstrap peers",
                                 mesh_->Json()["node_key"].get<std::string>().substr(0, 16), url,
                                 opt_.config.peers.size()));
}

core::Status Node::OpenAuthority() {
  const core::NodeConfig& cfg = opt_.config;
  if (!wallet_key_)
    return core::Status::InvalidArgument(
        "ROLES names authority, but the config has no WALLET: an authority signs with its "
        "committee member's wallet (set WALLET and WALLET_PASSPHRASE_FILE)");
  const auto& committee = policy_->genesis.committee;
  std::optional<uint32_t> index;
  for (size_t i = 0; i < committee.size(); ++i) {
    auto key = crypto::bls::PublicKey::FromHex(committee[i].public_key_hex);
    if (key && *key == wallet_key_->GetPublicKey()) index = static_cast<uint32_t>(i);
  }
  if (!index)
    return core::Status::InvalidArgument(fmt::format(
        "ROLES names authority, but the wallet {} ({}) is not in genesis.committee of {}: use a "
        "committee member's wallet, or drop authority from ROLES",
        cfg.wallet, wallet::AddressOf(wallet_key_->GetPublicKey()), policy_->source));
  DFRP_ASSIGN_OR_RETURN(authority_,
                        ledger::Authority::Open({.path = ledger::LedgerPath(cfg.state_dir),
                                                 .policy = policy_.get(),
                                                 .index = *index,
                                                 .key = wallet_key_.get(),
                                                 .clock = opt_.store.clock,
                                                 .verify_gather = kLedgerVerifyGather}));
  notices_.push_back(fmt::format("ledger: authority {} of {} (quorum {}), {}", *index,
                                 committee.size(), authority_->committee().quorum(),
                                 ledger::LedgerPath(cfg.state_dir)));
  return core::Status::OK();
}

void Node::BeginStop() {
  stopping_ = true;
  if (provider_) provider_->RequestStop();
  if (ledger_sync_) ledger_sync_->RequestStop();
  if (mesh_) mesh_->RequestStop();
  if (ops_) ops_->CancelAll();
  if (scrub_) scrub_->RequestStop();
}

void Node::Stop() {
  BeginStop();
  if (compute_) compute_->Stop();
  if (provider_) provider_->Stop();
  if (ledger_sync_) ledger_sync_->Stop();
  if (fraud_) fraud_->Stop();
  if (mesh_) mesh_->Stop();
  if (writes_) writes_->Stop();
  if (scrub_) scrub_->Stop();
  if (ops_) ops_->Stop();
  {
    core::MutexLock lock(&market_mu_);
    market_stop_ = true;
  }
  market_cv_.SignalAll();
  if (market_thread_.joinable()) market_thread_.join();
  if (usage_) (void)usage_->Flush();  // the read counts so far; the counter stays open
  MaybeSaveVectors(true);
}

void Node::MaybeSaveVectors(bool now) {
  if (!vectors_) return;
  const uint64_t unsaved = vectors_->unsaved();
  if (unsaved == 0) return;
  const int64_t ms = opt_.store.clock->NowMonotonicNanos() / 1'000'000;
  if (!now && unsaved < opt_.vectors_save_after &&
      ms - vectors_saved_ms_ < opt_.vectors_save_interval_ms)
    return;
  vectors_saved_ms_ = ms;
  core::Status s = vectors_->Save();
  if (!s.ok()) metrics_.vector_save_errors.fetch_add(1);  // a cache: the next open catches up
}

void Node::MarketLoop() {
  // usage.db's totals for /metrics: a scan of all its rows, so read at start and once per
  // ended epoch, not on every tick.
  auto refresh_usage = [this] {
    auto rows = usage_->ByWallet();
    if (!rows) return;
    uint64_t bw = 0, br = 0, proofs = 0;
    for (const auto& row : *rows) {
      bw += row.bytes_written;
      br += row.bytes_read;
      proofs += row.proofs;
    }
    metrics_.usage_bytes_written.store(bw);
    metrics_.usage_bytes_read.store(br);
    metrics_.usage_proofs.store(proofs);
    metrics_.usage_wallets.store(rows->size());
  };
  core::MutexLock lock(&market_mu_);
  bool first = true;
  while (!market_stop_) {
    market_mu_.Unlock();
    // Ends the epochs that passed (at once at start: those that passed while it was down).
    auto ended = market_->Tick();
    if (!ended) metrics_.market_errors.fetch_add(1);
    if (first || (ended && *ended > 0)) refresh_usage();
    first = false;
    MaybeSaveVectors(false);
    market_mu_.Lock();
    if (!market_stop_) market_cv_.WaitForMillis(&market_mu_, opt_.market_tick_ms);
  }
}

std::string Node::SpoolDir() const { return core::JoinPath(opt_.config.state_dir, "tmp"); }

// --- Reads.

Result<OpenedShard> Node::OpenShard(const core::Uuid& id) { return readers_->Open(id); }

storage::VerifyResult Node::Verify(const core::Uuid& id) {
  core::MutexLock lock(&verify_mu_);
  const uint64_t gen = readers_->generation();
  if (!verify_store_ || verify_generation_ != gen) {
    auto fresh = Store::Open(opt_.config, Store::Mode::kRead, opt_.store);
    if (!fresh) {
      storage::VerifyResult r;
      r.id = id;
      r.status = fresh.error();
      return r;
    }
    verify_store_ = std::move(*fresh);
    verify_generation_ = gen;
  }
  storage::VerifyResult r = verify_store_->Verify(id);
  if (!r.ok && r.status.IsCorruption()) metrics_.verification_failures.fetch_add(1);
  return r;
}

Result<storage::ProofSet> Node::Prove(const core::Uuid& id, uint64_t leaf,
                                      const core::RequestContext& ctx) {
  DFRP_ASSIGN_OR_RETURN(OpenedShard s, OpenShard(id));
  const uint64_t leaves[] = {leaf};
  auto p = s.reader->Prove(leaves);
  if (p) usage_->OnProof(ctx, id, 1);
  if (!p && p.error().IsCorruption()) metrics_.verification_failures.fetch_add(1);
  return p;
}

Result<storage::ProofSet> Node::Audit(const core::Uuid& id, const std::string& seed,
                                      uint32_t challenges, const core::RequestContext& ctx) {
  if (seed.empty() || seed.size() > storage::kMaxSeedBytes)
    return Err(Status::InvalidArgument(
        fmt::format("seed must be 1 to {} bytes of hex", storage::kMaxSeedBytes)));
  if (challenges == 0 || challenges > storage::kMaxAuditChallenges)
    return Err(Status::InvalidArgument(fmt::format("challenges={} is not between 1 and {}",
                                                   challenges, storage::kMaxAuditChallenges)));
  DFRP_ASSIGN_OR_RETURN(OpenedShard s, OpenShard(id));
  const storage::ShardReader& reader = *s.reader;
  if (reader.leaves() == 0)
    return Err(Status::InvalidArgument(
        fmt::format("shard {} is empty: it has no leaf to audit", id.ToString())));
  if (uint64_t{challenges} * reader.leaf_size() > kMaxAuditAnswerBytes)
    return Err(Status::InvalidArgument(fmt::format(
        "challenges={} of {}-byte leaves make an answer over {} MiB: ask for at most {}",
        challenges, reader.leaf_size(), kMaxAuditAnswerBytes >> 20,
        kMaxAuditAnswerBytes / reader.leaf_size())));
  const auto indices = storage::ChallengeIndices(seed, id, reader.leaves(), challenges);
  auto p = reader.Prove(indices, seed);
  if (p) usage_->OnProof(ctx, id, indices.size());
  if (!p && p.error().IsCorruption()) metrics_.verification_failures.fetch_add(1);
  return p;
}

// --- Admin.

Result<storage::VolumeInfo> Node::VolumeAfter(uint32_t volume, const Status& s) {
  DFRP_RETURN_IF_ERROR(s);
  for (const auto& v : writer_->Snapshot())
    if (v.index == volume) return v;
  return Err(Status::NotFound(fmt::format("volume {} is not part of this store", volume)));
}

Result<storage::VolumeInfo> Node::Pause(uint32_t volume, const std::string& reason) {
  return VolumeAfter(volume, writer_->Run([&](Store& s) {
    return s.Pause(volume, reason.empty() ? "paused through the API" : reason);
  }));
}

Result<storage::VolumeInfo> Node::Resume(uint32_t volume) {
  DFRP_RETURN_IF_ERROR(ops_->CheckIdle(volume));
  return VolumeAfter(volume, writer_->Run([&](Store& s) { return s.Resume(volume, "").status(); }));
}

Result<uint64_t> Node::RetireSource(uint32_t volume) {
  uint64_t freed = 0;
  DFRP_RETURN_IF_ERROR(writer_->Run([&](Store& s) -> Status {
    DFRP_ASSIGN_OR_RETURN(freed, s.RetireSource(volume));
    return Status::OK();
  }));
  return freed;
}

}  // namespace dfrp::node
