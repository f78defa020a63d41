// A node's signed record and the table of the records a node knows (docs/PROTOCOL.md, "Mesh:
// node records and membership").
//
// A record says where a node is (its URL), what it does (roles), where it stands in the vector
// space, what it measured it can do and what it asks (its price vector), under which policy
// version, with a sequence number and an expiry. Its node key signs it, and its wallet's
// delegation is inside, so anyone can check it and pass it on unchanged. A record is replaced
// only by one with a higher seq from the same wallet; its origin numbers them
// seq = max(stored + 1, now in Unix ms), so a reinstalled node is not shadowed by its old
// records. Its expiry is capped by whoever keeps it, so a silent node fades out of every view.
//
// Thread-safety: the functions are pure; PeerTable may be used from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "dfrp/core/status.h"
#include "dfrp/core/thread_annotations.h"
#include "dfrp/mesh/envelope.h"
#include "dfrp/mesh/trust.h"

namespace dfrp::mesh {

inline constexpr std::string_view kNodeRecordTag = "DFRP-NODE-RECORD-V3";
inline constexpr size_t kMaxRecordBytes = 8 * 1024;
inline constexpr size_t kMaxUrlBytes = 200;
inline constexpr uint32_t kMaxRecordDim = 1024;
inline constexpr size_t kMaxRecordPrices = 16;

// Role bits.
inline constexpr uint8_t kRoleStorage = 1, kRoleAuthority = 2, kRoleCompute = 4;
// Not a role: the node is leaving the mesh (dfrp-mesh leave) and takes no new contracts; its
// payers' `dfrp-mesh repair` moves their copies elsewhere.
inline constexpr uint8_t kRoleLeaving = 8;

struct RecordCapacity {
  double sha256_per_sec = 0;  // all cores
  double gpu_tflops = 0;      // 0: none measured
  double read_mb_per_sec = 0;
  double write_mb_per_sec = 0;
  double read_iops = 0;
  // Room for new shards: the free bytes of the volumes that take writes (active, not paused,
  // full or missing), rounded down to a step of the quota (node.cc), and the quotas' sum.
  uint64_t storage_free_bytes = 0;
  uint64_t storage_quota_bytes = 0;

  bool operator==(const RecordCapacity&) const = default;
};

struct NodeRecord {
  Delegation sender;
  uint64_t seq = 0;
  uint64_t expiry_unix_ms = 0;
  std::string url;  // http://host:port, where its node answers
  uint8_t roles = 0;
  uint32_t policy_version = 0;
  std::vector<float> vector;     // VECTOR_DIM components, finite
  std::vector<uint64_t> prices;  // economy's price vector (10^-6 base units per unit)
  RecordCapacity capacity;       // finite, not negative
  // Whom it vouches for (mesh/trust.h): at most kMaxOpinion distinct peers, not itself, each
  // weight > 0.
  std::vector<OpinionEntry> opinion;
  ledger::SigBytes signature{};  // the node key's
};

// SignedPrefix(kNodeRecordTag, network_id, 0) ‖ wallet key (48) ‖ body, where body is
//   u64 seq ‖ u64 expiry ‖ u8 url length ‖ url ‖ u8 roles ‖ u32 policy version ‖ u16 dim ‖
//   dim × f32 (IEEE-754 bits) ‖ u8 n ‖ n × u64 price ‖ 5 × f64 capacity (IEEE-754 bits) ‖
//   u64 storage free ‖ u64 storage quota ‖ u8 m ‖ m × (wallet key (48) ‖ u16 weight)
std::string RecordSigningBytes(const NodeRecord& r, const crypto::Hash& network_id);
// Fills in the signature; InvalidArgument for a record that would not decode (a long URL,
// a non-finite number, too many dimensions or prices) or a key that is not the delegation's.
core::Status SignRecord(NodeRecord* r, const crypto::bls::SecretKey& node_key,
                        const crypto::Hash& network_id);
// delegation (200) ‖ body ‖ signature (96).
std::string EncodeRecord(const NodeRecord& r);
// Bounds and layout only: InvalidArgument naming the field.
core::Result<NodeRecord> DecodeRecord(std::string_view wire);
// The delegation (VerifyDelegation) and the node key's signature; Corruption when either
// does not verify, InvalidArgument for an expired delegation.
core::Status VerifyRecord(const NodeRecord& r, const crypto::Hash& network_id, int64_t now_ms);
// The node key's signature alone (the delegation checked elsewhere): Corruption when it does
// not verify.
core::Status VerifyRecordSignature(const NodeRecord& r, const crypto::Hash& network_id);

// How a node it knows looks to this node.
enum class PeerState : uint8_t {
  kUnverified,  // known from gossip only: its URL has not yet answered under its key
  kAlive,       // it answered under its key recently
  kSuspect,     // the last exchange with it failed
  kDead,        // no answer for longer than the suspect timeout
};
const char* PeerStateName(PeerState s);

struct Peer {
  NodeRecord record;
  std::string wire;  // the record as signed, passed on unchanged
  PeerState state = PeerState::kUnverified;
  int64_t last_answer_ms = 0;   // its last answer under its key (0: never)
  int64_t last_attempt_ms = 0;  // this node's last exchange attempt with it
  uint32_t failures = 0;        // exchanges failed in a row
  uint64_t answers_total = 0;   // exchanges it answered under its key, ever
  uint64_t failures_total = 0;  // exchanges with it that failed, ever
  double rtt_ms = -1;           // its answers' round trip, smoothed (1/8 per answer); < 0: none
  // First-hand uptime, (answers + 1) / (answers + failures + 2): what this node saw itself.
  double Uptime() const {
    return static_cast<double>(answers_total + 1) /
           static_cast<double>(answers_total + failures_total + 2);
  }
};

struct PeerTableOptions {
  int64_t record_ttl_ms = 3600 * 1000;  // a record kept expires at most this far ahead
  int64_t skew_ms = 30 * 1000;
  int64_t suspect_timeout_ms = 5000;  // suspect this long without an answer: dead
  size_t capacity = 10'000;           // records kept (the soonest to expire go first)
  // Wallets whose records are never evicted to make room (the pre-trusted: a flood of records
  // must not push the committee's opinions out of view).
  std::vector<ledger::KeyBytes> keep;
};

enum class OfferOutcome : uint8_t {
  kNew,    // a node not known before
  kNewer,  // a higher seq of a known node
  kStale,  // the same or a lower seq than the one kept (not verified again)
  kOwn,    // a record of this node's own wallet (never taken from others)
};

class PeerTable {
 public:
  // `self`: this node's wallet key (its own records are not kept here).
  PeerTable(const crypto::Hash& network_id, const ledger::KeyBytes& self, PeerTableOptions opt);

