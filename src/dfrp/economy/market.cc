#include "dfrp/economy/market.h"

#include <fmt/format.h>

#include <map>

#include "dfrp/core/bytes.h"
#include "dfrp/economy/measure.h"

namespace dfrp::economy {

using core::Err;
using core::Result;
using core::Status;
using json = nlohmann::json;

std::string CapacityPath(const std::string& state_dir) { return state_dir + "/capacity.json"; }

void PutAmount(json& j, const std::string& key, const EconomicPolicy& p, Amount a) {
  j[key] = p.FormatAmount(a);
  j[key + "_base_units"] = a;
}

json PriceVectorJson(const EconomicPolicy& p, const PriceVector& v) {
  json j = json::object();
  for (Resource r : kResources)
    j[std::string(ResourceName(r))] = p.FormatPrice(v[static_cast<size_t>(r)]);
  return j;
}

namespace {

json UtilizationJson(const Utilization& u) {
  json j = json::object();
  for (Resource r : kResources) j[std::string(ResourceName(r))] = u[static_cast<size_t>(r)];
  return j;
}

}  // namespace

OracleCapacity LoadOracleCapacity(core::FileSystem* fs, const std::string& state_dir,
                                  const EconomicPolicy& p, std::string* note,
                                  std::optional<json>* raw) {
  OracleCapacity oc;
  oc.figures.cpu_hashes_per_sec_one_core = p.pricing.reference_cpu_hashes_per_sec;
  oc.figures.read_mb_per_sec = p.pricing.reference_read_mb_per_sec;
  oc.figures.write_mb_per_sec = p.pricing.reference_write_mb_per_sec;
  oc.figures.read_iops = p.pricing.reference_read_iops;
  const std::string path = CapacityPath(state_dir);
  if (!fs->Exists(path)) {
    *note = "no measurement yet (run `dfrp-market measure`): prices start at the floors";
    return oc;
  }
  auto text = core::ReadWholeFile(fs, path);
  json j = text ? json::parse(*text, nullptr, false) : json();
  auto c = CapacityFromJson(j);
  if (!c) {
    *note = fmt::format(
        "{} is not usable ({}): prices start at the floors; run "
        "`dfrp-market measure` again",
        path, text ? c.error().message() : text.error().message());
    return oc;
  }
  if (raw) *raw = j;
  oc.cores = std::max(1u, c->cores);
  oc.gpus = c->gpu_tflops ? 1 : 0;
  oc.figures.cpu_hashes_per_sec_one_core = c->sha256_per_sec_one_core;
  oc.figures.gpu_tflops = c->gpu_tflops;
  // Writes go to one volume at a time (the lowest with room); the first measured volume
  // stands for the node's disk.
  for (const auto& v : c->volumes) {
    if (!v.error.empty() || !v.read_mb_per_sec) continue;
    oc.figures.read_mb_per_sec = *v.read_mb_per_sec;
    oc.figures.write_mb_per_sec = v.write_mb_per_sec.value_or(0);
    oc.figures.read_iops = v.read_iops_4k.value_or(0);
    break;
  }
  note->clear();
  return oc;
}

Result<std::unique_ptr<Market>> Market::Open(const EconomicPolicy& policy,
                                             const MarketOptions& opt) {
  std::unique_ptr<Market> m(new Market(policy, opt));
  if (!opt.fs->IsDirectory(opt.state_dir))
    return Err(Status::NotFound(
        fmt::format("the state folder {} does not exist: run `dfrp-storage init-storage` first",
                    opt.state_dir)));
  const OracleCapacity cap =
      LoadOracleCapacity(opt.fs, opt.state_dir, policy, &m->capacity_note_, &m->capacity_);
  DFRP_ASSIGN_OR_RETURN(m->oracle_, PriceOracle::Open(opt.state_dir, policy, cap, opt.clock));
  return m;
}

Result<size_t> Market::Tick() {
  std::map<uint64_t, EpochUsage> by_epoch;
  if (opt_.usage != nullptr && oracle_->CurrentEpoch() > oracle_->Current().epoch) {
    DFRP_ASSIGN_OR_RETURN(auto rows, opt_.usage->ByEpoch());
    for (const UsageRow& r : rows) {
      EpochUsage& u = by_epoch[std::strtoull(r.key.c_str(), nullptr, 10)];
      u.bytes_written = r.bytes_written;
      u.bytes_read = r.bytes_read;
      u.proofs = r.proofs;
      u.cpu_usec = r.cpu_usec;
    }
  }
  std::pair<uint64_t, uint64_t> stored{0, 0};
  if (opt_.stored) stored = opt_.stored();
  std::array<std::vector<NeighbourPrice>, kResourceCount> neighbours{};
  if (opt_.neighbours) neighbours = opt_.neighbours();
  return oracle_->Advance(
      [&](uint64_t epoch) {
        EpochUsage u;
        if (auto it = by_epoch.find(epoch); it != by_epoch.end()) u = it->second;
        u.bytes_stored = stored.first;
        u.bytes_quota = stored.second;
        return u;
      },
      neighbours);
}

json Market::PricesJson(size_t history) const {
  bool any_ended = false;
  const EpochRecord cur = oracle_->Current(&any_ended);
  json j;
  j["epoch"] = oracle_->CurrentEpoch();
  j["epoch_seconds"] = policy_.pricing.epoch_seconds;
  j["currency"] = policy_.genesis.currency;
  j["policy_version"] = policy_.version;
  j["network_id"] = core::ToHex(policy_.network_id);
  j["prices"] = PriceVectorJson(policy_, cur.prices);
  // null until an epoch has ended (PriceOracle::Current says why).
  j["prices_after_epoch"] = any_ended ? json(cur.epoch) : json();
  j["utilization_bps"] = UtilizationJson(cur.utilization);
  j["floor"] = PriceVectorJson(policy_, policy_.pricing.floor);
  j["ceiling"] = PriceVectorJson(policy_, policy_.pricing.ceiling);
  j["note"] = capacity_note_;
  if (history > 0) {
    j["history"] = json::array();
    for (const auto& r : oracle_->History(history))
      j["history"].push_back({{"epoch", r.epoch},
                              {"unix_ms", r.unix_ms},
                              {"prices", PriceVectorJson(policy_, r.prices)},
                              {"utilization_bps", UtilizationJson(r.utilization)}});
  }
  return j;
}

Result<json> Market::QuoteJson(std::string_view request, bool* accepted) const {
  DFRP_ASSIGN_OR_RETURN(FeeRequest req, ParseFeeRequest(request, policy_, opt_.vector_dim));
  const PriceVector prices = oracle_->Current().prices;
  const Quote q = MatchFee(req, prices, policy_);
  *accepted = q.accepted;
  json j;
  j["accepted"] = q.accepted;
  j["reason"] = q.reason;
  json fees = json::object();
  for (Resource r : kResources) {
    const size_t i = static_cast<size_t>(r);
    if (req.quantity[i] == 0) continue;
    json one;
    one["quantity"] = FormatFixed(req.quantity[i], kQuantityDecimals);
    one["price"] = policy_.FormatPrice(prices[i]);
    PutAmount(one, "fee", policy_, q.fee[i]);
    fees[std::string(ResourceName(r))] = one;
  }
  j["fees"] = fees;
  PutAmount(j, "total", policy_, q.total);
  if (req.max_fee) PutAmount(j, "max_fee", policy_, *req.max_fee);
  j["wallet"] = req.wallet;
  j["currency"] = policy_.genesis.currency;
  j["epoch"] = oracle_->CurrentEpoch();
  return j;
}

json Market::CapacityJson() const {
  json j;
  j["capacity"] = capacity_ ? *capacity_ : json(nullptr);
  j["note"] = capacity_note_;
  return j;
}

Result<json> Market::UsageJson(const UsageQuery& q) const {
  if (opt_.usage == nullptr)
    return Err(Status::NotFound("this node keeps no usage counts (no usage.db)"));
  return opt_.usage->UsageJson(q);
}

}  // namespace dfrp::economy
