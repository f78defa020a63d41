// The mesh's signed envelope and the node key's delegation (docs/PROTOCOL.md, "Mesh: keys
// and envelopes").
//
// The wallet key holds money and stays cold; a hot node key signs what a node says to the
// mesh. A Delegation is the wallet's signature on (wallet, node key, expiry): it lets the node
// key speak for the wallet's address until then, and lets the operator rotate the node key
// without changing the paid address.
//
// Every mesh message travels in an Envelope: the sender's delegation, the kind of message (its
// domain tag, such as "DFRP-NODE-RECORD-V2"), a message id, an expiry, the body, and the node
// key's signature over all of them and the wallet it speaks for (so nobody can pair another
// node's signed messages with a delegation of their own). Gossip reorders and repeats, so a
// replay is stopped by a seen-cache of (node key, id) kept until the message expires, not by
// sequence numbers (EnvelopeGate).
//
// Thread-safety: the functions are pure; EnvelopeGate may be used from any thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>

#include "dfrp/core/clock.h"
#include "dfrp/core/status.h"
#include "dfrp/core/thread_annotations.h"
#include "dfrp/crypto/bls.h"
#include "dfrp/crypto/sha256.h"
#include "dfrp/ledger/messages.h"

namespace dfrp::mesh {

inline constexpr std::string_view kDelegationTag = "DFRP-NODE-KEY-V1";
inline constexpr std::string_view kEnvelopeTag = "DFRP-ENVELOPE-V1";
// A delegation lasts at most this long from when it is checked.
inline constexpr int64_t kMaxDelegationMs = 400LL * 24 * 3600 * 1000;
// An envelope on the wire, everything included; its kind, 1 to 32 printable ASCII bytes.
inline constexpr size_t kMaxEnvelopeBytes = 64 * 1024;
inline constexpr size_t kMaxKindBytes = 32;
inline constexpr size_t kDelegationBytes = 48 + 48 + 8 + 96;

using MessageId = std::array<uint8_t, 16>;

// A wire time (u64 Unix ms) as a signed one, clamped at INT64_MAX (a time past it is "never").
inline int64_t WireMs(uint64_t unix_ms) {
  return static_cast<int64_t>(unix_ms > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : unix_ms);
}

struct Delegation {
  ledger::KeyBytes wallet{};  // the paid identity (its address is the wallet's)
  ledger::KeyBytes node{};    // the hot key that signs for it
  uint64_t expiry_unix_ms = 0;
  ledger::SigBytes signature{};  // the wallet's, over DelegationSigningBytes
};

// SignedPrefix(kDelegationTag, network_id, 0) ‖ wallet (48) ‖ node key (48) ‖ u64 expiry (ms).
std::string DelegationSigningBytes(const Delegation& d, const crypto::Hash& network_id);
Delegation SignDelegation(const crypto::bls::SecretKey& wallet, const crypto::bls::PublicKey& node,
                          uint64_t expiry_unix_ms, const crypto::Hash& network_id);
// wallet (48) ‖ node key (48) ‖ u64 expiry ‖ signature (96): kDelegationBytes.
std::string EncodeDelegation(const Delegation& d);
core::Result<Delegation> DecodeDelegation(std::string_view wire);
// Corruption: the wallet's signature does not verify; InvalidArgument: expired at `now_ms`,
// or lasting more than kMaxDelegationMs past it, or a node key that is the wallet's own.
core::Status VerifyDelegation(const Delegation& d, const crypto::Hash& network_id, int64_t now_ms);

struct Envelope {
  Delegation sender;
  std::string kind;  // the body's domain tag
  MessageId id{};
  uint64_t expiry_unix_ms = 0;
  std::string body;
  ledger::SigBytes signature{};  // the node key's
};

// SignedPrefix(kEnvelopeTag, network_id, 0) ‖ wallet (48) ‖ u8 kind length ‖ kind ‖ id (16) ‖
// u64 expiry (ms) ‖ u32 body length ‖ body.
std::string EnvelopeSigningBytes(const Envelope& e, const crypto::Hash& network_id);
// A new random id.
MessageId NewMessageId();
// InvalidArgument for a kind that is not 1 to 32 printable ASCII bytes or an envelope over
// kMaxEnvelopeBytes.
core::Result<Envelope> SignEnvelope(const Delegation& sender,
                                    const crypto::bls::SecretKey& node_key, std::string kind,
                                    std::string body, uint64_t expiry_unix_ms,
                                    const crypto::Hash& network_id,
                                    const MessageId& id = NewMessageId());
// delegation (200) ‖ u8 kind length ‖ kind ‖ id (16) ‖ u64 expiry ‖ u32 body length ‖ body ‖
// signature (96).
std::string EncodeEnvelope(const Envelope& e);
// Bounds and layout only (no signature is checked): InvalidArgument naming the field.
core::Result<Envelope> DecodeEnvelope(std::string_view wire);

// Why an envelope was dropped (EnvelopeGate counts each).
enum class Drop : uint8_t {
  kOversized,  // over the size bound
  kMalformed,  // not an envelope (truncated, bad lengths, not a point)
  kForged,     // a signature (the delegation's or the envelope's) does not verify
  kExpired,    // the envelope or its delegation expired
  kClock,      // an expiry further ahead than the TTL allows (the sender's clock, or a lie)
  kReplayed,   // seen before (same node key and id)
};
inline constexpr size_t kDropKinds = 6;
const char* DropName(Drop d);

struct GateOptions {
  int64_t max_ttl_ms = 10 * 60 * 1000;  // an envelope may expire at most this far ahead
  int64_t skew_ms = 30 * 1000;          // the clock difference tolerated between nodes
  size_t seen_capacity = 200'000;       // (node key, id) pairs remembered
  size_t max_bytes = kMaxEnvelopeBytes;
};

// Admits each valid envelope once. Its checks, cheapest first: the size; the layout; the
// expiry (not past, allowing the skew; not more than the TTL ahead); the seen-cache; the
// delegation (verified delegations are remembered); the envelope's signature. Only then is
// (node key, id) remembered, until the envelope's expiry plus the skew (after which it is
// refused as expired anyway). When the cache is full, the oldest entry goes first: a replay is
// possible only after `seen_capacity` newer envelopes were admitted, and then only until the
// evicted one expires.
class EnvelopeGate {
 public:
  EnvelopeGate(const crypto::Hash& network_id, core::Clock* clock, GateOptions opt = {});

