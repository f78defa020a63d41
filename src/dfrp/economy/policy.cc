#include "dfrp/economy/policy.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <cmath>
#include <set>

#include "dfrp/core/bytes.h"
#include "dfrp/crypto/bls.h"
#include "dfrp/wallet/address.h"

namespace dfrp::economy {

using core::Err;
using core::Result;
using core::Status;

const std::string_view kDefaultEconomicToml =
    R"(# dfrp economic policy (the embedded default; `dfrp-market policy` prints the effective one).
# Amounts are decimal strings (or numbers) in the currency; they are parsed exactly.

[genesis]                       # immutable: its hash is the network id
network = "dfrp-local"
currency = "DFRP"
decimals = 9                    # 1 DFRP = 10^9 base units
allocations = []                # [{ address = "dfrp1...", amount = "1000" }, ...]: the whole supply
committee = []                  # [{ address, public_key, proof_of_possession, url }, ...]

[policy]
version = 1
owner = ""                      # the wallet that receives the margin (required when margin_bps > 0)
margin_bps = 0                  # the protocol margin of every payout, in basis points (500 = 5%)
order_fee = "0"                 # the fixed fee of a ledger order, to the committee

[pricing]
epoch_seconds = 60              # prices move once per epoch
target_utilization_bps = 5000   # utilisation at which a price holds still
max_change_denominator = 8      # D: a price moves at most 1/D per epoch
neighbour_weight_bps = 2500     # weight of the neighbours' median in the blend
neighbour_count = 8             # neighbours blended (k nearest in vector space)

[pricing.floor]                 # per unit: CPU-second, GPU-second, GiB-month, GiB written, GiB read, proof
cpu_sec = "0.00001"
gpu_sec = "0.0005"
storage_gib_month = "0.004"
write_gib = "0.0001"
read_gib = "0.007"
proof = "0.000001"

[pricing.ceiling]
cpu_sec = "0.001"
gpu_sec = "0.05"
storage_gib_month = "0.4"
write_gib = "0.01"
read_gib = "0.7"
proof = "0.0001"

[pricing.reference]             # the capacity worth the floor price; a faster node starts higher
cpu_hashes_per_sec = 2000000    # one core, SHA-256 of 64-byte inputs
gpu_tflops = 10.0
read_mb_per_sec = 200.0
write_mb_per_sec = 100.0
read_iops = 5000.0

[reward]                        # weight = sigmoid(steepness * (offered/asked - midpoint)) * similarity / (1 + rate/rate_free)
sigmoid_midpoint = 1.0
sigmoid_steepness = 8.0
rate_free_per_minute = 60.0
rate_half_life_seconds = 60
unfunded_per_minute = 6         # requests per minute per source with no funding behind them

[storage]                       # storage contracts
period_seconds = 3600
challenges_per_period = 4
answer_window_seconds = 300
replication = 3
grace_seconds = 120             # a period unreleased at its window's close is refundable this much later
max_skew_ms = 5000              # clock difference tolerated among authorities (grace > 2x this + 1 s)
beacon_slot_seconds = 60        # the challenge beacon gives one seed per slot

[compute]
vector_threshold = 0.8          # cosine similarity a job's vector must reach
spot_check_bps = 500            # jobs of a trusted provider checked, at least (5%; never 0)
trusted_after = 10              # valid checks before a provider is checked less than always
check_half_life = 10            # then the rate halves every this many valid checks

[gossip]
interval_ms = 1000
probe_interval_ms = 1000
probe_timeout_ms = 500
suspect_timeout_ms = 5000
record_ttl_seconds = 3600
indirect_probes = 3

[trust]                         # trust vectors, EigenTrust-style (docs/PROTOCOL.md, "Mesh: trust")
pretrust_weight_bps = 1500      # the share of trust sent back to the pre-trusted nodes each round
min_trust_bps = 0               # offers refuse a peer trusted less (0: none refused for trust)
routing_weight_bps = 2000       # offers rank by (1 + similarity) / 2 x (1 - w + w x trust)
)";

