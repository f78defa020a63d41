// economic.toml: the node's economic policy, validated at start.
//
// Two parts. The immutable genesis (network name, currency and decimals, the allocations that
// are the whole supply, the first committee of authorities); its canonical encoding's SHA-256
// is the network id that every signed message carries. And the versioned policy (the owner and
// the margin, pricing, reward weighting, storage contracts, compute, gossip timings), which a
// new version replaces at an epoch boundary. docs/PROTOCOL.md lists every key with its range;
// README "economic.toml" has a commented example; kDefaultEconomicToml is the embedded default.
//
// Found by: the config key ECONOMIC_POLICY (a path, relative to the config file), else
// `economic.toml` beside the config file, else the embedded default.
//
// Every error is InvalidArgument naming the file and the key ("economic.toml: pricing.floor.
// cpu_sec: ..."): unknown keys and tables, wrong types, values out of range, a margin over
// 100%, a floor above its ceiling, amounts with more decimals than the currency has, negative,
// overflowing or non-finite amounts.
//
// Thread-safety: an EconomicPolicy is a plain value; LoadEconomicPolicy is reentrant.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dfrp/core/file_system.h"
#include "dfrp/core/status.h"
#include "dfrp/crypto/sha256.h"
#include "dfrp/economy/money.h"

namespace dfrp::economy {

// The resources a node sells, in the order of a price vector.
enum class Resource : uint8_t {
  kCpuSec = 0,           // one CPU-second of a job
  kGpuSec = 1,           // one GPU-second of a job
  kStorageGibMonth = 2,  // one GiB (2^30 bytes) kept for one month (30 days)
  kWriteGib = 3,         // one GiB written
  kReadGib = 4,          // one GiB read (verified and sent)
  kProof = 5,            // one proof of storage or audit answered
};
inline constexpr size_t kResourceCount = 6;
inline constexpr std::array<Resource, kResourceCount> kResources = {
    Resource::kCpuSec,   Resource::kGpuSec,  Resource::kStorageGibMonth,
    Resource::kWriteGib, Resource::kReadGib, Resource::kProof};
// "cpu_sec", "gpu_sec", "storage_gib_month", "write_gib", "read_gib", "proof".
std::string_view ResourceName(Resource r);
std::optional<Resource> ResourceFromName(std::string_view name);

using PriceVector = std::array<Price, kResourceCount>;

struct Allocation {
  std::string address;  // a dfrp wallet address
  Amount amount = 0;
};

struct Authority {
  std::string address;
  std::string public_key_hex;  // 48 bytes; the address carries the same key
  std::string pop_hex;         // 96-byte proof of possession, verified at load
  std::string url;
};

struct Genesis {
  std::string network = "dfrp-local";
  std::string currency = "DFRP";
  unsigned decimals = 9;
  std::vector<Allocation> allocations;
  std::vector<Authority> committee;
  Amount supply = 0;  // the sum of the allocations; never changes
};

struct PricingPolicy {
  uint32_t epoch_seconds = 60;
  uint32_t target_utilization_bps = 5000;  // EIP-1559's target: half
  uint32_t max_change_denominator = 8;     // D: at most 1/D change per epoch
  uint32_t neighbour_weight_bps = 2500;    // w in p <- (1 - w) p + w m
  uint32_t neighbour_count = 8;            // k nearest nodes blended
  PriceVector floor{};
  PriceVector ceiling{};
  // The capacity worth the floor price: a node that measures more starts higher (up to the
  // ceiling), one that measures less starts at the floor.
  double reference_cpu_hashes_per_sec = 0;  // one core, SHA-256 of 64-byte inputs
  double reference_gpu_tflops = 0;
  double reference_read_mb_per_sec = 0;
  double reference_write_mb_per_sec = 0;
  double reference_read_iops = 0;
};

struct RewardPolicy {
  // A funded request's weight is sigmoid(steepness * (offered / asked - midpoint)) times its
  // vector similarity, divided by 1 + (the wallet's recent request rate / rate_free) (see
  // economy/fee_match.h).
  double sigmoid_midpoint = 1.0;
  double sigmoid_steepness = 8.0;
  double rate_free_per_minute = 60;      // a wallet's requests per minute before its weight falls
  uint32_t rate_half_life_seconds = 60;  // how fast a wallet's recent rate forgets
  uint32_t unfunded_per_minute = 6;      // requests per minute per source without funding
};

struct StoragePolicy {
  uint32_t period_seconds = 3600;
  uint32_t challenges_per_period = 4;
  uint32_t answer_window_seconds = 300;
  uint32_t replication = 3;
  // A period not released by its window's close is refundable grace_seconds later; the grace
  // must exceed twice max_skew_ms (the clock difference authorities tolerate) plus delivery.
  uint32_t grace_seconds = 120;
  uint32_t max_skew_ms = 5000;        // also the guard: releases are voted until close - max_skew
  uint32_t beacon_slot_seconds = 60;  // one challenge-beacon seed per slot
};

struct ComputePolicy {
  double vector_threshold = 0.8;  // cosine similarity a job's vector must reach
  // How often a client checks a provider's jobs (compute/check_rate.h): every job until
  // `trusted_after` valid checks, then a rate halving every `check_half_life` valid checks,
  // never under `spot_check_bps` (basis points; never zero).
  uint32_t spot_check_bps = 500;
  uint32_t trusted_after = 10;
  uint32_t check_half_life = 10;
};

struct GossipPolicy {
  uint32_t interval_ms = 1000;
  uint32_t probe_interval_ms = 1000;
  uint32_t probe_timeout_ms = 500;
  uint32_t suspect_timeout_ms = 5000;
  uint32_t record_ttl_seconds = 3600;
  uint32_t indirect_probes = 3;  // peers asked to reach one that stopped answering (SWIM)
};

// Trust vectors (mesh/trust.h; docs/PROTOCOL.md, "Mesh: trust").
struct TrustPolicy {
  uint32_t pretrust_weight_bps = 1500;  // a: the share of trust sent back to the pre-trusted
  uint32_t min_trust_bps = 0;           // offers refuse a peer whose trust is under this
  // Offers rank by (1 + similarity) / 2 x (1 - w + w x trust): w in basis points.
  uint32_t routing_weight_bps = 2000;
};

struct EconomicPolicy {
  Genesis genesis;
  uint32_t version = 1;     // the policy's version (not the genesis')
  std::string owner;        // receives the margin; empty only when margin_bps is 0
  uint32_t margin_bps = 0;  // of every payout, in basis points (10000 = 100%)
  Amount order_fee = 0;     // fixed fee of a ledger order, to the committee
  PricingPolicy pricing;
  RewardPolicy reward;
  StoragePolicy storage;
  ComputePolicy compute;
  GossipPolicy gossip;
  TrustPolicy trust;

