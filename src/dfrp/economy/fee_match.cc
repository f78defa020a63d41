#include "dfrp/economy/fee_match.h"

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "dfrp/wallet/address.h"

namespace dfrp::economy {

using core::Err;
using core::Result;
using core::Status;
using json = nlohmann::json;

namespace {

// A number keeps its own text: it is stored as a string that starts with this byte, so that
// amounts are parsed exactly (nlohmann would hand them over as doubles).
constexpr char kNumberMark = '\x01';
constexpr size_t kMaxRequestBytes = 64 << 10;
constexpr size_t kMaxDepth = 16;

class RawNumberDom {
 public:
  bool null() { return Put(json(nullptr)); }
  bool boolean(bool v) { return Put(json(v)); }
  bool number_integer(json::number_integer_t v) {
    return Put(json(std::string(1, kNumberMark) + std::to_string(v)));
  }
  bool number_unsigned(json::number_unsigned_t v) {
    return Put(json(std::string(1, kNumberMark) + std::to_string(v)));
  }
  bool number_float(json::number_float_t, const json::string_t& raw) {
    return Put(json(std::string(1, kNumberMark) + raw));
  }
  bool string(json::string_t& v) { return Put(json(std::move(v))); }
  bool binary(json::binary_t&) { return false; }
  bool start_object(std::size_t) { return Open(json::object()); }
  bool key(json::string_t& k) {
    key_ = std::move(k);
    return true;
  }
  bool end_object() { return Close(); }
  bool start_array(std::size_t) { return Open(json::array()); }
  bool end_array() { return Close(); }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) {
    error_ = fmt::format("not valid JSON at byte {}: {}", position, e.what());
    return false;
  }
  json root;
  std::string error_;

 private:
  bool Put(json v) { return Insert(std::move(v)) != nullptr; }
  bool Open(json v) {
    if (stack_.size() >= kMaxDepth) {
      error_ = "nested too deep";
      return false;
    }
    json* child = Insert(std::move(v));
    if (child == nullptr) return false;
    stack_.push_back(child);
    return true;
  }
  // Places `v` in the open object (under the last key) or array, or as the root; null (and
  // error_) for a key given twice.
  json* Insert(json v) {
    if (stack_.empty()) {
      root = std::move(v);
      return &root;
    }
    json& top = *stack_.back();
    if (!top.is_object()) {
      top.push_back(std::move(v));
      return &top.back();
    }
    if (top.contains(key_)) {
      error_ = fmt::format("the field {:?} is given twice", key_.substr(0, 64));
      return nullptr;
    }
    return &(top[key_] = std::move(v));
  }
  bool Close() {
    stack_.pop_back();
    return true;
  }
  std::vector<json*> stack_;
  std::string key_;
};

bool IsNumber(const json& v) {
  return v.is_string() && !v.get_ref<const std::string&>().empty() &&
         v.get_ref<const std::string&>()[0] == kNumberMark;
}

Status Bad(std::string_view field, std::string_view why) {
  return Status::InvalidArgument(fmt::format("request field {}: {}", field, why));
}

// The text of an amount or quantity: a number or a string.
Result<std::string> NumberText(const json& v, std::string_view field) {
  if (!v.is_string())
    return Err(
        Bad(field, fmt::format("must be a number or a decimal string, not {}", v.type_name())));
  const std::string& s = v.get_ref<const std::string&>();
  return IsNumber(v) ? s.substr(1) : s;
}

Result<uint64_t> Fixed(const json& v, std::string_view field, unsigned scale) {
  auto text = NumberText(v, field);
  if (!text) return Err(text.error());
  return ParseFixed(*text, scale, fmt::format("request field {}", field));
}

Result<std::string> Text(const json& v, std::string_view field, size_t max_len) {
  if (!v.is_string() || IsNumber(v))
    return Err(Bad(
        field, fmt::format("must be a string, not {}", IsNumber(v) ? "a number" : v.type_name())));
  const std::string& s = v.get_ref<const std::string&>();
  if (s.size() > max_len) return Err(Bad(field, fmt::format("is longer than {} bytes", max_len)));
  return s;
}

}  // namespace

bool StorageQuantity(uint64_t mb_micros, uint64_t months_micros, QuantityMicros* out) {
  // bytes = mb_micros (MB is 10^6 bytes); GiB-months in micros = bytes * months / 2^30,
  // with months = months_micros / 10^6 and the result times 10^6.
  return MulDivCeil(mb_micros, months_micros, uint64_t{1} << 30, out);
}