std::string_view ResourceName(Resource r) {
  switch (r) {
    case Resource::kCpuSec:
      return "cpu_sec";
    case Resource::kGpuSec:
      return "gpu_sec";
    case Resource::kStorageGibMonth:
      return "storage_gib_month";
    case Resource::kWriteGib:
      return "write_gib";
    case Resource::kReadGib:
      return "read_gib";
    case Resource::kProof:
      return "proof";
  }
  return "?";
}

std::optional<Resource> ResourceFromName(std::string_view name) {
  for (Resource r : kResources)
    if (ResourceName(r) == name) return r;
  return std::nullopt;
}

namespace {

const char* TypeName(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a number with a fraction";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    default:
      return "a date or time";
  }
}

// The document's lines, to take a number's own text (toml++ hands floats over as doubles).
class Source {
 public:
  explicit Source(std::string_view text) {
    size_t start = 0;
    while (start <= text.size()) {
      size_t nl = text.find('\n', start);
      if (nl == std::string_view::npos) nl = text.size();
      lines_.push_back(text.substr(start, nl - start));
      start = nl + 1;
    }
  }
  // The characters of [begin, end) of a node on one line (columns count code points).
  std::optional<std::string> Text(const toml::source_region& r) const {
    if (r.begin.line == 0 || r.begin.line != r.end.line || r.begin.line > lines_.size())
      return std::nullopt;
    std::string_view line = lines_[r.begin.line - 1];
    auto byte_of = [&](size_t column) {
      size_t cp = 1, i = 0;
      while (i < line.size() && cp < column) {
        ++i;
        while (i < line.size() && (static_cast<unsigned char>(line[i]) & 0xC0) == 0x80) ++i;
        ++cp;
      }
      return i;
    };
    const size_t b = byte_of(r.begin.column), e = byte_of(r.end.column);
    if (e <= b) return std::nullopt;
    std::string s(line.substr(b, e - b));
    std::erase(s, '_');  // TOML's digit separators
    return s;
  }

 private:
  std::vector<std::string_view> lines_;
};

// One table being read: remembers the keys taken so that the rest can be refused by name.
class Scope {
 public:
  Scope(const toml::table* t, std::string path, const std::string& file, const Source& src,
        Status* err)
      : t_(t), path_(std::move(path)), file_(file), src_(src), err_(err) {}

  std::string Key(std::string_view k) const {
    return path_.empty() ? std::string(k) : fmt::format("{}.{}", path_, k);
  }
  void Fail(std::string_view key, std::string_view why) {
    if (err_->ok())
      *err_ = Status::InvalidArgument(fmt::format("{}: {}: {}", file_, Key(key), why));
  }
  const toml::node* Get(std::string_view key) {
    seen_.insert(std::string(key));
    return t_ ? t_->get(key) : nullptr;
  }

