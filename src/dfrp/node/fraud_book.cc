#include "dfrp/node/fraud_book.h"

#include <fmt/format.h>

#include <algorithm>

#include "dfrp/core/bytes.h"

namespace dfrp::node {

using core::Err;
using core::Result;
using core::Status;
using nlohmann::json;

namespace {
constexpr std::string_view kCertSuffix = ".cert";

std::string DeliveryBody(std::string_view wire) {
  return json{{"certificate", core::ToHex(wire)}}.dump();
}
}  // namespace

FraudBook::FraudBook(FraudBookOptions opt)
    : opt_(std::move(opt)), ticker_(opt_.clock, opt_.spread_interval_ms) {
  PeerClientOptions po;
  po.threads = 1;
  po.max_connections_per_peer = 2;
  po.request_timeout_ms = 5000;
  po.retries = 1;
  client_ = std::make_unique<PeerClient>(po);
}

FraudBook::~FraudBook() {
  ticker_.Stop();
  client_.reset();  // fails what is in flight and waits for its callbacks
}

void FraudBook::Start() {
  ticker_.Start([this] { SendDue(opt_.max_sends_per_tick); });
}

void FraudBook::Stop() { ticker_.Stop(); }

Result<std::unique_ptr<FraudBook>> FraudBook::Open(FraudBookOptions opt) {
  DFRP_RETURN_IF_ERROR(opt.fs->CreateDirRecursive(opt.dir).WithContext(opt.dir));
  std::unique_ptr<FraudBook> b(new FraudBook(std::move(opt)));
  DFRP_ASSIGN_OR_RETURN(std::vector<std::string> names, b->opt_.fs->ListDir(b->opt_.dir));
  std::sort(names.begin(), names.end());
  core::MutexLock lock(&b->mu_);
  for (const std::string& name : names) {
    if (!name.ends_with(kCertSuffix)) continue;  // an atomic write's temporary file
    const std::string path = core::JoinPath(b->opt_.dir, name);
    auto wire = core::ReadWholeFile(b->opt_.fs, path);
    auto r = wire ? compute::CheckFraudCertificate(*wire, b->opt_.committee, b->opt_.network_id)
                  : Result<compute::FraudRecord>(Err(wire.error()));
    if (!r) {
      b->notes_.push_back(fmt::format("fraud record {} not taken: {}", path, r.error().message()));
      continue;
    }
    if (b->by_id_.count(r->id)) continue;
    if (b->records_.size() >= b->opt_.max_records) break;
    b->by_id_[r->id] = b->records_.size();
    ++b->per_provider_[r->provider];
    b->escrows_.insert(r->escrow_id);
    b->records_.push_back({.record = std::move(*r), .delivered = {}, .in_flight = {}});
  }
  return b;
}

Result<FraudBook::Added> FraudBook::Add(std::string_view wire) {
  auto checked = compute::CheckFraudCertificate(wire, opt_.committee, opt_.network_id);
  if (!checked) {
    core::MutexLock lock(&mu_);
    ++refused_;
    return Err(checked.error());
  }
  Added out;
  {
    core::MutexLock lock(&mu_);
    if (auto it = by_id_.find(checked->id); it != by_id_.end()) {
      out.record = records_[it->second].record;
      return out;
    }
    if (records_.size() >= opt_.max_records)
      return Err(Status::Busy(fmt::format(
          "this node keeps {} fraud records, its most; this one is not kept", records_.size())));
    // Kept (synced) before it counts, under the lock so that two copies arriving at once are
    // kept once.
    DFRP_RETURN_IF_ERROR(core::WriteFileAtomic(
        opt_.fs, core::JoinPath(opt_.dir, core::ToHex(checked->id) + std::string(kCertSuffix)),
        wire));
    by_id_[checked->id] = records_.size();
    ++per_provider_[checked->provider];
    escrows_.insert(checked->escrow_id);
    records_.push_back({.record = *checked, .delivered = {}, .in_flight = {}});
  }
  out.record = std::move(*checked);
  out.added = true;
  out.spread_to = SendDue(opt_.max_sends_per_tick);
  return out;
}

size_t FraudBook::SendDue(size_t budget) {
  const std::vector<std::string> peers = opt_.peers ? opt_.peers() : std::vector<std::string>{};
  if (peers.empty() || budget == 0) return 0;
  struct Send {
    size_t index;
    std::string url, body;
  };
  std::vector<Send> sends;
  {
    core::MutexLock lock(&mu_);
    // Newest first: a new record reaches every peer before old ones catch a newcomer up.
    for (size_t i = records_.size(); i-- > 0 && sends.size() < budget;) {
      Kept& k = records_[i];
      for (const std::string& url : peers) {
        if (sends.size() >= budget) break;
        if (k.delivered.count(url) || k.in_flight.count(url)) continue;
        k.in_flight.insert(url);
        sends.push_back({i, url, DeliveryBody(k.record.certificate)});
      }
    }
  }
  for (Send& s : sends) {
    PeerRequest req;
    req.url = s.url;
    req.method = "POST";
    req.target = "/v1/compute/fraud";
    req.headers = {{"Content-Type", "application/json"}};
    req.body = std::move(s.body);
    req.idempotent = true;  // a record sent twice is kept once
    client_->Send(std::move(req), [this, index = s.index, url = s.url](Result<HttpResponse> r) {
      // A refusal (4xx) will not change: the peer is done with this record.
      Answered(index, url, r.has_value() && r->status < 500);
    });
  }
  return sends.size();
}

void FraudBook::Answered(size_t index, const std::string& url, bool delivered) {
  core::MutexLock lock(&mu_);
  Kept& k = records_[index];  // records are never removed
  k.in_flight.erase(url);
  if (delivered) {
    k.delivered.insert(url);
    ++delivered_;
  } else {
    ++send_failed_;
  }
}

bool FraudBook::HasEscrow(const crypto::Hash& escrow_id) const {
  core::MutexLock lock(&mu_);
  return escrows_.contains(escrow_id);
}

size_t FraudBook::CountFor(const ledger::KeyBytes& provider) const {
  core::MutexLock lock(&mu_);
  auto it = per_provider_.find(provider);
  return it == per_provider_.end() ? 0 : it->second;
}

json FraudBook::Json(std::string_view address, size_t limit) const {
  core::MutexLock lock(&mu_);
  json out = json::array();
  size_t total = 0;
  for (auto it = records_.rbegin(); it != records_.rend(); ++it) {
    if (!address.empty() && ledger::AddressOfKey(it->record.provider) != address) continue;
    if (++total <= limit) out.push_back(compute::FraudRecordJson(it->record));
  }
  return json{{"records", out}, {"total", total}};
}

json FraudBook::Summary() const {
  core::MutexLock lock(&mu_);
  return json{{"records", records_.size()},
              {"providers", per_provider_.size()},
              {"delivered", delivered_},
              {"send_failed", send_failed_},
              {"refused", refused_}};
}

std::vector<std::string> FraudBook::notes() const {
  core::MutexLock lock(&mu_);
  return notes_;
}

}  // namespace dfrp::node