bool TransferQuantity(uint64_t mb_micros, QuantityMicros* out) {
  // GiB in micros = bytes / 2^30 * 10^6, bytes = mb_micros.
  return MulDivCeil(mb_micros, kMicros, uint64_t{1} << 30, out);
}

Result<FeeRequest> ParseFeeRequest(std::string_view text, const EconomicPolicy& policy,
                                   uint32_t vector_dim) {
  if (text.size() > kMaxRequestBytes)
    return Err(Status::InvalidArgument(
        fmt::format("request: {} bytes is more than the {} a request may have", text.size(),
                    kMaxRequestBytes)));
  RawNumberDom dom;
  const bool parsed = json::sax_parse(text, &dom, json::input_format_t::json, true);
  if (!parsed)
    return Err(Status::InvalidArgument(
        fmt::format("request: {}", dom.error_.empty() ? "not valid JSON" : dom.error_)));
  if (!dom.root.is_object())
    return Err(Status::InvalidArgument(
        "request: must be a JSON object such as {\"cpu_sec\": 1.2, \"max_fee\": \"0.0042\"}"));
  FeeRequest r;
  const unsigned decimals = policy.genesis.decimals;
  uint64_t storage_mb = 0, months = kMicros, read_mb = 0, write_mb = 0;
  bool has_storage = false, has_months = false;
  for (const auto& [key, v] : dom.root.items()) {
    if (key == "cpu_sec" || key == "gpu_sec") {
      auto q = Fixed(v, key, kQuantityDecimals);
      if (!q) return Err(q.error());
      r.quantity[static_cast<size_t>(key == "cpu_sec" ? Resource::kCpuSec : Resource::kGpuSec)] =
          *q;
    } else if (key == "storage_mb" || key == "months" || key == "read_mb" || key == "write_mb") {
      auto q = Fixed(v, key, kQuantityDecimals);
      if (!q) return Err(q.error());
      std::string shown = FormatFixed(*q, kQuantityDecimals);
      if (key == "storage_mb") {
        storage_mb = *q, has_storage = true, r.storage_mb = shown;
      } else if (key == "months") {
        months = *q, has_months = true, r.months = shown;
      } else if (key == "read_mb") {
        read_mb = *q, r.read_mb = shown;
      } else {
        write_mb = *q, r.write_mb = shown;
      }
    } else if (key == "proofs") {
      auto q = Fixed(v, key, 0);
      if (!q) return Err(q.error());
      if (*q > UINT64_MAX / kMicros) return Err(Bad(key, "is too large"));
      r.quantity[static_cast<size_t>(Resource::kProof)] = *q * kMicros;
    } else if (key == "max_fee") {
      auto a = Fixed(v, key, decimals);
      if (!a) return Err(a.error());
      r.max_fee = *a;
    } else if (key == "max_price") {
      if (!v.is_object())
        return Err(Bad(key, "must be an object such as {\"cpu_sec\": \"0.002\"}"));
      for (const auto& [res, cap] : v.items()) {
        const std::optional<Resource> which = ResourceFromName(res);
        if (!which)
          return Err(Bad(fmt::format("max_price.{}", res.substr(0, 64)),
                         "is not a resource: give cpu_sec, gpu_sec, storage_gib_month, "
                         "write_gib, read_gib or proof"));
        auto p = Fixed(cap, fmt::format("max_price.{}", res), decimals + kPriceExtraDecimals);
        if (!p) return Err(p.error());
        r.max_price[static_cast<size_t>(*which)] = *p;
      }
    } else if (key == "wallet") {
      auto w = Text(v, key, 100);
      if (!w) return Err(w.error());
      if (!w->empty() && *w != "local") {
        auto pk = wallet::PublicKeyFromAddress(*w);
        if (!pk)
          return Err(Bad(key, fmt::format("{:?} is not a dfrp wallet address: {}",
                                          w->substr(0, 100), pk.error().message())));
      }
      r.wallet = *w;
    } else if (key == "vector") {
      if (!v.is_array()) return Err(Bad(key, "must be an array of numbers"));
      if (vector_dim != 0 && v.size() != vector_dim)
        return Err(Bad(key, fmt::format("has {} components; this node's VECTOR_DIM is {}", v.size(),
                                        vector_dim)));
      for (size_t i = 0; i < v.size(); ++i) {
        if (!IsNumber(v[i])) return Err(Bad(fmt::format("vector[{}]", i), "must be a number"));
        const std::string raw = v[i].get_ref<const std::string&>().substr(1);
        char* end = nullptr;
        const double d = std::strtod(raw.c_str(), &end);
        if (end == raw.c_str() || *end != '\0' || !std::isfinite(d) || std::fabs(d) > 3.4e38)
          return Err(
              Bad(fmt::format("vector[{}]", i), fmt::format("{} is not a finite float", raw)));
        r.vector.push_back(static_cast<float>(d));
      }
    } else if (key == "nonce" || key == "signature") {
      auto s = Text(v, key, key == "nonce" ? 128 : 512);
      if (!s) return Err(s.error());
      (key == "nonce" ? r.nonce : r.signature) = *s;
    } else {
      return Err(Bad(key.substr(0, 64),
                     "is not a field of a request (cpu_sec, gpu_sec, storage_mb, months, read_mb, "
                     "write_mb, proofs, max_fee, max_price, wallet, vector, nonce, signature)"));
    }
  }
  if (has_months && !has_storage) return Err(Bad("months", "is given without storage_mb"));
  if (has_storage && months == 0) return Err(Bad("months", "must be more than 0"));
  auto q = [&](Resource res) -> QuantityMicros& { return r.quantity[static_cast<size_t>(res)]; };
  r.storage_bytes = storage_mb;  // micros of a megabyte (10^6 bytes): bytes
  if (!StorageQuantity(storage_mb, months, &q(Resource::kStorageGibMonth)))
    return Err(Bad("storage_mb", "times months is too large"));
  if (!TransferQuantity(read_mb, &q(Resource::kReadGib)))
    return Err(Bad("read_mb", "is too large"));
  if (!TransferQuantity(write_mb, &q(Resource::kWriteGib)))
    return Err(Bad("write_mb", "is too large"));
  return r;
}