  void Uint(std::string_view key, uint64_t min, uint64_t max, uint32_t* out) {
    uint64_t v = *out;
    Uint64(key, min, max, &v);
    *out = static_cast<uint32_t>(v);
  }
  void Uint64(std::string_view key, uint64_t min, uint64_t max, uint64_t* out) {
    const toml::node* n = Get(key);
    if (n == nullptr) return;
    auto v = n->value_exact<int64_t>();
    if (!n->is_integer() || !v)
      return Fail(key, fmt::format("must be a whole number, not {}", TypeName(*n)));
    if (*v < 0 || static_cast<uint64_t>(*v) < min || static_cast<uint64_t>(*v) > max)
      return Fail(key, fmt::format("{} is out of range: give {} to {}", *v, min, max));
    *out = static_cast<uint64_t>(*v);
  }
  void Double(std::string_view key, double min, double max, double* out, bool open_min = false) {
    const toml::node* n = Get(key);
    if (n == nullptr) return;
    double v;
    if (n->is_integer()) {
      v = static_cast<double>(*n->value<int64_t>());
    } else if (n->is_floating_point()) {
      v = *n->value<double>();
    } else {
      return Fail(key, fmt::format("must be a number, not {}", TypeName(*n)));
    }
    if (!std::isfinite(v)) return Fail(key, "must be a finite number (not nan or inf)");
    if (v < min || v > max || (open_min && v == min))
      return Fail(key, fmt::format("{} is out of range: give {} {} to {}", v,
                                   open_min ? "more than" : "", min, max));
    *out = v;
  }
  void String(std::string_view key, std::string* out, size_t max_len = 256) {
    const toml::node* n = Get(key);
    if (n == nullptr) return;
    if (!n->is_string()) return Fail(key, fmt::format("must be a string, not {}", TypeName(*n)));
    const std::string& s = n->as_string()->get();
    if (s.size() > max_len) return Fail(key, fmt::format("is longer than {} characters", max_len));
    *out = s;
  }
  // An exact decimal with `scale` decimals: a string, an integer or a number's own text.
  void Fixed(std::string_view key, unsigned scale, uint64_t* out) {
    const toml::node* n = Get(key);
    if (n == nullptr) return;
    std::string text;
    if (n->is_string()) {
      text = n->as_string()->get();
    } else if (n->is_integer()) {
      const int64_t v = *n->value<int64_t>();
      if (v < 0) return Fail(key, fmt::format("{} is negative: amounts are never below zero", v));
      text = std::to_string(v);
    } else if (n->is_floating_point()) {
      const double d = *n->value<double>();
      if (!std::isfinite(d)) return Fail(key, "must be a finite amount (not nan or inf)");
      auto raw = src_.Text(n->source());
      if (!raw) return Fail(key, "write this amount as a string, such as \"0.25\"");
      text = *raw;
    } else {
      return Fail(
          key, fmt::format("must be an amount (a string such as \"0.25\"), not {}", TypeName(*n)));
    }
    auto v = ParseFixed(text, scale, Key(key));
    if (!v) {
      if (err_->ok())
        *err_ = Status::InvalidArgument(fmt::format("{}: {}", file_, v.error().message()));
      return;
    }
    *out = *v;
  }
  Scope Table(std::string_view key) {
    const toml::node* n = Get(key);
    if (n != nullptr && !n->is_table()) {
      Fail(key, fmt::format("must be a table, not {}", TypeName(*n)));
      return Scope(nullptr, Key(key), file_, src_, err_);
    }
    return Scope(n ? n->as_table() : nullptr, Key(key), file_, src_, err_);
  }
  const toml::array* Array(std::string_view key) {
    const toml::node* n = Get(key);
    if (n == nullptr) return nullptr;
    if (!n->is_array()) {
      Fail(key, fmt::format("must be an array, not {}", TypeName(*n)));
      return nullptr;
    }
    return n->as_array();
  }
  Scope Element(const toml::node& n, size_t i, std::string_view key) {
    const std::string path = fmt::format("{}[{}]", Key(key), i);
    if (!n.is_table()) {
      if (err_->ok())
        *err_ = Status::InvalidArgument(
            fmt::format("{}: {}: must be a table such as {{ address = ... }}", file_, path));
      return Scope(nullptr, path, file_, src_, err_);
    }
    return Scope(n.as_table(), path, file_, src_, err_);
  }
  // Refuses any key of this table that was not asked for.
  void Finish() {
    if (t_ == nullptr) return;
    for (const auto& [k, v] : *t_) {
      if (!seen_.contains(std::string(k.str())))
        Fail(k.str(), "unknown key (docs/PROTOCOL.md, \"economic.toml\", lists the keys)");
    }
  }

 private:
  const toml::table* t_;
  std::string path_;
  const std::string& file_;
  const Source& src_;
  Status* err_;
  std::set<std::string> seen_;
};