  std::string source;         // the file, or "embedded default"
  crypto::Hash network_id{};  // SHA-256 of EncodeGenesis(genesis)

  // Amounts as text in this currency ("0.0042").
  std::string FormatAmount(Amount a) const { return FormatFixed(a, genesis.decimals); }
  // A ledger balance, which may be negative at a lagging authority ("-1.5").
  std::string FormatSignedAmount(int64_t v) const {
    return (v < 0 ? "-" : "") +
           FormatAmount(v < 0 ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v));
  }
  std::string FormatPrice(Price p) const {
    return FormatFixed(p, genesis.decimals + kPriceExtraDecimals);
  }
  core::Result<Amount> ParseAmount(std::string_view text, std::string_view what) const {
    return ParseFixed(text, genesis.decimals, what);
  }
  core::Result<Price> ParsePrice(std::string_view text, std::string_view what) const {
    return ParseFixed(text, genesis.decimals + kPriceExtraDecimals, what);
  }
};

// The embedded default (README "economic.toml" prints it, commented).
extern const std::string_view kDefaultEconomicToml;

// Parses and validates one economic.toml document; `name` prefixes errors.
core::Result<EconomicPolicy> ParseEconomicPolicy(std::string_view text, std::string_view name);

// Finds and loads the policy: `configured` (ECONOMIC_POLICY, already an absolute path) if
// set, else `economic.toml` in `config_dir` if it exists, else the embedded default. A
// configured path that does not exist is an error (NotFound).
core::Result<EconomicPolicy> LoadEconomicPolicy(core::FileSystem* fs, const std::string& configured,
                                                const std::string& config_dir);

// The canonical bytes of a genesis (docs/PROTOCOL.md, "Genesis"): the network id is their
// SHA-256.
std::string EncodeGenesis(const Genesis& g);

// The effective policy as TOML, every key with its value (`dfrp-market policy`).
std::string RenderEconomicToml(const EconomicPolicy& p);

}  // namespace dfrp::economy