std::optional<double> CosineSimilarity(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size() || a.empty()) return std::nullopt;
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    dot += static_cast<double>(a[i]) * b[i];
    na += static_cast<double>(a[i]) * a[i];
    nb += static_cast<double>(b[i]) * b[i];
  }
  if (na == 0 || nb == 0) return std::nullopt;
  return std::clamp(dot / std::sqrt(na * nb), -1.0, 1.0);
}

Quote MatchFee(const FeeRequest& req, const PriceVector& prices, const EconomicPolicy& policy,
               const MatchOptions& opt) {
  Quote q;
  for (Resource res : kResources) {
    const size_t i = static_cast<size_t>(res);
    if (req.max_price[i] && prices[i] > *req.max_price[i]) {
      q.reason = fmt::format("{} price {} over cap {}", ResourceName(res),
                             policy.FormatPrice(prices[i]), policy.FormatPrice(*req.max_price[i]));
      return q;
    }
  }
  for (Resource res : kResources) {
    const size_t i = static_cast<size_t>(res);
    if (!FeeFor(prices[i], req.quantity[i], &q.fee[i]) || !AddAmount(q.total, q.fee[i], &q.total)) {
      q.reason = fmt::format("the fee for {} is past 2^64 - 1 base units", ResourceName(res));
      return q;
    }
  }
  if (req.max_fee && q.total > *req.max_fee) {
    q.reason = fmt::format("total {} over max_fee {}", policy.FormatAmount(q.total),
                           policy.FormatAmount(*req.max_fee));
    return q;
  }
  if (opt.node_vector != nullptr && !req.vector.empty()) {
    q.similarity = CosineSimilarity(req.vector, *opt.node_vector);
    if (opt.vector_threshold >= -1 && (!q.similarity || *q.similarity < opt.vector_threshold)) {
      q.reason = q.similarity ? fmt::format("vector similarity {:.2f} under threshold {:.2f}",
                                            *q.similarity, opt.vector_threshold)
                              : "vector similarity undefined (a zero vector or another dimension)";
      return q;
    }
  }
  if (opt.trust && *opt.trust < opt.trust_floor) {
    q.reason = fmt::format("trust {:.2f} under floor {:.2f}", *opt.trust, opt.trust_floor);
    return q;
  }
  q.accepted = true;
  return q;
}

