#include "dfrp/ledger/authority.h"

#include <fmt/format.h>

#include <limits>

#include "dfrp/core/file_system.h"
#include "dfrp/core/sqlite_stmt.h"
#include "dfrp/wallet/address.h"

namespace dfrp::ledger {

using core::Err;
using core::Result;
using core::SqlStmt;
using core::Status;

namespace {

constexpr char kSchema[] = R"(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
  key BLOB PRIMARY KEY, balance INTEGER NOT NULL, next_seq INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS locks (
  sender BLOB NOT NULL, seq INTEGER NOT NULL, order_hash BLOB NOT NULL, order_wire BLOB NOT NULL,
  PRIMARY KEY (sender, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS certificates (
  sender BLOB NOT NULL, seq INTEGER NOT NULL, order_hash BLOB NOT NULL, cert BLOB NOT NULL,
  applied INTEGER NOT NULL UNIQUE, PRIMARY KEY (sender, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS equivocations (
  sender BLOB NOT NULL, seq INTEGER NOT NULL, order_a BLOB NOT NULL, order_b BLOB NOT NULL,
  PRIMARY KEY (sender, seq)) WITHOUT ROWID;
)";

template <size_t N>
std::string_view View(const std::array<uint8_t, N>& a) {
  return {reinterpret_cast<const char*>(a.data()), N};
}

template <size_t N>
bool ToArray(const std::string& s, std::array<uint8_t, N>* out) {
  if (s.size() != N) return false;
  std::memcpy(out->data(), s.data(), N);
  return true;
}

std::string Short(const KeyBytes& k) { return core::ToHex(View(k)).substr(0, 16); }

// An address for messages: the wallet address of a key, "committee" for the fee account.
std::string Name(const KeyBytes& k) {
  if (k == kCommitteeAccount) return "committee";
  auto key = KeyFrom(k);
  return key ? wallet::AddressOf(*key) : "key " + Short(k);
}

}  // namespace

std::string LedgerPath(const std::string& state_dir) {
  return core::JoinPath(state_dir, kLedgerFileName);
}

Result<std::unique_ptr<Authority>> Authority::Open(const AuthorityOptions& opt) {
  if (!opt.policy || !opt.key)
    return Err(Status::Internal("Authority::Open needs a policy and a key"));
  const auto& g = opt.policy->genesis;
  std::vector<std::pair<std::string, std::string>> members;
  for (const auto& a : g.committee) members.emplace_back(a.public_key_hex, a.pop_hex);
  if (members.empty())
    return Err(Status::InvalidArgument(
        fmt::format("{}: genesis.committee is empty: an authority needs a committee (one "
                    "member is a single operator's ledger)",
                    opt.policy->source)));
  DFRP_ASSIGN_OR_RETURN(Committee c, Committee::Make(0, members));
  if (opt.index >= c.size())
    return Err(Status::InvalidArgument(
        fmt::format("authority index {} is outside the committee of {} in {}", opt.index, c.size(),
                    opt.policy->source)));
  if (opt.key->GetPublicKey().bytes() != c.key(opt.index).key().bytes())
    return Err(Status::InvalidArgument(fmt::format(
        "this node's wallet key {} is not committee member {} ({}) of {}: use that member's "
        "wallet",
        opt.key->GetPublicKey().ToHex().substr(0, 16), opt.index, g.committee[opt.index].address,
        opt.policy->source)));
  if (g.supply > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    return Err(Status::InvalidArgument(fmt::format(
        "{}: the supply {} is past 2^63 - 1 base units, which a ledger balance cannot hold",
        opt.policy->source, g.supply)));
  std::unique_ptr<Authority> a(new Authority(opt, std::move(c)));
  DFRP_RETURN_IF_ERROR(a->Init());
  return a;
}

Authority::~Authority() {
  core::MutexLock lock(&mu_);
  if (db_) sqlite3_close_v2(db_);
  db_ = nullptr;
}

Status Authority::SqlError(std::string_view what) {
  const int rc = sqlite3_errcode(db_);
  std::string msg =
      fmt::format("ledger database {}: {} failed: {}", opt_.path, what, sqlite3_errmsg(db_));
  if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB) return Status::Corruption(msg);
  if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) return Status::Busy(msg + ": try again");
  return Status::IOError(msg);
}

Status Authority::Exec(const char* sql) {
  if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) return SqlError(sql);
  return Status::OK();
}

Status Authority::Init() {
  core::MutexLock lock(&mu_);
  if (sqlite3_open_v2(opt_.path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                      nullptr) != SQLITE_OK)
    return SqlError("opening");
  sqlite3_busy_timeout(db_, 5000);
  {
    SqlStmt check(db_, "PRAGMA integrity_check");
    if (check.Step() != SQLITE_ROW) return SqlError("integrity_check");
    if (check.Text(0) != "ok")
      return Status::Corruption(fmt::format(
          "ledger database {} fails its integrity check ({}): restore it from a peer or join "
          "the next epoch with a new key",
          opt_.path, check.Text(0)));
  }
  // Every commit is synced before it returns: a vote never leaves before its lock is on disk.
  DFRP_RETURN_IF_ERROR(Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL"));
  DFRP_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  Status s = Exec(kSchema);
  std::string version, network;
  if (s.ok()) {
    SqlStmt st(db_, "SELECT key, value FROM meta WHERE key IN ('schema_version', 'network_id')");
    while (st.Step() == SQLITE_ROW)
      (st.Text(0) == "schema_version" ? version : network) = st.Text(1);
  }
  const std::string want_network = core::ToHex(View(opt_.policy->network_id));
  if (s.ok() && version.empty()) {
    // New: the genesis allocations are the whole supply.
    SqlStmt meta(db_, "INSERT INTO meta VALUES (?1, ?2)");
    for (const auto& [k, v] : {std::pair<std::string, std::string>{
                                   "schema_version", std::to_string(kLedgerSchemaVersion)},
                               {"network_id", want_network},
                               {"supply", std::to_string(opt_.policy->genesis.supply)}}) {
      meta.Bind(1, k).Bind(2, v);
      if (meta.Step() != SQLITE_DONE) s = SqlError("writing meta");
      meta.Reset();
    }
    SqlStmt acct(db_, "INSERT INTO accounts VALUES (?1, ?2, 0)");
    acct.BindBlob(1, View(kCommitteeAccount)).Bind(2, int64_t{0});
    if (s.ok() && acct.Step() != SQLITE_DONE) s = SqlError("creating the committee's account");
    acct.Reset();
    for (const auto& alloc : opt_.policy->genesis.allocations) {
      if (!s.ok()) break;
      auto key = wallet::PublicKeyFromAddress(alloc.address);
      if (!key) {
        s = Status::InvalidArgument(
            fmt::format("genesis allocation {}: {}", alloc.address, key.error().message()));
        break;
      }
      acct.BindBlob(1, View(key->bytes())).Bind(2, static_cast<int64_t>(alloc.amount));
      if (acct.Step() != SQLITE_DONE) s = SqlError("funding a genesis allocation");
      acct.Reset();
    }
    version = std::to_string(kLedgerSchemaVersion);
    network = want_network;
  }
  if (s.ok()) {
    s = Exec("COMMIT");
    if (!s.ok()) (void)Exec("ROLLBACK");
  } else {
    (void)Exec("ROLLBACK");
  }
  DFRP_RETURN_IF_ERROR(s);
  if (version != std::to_string(kLedgerSchemaVersion))
    return Status::Corruption(
        fmt::format("ledger database {} has schema version '{}'; this dfrp reads {}", opt_.path,
                    version, kLedgerSchemaVersion));
  if (network != want_network)
    return Status::Corruption(fmt::format(
        "ledger database {} belongs to network {}, economic.toml's genesis is network {}: point "
        "STATE_DIR elsewhere or use that network's economic.toml",
        opt_.path, network, want_network));
  return Status::OK();
}

Result<AccountInfo> Authority::AccountLocked(const KeyBytes& key) {
  AccountInfo info;
  info.key = key;
  SqlStmt st(db_, "SELECT balance, next_seq FROM accounts WHERE key = ?1");
  st.BindBlob(1, View(key));
  const int step = st.Step();
  if (step == SQLITE_ROW) {
    info.balance = st.Int(0);
    info.next_seq = static_cast<uint64_t>(st.Int(1));
  } else if (step != SQLITE_DONE) {
    return Err(SqlError("reading an account"));
  }
  SqlStmt lk(db_, "SELECT order_hash FROM locks WHERE sender = ?1 AND seq = ?2");
  lk.BindBlob(1, View(key)).Bind(2, static_cast<int64_t>(info.next_seq));
  if (lk.Step() == SQLITE_ROW) {
    crypto::Hash h{};
    if (ToArray(lk.Blob(0), &h)) info.locked = h;
  }
  return info;
}

Result<AccountInfo> Authority::Account(const KeyBytes& key) {
  core::MutexLock lock(&mu_);
  return AccountLocked(key);
}

Result<Vote> Authority::HandleOrder(const SignedOrder& so) {
  const Order& o = so.order;
  if (o.epoch != committee_.epoch())
    return Err(
        Status::InvalidArgument(fmt::format("order {}: for epoch {}, the committee's is {}",
                                            core::ToHex(so.hash), o.epoch, committee_.epoch())));
  if (o.transfer.to == o.sender)
    return Err(Status::InvalidArgument(
        fmt::format("order {}: {} pays itself", core::ToHex(so.hash), Name(o.sender))));
  DFRP_RETURN_IF_ERROR(VerifyOrderSignature(so, network_id()));  // outside the lock: slow
  // The fee is part of what the sender signed: it pays that, never a fee changed later.
  const uint64_t fee = o.fee;
  if (fee < opt_.policy->order_fee)
    return Err(Status::Refused(
        fmt::format("order {}: it offers an order fee of {}, this committee asks {} (economic.toml "
                    "order_fee): sign it again with that fee",
                    core::ToHex(so.hash).substr(0, 16), opt_.policy->FormatAmount(fee),
                    opt_.policy->FormatAmount(opt_.policy->order_fee))));

  core::MutexLock lock(&mu_);
  // Every statement below runs in autocommit mode (each commit synced): a connection left
  // inside a transaction by a failed COMMIT would let a vote leave before its lock is on disk.
  if (!sqlite3_get_autocommit(db_))
    return Err(Status::Internal(fmt::format(
        "ledger database {}: a transaction was left open; restart the node", opt_.path)));
  DFRP_ASSIGN_OR_RETURN(AccountInfo acct, AccountLocked(o.sender));
  if (o.seq != acct.next_seq)
    return Err(Status::InvalidArgument(fmt::format(
        "order {}: sequence number {} of {} is not its next ({}){}", core::ToHex(so.hash), o.seq,
        Name(o.sender), acct.next_seq,
        o.seq < acct.next_seq ? ": that one is certified already" : ": certify the ones before")));
  const std::string wire = EncodeSignedOrder(so, network_id());
  {
    SqlStmt lk(db_, "SELECT order_hash, order_wire FROM locks WHERE sender = ?1 AND seq = ?2");
    lk.BindBlob(1, View(o.sender)).Bind(2, static_cast<int64_t>(o.seq));
    const int step = lk.Step();
    if (step == SQLITE_ROW) {
      crypto::Hash locked{};
      ToArray(lk.Blob(0), &locked);
      if (locked == so.hash)  // the same order again: the same vote (BLS signing is deterministic)
        return SignVote(so.hash, committee_.epoch(), opt_.index, *opt_.key, network_id());
      const std::string other = lk.Blob(1);
      SqlStmt eq(db_, "INSERT OR IGNORE INTO equivocations VALUES (?1, ?2, ?3, ?4)");
      eq.BindBlob(1, View(o.sender)).Bind(2, static_cast<int64_t>(o.seq));
      eq.BindBlob(3, other).BindBlob(4, wire);
      if (eq.Step() != SQLITE_DONE) return Err(SqlError("keeping an equivocation proof"));
      return Err(Status::Refused(fmt::format(
          "order {}: {} signed two different orders for sequence number {} (this authority "
          "voted for {}); the pair is kept as an equivocation proof and the account is frozen "
          "until a certificate or the epoch change settles it",
          core::ToHex(so.hash), Name(o.sender), o.seq, core::ToHex(locked))));
    }
    if (step != SQLITE_DONE) return Err(SqlError("reading a lock"));
  }
  uint64_t need = 0;
  if (__builtin_add_overflow(o.transfer.amount, fee, &need) ||
      need > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
      acct.balance < static_cast<int64_t>(need))
    return Err(Status::Refused(fmt::format(
        "order {}: {} has {} {} at authority {}, the transfer needs {} plus the order fee {}",
        core::ToHex(so.hash).substr(0, 16), Name(o.sender),
        opt_.policy->FormatSignedAmount(acct.balance), opt_.policy->genesis.currency, opt_.index,
        opt_.policy->FormatAmount(o.transfer.amount), opt_.policy->FormatAmount(fee))));
  {
    // On disk (synchronous=FULL) before the vote leaves.
    SqlStmt ins(db_, "INSERT INTO locks VALUES (?1, ?2, ?3, ?4)");
    ins.BindBlob(1, View(o.sender)).Bind(2, static_cast<int64_t>(o.seq));
    ins.BindBlob(3, View(so.hash)).BindBlob(4, wire);
    if (ins.Step() != SQLITE_DONE) return Err(SqlError("persisting a lock"));
  }
  return SignVote(so.hash, committee_.epoch(), opt_.index, *opt_.key, network_id());
}

Result<ApplyOutcome> Authority::HandleCertificate(const Certificate& cert) {
  DFRP_RETURN_IF_ERROR(VerifyCertificate(cert, committee_, network_id()));  // outside the lock
  const Order& o = cert.order.order;
  const uint64_t fee = o.fee;  // what the sender signed and a quorum voted for
  const std::string wire = EncodeCertificate(cert, network_id());

  core::MutexLock lock(&mu_);
  DFRP_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  auto fail = [&](Status s) REQUIRES(mu_) {
    (void)Exec("ROLLBACK");
    return s;
  };
  auto acct = AccountLocked(o.sender);
  if (!acct) return Err(fail(acct.error()));
  if (o.seq < acct->next_seq) {
    SqlStmt st(db_, "SELECT order_hash FROM certificates WHERE sender = ?1 AND seq = ?2");
    st.BindBlob(1, View(o.sender)).Bind(2, static_cast<int64_t>(o.seq));
    crypto::Hash applied{};
    if (st.Step() != SQLITE_ROW || !ToArray(st.Blob(0), &applied))
      return Err(fail(SqlError("reading an applied certificate")));
    (void)Exec("ROLLBACK");
    if (applied == cert.order.hash) return ApplyOutcome::kAlreadyApplied;
    return Err(Status::Corruption(fmt::format(
        "ALARM: certificate for order {} of {} at sequence number {}, where order {} is "
        "certified already: two certificates for one (sender, seq) mean more than f "
        "authorities are faulty",
        core::ToHex(cert.order.hash), Name(o.sender), o.seq, core::ToHex(applied))));
  }
  if (o.seq > acct->next_seq)
    return Err(fail(Status::NotFound(fmt::format(
        "certificate for sequence number {} of {}: this authority has applied up to {} only; "
        "pull the sender's certificates from {} on from a peer first",
        o.seq, Name(o.sender), acct->next_seq, acct->next_seq))));
  constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (o.transfer.amount > kMax || fee > kMax)
    return Err(fail(Status::Corruption(fmt::format(
        "certificate for order {}: an amount or fee past 2^63 - 1 (a quorum voted for it)",
        core::ToHex(cert.order.hash)))));
  const int64_t amount = static_cast<int64_t>(o.transfer.amount);
  int64_t debit = 0, sender_balance = 0;
  if (__builtin_add_overflow(amount, static_cast<int64_t>(fee), &debit) ||
      __builtin_sub_overflow(acct->balance, debit, &sender_balance))
    return Err(fail(Status::Corruption(
        fmt::format("certificate for order {}: the sender's balance would leave the 64-bit range",
                    core::ToHex(cert.order.hash)))));
  Status s;
  {
    SqlStmt up(db_, "UPDATE accounts SET balance = ?2, next_seq = ?3 WHERE key = ?1");
    up.BindBlob(1, View(o.sender)).Bind(2, sender_balance);
    up.Bind(3, static_cast<int64_t>(o.seq + 1));
    if (up.Step() != SQLITE_DONE) s = SqlError("debiting the sender");
    if (s.ok() && sqlite3_changes(db_) == 0) {
      // An account this authority never saw funded: it starts at zero (and goes negative).
      SqlStmt ins(db_, "INSERT INTO accounts VALUES (?1, ?2, ?3)");
      ins.BindBlob(1, View(o.sender)).Bind(2, sender_balance);
      ins.Bind(3, static_cast<int64_t>(o.seq + 1));
      if (ins.Step() != SQLITE_DONE) s = SqlError("debiting the sender");
    }
  }
  // Credits: the recipient and the committee's fee account, read, checked and written (SQLite
  // would turn an overflowing sum into a float without a word).
  for (const auto& [to, add] : {std::pair<KeyBytes, int64_t>{o.transfer.to, amount},
                                {kCommitteeAccount, static_cast<int64_t>(fee)}}) {
    if (!s.ok() || add == 0) continue;
    auto before = AccountLocked(to);
    int64_t after = 0;
    if (!before) {
      s = before.error();
    } else if (__builtin_add_overflow(before->balance, add, &after)) {
      s = Status::Corruption(
          fmt::format("certificate for order {}: crediting {} would leave the 64-bit range",
                      core::ToHex(cert.order.hash), Name(to)));
    } else {
      SqlStmt credit(db_,
                     "INSERT INTO accounts VALUES (?1, ?2, 0) ON CONFLICT (key) DO UPDATE SET "
                     "balance = ?2");
      credit.BindBlob(1, View(to)).Bind(2, after);
      if (credit.Step() != SQLITE_DONE) s = SqlError("crediting an account");
    }
  }
  if (s.ok()) {
    SqlStmt ins(db_,
                "INSERT INTO certificates SELECT ?1, ?2, ?3, ?4, coalesce(max(applied), 0) + 1 "
                "FROM certificates");
    ins.BindBlob(1, View(o.sender)).Bind(2, static_cast<int64_t>(o.seq));
    ins.BindBlob(3, View(cert.order.hash)).BindBlob(4, wire);
    if (ins.Step() != SQLITE_DONE) s = SqlError("recording the certificate");
  }
  if (s.ok()) {
    SqlStmt del(db_, "DELETE FROM locks WHERE sender = ?1 AND seq = ?2");
    del.BindBlob(1, View(o.sender)).Bind(2, static_cast<int64_t>(o.seq));
    if (del.Step() != SQLITE_DONE) s = SqlError("clearing the lock");
  }
  if (s.ok()) s = Exec("COMMIT");
  if (!s.ok()) return Err(fail(s));
  return ApplyOutcome::kApplied;
}

Result<std::vector<std::string>> Authority::Certificates(const KeyBytes& sender, uint64_t from_seq,
                                                         size_t limit) {
  core::MutexLock lock(&mu_);
  SqlStmt st(db_,
             "SELECT cert FROM certificates WHERE sender = ?1 AND seq >= ?2 ORDER BY seq LIMIT ?3");
  st.BindBlob(1, View(sender)).Bind(2, static_cast<int64_t>(from_seq));
  st.Bind(3, static_cast<int64_t>(limit));
  std::vector<std::string> out;
  int step;
  while ((step = st.Step()) == SQLITE_ROW) out.push_back(st.Blob(0));
  if (step != SQLITE_DONE) return Err(SqlError("reading certificates"));
  return out;
}

Result<std::vector<Equivocation>> Authority::Equivocations() {
  core::MutexLock lock(&mu_);
  SqlStmt st(db_, "SELECT sender, seq, order_a, order_b FROM equivocations ORDER BY sender, seq");
  std::vector<Equivocation> out;
  int step;
  while ((step = st.Step()) == SQLITE_ROW) {
    Equivocation e;
    ToArray(st.Blob(0), &e.sender);
    e.seq = static_cast<uint64_t>(st.Int(1));
    e.order_a = st.Blob(2);
    e.order_b = st.Blob(3);
    out.push_back(std::move(e));
  }
  if (step != SQLITE_DONE) return Err(SqlError("reading equivocations"));
  return out;
}

Status Authority::CheckSupply() {
  core::MutexLock lock(&mu_);
  SqlStmt st(db_,
             "SELECT sum(balance), (SELECT value FROM meta WHERE key = 'supply') FROM accounts");
  if (st.Step() != SQLITE_ROW) return SqlError("summing balances");
  const std::string total = std::to_string(st.Int(0)), supply = st.Text(1);
  if (total != supply)
    return Status::Corruption(
        fmt::format("ledger database {}: the balances sum to {} base units, the supply is {}",
                    opt_.path, total, supply));
  return Status::OK();
}

Result<uint64_t> Authority::AppliedCount() {
  core::MutexLock lock(&mu_);
  SqlStmt st(db_, "SELECT count(*) FROM certificates");
  if (st.Step() != SQLITE_ROW) return Err(SqlError("counting certificates"));
  return static_cast<uint64_t>(st.Int(0));
}

}  // namespace dfrp::ledger