  // The envelope when new and valid; otherwise why not (InvalidArgument for size, layout,
  // expiry and replays, Corruption for a signature), the reason counted and set in `why`.
  core::Result<Envelope> Admit(std::string_view wire, Drop* why = nullptr) EXCLUDES(mu_);

  uint64_t admitted() const EXCLUDES(mu_);
  uint64_t dropped(Drop d) const EXCLUDES(mu_);
  size_t remembered() const EXCLUDES(mu_);

 private:
  core::Result<Envelope> Check(std::string_view wire, Drop* why) EXCLUDES(mu_);
  // Forgets the oldest entries while they expired or the cache is over its capacity.
  void ForgetLocked(int64_t now_ms) REQUIRES(mu_);

  const crypto::Hash network_id_;
  core::Clock* const clock_;
  const GateOptions opt_;
  mutable core::Mutex mu_;
  // (node key ‖ id) → when it may be forgotten; and the same in the order admitted.
  std::unordered_map<std::string, int64_t> seen_ GUARDED_BY(mu_);
  std::deque<std::pair<int64_t, std::string>> order_ GUARDED_BY(mu_);
  // Delegations verified: their hash → their expiry.
  std::unordered_map<std::string, int64_t> delegations_ GUARDED_BY(mu_);
  uint64_t admitted_ GUARDED_BY(mu_) = 0;
  std::array<uint64_t, kDropKinds> dropped_ GUARDED_BY(mu_){};
};

}  // namespace dfrp::mesh
