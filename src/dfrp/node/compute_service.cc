#include "dfrp/node/compute_service.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <signal.h>

#include <algorithm>
#include <cstring>

#include "dfrp/core/bytes.h"
#include "dfrp/economy/fee_match.h"
#include "dfrp/wallet/address.h"

namespace dfrp::node {

using core::Err;
using core::Result;
using core::Status;
using nlohmann::json;

namespace {

std::string AddressOfBytes(const ledger::KeyBytes& k) {
  auto key = ledger::KeyFrom(k);
  return key ? wallet::AddressOf(*key) : core::ToHex(k);
}

}  // namespace

size_t NextJob(const std::vector<QueuedJob>& queue) {
  size_t best = 0;
  for (size_t i = 1; i < queue.size(); ++i) {
    const QueuedJob& a = queue[i];
    const QueuedJob& b = queue[best];
    if (a.funded != b.funded ? a.funded : a.weight > b.weight) best = i;
  }
  return best;
}

Result<std::unique_ptr<ComputeService>> ComputeService::Open(ComputeServiceOptions opt) {
  std::unique_ptr<ComputeService> s(new ComputeService(std::move(opt)));
  DFRP_RETURN_IF_ERROR(s->opt_.fs->CreateDirRecursive(s->opt_.dir));
  DFRP_RETURN_IF_ERROR(s->Load());
  return s;
}

ComputeService::~ComputeService() { Stop(); }

void ComputeService::Start() {
  runner_ = std::thread([this] { RunLoop(); });
}

void ComputeService::Stop() {
  pid_t running = 0;
  {
    core::MutexLock lock(&mu_);
    stop_ = true;
    running = running_pid_;
  }
  cv_.SignalAll();
  // dfrp-jobrun stops the job (SIGTERM, grace, SIGKILL) and reports it as stopped.
  if (running > 0) kill(running, SIGTERM);
  if (runner_.joinable()) runner_.join();
}

json ComputeService::ToJson(const Job& j) const {
  json o;
  o["job_id"] = j.id_hex;
  o["state"] = j.state;
  o["app"] = j.ctx.app;
  o["args"] = j.ctx.args;
  o["ranks"] = j.ctx.ranks;
  o["client"] = AddressOfBytes(j.ctx.client);
  o["max_fee"] = opt_.policy->FormatAmount(j.ctx.max_fee);
  o["quote"] = j.quote;
  o["provider"] = wallet::AddressOf(opt_.wallet_key->GetPublicKey());
  o["submitted_ms"] = j.submitted_ms;
  o["weight"] = j.weight;
  if (!j.ctx.inputs.empty()) {
    json inputs = json::array();
    for (const auto& in : j.ctx.inputs)
      inputs.push_back({{"shard_id", in.shard_id.ToString()},
                        {"merkle_root", core::ToHex(in.root)},
                        {"size", in.size},
                        {"leaf_size", in.leaf_size}});
    o["inputs"] = std::move(inputs);
    o["input_from"] = j.input_from;
  }
  if (j.started_ms != 0) o["started_ms"] = j.started_ms;
  if (!j.report.is_null()) o["report"] = j.report;
  if (!j.result_root_hex.empty()) o["result_root"] = j.result_root_hex;
  if (!j.claim_hex.empty()) o["claim"] = j.claim_hex;
  if (j.escrow) {
    o["escrow"] = core::ToHex(*j.escrow);
    json settlement{{"state", j.settled.empty() ? "open" : j.settled}};
    if (j.settled == "released") {
      settlement["to_provider"] = opt_.policy->FormatAmount(j.paid_base_units);
      settlement["to_provider_base_units"] = j.paid_base_units;
    }
    // Refunded on a certified fraud proof (this node holds the record), rather than for a
    // claim that never came.
    if (j.settled == "refunded" && opt_.disputed)
      settlement["fraud_proof"] = opt_.disputed(*j.escrow);
    o["settlement"] = std::move(settlement);
  }
  return o;
}

Status ComputeService::Save(const Job& j) const {
  const std::string dir = core::JoinPath(opt_.dir, j.id_hex);
  return core::WriteFileAtomic(opt_.fs, core::JoinPath(dir, "state.json"),
                               ToJson(j).dump(2) + "\n");
}

Status ComputeService::Load() {
  DFRP_ASSIGN_OR_RETURN(auto names, opt_.fs->ListDir(opt_.dir));
  core::MutexLock lock(&mu_);
  for (const auto& name : names) {
    const std::string dir = core::JoinPath(opt_.dir, name);
    auto wire = core::ReadWholeFile(opt_.fs, core::JoinPath(dir, "job.bin"));
    auto state = core::ReadWholeFile(opt_.fs, core::JoinPath(dir, "state.json"));
    if (!wire || !state) continue;  // a job whose files were never completed: never accepted
    auto ctx = compute::DecodeJob(*wire, opt_.policy->network_id);
    const json s = json::parse(*state, nullptr, false);
    if (!ctx || !s.is_object()) continue;
    Job j;
    j.ctx = *ctx;
    j.id_hex = name;
    j.state = s.value("state", "interrupted");
    j.quote = s.value("quote", json::object());
    if (s.contains("report")) j.report = s["report"];
    j.result_root_hex = s.value("result_root", "");
    j.claim_hex = s.value("claim", "");
    if (auto e = core::FromHex(s.value("escrow", "")); e && e->size() == crypto::Hash{}.size()) {
      j.escrow.emplace();
      std::memcpy(j.escrow->data(), e->data(), j.escrow->size());
    }
    j.submitted_ms = s.value("submitted_ms", int64_t{0});
    j.started_ms = s.value("started_ms", int64_t{0});
    j.weight = s.value("weight", 0.0);
    if (s.contains("settlement") && s["settlement"].is_object()) {
      const std::string st = s["settlement"].value("state", "");
      if (st == "released" || st == "refunded") j.settled = st;
      j.paid_base_units = s["settlement"].value("to_provider_base_units", uint64_t{0});
    }
    if (s.contains("input_from") && s["input_from"].is_array())
      for (const auto& u : s["input_from"])
        if (u.is_string()) j.input_from.push_back(u.get<std::string>());
    if (j.state == "queued" || j.state == "running") {
      j.state = "interrupted";
      DFRP_RETURN_IF_ERROR(Save(j));
    }
    jobs_[name] = std::move(j);
  }
  return Status::OK();
}

Result<ComputeService::Checked> ComputeService::Check(std::string_view wire, bool match_fee) {
  const crypto::Hash& net = opt_.policy->network_id;
  DFRP_ASSIGN_OR_RETURN(compute::JobContext ctx, compute::DecodeJob(wire, net));
  const std::string id_hex = core::ToHex(compute::JobId(ctx, net));
  DFRP_RETURN_IF_ERROR(compute::VerifyJob(ctx, net));
  auto refuse = [&](std::string why) -> core::ErrorValue {
    core::MutexLock lock(&mu_);
    ++refused_;
    return Err(Status::Refused(fmt::format("job {}: {}", id_hex.substr(0, 16), why)));
  };
  const int64_t now_ms = opt_.clock->NowUnixMillis();
  if (ctx.expiry_unix <= static_cast<uint64_t>(std::max<int64_t>(0, now_ms / 1000)))
    return refuse(fmt::format("it expired at {} (Unix s)", ctx.expiry_unix));
  const compute::AppSpec* app = compute::FindApp(opt_.apps, ctx.app);
  if (app == nullptr) {
    std::vector<std::string> names;
    for (const auto& a : opt_.apps) names.push_back(a.name);
    return refuse(
        fmt::format("no app '{}' here (this node runs: {})", ctx.app, fmt::join(names, ", ")));
  }
  if (!ctx.inputs.empty()) {
    if (!opt_.fetch_input) return refuse("this node fetches no inputs (it takes jobs without)");
    uint64_t bytes = 0;
    for (const auto& in : ctx.inputs) bytes += std::min<uint64_t>(in.size, UINT64_MAX - bytes);
    if (bytes > opt_.max_input_bytes)
      return refuse(fmt::format("{} bytes of inputs, more than the {} this node fetches for a job",
                                bytes, opt_.max_input_bytes));
  }
  if (auto s = compute::CheckArgs(*app, ctx.args, ctx.inputs.size()); !s.ok())
    return refuse(s.message());
  if (ctx.ranks > opt_.slots)
    return refuse(fmt::format("{} ranks, more than this node's {} slots", ctx.ranks, opt_.slots));
  if (ctx.limits.wall_seconds > opt_.max_wall_seconds)
    return refuse(fmt::format("a wall time of {} s, more than the {} s this node takes",
                              ctx.limits.wall_seconds, opt_.max_wall_seconds));
  if (ctx.limits.gpu_seconds > 0 && !opt_.has_gpu)
    return refuse("it asks for GPU-seconds and this node has no GPU");
  if (ctx.vector.empty())
    return refuse("it names no vector: a job is routed by its vector (VECTOR_DIM floats)");
  Checked out{std::move(ctx), id_hex, {}};
  if (!match_fee) return out;
  // The price: ranks × cpu_seconds CPU-seconds (and the GPU-seconds) at the current prices,
  // within max_fee, the vector near enough this node's.
  const compute::JobContext& job = out.ctx;
  economy::FeeRequest req;
  unsigned __int128 cpu =
      static_cast<unsigned __int128>(job.limits.cpu_seconds) * job.ranks * 1'000'000;
  unsigned __int128 gpu = static_cast<unsigned __int128>(job.limits.gpu_seconds) * 1'000'000;
  if (cpu > UINT64_MAX || gpu > UINT64_MAX) return refuse("its CPU- or GPU-seconds overflow");
  req.quantity[static_cast<size_t>(economy::Resource::kCpuSec)] = static_cast<uint64_t>(cpu);
  req.quantity[static_cast<size_t>(economy::Resource::kGpuSec)] = static_cast<uint64_t>(gpu);
  req.max_fee = job.max_fee;
  req.vector = job.vector;
  req.wallet = AddressOfBytes(job.client);
  economy::MatchOptions mo;
  mo.node_vector = &opt_.vector;
  mo.vector_threshold = opt_.policy->compute.vector_threshold;
  out.quote = economy::MatchFee(req, opt_.prices(), *opt_.policy, mo);
  if (!out.quote.accepted) return refuse(out.quote.reason);
  return out;
}

json ComputeService::QuoteJson(const economy::Quote& q) const {
  return {{"total", opt_.policy->FormatAmount(q.total)},
          {"total_base_units", q.total},
          {"cpu_sec", opt_.policy->FormatAmount(q.fee[0])},
          {"similarity", q.similarity.value_or(0)}};
}

Result<json> ComputeService::Quote(std::string_view wire) {
  DFRP_ASSIGN_OR_RETURN(Checked c, Check(wire, true));
  return json{{"job_id", c.id_hex},
              {"provider", wallet::AddressOf(opt_.wallet_key->GetPublicKey())},
              {"price", opt_.policy->FormatAmount(c.quote.total)},
              {"price_base_units", c.quote.total},
              {"quote", QuoteJson(c.quote)}};
}

Result<ledger::SigBytes> ComputeService::AcceptEscrow(std::string_view job_wire,
                                                      const ledger::KeyBytes& payer, uint64_t seq,
                                                      uint64_t epoch, uint64_t amount,
                                                      const ledger::JobTerms& terms) {
  if (!opt_.escrow_of)
    return Err(
        Status::NotFound("this node's economic.toml names no committee: it takes no paid jobs"));
  DFRP_ASSIGN_OR_RETURN(Checked c, Check(job_wire, true));
  const std::string what = fmt::format("compute escrow for job {}", c.id_hex.substr(0, 16));
  const crypto::Hash id = compute::JobId(c.ctx, opt_.policy->network_id);
  if (terms.job_id != id)
    return Err(Status::InvalidArgument(
        fmt::format("{}: the terms are for job {}", what, core::ToHex(terms.job_id))));
  if (payer != c.ctx.client)
    return Err(
        Status::InvalidArgument(fmt::format("{}: the payer {} is not the job's client {}", what,
                                            AddressOfBytes(payer), AddressOfBytes(c.ctx.client))));
  if (terms.price < c.quote.total)
    return Err(Status::Refused(fmt::format("{}: a price of {} is under this node's quote of {} now",
                                           what, opt_.policy->FormatAmount(terms.price),
                                           opt_.policy->FormatAmount(c.quote.total))));
  if (amount > c.ctx.max_fee)
    return Err(Status::InvalidArgument(
        fmt::format("{}: {} escrowed, more than the job's max_fee {}", what,
                    opt_.policy->FormatAmount(amount), opt_.policy->FormatAmount(c.ctx.max_fee))));
  const uint64_t now_s =
      static_cast<uint64_t>(std::max<int64_t>(0, opt_.clock->NowUnixMillis())) / 1000;
  const uint64_t need = now_s + c.ctx.limits.wall_seconds + kSettleMarginSeconds;
  if (terms.settle_unix < need)
    return Err(Status::Refused(fmt::format(
        "{}: it settles at {} (Unix s); this node needs the job's wall time ({} s) and {} s "
        "more from now ({}): settle at {} or later",
        what, terms.settle_unix, c.ctx.limits.wall_seconds, kSettleMarginSeconds, now_s, need)));
  if (terms.collateral > 0) {
    // The verifier's word can take the stake (a fraud proof is its claim against ours): never
    // the payer itself, never this node, and a stake of at most ledger::kMaxCollateralPerPrice
    // times the price.
    if (terms.verifier == payer || terms.verifier == opt_.wallet_key->GetPublicKey().bytes())
      return Err(Status::Refused(fmt::format(
          "{}: the terms ask a stake and name {} as the verifier: a stake needs a verifier that "
          "is neither the payer nor this node",
          what, AddressOfBytes(terms.verifier))));
    if (terms.collateral > ledger::MaxCollateral(terms.price))
      return Err(Status::Refused(
          fmt::format("{}: the terms ask a stake of {}, more than {} times the price {}", what,
                      opt_.policy->FormatAmount(terms.collateral), ledger::kMaxCollateralPerPrice,
                      opt_.policy->FormatAmount(terms.price))));
    // The stake is sent when the job comes (Submit): the wallet must hold it now.
    if (!opt_.stake || !opt_.balance)
      return Err(Status::Refused(
          fmt::format("{}: the terms ask a stake of {}, and this node stakes no collateral", what,
                      opt_.policy->FormatAmount(terms.collateral))));
    DFRP_ASSIGN_OR_RETURN(const int64_t have, opt_.balance());
    const uint64_t fee = opt_.policy->order_fee;
    if (have < 0 || static_cast<uint64_t>(have) < terms.collateral ||
        static_cast<uint64_t>(have) - terms.collateral < fee)
      return Err(Status::Refused(fmt::format(
          "{}: the terms ask a stake of {} (plus the order fee {}), this node's wallet holds {}",
          what, opt_.policy->FormatAmount(terms.collateral), opt_.policy->FormatAmount(fee),
          opt_.policy->FormatSignedAmount(have))));
  }
  const ledger::KeyBytes me = opt_.wallet_key->GetPublicKey().bytes();
  const std::string bytes = ledger::JobAcceptanceSigningBytes(payer, seq, epoch, me, amount, terms,
                                                              opt_.policy->network_id);
  return opt_.wallet_key->Sign(core::AsBytes(bytes)).bytes();
}

Status ComputeService::CheckEscrow(const Checked& c, const crypto::Hash& escrow_id,
                                   economy::Amount* price, uint64_t* unstaked) const {
  const std::string what = fmt::format("job {}: escrow {}", c.id_hex.substr(0, 16),
                                       core::ToHex(escrow_id).substr(0, 16));
  if (!opt_.escrow_of)
    return Status::NotFound(
        fmt::format("{}: this node's economic.toml names no committee to ask", what));
  DFRP_ASSIGN_OR_RETURN(ledger::EscrowView e, opt_.escrow_of(escrow_id));
  const crypto::Hash id = compute::JobId(c.ctx, opt_.policy->network_id);
  if (!e.is_job || e.job.job_id != id)
    return Status::Refused(fmt::format("{} is not a compute escrow for this job", what));
  if (e.provider != opt_.wallet_key->GetPublicKey().bytes())
    return Status::Refused(
        fmt::format("{} pays {}, not this node", what, AddressOfBytes(e.provider)));
  if (e.payer != c.ctx.client)
    return Status::Refused(
        fmt::format("{} is paid by {}, not by the job's client", what, AddressOfBytes(e.payer)));
  if (!e.settled.empty() || e.remaining != e.amount)
    return Status::Refused(fmt::format("{} is settled already", what));
  *price = e.job.price;
  *unstaked = e.collateral_staked() >= e.job.collateral ? 0 : e.job.collateral;
  return Status::OK();
}

Result<json> ComputeService::Submit(std::string_view wire, std::optional<crypto::Hash> escrow,
                                    std::vector<std::string> input_from) {
  if (input_from.size() > 8)
    return Err(Status::InvalidArgument("\"input_from\": at most 8 node URLs"));
  for (const auto& u : input_from)
    if (!u.starts_with("http://") || u.size() > 256)
      return Err(Status::InvalidArgument(
          fmt::format("\"input_from\": '{}' is not a node's http:// URL", u.substr(0, 80))));
  {
    auto ctx = compute::DecodeJob(wire, opt_.policy->network_id);
    if (ctx) {
      const std::string id_hex = core::ToHex(compute::JobId(*ctx, opt_.policy->network_id));
      core::MutexLock lock(&mu_);
      if (auto it = jobs_.find(id_hex); it != jobs_.end()) return ToJson(it->second);
    }
  }
  DFRP_ASSIGN_OR_RETURN(Checked checked, Check(wire, !escrow.has_value()));
  // The price the weight sets max_fee against: the escrow's for a paid job, else the quote's.
  economy::Amount asked = checked.quote.total;
  uint64_t unstaked = 0;
  if (escrow) DFRP_RETURN_IF_ERROR(CheckEscrow(checked, *escrow, &asked, &unstaked));
  if (unstaked > 0) {
    {
      core::MutexLock lock(&mu_);
      if (queue_.size() >= opt_.max_queue)
        return Err(Status::Busy(fmt::format(
            "this node's job queue is full ({} jobs): try another node or later (nothing was "
            "staked)",
            queue_.size())));
    }
    // The terms ask a stake: staked before the job is taken, or the job is not taken (no
    // release is voted without it, so running it would be work for nothing).
    if (!opt_.stake)
      return Err(
          Status::Refused(fmt::format("job {}: its escrow asks a stake, and this node "
                                      "stakes no collateral",
                                      checked.id_hex.substr(0, 16))));
    auto staked = opt_.stake(*escrow, unstaked);
    if (!staked)
      return Err(staked.error().WithContext(
          fmt::format("job {}: staking its collateral", checked.id_hex.substr(0, 16))));
  }
  compute::JobContext ctx = std::move(checked.ctx);
  const std::string id_hex = checked.id_hex;
  const economy::Quote& q = checked.quote;
  const int64_t now_ms = opt_.clock->NowUnixMillis();

  Job j;
  j.ctx = std::move(ctx);
  j.id_hex = id_hex;
  j.state = "queued";
  if (escrow) {
    j.escrow = *escrow;
    j.quote = {{"escrow", core::ToHex(*escrow)}};
  } else {
    j.quote = QuoteJson(q);
  }
  j.submitted_ms = now_ms;
  j.input_from = std::move(input_from);
  // One acceptance at a time (the files are written outside mu_, which the API's readers
  // take): a duplicate sent concurrently finds the first in jobs_, and the queue's bound holds.
  core::MutexLock accepting(&submit_mu_);
  {
    core::MutexLock lock(&mu_);
    if (auto it = jobs_.find(id_hex); it != jobs_.end()) return ToJson(it->second);
    if (queue_.size() >= opt_.max_queue)
      return Err(
          Status::Busy(fmt::format("this node's job queue is full ({} jobs): try another "
                                   "node or later",
                                   queue_.size())));
  }
  const double similarity =
      std::clamp(economy::CosineSimilarity(j.ctx.vector, opt_.vector).value_or(0.0), 0.0, 1.0);
  j.weight =
      admission_.Weigh(AddressOfBytes(j.ctx.client), j.ctx.max_fee, asked, similarity, now_ms);
  // Durable before it is acknowledged: the signed job, then its state.
  const std::string dir = core::JoinPath(opt_.dir, id_hex);
  DFRP_RETURN_IF_ERROR(opt_.fs->CreateDirRecursive(dir));
  DFRP_RETURN_IF_ERROR(core::WriteFileAtomic(opt_.fs, core::JoinPath(dir, "job.bin"), wire));
  DFRP_RETURN_IF_ERROR(Save(j));
  json out = ToJson(j);
  {
    core::MutexLock lock(&mu_);
    jobs_[id_hex] = std::move(j);
    queue_.push_back(id_hex);
  }
  cv_.SignalAll();
  return out;
}

std::vector<crypto::Hash> ComputeService::UnsettledEscrows() const {
  core::MutexLock lock(&mu_);
  std::vector<crypto::Hash> out;
  for (const auto& [id, j] : jobs_)
    if (j.escrow && j.settled.empty()) out.push_back(*j.escrow);
  return out;
}

Status ComputeService::SetSettlement(const crypto::Hash& escrow_id, bool released,
                                     uint64_t to_provider) {
  core::MutexLock lock(&mu_);
  for (auto& [id, j] : jobs_) {
    if (j.escrow != escrow_id || !j.settled.empty()) continue;
    j.settled = released ? "released" : "refunded";
    j.paid_base_units = released ? to_provider : 0;
    return Save(j);
  }
  return Status::OK();
}

std::optional<std::string> ComputeService::ClaimOf(const crypto::Hash& job_id) const {
  core::MutexLock lock(&mu_);
  auto it = jobs_.find(core::ToHex(job_id));
  if (it == jobs_.end() || it->second.state != "done" || it->second.claim_hex.empty())
    return std::nullopt;
  auto bytes = core::FromHex(it->second.claim_hex);
  if (!bytes) return std::nullopt;
  return *bytes;
}

Result<json> ComputeService::JobJson(const std::string& id_hex) const {
  core::MutexLock lock(&mu_);
  auto it = jobs_.find(id_hex);
  if (it == jobs_.end())
    return Err(Status::NotFound(fmt::format("no job {} on this node", id_hex.substr(0, 64))));
  return ToJson(it->second);
}

Result<std::string> ComputeService::OutputPath(const std::string& id_hex, uint32_t rank) const {
  core::MutexLock lock(&mu_);
  auto it = jobs_.find(id_hex);
  if (it == jobs_.end())
    return Err(Status::NotFound(fmt::format("no job {} on this node", id_hex.substr(0, 64))));
  if (it->second.state != "done")
    return Err(Status::NotFound(
        fmt::format("job {} has no result ({})", id_hex.substr(0, 16), it->second.state)));
  if (rank >= it->second.ctx.ranks)
    return Err(Status::NotFound(
        fmt::format("job {} has {} ranks", id_hex.substr(0, 16), it->second.ctx.ranks)));
  return core::JoinPath(opt_.dir, fmt::format("{}/run/results/rank-{}.out", id_hex, rank));
}

json ComputeService::Json() const {
  core::MutexLock lock(&mu_);
  std::map<std::string, uint64_t> counts, settled;
  uint64_t earned = 0;
  for (const auto& [id, j] : jobs_) {
    ++counts[j.state];
    if (!j.escrow) continue;
    ++settled[j.settled.empty() ? "open" : j.settled];
    earned += j.paid_base_units;
  }
  json apps = json::array();
  for (const auto& a : opt_.apps) apps.push_back(a.name);
  const economy::PriceVector prices = opt_.prices();
  return {{"provider", wallet::AddressOf(opt_.wallet_key->GetPublicKey())},
          {"vector", opt_.vector},
          {"cpu_sec_price", opt_.policy->FormatPrice(prices[0])},
          {"gpu", opt_.has_gpu},
          {"slots", opt_.slots},
          {"queued", queue_.size()},
          {"running", running_id_},
          {"jobs", counts},
          {"paid_jobs", settled},
          {"earned", opt_.policy->FormatAmount(earned)},
          {"earned_base_units", earned},
          {"refused", refused_},
          {"apps", apps},
          {"max_wall_seconds", opt_.max_wall_seconds},
          {"vector_threshold", opt_.policy->compute.vector_threshold}};
}

json ComputeService::JobsJson(std::string_view state, size_t limit) const {
  core::MutexLock lock(&mu_);
  std::vector<const Job*> matched;
  for (const auto& [id, j] : jobs_)
    if (state.empty() || j.state == state) matched.push_back(&j);
  // Newest first; the id breaks ties so the order is stable between calls.
  std::sort(matched.begin(), matched.end(), [](const Job* a, const Job* b) {
    return a->submitted_ms != b->submitted_ms ? a->submitted_ms > b->submitted_ms
                                              : a->id_hex < b->id_hex;
  });
  json jobs = json::array();
  for (size_t i = 0; i < matched.size() && i < limit; ++i) jobs.push_back(ToJson(*matched[i]));
  return {{"jobs", std::move(jobs)}, {"total", matched.size()}};
}

Status ComputeService::FetchInputs(const Job& j, const std::string& dir,
                                   std::vector<std::string>* paths, json* fetched) {
  DFRP_RETURN_IF_ERROR(opt_.fs->CreateDirRecursive(dir));
  for (size_t i = 0; i < j.ctx.inputs.size(); ++i) {
    const std::string path = core::JoinPath(dir, std::to_string(i));
    std::string from;
    DFRP_RETURN_IF_ERROR(opt_.fetch_input(j.ctx.inputs[i], j.input_from, path, &from)
                             .WithContext(fmt::format("input {}", i)));
    paths->push_back(path);
    fetched->push_back(
        {{"input", i}, {"shard_id", j.ctx.inputs[i].shard_id.ToString()}, {"from", from}});
  }
  return Status::OK();
}

void ComputeService::RunLoop() {
  for (;;) {
    std::string id;
    {
      core::MutexLock lock(&mu_);
      while (!stop_ && queue_.empty()) cv_.Wait(&mu_);
      if (stop_) return;
      std::vector<QueuedJob> ranked;
      ranked.reserve(queue_.size());
      for (const auto& q : queue_) {
        const Job& j = jobs_.at(q);
        ranked.push_back({j.escrow.has_value(), j.weight});
      }
      const size_t next = NextJob(ranked);
      id = queue_[next];
      queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(next));
    }
    RunOne(id);
  }
}