  // Verifies a record (only when it is newer than the one kept) and keeps it. InvalidArgument
  // for a bad layout, an expired record, one that expires further ahead than the TTL allows
  // or whose seq is ahead of the clock (seq is Unix ms); Corruption for a signature that does
  // not verify. When the table is full, an unverified or dead record closest to its expiry
  // makes room (kStale if that is the one offered).
  core::Result<OfferOutcome> Offer(std::string_view wire, int64_t now_ms) EXCLUDES(mu_);

  // An exchange with the node of `wallet` answered under its key (`rtt_ms` after it was sent;
  // < 0: not measured), or failed.
  void Answered(const ledger::KeyBytes& wallet, int64_t now_ms, double rtt_ms = -1) EXCLUDES(mu_);
  void Failed(const ledger::KeyBytes& wallet, int64_t now_ms) EXCLUDES(mu_);
  void Attempted(const ledger::KeyBytes& wallet, int64_t now_ms) EXCLUDES(mu_);
  // Another peer relayed a fresh answer of the node of `wallet`, signed under its key (SWIM's
  // indirect probe): a suspect or dead peer is alive again, its last answer now. Its
  // first-hand counts (uptime) do not change.
  void AnsweredIndirectly(const ledger::KeyBytes& wallet, int64_t now_ms) EXCLUDES(mu_);
  // Drops expired records; turns suspects dead after the timeout. Returns how many dropped.
  size_t Tick(int64_t now_ms) EXCLUDES(mu_);

  std::vector<Peer> Snapshot() const EXCLUDES(mu_);
  std::optional<Peer> Get(const ledger::KeyBytes& wallet) const EXCLUDES(mu_);
  // Records to pass on: those of alive peers (heard first-hand), the most recently changed
  // first, up to `max_bytes` of wire in all.
  std::vector<std::string> Wires(size_t max_bytes) const EXCLUDES(mu_);
  size_t size() const EXCLUDES(mu_);

 private:
  const crypto::Hash network_id_;
  const ledger::KeyBytes self_;
  const PeerTableOptions opt_;
  mutable core::Mutex mu_;
  std::map<ledger::KeyBytes, Peer> peers_ GUARDED_BY(mu_);        // by wallet key
  std::map<ledger::KeyBytes, uint64_t> changed_ GUARDED_BY(mu_);  // wallet → change number
  uint64_t changes_ GUARDED_BY(mu_) = 0;
  // Delegations verified: their hash → their expiry.
  std::unordered_map<std::string, int64_t> delegations_ GUARDED_BY(mu_);
};

// An exchange's body (envelope kind kExchangeKind): u16 n ‖ n × (u32 length ‖ record).
inline constexpr std::string_view kExchangeKind = "DFRP-MESH-EXCHANGE-V1";
// An indirect probe's body (envelope kind kProbeKind): the wallet key (48 bytes) of the peer
// the receiver is asked to reach.
inline constexpr std::string_view kProbeKind = "DFRP-MESH-PROBE-V1";
std::string EncodeRecordList(const std::vector<std::string>& wires);
core::Result<std::vector<std::string_view>> DecodeRecordList(std::string_view body);

}  // namespace dfrp::mesh
