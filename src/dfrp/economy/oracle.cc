#include "dfrp/economy/oracle.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <nlohmann/json.hpp>

namespace dfrp::economy {

using core::Err;
using core::Result;
using core::Status;

namespace {

constexpr size_t kMaxCatchUpEpochs = 64;

template <size_t N>
std::string ArrayToText(const std::array<uint64_t, N>& v) {
  std::string s = "[";
  for (size_t i = 0; i < N; ++i) s += fmt::format("{}{}", i ? "," : "", v[i]);
  return s + "]";
}

template <size_t N>
std::optional<std::array<uint64_t, N>> ArrayFromText(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_array() || j.size() != N) return std::nullopt;
  std::array<uint64_t, N> out{};
  for (size_t i = 0; i < N; ++i) {
    if (!j[i].is_number_unsigned()) return std::nullopt;
    out[i] = j[i].get<uint64_t>();
  }
  return out;
}

}  // namespace

std::string PricesToText(const PriceVector& v) { return ArrayToText(v); }
std::optional<PriceVector> PricesFromText(const std::string& text) {
  return ArrayFromText<kResourceCount>(text);
}

Result<std::unique_ptr<PriceOracle>> PriceOracle::Open(const std::string& state_dir,
                                                       const EconomicPolicy& policy,
                                                       const OracleCapacity& capacity,
                                                       core::Clock* clock) {
  std::unique_ptr<PriceOracle> o(new PriceOracle(policy, capacity, clock));
  o->path_ = state_dir + "/market.db";
  if (sqlite3_open_v2(o->path_.c_str(), &o->db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string msg = o->db_ ? sqlite3_errmsg(o->db_) : "out of memory";
    return Err(Status::IOError(fmt::format("cannot open {}: {}", o->path_, msg)));
  }
  sqlite3_busy_timeout(o->db_, 5000);
  DFRP_RETURN_IF_ERROR(o->Load());
  return o;
}

PriceOracle::~PriceOracle() {
  if (db_) sqlite3_close(db_);
}

Status PriceOracle::Load() {
  const auto damaged = [&](std::string_view why) {
    return Status::Corruption(fmt::format(
        "{} is damaged ({}): move it aside (mv {} {}.damaged); it holds only the price history, "
        "so prices restart from the measured capacity",
        path_, why, path_, path_));
  };
  char* err = nullptr;
  // EXTRA while a new database turns to WAL, so that the rollback journal of that change is
  // gone for good (ledger/authority.cc says why).
  const char* schema =
      "PRAGMA synchronous=EXTRA; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
      "CREATE TABLE IF NOT EXISTS epochs (epoch INTEGER PRIMARY KEY, unix_ms INTEGER NOT NULL,"
      " prices TEXT NOT NULL, utilization TEXT NOT NULL);";
  if (sqlite3_exec(db_, schema, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string why = err ? err : "unknown";
    sqlite3_free(err);
    return damaged(why);
  }
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_,
                         "SELECT epoch, unix_ms, prices, utilization FROM epochs ORDER BY epoch "
                         "DESC LIMIT 1",
                         -1, &st, nullptr) != SQLITE_OK)
    return damaged(sqlite3_errmsg(db_));
  const int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    current_.epoch = static_cast<uint64_t>(sqlite3_column_int64(st, 0));
    current_.unix_ms = sqlite3_column_int64(st, 1);
    auto p = PricesFromText(reinterpret_cast<const char*>(sqlite3_column_text(st, 2)));
    auto u =
        ArrayFromText<kResourceCount>(reinterpret_cast<const char*>(sqlite3_column_text(st, 3)));
    sqlite3_finalize(st);
    if (!p || !u) return damaged(fmt::format("epoch {} does not hold 6 prices", current_.epoch));
    current_.prices = *p;
    for (size_t i = 0; i < kResourceCount; ++i) {
      current_.utilization[i] = static_cast<uint32_t>(std::min<uint64_t>((*u)[i], 10000));
      // A policy whose floors or ceilings changed since: the prices move into the new range.
      current_.prices[i] =
          std::clamp(current_.prices[i], policy_.pricing.floor[i], policy_.pricing.ceiling[i]);
    }
    has_history_ = true;
    return Status::OK();
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return damaged(sqlite3_errmsg(db_));
  // A new history: the start vector, at the epoch now (recorded when that epoch ends).
  current_.epoch = EpochAt(clock_->NowUnixMillis());
  current_.unix_ms = clock_->NowUnixMillis();
  current_.prices = PriceVectorFromCapacity(policy_.pricing, capacity_.figures);
  current_.utilization = {};
  return Status::OK();
}

uint64_t PriceOracle::EpochAt(int64_t unix_ms) const {
  const int64_t len = static_cast<int64_t>(policy_.pricing.epoch_seconds) * 1000;
  return unix_ms <= 0 ? 0 : static_cast<uint64_t>(unix_ms / len);
}

EpochRecord PriceOracle::Current() const {
  std::lock_guard lock(mu_);
  return current_;
}

EpochRecord PriceOracle::Current(bool* any_ended) const {
  std::lock_guard lock(mu_);
  *any_ended = has_history_;
  return current_;
}