void ComputeService::RunOne(const std::string& id) {
  Job snapshot;
  {
    core::MutexLock lock(&mu_);
    Job& j = jobs_[id];
    // No provider starts a job after its expiry (PROTOCOL.md, "The job"), nor while stopping.
    const uint64_t now_s =
        static_cast<uint64_t>(std::max<int64_t>(0, opt_.clock->NowUnixMillis() / 1000));
    if (stop_) {
      j.state = "interrupted";
    } else if (j.ctx.expiry_unix <= now_s) {
      j.state = "expired";
    } else {
      j.state = "running";
      j.started_ms = opt_.clock->NowUnixMillis();
      running_id_ = id;
    }
    snapshot = j;
  }
  (void)Save(snapshot);
  if (snapshot.state != "running") return;
  const compute::AppSpec* app = compute::FindApp(opt_.apps, snapshot.ctx.app);
  compute::RunRequest req;
  req.program = app != nullptr ? app->path : "";
  req.args = snapshot.ctx.args;
  req.ranks = snapshot.ctx.ranks;
  req.limits = snapshot.ctx.limits;
  req.job_dir = core::JoinPath(opt_.dir, id + "/run");
  req.on_pid = [this](pid_t pid) {
    core::MutexLock lock(&mu_);
    running_pid_ = pid;
    // Stop() came between the queue and the start: stop this one too.
    if (pid > 0 && stop_) kill(pid, SIGTERM);
  };
  // The inputs first, verified; an "input" argument becomes its file's path.
  const std::string inputs_dir = core::JoinPath(opt_.dir, id + "/inputs");
  json fetched = json::array();
  Status inputs_ok;
  if (!snapshot.ctx.inputs.empty()) {
    std::vector<std::string> paths;
    inputs_ok = FetchInputs(snapshot, inputs_dir, &paths, &fetched);
    if (inputs_ok.ok() && app != nullptr)
      for (size_t i = 0; i < app->args.size() && i < req.args.size(); ++i)
        if (app->args[i].type == "input") req.args[i] = paths.at(std::stoul(req.args[i]));
    // A client's binary (its first argument, an input) is the program, run in bubblewrap.
    if (inputs_ok.ok() && app != nullptr && app->client_binary && !req.args.empty()) {
      req.program = req.args.front();
      req.args.erase(req.args.begin());
      req.sandbox = true;
    }
  }
  core::Result<compute::RunReport> rep = inputs_ok.ok()
                                             ? compute::RunJob(*opt_.fs, opt_.exec, req)
                                             : core::Result<compute::RunReport>(Err(inputs_ok));
  // The inputs are the client's to keep: they go when the job ends (the empty folder stays).
  if (auto names = opt_.fs->ListDir(inputs_dir); names.has_value())
    for (const auto& n : *names) (void)opt_.fs->RemoveFile(core::JoinPath(inputs_dir, n));
  // The claim is signed and the state saved outside mu_ (the API's readers take it).
  json report;
  std::string state, claim_hex, root_hex;
  if (!rep) {
    state = "failed";
    report = {{"error", rep.error().message()}};
    if (!inputs_ok.ok()) report["end"] = "input";
  } else {
    report = {{"end", rep->end},
              {"exit_code", rep->exit_code},
              {"signal", rep->signal},
              {"cpu_ms", rep->usage.cpu_ms},
              {"wall_ms", rep->usage.wall_ms},
              {"max_rss_bytes", rep->usage.max_rss_bytes},
              {"user", rep->user},
              {"limits", rep->limits}};
    if (!rep->problem.empty()) report["problem"] = rep->problem;
    if (!rep->cgroup.empty())
      report["cgroup"] = {{"version", rep->cgroup},
                          {"memory_peak_bytes", rep->memory_peak_bytes},
                          {"oom_kills", rep->oom_kills},
                          {"forks_refused", rep->forks_refused}};
    if (!fetched.empty()) report["inputs"] = fetched;
    if (rep->ok()) {
      compute::ResultClaim c;
      c.job_id = compute::JobId(snapshot.ctx, opt_.policy->network_id);
      c.result_root = rep->result_root;
      c.ranks = snapshot.ctx.ranks;
      c.usage = rep->usage;
      compute::SignClaim(&c, *opt_.wallet_key, opt_.policy->network_id);
      claim_hex = core::ToHex(compute::EncodeClaim(c, opt_.policy->network_id));
      root_hex = core::ToHex(rep->result_root);
      state = "done";
    } else {
      state = rep->end == "stopped" ? "interrupted" : "failed";
    }
  }
  {
    core::MutexLock lock(&mu_);
    running_id_.clear();
    Job& j = jobs_[id];
    j.state = state;
    j.report = report;
    j.claim_hex = claim_hex;
    j.result_root_hex = root_hex;
    snapshot = j;
  }
  (void)Save(snapshot);
}

}  // namespace dfrp::node