void PutU32(std::string* out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out->push_back(static_cast<char>(v >> s));
}
void PutU64(std::string* out, uint64_t v) {
  for (int s = 56; s >= 0; s -= 8) out->push_back(static_cast<char>(v >> s));
}
void PutStr(std::string* out, std::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

Status CheckAddress(std::string_view address, const std::string& file, const std::string& key) {
  auto key_of = wallet::PublicKeyFromAddress(address);
  if (!key_of)
    return Status::InvalidArgument(fmt::format("{}: {}: {:?} is not a dfrp wallet address: {}",
                                               file, key, address.substr(0, 100),
                                               key_of.error().message()));
  return Status::OK();
}

Status Validate(EconomicPolicy& p, const std::string& file) {
  const auto bad = [&](std::string_view key, std::string why) {
    return Status::InvalidArgument(fmt::format("{}: {}: {}", file, key, why));
  };
  Genesis& g = p.genesis;
  if (g.network.empty()) return bad("genesis.network", "must not be empty");
  if (g.currency.empty() || g.currency.size() > 16)
    return bad("genesis.currency", "must be 1 to 16 characters");
  std::set<std::string> seen;
  g.supply = 0;
  for (size_t i = 0; i < g.allocations.size(); ++i) {
    const std::string key = fmt::format("genesis.allocations[{}]", i);
    const Allocation& a = g.allocations[i];
    DFRP_RETURN_IF_ERROR(CheckAddress(a.address, file, key + ".address"));
    if (!seen.insert(a.address).second)
      return bad(key + ".address", "this address has an allocation already: merge the two");
    if (a.amount == 0) return bad(key + ".amount", "must be more than 0");
    if (!AddAmount(g.supply, a.amount, &g.supply))
      return bad(key + ".amount", "the allocations add up past 2^64 - 1 base units");
  }
  seen.clear();
  for (size_t i = 0; i < g.committee.size(); ++i) {
    const std::string key = fmt::format("genesis.committee[{}]", i);
    Authority& a = g.committee[i];
    DFRP_RETURN_IF_ERROR(CheckAddress(a.address, file, key + ".address"));
    if (!seen.insert(a.address).second)
      return bad(key + ".address", "this authority is listed twice");
    auto pk = crypto::bls::PublicKey::FromHex(a.public_key_hex);
    if (!pk) return bad(key + ".public_key", pk.error().message());
    auto from_address = wallet::PublicKeyFromAddress(a.address);
    if (from_address && from_address->ToHex() != pk->ToHex())
      return bad(key + ".public_key", "is not the key that its address carries");
    auto pop = crypto::bls::Signature::FromHex(a.pop_hex);
    if (!pop) return bad(key + ".proof_of_possession", pop.error().message());
    auto proven = crypto::bls::VerifyPossession(*pk, *pop);
    if (!proven)
      return bad(key + ".proof_of_possession",
                 "does not verify for this public key (make it with `dfrp-wallet pop`)");
    if (!a.url.starts_with("http://") && !a.url.starts_with("https://"))
      return bad(key + ".url", "must be an http:// or https:// URL");
  }
  if (p.margin_bps > 0 && p.owner.empty())
    return bad("policy.owner", "a margin needs an owner: give the wallet address that receives it");
  if (!p.owner.empty()) DFRP_RETURN_IF_ERROR(CheckAddress(p.owner, file, "policy.owner"));
  for (Resource r : kResources) {
    const size_t i = static_cast<size_t>(r);
    const std::string name(ResourceName(r));
    if (p.pricing.floor[i] == 0)
      return bad("pricing.floor." + name, "must be more than 0 (a price of 0 could never rise)");
    if (p.pricing.floor[i] > p.pricing.ceiling[i])
      return bad("pricing.floor." + name,
                 fmt::format("{} is above its ceiling {} (pricing.ceiling.{})",
                             p.FormatPrice(p.pricing.floor[i]), p.FormatPrice(p.pricing.ceiling[i]),
                             name));
  }
  if (p.gossip.probe_timeout_ms > p.gossip.probe_interval_ms)
    return bad("gossip.probe_timeout_ms", "must not be longer than gossip.probe_interval_ms");
  p.network_id = crypto::Sha256Of(EncodeGenesis(g));
  return Status::OK();
}

// A TOML basic string's contents.
std::string Quoted(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\u{:04x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

}  // namespace

std::string EncodeGenesis(const Genesis& g) {
  std::string out = "DFRP-GENESIS-V1";
  PutStr(&out, g.network);
  PutStr(&out, g.currency);
  PutU32(&out, g.decimals);
  PutU32(&out, static_cast<uint32_t>(g.allocations.size()));
  for (const Allocation& a : g.allocations) {
    PutStr(&out, a.address);
    PutU64(&out, a.amount);
  }
  PutU32(&out, static_cast<uint32_t>(g.committee.size()));
  for (const Authority& a : g.committee) {
    PutStr(&out, a.address);
    PutStr(&out, core::FromHex(a.public_key_hex).value_or(""));
    PutStr(&out, core::FromHex(a.pop_hex).value_or(""));
    PutStr(&out, a.url);
  }
  return out;
}

Result<EconomicPolicy> ParseEconomicPolicy(std::string_view text, std::string_view name) {
  const std::string file(name);
  toml::table doc;
  try {
    doc = toml::parse(text, name);
  } catch (const toml::parse_error& e) {
    return Err(Status::InvalidArgument(fmt::format("{}:{}:{}: not valid TOML: {}", file,
                                                   e.source().begin.line, e.source().begin.column,
                                                   e.description())));
  }
  const Source src(text);
  Status err;
  EconomicPolicy p;
  p.source = file;
  Scope root(&doc, "", file, src, &err);

  Scope gen = root.Table("genesis");
  gen.String("network", &p.genesis.network, 64);
  gen.String("currency", &p.genesis.currency, 16);
  uint32_t decimals = p.genesis.decimals;
  gen.Uint("decimals", 0, 12, &decimals);
  p.genesis.decimals = decimals;
  if (const toml::array* a = gen.Array("allocations")) {
    for (size_t i = 0; i < a->size() && err.ok(); ++i) {
      Scope e = gen.Element(*a->get(i), i, "allocations");
      Allocation al;
      e.String("address", &al.address, 100);
      e.Fixed("amount", p.genesis.decimals, &al.amount);
      e.Finish();
      p.genesis.allocations.push_back(std::move(al));
    }
  }
  if (const toml::array* a = gen.Array("committee")) {
    for (size_t i = 0; i < a->size() && err.ok(); ++i) {
      Scope e = gen.Element(*a->get(i), i, "committee");
      Authority au;
      e.String("address", &au.address, 100);
      e.String("public_key", &au.public_key_hex, 96);
      e.String("proof_of_possession", &au.pop_hex, 192);
      e.String("url", &au.url, 512);
      e.Finish();
      p.genesis.committee.push_back(std::move(au));
    }
  }
  gen.Finish();

  Scope pol = root.Table("policy");
  pol.Uint("version", 1, UINT32_MAX, &p.version);
  pol.String("owner", &p.owner, 100);
  pol.Uint("margin_bps", 0, 10000, &p.margin_bps);
  pol.Fixed("order_fee", p.genesis.decimals, &p.order_fee);
  pol.Finish();

  // Defaults of the pricing tables come from the embedded default, whatever the decimals.
  const unsigned price_scale = p.genesis.decimals + kPriceExtraDecimals;
  PricingPolicy& pr = p.pricing;
  Scope pri = root.Table("pricing");
  pri.Uint("epoch_seconds", 1, 86400 * 31, &pr.epoch_seconds);
  pri.Uint("target_utilization_bps", 1, 9999, &pr.target_utilization_bps);
  pri.Uint("max_change_denominator", 1, 1000, &pr.max_change_denominator);
  pri.Uint("neighbour_weight_bps", 0, 10000, &pr.neighbour_weight_bps);
  pri.Uint("neighbour_count", 0, 1000, &pr.neighbour_count);
  for (const char* which : {"floor", "ceiling"}) {
    const bool floor = std::string_view(which) == "floor";
    Scope t = pri.Table(which);
    for (Resource r : kResources) {
      Price& price = (floor ? pr.floor : pr.ceiling)[static_cast<size_t>(r)];
      // The embedded default's figures, in this currency's scale.
      static constexpr std::array<std::array<const char*, kResourceCount>, 2> kDefaults = {{
          {"0.00001", "0.0005", "0.004", "0.0001", "0.007", "0.000001"},
          {"0.001", "0.05", "0.4", "0.01", "0.7", "0.0001"},
      }};
      auto d = ParseFixed(kDefaults[floor ? 0 : 1][static_cast<size_t>(r)], price_scale, "default");
      price = d ? *d : 1;
      t.Fixed(ResourceName(r), price_scale, &price);
    }
    t.Finish();
  }
  Scope ref = pri.Table("reference");
  pr.reference_cpu_hashes_per_sec = 2e6;
  pr.reference_gpu_tflops = 10;
  pr.reference_read_mb_per_sec = 200;
  pr.reference_write_mb_per_sec = 100;
  pr.reference_read_iops = 5000;
  ref.Double("cpu_hashes_per_sec", 0, 1e15, &pr.reference_cpu_hashes_per_sec, true);
  ref.Double("gpu_tflops", 0, 1e9, &pr.reference_gpu_tflops, true);
  ref.Double("read_mb_per_sec", 0, 1e9, &pr.reference_read_mb_per_sec, true);
  ref.Double("write_mb_per_sec", 0, 1e9, &pr.reference_write_mb_per_sec, true);
  ref.Double("read_iops", 0, 1e12, &pr.reference_read_iops, true);
  ref.Finish();
  pri.Finish();

  Scope rw = root.Table("reward");
  rw.Double("sigmoid_midpoint", 0, 100, &p.reward.sigmoid_midpoint, true);
  rw.Double("sigmoid_steepness", 0, 1000, &p.reward.sigmoid_steepness, true);
  rw.Double("rate_free_per_minute", 0, 1e9, &p.reward.rate_free_per_minute, true);
  rw.Uint("rate_half_life_seconds", 1, 86400, &p.reward.rate_half_life_seconds);
  rw.Uint("unfunded_per_minute", 0, 1000000, &p.reward.unfunded_per_minute);
  rw.Finish();

  Scope st = root.Table("storage");
  st.Uint("period_seconds", 2, 86400 * 366, &p.storage.period_seconds);
  st.Uint("challenges_per_period", 1, 1000, &p.storage.challenges_per_period);
  st.Uint("answer_window_seconds", 1, 86400, &p.storage.answer_window_seconds);
  st.Uint("replication", 1, 64, &p.storage.replication);
  st.Uint("grace_seconds", 1, 86400 * 7, &p.storage.grace_seconds);
  st.Uint("max_skew_ms", 0, 600000, &p.storage.max_skew_ms);
  st.Uint("beacon_slot_seconds", 1, 86400, &p.storage.beacon_slot_seconds);
  st.Finish();
  if (err.ok() &&
      uint64_t{p.storage.grace_seconds} * 1000 < 2 * uint64_t{p.storage.max_skew_ms} + 1000)
    err = Status::InvalidArgument(fmt::format(
        "{}: storage.grace_seconds: {} s is not more than twice storage.max_skew_ms ({} ms) plus "
        "1 s of delivery: a refund could be voted while a release is still in its window",
        file, p.storage.grace_seconds, p.storage.max_skew_ms));
  if (err.ok() && p.storage.beacon_slot_seconds > p.storage.answer_window_seconds)
    err = Status::InvalidArgument(fmt::format(
        "{}: storage.beacon_slot_seconds: {} s is longer than the {} s answer window: a seed "
        "would be known that long before its window opens, and a provider could answer early "
        "and drop the shard",
        file, p.storage.beacon_slot_seconds, p.storage.answer_window_seconds));
  if (err.ok() &&
      uint64_t{p.storage.max_skew_ms} >= uint64_t{p.storage.answer_window_seconds} * 1000)
    err = Status::InvalidArgument(
        fmt::format("{}: storage.max_skew_ms: {} ms leaves nothing of the {} s answer window", file,
                    p.storage.max_skew_ms, p.storage.answer_window_seconds));
  if (err.ok() && p.storage.answer_window_seconds >= p.storage.period_seconds)
    err = Status::InvalidArgument(fmt::format(
        "{}: storage.answer_window_seconds: must be shorter than storage.period_seconds", file));

  Scope co = root.Table("compute");
  co.Double("vector_threshold", -1, 1, &p.compute.vector_threshold);
  co.Uint("spot_check_bps", 1, 10000, &p.compute.spot_check_bps);
  co.Uint("trusted_after", 0, 1000000, &p.compute.trusted_after);
  co.Uint("check_half_life", 1, 1000000, &p.compute.check_half_life);
  co.Finish();

  Scope go = root.Table("gossip");
  go.Uint("interval_ms", 10, 3600000, &p.gossip.interval_ms);
  go.Uint("probe_interval_ms", 10, 3600000, &p.gossip.probe_interval_ms);
  go.Uint("probe_timeout_ms", 1, 3600000, &p.gossip.probe_timeout_ms);
  go.Uint("suspect_timeout_ms", 10, 86400000, &p.gossip.suspect_timeout_ms);
  go.Uint("record_ttl_seconds", 10, 86400 * 31, &p.gossip.record_ttl_seconds);
  go.Uint("indirect_probes", 0, 16, &p.gossip.indirect_probes);
  go.Finish();

  Scope tr = root.Table("trust");
  tr.Uint("pretrust_weight_bps", 1, 10000, &p.trust.pretrust_weight_bps);
  tr.Uint("min_trust_bps", 0, 10000, &p.trust.min_trust_bps);
  tr.Uint("routing_weight_bps", 0, 10000, &p.trust.routing_weight_bps);
  tr.Finish();

  root.Finish();
  if (!err.ok()) return Err(err);
  DFRP_RETURN_IF_ERROR(Validate(p, file));
  return p;
}

Result<EconomicPolicy> LoadEconomicPolicy(core::FileSystem* fs, const std::string& configured,
                                          const std::string& config_dir) {
  std::string path = configured;
  if (path.empty() && !config_dir.empty() && fs->Exists(config_dir + "/economic.toml"))
    path = config_dir + "/economic.toml";
  if (path.empty()) return ParseEconomicPolicy(kDefaultEconomicToml, "embedded default");
  if (!fs->Exists(path))
    return Err(Status::NotFound(fmt::format(
        "economic policy {} does not exist: fix ECONOMIC_POLICY in the config, or remove it to "
        "use economic.toml beside the config or the embedded default",
        path)));
  auto text = core::ReadWholeFile(fs, path);
  if (!text) return Err(text.error());
  if (text->size() > (1u << 20))
    return Err(Status::InvalidArgument(
        fmt::format("{}: larger than 1 MiB; an economic policy is a few KiB", path)));
  return ParseEconomicPolicy(*text, path);
}

std::string RenderEconomicToml(const EconomicPolicy& p) {
  std::string o;
  o += fmt::format("# effective economic policy, from {}\n", p.source);
  o += fmt::format("# network id {}\n\n", core::ToHex(p.network_id));
  o += "[genesis]\n";
  o += fmt::format("network = {}\ncurrency = {}\ndecimals = {}\n", Quoted(p.genesis.network),
                   Quoted(p.genesis.currency), p.genesis.decimals);
  o += "allocations = [";
  for (size_t i = 0; i < p.genesis.allocations.size(); ++i)
    o += fmt::format("{}\n  {{ address = {}, amount = \"{}\" }}", i ? "," : "",
                     Quoted(p.genesis.allocations[i].address),
                     p.FormatAmount(p.genesis.allocations[i].amount));
  o += p.genesis.allocations.empty() ? "]\n" : "\n]\n";
  o += fmt::format("# supply: {} {}\n", p.FormatAmount(p.genesis.supply), p.genesis.currency);
  o += "committee = [";
  for (size_t i = 0; i < p.genesis.committee.size(); ++i) {
    const Authority& a = p.genesis.committee[i];
    o +=
        fmt::format("{}\n  {{ address = {}, public_key = {}, proof_of_possession = {}, url = {} }}",
                    i ? "," : "", Quoted(a.address), Quoted(a.public_key_hex), Quoted(a.pop_hex),
                    Quoted(a.url));
  }
  o += p.genesis.committee.empty() ? "]\n" : "\n]\n";
  o += fmt::format("\n[policy]\nversion = {}\nowner = {}\nmargin_bps = {}\norder_fee = \"{}\"\n",
                   p.version, Quoted(p.owner), p.margin_bps, p.FormatAmount(p.order_fee));
  const PricingPolicy& pr = p.pricing;
  o += fmt::format(
      "\n[pricing]\nepoch_seconds = {}\ntarget_utilization_bps = {}\nmax_change_denominator = "
      "{}\nneighbour_weight_bps = {}\nneighbour_count = {}\n",
      pr.epoch_seconds, pr.target_utilization_bps, pr.max_change_denominator,
      pr.neighbour_weight_bps, pr.neighbour_count);
  for (const char* which : {"floor", "ceiling"}) {
    o += fmt::format("\n[pricing.{}]\n", which);
    for (Resource r : kResources)
      o += fmt::format(
          "{} = \"{}\"\n", ResourceName(r),
          p.FormatPrice((std::string_view(which) == "floor" ? pr.floor
                                                            : pr.ceiling)[static_cast<size_t>(r)]));
  }
  o += fmt::format(
      "\n[pricing.reference]\ncpu_hashes_per_sec = {}\ngpu_tflops = {}\nread_mb_per_sec = "
      "{}\nwrite_mb_per_sec = {}\nread_iops = {}\n",
      pr.reference_cpu_hashes_per_sec, pr.reference_gpu_tflops, pr.reference_read_mb_per_sec,
      pr.reference_write_mb_per_sec, pr.reference_read_iops);
  const RewardPolicy& rw = p.reward;
  o += fmt::format(
      "\n[reward]\nsigmoid_midpoint = {}\nsigmoid_steepness = {}\nrate_free_per_minute = "
      "{}\nrate_half_life_seconds = {}\nunfunded_per_minute = {}\n",
      rw.sigmoid_midpoint, rw.sigmoid_steepness, rw.rate_free_per_minute, rw.rate_half_life_seconds,
      rw.unfunded_per_minute);
  o += fmt::format(
      "\n[storage]\nperiod_seconds = {}\nchallenges_per_period = {}\nanswer_window_seconds = "
      "{}\nreplication = {}\ngrace_seconds = {}\nmax_skew_ms = {}\nbeacon_slot_seconds = {}\n",
      p.storage.period_seconds, p.storage.challenges_per_period, p.storage.answer_window_seconds,
      p.storage.replication, p.storage.grace_seconds, p.storage.max_skew_ms,
      p.storage.beacon_slot_seconds);
  o += fmt::format(
      "\n[compute]\nvector_threshold = {}\nspot_check_bps = {}\ntrusted_after = {}\n"
      "check_half_life = {}\n",
      p.compute.vector_threshold, p.compute.spot_check_bps, p.compute.trusted_after,
      p.compute.check_half_life);
  o += fmt::format(
      "\n[gossip]\ninterval_ms = {}\nprobe_interval_ms = {}\nprobe_timeout_ms = "
      "{}\nsuspect_timeout_ms = {}\nrecord_ttl_seconds = {}\nindirect_probes = {}\n",
      p.gossip.interval_ms, p.gossip.probe_interval_ms, p.gossip.probe_timeout_ms,
      p.gossip.suspect_timeout_ms, p.gossip.record_ttl_seconds, p.gossip.indirect_probes);
  o += fmt::format(
      "\n[trust]\npretrust_weight_bps = {}\nmin_trust_bps = {}\nrouting_weight_bps = {}\n",
      p.trust.pretrust_weight_bps, p.trust.min_trust_bps, p.trust.routing_weight_bps);
  return o;
}

}  // namespace dfrp::economy