std::vector<EpochRecord> PriceOracle::History(size_t limit) const {
  std::lock_guard lock(mu_);
  std::vector<EpochRecord> out;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_,
                         "SELECT epoch, unix_ms, prices, utilization FROM epochs ORDER BY epoch "
                         "DESC LIMIT ?",
                         -1, &st, nullptr) != SQLITE_OK)
    return out;
  sqlite3_bind_int64(st, 1, static_cast<int64_t>(std::min<size_t>(limit, 1'000'000)));
  while (sqlite3_step(st) == SQLITE_ROW) {
    EpochRecord r;
    r.epoch = static_cast<uint64_t>(sqlite3_column_int64(st, 0));
    r.unix_ms = sqlite3_column_int64(st, 1);
    auto p = PricesFromText(reinterpret_cast<const char*>(sqlite3_column_text(st, 2)));
    auto u =
        ArrayFromText<kResourceCount>(reinterpret_cast<const char*>(sqlite3_column_text(st, 3)));
    if (!p || !u) continue;
    r.prices = *p;
    for (size_t i = 0; i < kResourceCount; ++i)
      r.utilization[i] = static_cast<uint32_t>(std::min<uint64_t>((*u)[i], 10000));
    out.push_back(r);
  }
  sqlite3_finalize(st);
  std::reverse(out.begin(), out.end());
  return out;
}

Utilization PriceOracle::UtilizationOf(const EpochUsage& u) const {
  const double secs = policy_.pricing.epoch_seconds;
  const CapacityFigures& c = capacity_.figures;
  Utilization out{};
  auto set = [&](Resource r, double used, double cap) {
    out[static_cast<size_t>(r)] = UtilizationBps(used, cap);
  };
  set(Resource::kCpuSec, static_cast<double>(u.cpu_usec) / 1e6, capacity_.cores * secs);
  set(Resource::kGpuSec, static_cast<double>(u.gpu_usec) / 1e6, capacity_.gpus * secs);
  set(Resource::kStorageGibMonth, static_cast<double>(u.bytes_stored),
      static_cast<double>(u.bytes_quota));
  set(Resource::kWriteGib, static_cast<double>(u.bytes_written), c.write_mb_per_sec * 1e6 * secs);
  set(Resource::kReadGib, static_cast<double>(u.bytes_read), c.read_mb_per_sec * 1e6 * secs);
  set(Resource::kProof, static_cast<double>(u.proofs), c.read_iops * secs);
  return out;
}

Status PriceOracle::Append(const EpochRecord& r) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_,
                         "INSERT OR IGNORE INTO epochs (epoch, unix_ms, prices, utilization) "
                         "VALUES (?, ?, ?, ?)",
                         -1, &st, nullptr) != SQLITE_OK)
    return Status::IOError(fmt::format("{}: {}", path_, sqlite3_errmsg(db_)));
  const std::string prices = PricesToText(r.prices);
  std::array<uint64_t, kResourceCount> u{};
  for (size_t i = 0; i < kResourceCount; ++i) u[i] = r.utilization[i];
  const std::string util = ArrayToText(u);
  sqlite3_bind_int64(st, 1, static_cast<int64_t>(r.epoch));
  sqlite3_bind_int64(st, 2, r.unix_ms);
  sqlite3_bind_text(st, 3, prices.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 4, util.c_str(), -1, SQLITE_TRANSIENT);
  const int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE)
    return Status::IOError(
        fmt::format("cannot record epoch {} in {}: {}", r.epoch, path_, sqlite3_errmsg(db_)));
  return Status::OK();
}

Result<size_t> PriceOracle::Advance(
    const std::function<EpochUsage(uint64_t)>& usage,
    const std::array<std::vector<NeighbourPrice>, kResourceCount>& neighbours) {
  std::lock_guard lock(mu_);
  const int64_t now = clock_->NowUnixMillis();
  const uint64_t now_epoch = EpochAt(now);
  // The next epoch to end: the one after the last recorded, or the start vector's own.
  uint64_t next = has_history_ ? current_.epoch + 1 : current_.epoch;
  if (next >= now_epoch) return size_t{0};
  if (now_epoch - next > kMaxCatchUpEpochs) next = now_epoch - kMaxCatchUpEpochs;
  size_t applied = 0;
  for (uint64_t e = next; e < now_epoch; ++e) {
    EpochRecord r;
    r.epoch = e;
    r.unix_ms = now;
    r.utilization = UtilizationOf(usage(e));
    r.prices = StepPrices(current_.prices, r.utilization, policy_.pricing);
    if (e + 1 == now_epoch) {
      for (size_t i = 0; i < kResourceCount; ++i)
        r.prices[i] = BlendPrice(r.prices[i], neighbours[i], policy_.pricing,
                                 policy_.pricing.floor[i], policy_.pricing.ceiling[i]);
    }
    DFRP_RETURN_IF_ERROR(Append(r));
    current_ = r;
    has_history_ = true;
    ++applied;
  }
  return applied;
}

}  // namespace dfrp::economy
