#include "dfrp/node/read_desk.h"

#include <fmt/format.h>

#include "dfrp/core/sqlite_stmt.h"
#include "dfrp/ledger/wire.h"

namespace dfrp::node {

using core::Err;
using core::Result;
using core::SqlStmt;
using core::Status;
using nlohmann::json;

namespace {

Status SqlError(sqlite3* db, const std::string& path, std::string_view what) {
  return Status::IOError(
      fmt::format("read receipts {}: {}: {}", path, what, db ? sqlite3_errmsg(db) : "cannot open"));
}

}  // namespace

Result<std::unique_ptr<ReadDesk>> ReadDesk::Open(const std::string& path,
                                                 ledger::LedgerClient client,
                                                 const ledger::KeyBytes& provider,
                                                 const economy::EconomicPolicy* policy,
                                                 core::Clock* clock) {
  std::unique_ptr<ReadDesk> d(new ReadDesk(std::move(client), provider, policy, clock));
  core::MutexLock lock(&d->mu_);
  if (sqlite3_open_v2(path.c_str(), &d->db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK)
    return Err(SqlError(d->db_, path, "opening"));
  sqlite3_busy_timeout(d->db_, 5000);
  // Each kept receipt is money: every commit is synced before the bytes it pays for go out.
  // EXTRA while a new database turns to WAL (authority.cc says why), FULL after.
  char* err = nullptr;
  if (sqlite3_exec(d->db_,
                   "PRAGMA synchronous=EXTRA; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                   "CREATE TABLE IF NOT EXISTS receipts (escrow_id BLOB PRIMARY KEY, bytes_total "
                   "INTEGER NOT NULL, wire BLOB NOT NULL) WITHOUT ROWID;",
                   nullptr, nullptr, &err) != SQLITE_OK) {
    std::string why = err ? err : "?";
    sqlite3_free(err);
    return Err(Status::IOError(fmt::format("read receipts {}: {}", path, why)));
  }
  return d;
}

ReadDesk::~ReadDesk() {
  core::MutexLock lock(&mu_);
  if (db_) sqlite3_close(db_);
}

Status ReadDesk::Admit(std::string_view receipt_wire, uint64_t length) {
  const crypto::Hash& net = policy_->network_id;
  auto r = ledger::DecodeReceipt(receipt_wire, net);
  if (!r)
    return Status::InvalidArgument(fmt::format("X-Dfrp-Read-Receipt: {}", r.error().message()));
  const std::string what = fmt::format("paid read of {} bytes under read escrow {}", length,
                                       core::ToHex(r->escrow_id).substr(0, 16));
  auto refuse = [&](Status s) {
    core::MutexLock lock(&mu_);
    ++refused_;
    last_refusal_ = s.message();
    return s;
  };
  if (r->provider != provider_)
    return refuse(Status::InvalidArgument(
        fmt::format("{}: the receipt names provider {}, this node is {}", what,
                    ledger::AddressOfKey(r->provider), ledger::AddressOfKey(provider_))));
  std::optional<ledger::EscrowView> e;
  const int64_t asked = clock_->NowUnixMillis();
  {
    core::MutexLock lock(&mu_);
    if (auto it = escrows_.find(r->escrow_id); it != escrows_.end()) e = it->second;
    if (auto it = unknown_.find(r->escrow_id); !e && it != unknown_.end()) {
      if (asked < it->second)
        return Status::NotFound(fmt::format(
            "{}: the committee did not know the escrow when last asked; ask again later", what));
      unknown_.erase(it);
    }
  }
  if (!e) {
    auto fetched = client_.Escrow(r->escrow_id);  // f + 1 authorities agreeing
    if (!fetched) {
      if (fetched.error().IsNotFound()) {
        core::MutexLock lock(&mu_);
        if (unknown_.size() >= kMaxUnknown) unknown_.erase(unknown_.begin());
        unknown_[r->escrow_id] = asked + kUnknownEscrowMs;
      }
      return refuse(fetched.error());
    }
    e = *fetched;
    if (!e->is_read || e->provider != provider_)
      return refuse(
          Status::Refused(fmt::format("{}: it is not a read escrow this node ({}) provides", what,
                                      ledger::AddressOfKey(provider_))));
    core::MutexLock lock(&mu_);
    escrows_[r->escrow_id] = *e;
  }
  const int64_t now = clock_->NowUnixMillis();
  if (now >= static_cast<int64_t>(e->read.end_unix) * 1000)
    return refuse(Status::Refused(
        fmt::format("{}: the escrow ended at {} (Unix s); open another", what, e->read.end_unix)));
  if (Status v =
          ledger::VerifyReceipt(*r, r->escrow_id, e->payer, provider_, e->read.end_unix, net);
      !v.ok())
    return refuse(v);
  // The most bytes the escrow's amount pays for.
  const unsigned __int128 cap =
      (static_cast<unsigned __int128>(e->amount) << 20) / e->read.price_per_mib;
  core::MutexLock lock(&mu_);
  uint64_t served = served_[r->escrow_id];
  {
    SqlStmt st(db_, "SELECT bytes_total FROM receipts WHERE escrow_id = ?1");
    st.BindBlob(1, ledger::wire::View(r->escrow_id));
    const int step = st.Step();
    if (step == SQLITE_ROW) served = std::max(served, static_cast<uint64_t>(st.Int(0)));
    if (step != SQLITE_ROW && step != SQLITE_DONE)
      return Status::IOError(fmt::format("read receipts: {}", sqlite3_errmsg(db_)));
  }
  uint64_t need = 0;
  if (__builtin_add_overflow(served, length, &need) || need > cap) {
    ++refused_;
    last_refusal_ = fmt::format(
        "{}: the escrow pays for {} bytes in all and {} were served: it is spent; open another",
        what, static_cast<uint64_t>(cap > UINT64_MAX ? UINT64_MAX : cap), served);
    return Status::Refused(last_refusal_);
  }
  if (r->bytes_total < need) {
    ++refused_;
    last_refusal_ = fmt::format(
        "{}: the receipt covers {} bytes; {} were served under this escrow and this read is {}: "
        "sign a receipt for {} bytes",
        what, r->bytes_total, served, length, need);
    return Status::Refused(last_refusal_);
  }
  // Kept (synced) before a byte of the read goes out.
  SqlStmt up(db_,
             "INSERT INTO receipts VALUES (?1, ?2, ?3) ON CONFLICT (escrow_id) DO UPDATE SET "
             "bytes_total = ?2, wire = ?3 WHERE bytes_total < ?2");
  up.BindBlob(1, ledger::wire::View(r->escrow_id)).Bind(2, static_cast<int64_t>(r->bytes_total));
  up.BindBlob(3, receipt_wire);
  if (up.Step() != SQLITE_DONE)
    return Status::IOError(
        fmt::format("read receipts: keeping a receipt: {}", sqlite3_errmsg(db_)));
  served_[r->escrow_id] = need;
  ++admitted_;
  bytes_admitted_ += length;
  return Status::OK();
}

std::optional<StoredReceipt> ReadDesk::Best(const crypto::Hash& escrow_id) {
  core::MutexLock lock(&mu_);
  SqlStmt st(db_, "SELECT bytes_total, wire FROM receipts WHERE escrow_id = ?1");
  st.BindBlob(1, ledger::wire::View(escrow_id));
  if (st.Step() != SQLITE_ROW) return std::nullopt;
  return StoredReceipt{escrow_id, static_cast<uint64_t>(st.Int(0)), st.Blob(1)};
}

std::vector<StoredReceipt> ReadDesk::All() {
  core::MutexLock lock(&mu_);
  std::vector<StoredReceipt> out;
  SqlStmt st(db_, "SELECT escrow_id, bytes_total, wire FROM receipts ORDER BY escrow_id");
  while (st.Step() == SQLITE_ROW) {
    StoredReceipt s;
    const std::string id = st.Blob(0);
    if (id.size() != s.escrow_id.size()) continue;
    std::copy(id.begin(), id.end(), s.escrow_id.begin());
    s.bytes_total = static_cast<uint64_t>(st.Int(1));
    s.wire = st.Blob(2);
    out.push_back(std::move(s));
  }
  return out;
}

json ReadDesk::Json() {
  const std::vector<StoredReceipt> all = All();
  core::MutexLock lock(&mu_);
  json receipts = json::array();
  for (const auto& s : all) {
    json one{{"escrow", core::ToHex(s.escrow_id)}, {"bytes_total", s.bytes_total}};
    if (auto it = escrows_.find(s.escrow_id); it != escrows_.end())
      one["due_base_units"] = ledger::ReadDue(s.bytes_total, it->second.read, it->second.amount);
    receipts.push_back(std::move(one));
  }
  return json{{"reads_admitted", admitted_},
              {"bytes_admitted", bytes_admitted_},
              {"reads_refused", refused_},
              {"last_refusal", last_refusal_.empty() ? json() : json(last_refusal_)},
              {"receipts", receipts}};
}

}  // namespace dfrp::node