Routing RankCandidates(const FeeRequest& req, const std::vector<RouteCandidate>& candidates,
                       const EconomicPolicy& policy, size_t k) {
  Routing out;
  out.passed.reserve(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) {
    const RouteCandidate& c = candidates[i];
    Quote q = MatchFee(req, c.prices, policy);
    RankedCandidate r;
    r.index = i;
    r.total = q.total;
    if (!req.vector.empty())
      r.similarity =
          c.vector != nullptr ? CosineSimilarity(req.vector, *c.vector).value_or(-1.0) : -1.0;
    if (q.accepted) {
      out.passed.push_back(std::move(r));
      continue;
    }
    r.reason = std::move(q.reason);
    // Refused for its total alone (a cap or an overflow refuses before the total is known).
    const bool over_fee = req.max_fee && r.total > *req.max_fee;
    if (over_fee && (!out.cheapest_over_max_fee || r.total < out.cheapest_over_max_fee->total))
      out.cheapest_over_max_fee = r;
    out.refused.push_back(std::move(r));
  }
  auto nearer = [](const RankedCandidate& a, const RankedCandidate& b) {
    if (a.similarity != b.similarity) return a.similarity > b.similarity;
    if (a.total != b.total) return a.total < b.total;
    return a.index < b.index;
  };
  const size_t top = std::min(k, out.passed.size());
  std::partial_sort(out.passed.begin(), out.passed.begin() + static_cast<ptrdiff_t>(top),
                    out.passed.end(), nearer);
  return out;
}

double RequestWeight(const RewardPolicy& r, Amount offered, Amount asked, double similarity,
                     double wallet_rate_per_minute) {
  const double ratio = asked == 0 ? 2.0 : static_cast<double>(offered) / static_cast<double>(asked);
  const double sig = 1.0 / (1.0 + std::exp(-r.sigmoid_steepness * (ratio - r.sigmoid_midpoint)));
  const double sim = std::isfinite(similarity) ? std::clamp(similarity, 0.0, 1.0) : 0.0;
  const double rate = std::isfinite(wallet_rate_per_minute) && wallet_rate_per_minute > 0
                          ? wallet_rate_per_minute
                          : 0.0;
  // A wallet within its free rate keeps its weight; past it, the weight falls in proportion.
  const double excess = std::max(0.0, rate - r.rate_free_per_minute);
  return sig * sim / (1.0 + excess / r.rate_free_per_minute);
}

double AdmissionControl::Decayed(const Rate_& r, int64_t now_ms) const {
  const double dt = static_cast<double>(std::max<int64_t>(now_ms - r.at_ms, 0)) / 1000.0;
  return r.value * std::exp2(-dt / r_.rate_half_life_seconds);
}

double AdmissionControl::NoteRequest(const std::string& wallet, int64_t now_ms) {
  std::lock_guard lock(mu_);
  if (rates_.size() > 65536) {  // forget the wallets that went quiet (many fresh wallets)
    std::erase_if(rates_, [&](const auto& kv) { return Decayed(kv.second, now_ms) < 0.5; });
  }
  Rate_& r = rates_[wallet];
  // Each request adds ln 2 / half-life (per second) * 60: a steady rate of n per minute
  // settles at n.
  r.value = Decayed(r, now_ms) + std::log(2.0) / r_.rate_half_life_seconds * 60.0;
  r.at_ms = now_ms;
  return r.value;
}

double AdmissionControl::Rate(const std::string& wallet, int64_t now_ms) const {
  std::lock_guard lock(mu_);
  auto it = rates_.find(wallet);
  return it == rates_.end() ? 0 : Decayed(it->second, now_ms);
}

bool AdmissionControl::TakeUnfunded(const std::string& source, int64_t now_ms) {
  std::lock_guard lock(mu_);
  const double cap = r_.unfunded_per_minute;
  if (buckets_.size() > 65536) {
    std::erase_if(buckets_, [&](const auto& kv) {
      return kv.second.tokens + static_cast<double>(now_ms - kv.second.at_ms) / 60000.0 * cap >=
             cap;
    });
  }
  auto [it, fresh] = buckets_.try_emplace(source, Bucket{cap, now_ms});
  Bucket& b = it->second;
  const double dt = static_cast<double>(std::max<int64_t>(now_ms - b.at_ms, 0)) / 60000.0;
  b.tokens = std::min(cap, b.tokens + dt * cap);
  b.at_ms = now_ms;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

double AdmissionControl::Weigh(const std::string& wallet, Amount offered, Amount asked,
                               double similarity, int64_t now_ms) {
  const double rate = NoteRequest(wallet, now_ms);
  return RequestWeight(r_, offered, asked, similarity, rate);
}

}  // namespace dfrp::economy
