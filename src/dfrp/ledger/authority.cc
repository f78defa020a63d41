#include "dfrp/ledger/authority.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <limits>
#include <map>
#include <set>

#include "dfrp/core/file_system.h"
#include "dfrp/core/sqlite_stmt.h"
#include "dfrp/ledger/wire.h"
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
CREATE TABLE IF NOT EXISTS escrows (
  id BLOB PRIMARY KEY, payer BLOB NOT NULL, provider BLOB NOT NULL, amount INTEGER NOT NULL,
  terms BLOB NOT NULL, owner BLOB, margin_bps INTEGER NOT NULL, remaining INTEGER NOT NULL)
  WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS escrows_by_provider ON escrows (provider) WHERE remaining > 0;
CREATE INDEX IF NOT EXISTS escrows_by_payer ON escrows (payer) WHERE remaining > 0;
CREATE TABLE IF NOT EXISTS settle_locks (
  escrow_id BLOB NOT NULL, period INTEGER NOT NULL, kind INTEGER NOT NULL,
  PRIMARY KEY (escrow_id, period)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS settlements (
  escrow_id BLOB NOT NULL, period INTEGER NOT NULL, kind INTEGER NOT NULL, hash BLOB NOT NULL,
  paid INTEGER NOT NULL, margin INTEGER NOT NULL, cert BLOB NOT NULL,
  applied INTEGER NOT NULL UNIQUE, PRIMARY KEY (escrow_id, period)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS epochs (epoch INTEGER PRIMARY KEY, cert BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS read_escrows (
  id BLOB PRIMARY KEY, redeemed INTEGER NOT NULL, closed INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS read_votes (
  id BLOB PRIMARY KEY, max_voted INTEGER NOT NULL, close_hash BLOB) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS job_escrows (id BLOB PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS job_collateral (
  escrow_id BLOB PRIMARY KEY, provider BLOB NOT NULL, held INTEGER NOT NULL,
  to_provider INTEGER NOT NULL, to_payer INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS read_settlements (
  escrow_id BLOB NOT NULL, hash BLOB NOT NULL, kind INTEGER NOT NULL, bytes INTEGER NOT NULL,
  paid INTEGER NOT NULL, margin INTEGER NOT NULL, refunded INTEGER NOT NULL, cert BLOB NOT NULL,
  applied INTEGER NOT NULL UNIQUE, PRIMARY KEY (escrow_id, hash)) WITHOUT ROWID;
)";

using wire::View;

template <size_t N>
bool ToArray(const std::string& s, std::array<uint8_t, N>* out) {
  if (s.size() != N) return false;
  std::memcpy(out->data(), s.data(), N);
  return true;
}

}  // namespace

std::string LedgerPath(const std::string& state_dir) {
  return core::JoinPath(state_dir, kLedgerFileName);
}

Result<std::unique_ptr<Authority>> Authority::Open(const AuthorityOptions& opt) {
  if (!opt.policy || !opt.key || !opt.clock)
    return Err(Status::Internal("Authority::Open needs a policy, a key and a clock"));
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
  if (!opt.policy->owner.empty()) {
    DFRP_ASSIGN_OR_RETURN(auto owner, wallet::PublicKeyFromAddress(opt.policy->owner));
    a->owner_ = owner.bytes();
  }
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
  // EXTRA while a new database turns to WAL: that change commits through a rollback journal,
  // and a journal whose deletion a power cut undid would roll it back, hiding every WAL commit
  // after it (the power-cut test found it); EXTRA syncs the folder after the deletion.
  DFRP_RETURN_IF_ERROR(
      Exec("PRAGMA synchronous=EXTRA; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL"));
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
  // Where the epoch change stands (absent keys: epoch 0, not sealed, no vote).
  SqlStmt st(db_, "SELECT key, value FROM meta WHERE key IN ('epoch', 'sealed', 'epoch_vote')");
  int r;
  while ((r = st.Step()) == SQLITE_ROW) {
    const std::string key = st.Text(0), value = st.Text(1);
    if (key == "epoch") {
      uint64_t e = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), e);
      if (ec != std::errc() || end != value.data() + value.size())
        return Status::Corruption(
            fmt::format("ledger database {}: meta epoch {:?} is not a number", opt_.path, value));
      epoch_.store(e, std::memory_order_release);
    } else if (key == "sealed") {
      sealed_ = true;
    } else {
      auto h = core::FromHex(value);
      crypto::Hash hash{};
      if (!h || !ToArray(*h, &hash))
        return Status::Corruption(
            fmt::format("ledger database {}: meta epoch_vote is not a hash", opt_.path));
      voted_ = hash;
    }
  }
  if (r != SQLITE_DONE) return SqlError("reading the epoch");
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
  if (o.epoch != epoch())
    return Err(Status::InvalidArgument(
        fmt::format("order {}: for epoch {}, the committee's is {}{}", core::ToHex(so.hash),
                    o.epoch, epoch(), o.epoch < epoch() ? ": sign it again for this epoch" : "")));
  if (o.kind == OrderKind::kTransfer && o.transfer.to == o.sender)
    return Err(Status::InvalidArgument(
        fmt::format("order {}: {} pays itself", core::ToHex(so.hash), AddressOfKey(o.sender))));
  if (o.kind == OrderKind::kReadEscrowOpen) {
    if (o.escrow.provider == o.sender)
      return Err(
          Status::InvalidArgument(fmt::format("read_escrow_open {}: {} is its own provider",
                                              core::ToHex(so.hash), AddressOfKey(o.sender))));
    const int64_t now = opt_.clock->NowUnixMillis();
    if (static_cast<int64_t>(o.escrow.read.end_unix) * 1000 <= now)
      return Err(Status::InvalidArgument(
          fmt::format("read_escrow_open {}: it ends at {} (Unix s), authority {}'s clock reads {} "
                      "ms: give it an end in the future",
                      core::ToHex(so.hash), o.escrow.read.end_unix, opt_.index, now)));
    DFRP_RETURN_IF_ERROR(VerifyAcceptance(o, network_id()));  // slow: outside the lock
  }
  if (o.kind == OrderKind::kJobEscrowOpen) {
    if (o.escrow.provider == o.sender)
      return Err(
          Status::InvalidArgument(fmt::format("job_escrow_open {}: {} is its own provider",
                                              core::ToHex(so.hash), AddressOfKey(o.sender))));
    const int64_t now = opt_.clock->NowUnixMillis();
    const JobWindow w = JobWindowOf(o.escrow.job, opt_.policy->storage);
    if (w.dispute_until_ms <= now)
      return Err(Status::InvalidArgument(fmt::format(
          "job_escrow_open {}: it settles at {} (Unix s), authority {}'s clock reads {} ms: give "
          "it a settle time in the future, after the job and its check",
          core::ToHex(so.hash), o.escrow.job.settle_unix, opt_.index, now)));
    DFRP_RETURN_IF_ERROR(VerifyAcceptance(o, network_id()));  // slow: outside the lock
  }
  if (o.kind == OrderKind::kEscrowOpen) {
    const StorageTerms& t = o.escrow.terms;
    const auto& sp = opt_.policy->storage;
    if (o.escrow.provider == o.sender)
      return Err(Status::InvalidArgument(fmt::format(
          "escrow_open {}: {} is its own provider", core::ToHex(so.hash), AddressOfKey(o.sender))));
    if (t.period_seconds != sp.period_seconds)
      return Err(Status::InvalidArgument(fmt::format(
          "escrow_open {}: periods of {} s; this committee's storage.period_seconds is {}",
          core::ToHex(so.hash), t.period_seconds, sp.period_seconds)));
    if (t.challenges < sp.challenges_per_period)
      return Err(Status::InvalidArgument(
          fmt::format("escrow_open {}: {} challenges per audit; this committee asks at least {} "
                      "(storage.challenges_per_period)",
                      core::ToHex(so.hash), t.challenges, sp.challenges_per_period)));
    if (!AuditAnswerFits(t))
      return Err(Status::InvalidArgument(fmt::format(
          "escrow_open {}: an audit answer of {} challenges of {}-byte leaves can take {} bytes, "
          "more than a release carries ({}): ask fewer challenges or use smaller leaves",
          core::ToHex(so.hash), t.challenges, t.leaf_size, MaxAuditAnswerBytes(t),
          kMaxSettlementWireBytes)));
    DFRP_RETURN_IF_ERROR(VerifyAcceptance(o, network_id()));  // slow: outside the lock
  }
  DFRP_RETURN_IF_ERROR(VerifyOrderSignature(so, network_id(), &verifier_));  // outside the lock
  // The fee is part of what the sender signed: it pays that, never a fee changed later.
  const uint64_t fee = o.fee;
  if (fee < opt_.policy->order_fee)
    return Err(Status::Refused(
        fmt::format("order {}: it offers an order fee of {}, this committee asks {} (economic.toml "
                    "order_fee): sign it again with that fee",
                    core::ToHex(so.hash).substr(0, 16), opt_.policy->FormatAmount(fee),
                    opt_.policy->FormatAmount(opt_.policy->order_fee))));

  core::MutexLock lock(&mu_);
  // Every statement below runs in autocommit mode (each commit synced).
  DFRP_RETURN_IF_ERROR(CheckVotingLocked(fmt::format("order {}", core::ToHex(so.hash)), o.epoch));
  DFRP_ASSIGN_OR_RETURN(AccountInfo acct, AccountLocked(o.sender));
  // An order whose sequence number is taken can never be certified (Refused); one past the
  // next waits for those before it (InvalidArgument).
  if (o.seq != acct.next_seq)
    return Err((o.seq < acct.next_seq ? Status::Refused : Status::InvalidArgument)(fmt::format(
        "order {}: sequence number {} of {} is not its next ({}){}", core::ToHex(so.hash), o.seq,
        AddressOfKey(o.sender), acct.next_seq,
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
        return SignVote(so.hash, o.epoch, opt_.index, *opt_.key, network_id());
      const std::string other = lk.Blob(1);
      SqlStmt eq(db_, "INSERT OR IGNORE INTO equivocations VALUES (?1, ?2, ?3, ?4)");
      eq.BindBlob(1, View(o.sender)).Bind(2, static_cast<int64_t>(o.seq));
      eq.BindBlob(3, other).BindBlob(4, wire);
      if (eq.Step() != SQLITE_DONE) return Err(SqlError("keeping an equivocation proof"));
      return Err(Status::Refused(fmt::format(
          "order {}: {} signed two different orders for sequence number {} (this authority "
          "voted for {}); the pair is kept as an equivocation proof and the account is frozen "
          "until a certificate or the epoch change settles it",
          core::ToHex(so.hash), AddressOfKey(o.sender), o.seq, core::ToHex(locked))));
    }
    if (step != SQLITE_DONE) return Err(SqlError("reading a lock"));
  }
  // A stake's escrow: open here, the sender's, asking this much, not staked yet.
  if (o.kind == OrderKind::kJobCollateral) DFRP_RETURN_IF_ERROR(CollateralAllowedLocked(so));
  uint64_t need = 0;
  if (__builtin_add_overflow(o.amount(), fee, &need) ||
      need > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
      acct.balance < static_cast<int64_t>(need))
    return Err(Status::Refused(
        fmt::format("order {}: {} has {} {} at authority {}, the {} needs {} plus the order fee {}",
                    core::ToHex(so.hash).substr(0, 16), AddressOfKey(o.sender),
                    opt_.policy->FormatSignedAmount(acct.balance), opt_.policy->genesis.currency,
                    opt_.index, OrderKindName(o.kind), opt_.policy->FormatAmount(o.amount()),
                    opt_.policy->FormatAmount(fee))));
  {
    // On disk (synchronous=FULL) before the vote leaves.
    SqlStmt ins(db_, "INSERT INTO locks VALUES (?1, ?2, ?3, ?4)");
    ins.BindBlob(1, View(o.sender)).Bind(2, static_cast<int64_t>(o.seq));
    ins.BindBlob(3, View(so.hash)).BindBlob(4, wire);
    if (ins.Step() != SQLITE_DONE) return Err(SqlError("persisting a lock"));
  }
  return SignVote(so.hash, o.epoch, opt_.index, *opt_.key, network_id());
}

Result<ApplyOutcome> Authority::HandleCertificate(const Certificate& cert) {
  // The order's own signature was verified here already if this authority voted for exactly
  // this signed order (its lock keeps the wire): then only the quorum's aggregate is checked.
  const std::string order_wire = EncodeSignedOrder(cert.order, network_id());
  bool voted_for_it = false;
  {
    core::MutexLock lock(&mu_);
    SqlStmt st(db_, "SELECT order_wire FROM locks WHERE sender = ?1 AND seq = ?2");
    st.BindBlob(1, View(cert.order.order.sender))
        .Bind(2, static_cast<int64_t>(cert.order.order.seq));
    voted_for_it = st.Step() == SQLITE_ROW && st.Blob(0) == order_wire;
  }
  if (cert.epoch > epoch())
    return Err(Status::NotFound(fmt::format(
        "certificate for order {}: certified in epoch {}, this authority is at epoch {}: it "
        "applies that epoch's certificate first (its ledger sync pulls it from its peers)",
        core::ToHex(cert.order.hash), cert.epoch, epoch())));
  DFRP_RETURN_IF_ERROR(  // outside the lock
      VerifyCertificate(cert, committee_.AtEpoch(cert.epoch), network_id(), &verifier_,
                        voted_for_it));
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
    SqlStmt st(db_, "SELECT order_hash, cert FROM certificates WHERE sender = ?1 AND seq = ?2");
    st.BindBlob(1, View(o.sender)).Bind(2, static_cast<int64_t>(o.seq));
    crypto::Hash applied{};
    if (st.Step() != SQLITE_ROW || !ToArray(st.Blob(0), &applied))
      return Err(fail(SqlError("reading an applied certificate")));
    if (applied == cert.order.hash) {
      (void)Exec("ROLLBACK");
      return ApplyOutcome::kAlreadyApplied;
    }
    // Decoded (its points checked) only for a conflict, never on the common path above.
    const auto applied_cert = DecodeCertificate(st.Blob(1), network_id());
    (void)Exec("ROLLBACK");
    // Certified in another epoch than the applied one: a certificate of a closed epoch that
    // its checkpoint did not hold (its sender signed that seq again later), not a conflict.
    if (applied_cert && applied_cert->epoch != cert.epoch)
      return Err(Status::Refused(fmt::format(
          "certificate for order {}: certified in epoch {}, which closed without it; sequence "
          "number {} of {} holds order {} of epoch {}: it is void",
          core::ToHex(cert.order.hash), cert.epoch, o.seq, AddressOfKey(o.sender),
          core::ToHex(applied), applied_cert->epoch)));
    return Err(Status::Corruption(fmt::format(
        "ALARM: certificate for order {} of {} at sequence number {}, where order {} is "
        "certified already: two certificates for one (sender, seq) mean more than f "
        "authorities are faulty",
        core::ToHex(cert.order.hash), AddressOfKey(o.sender), o.seq, core::ToHex(applied))));
  }
  if (Status open = ApplyingEpochLocked(
          cert.epoch, fmt::format("certificate for order {}", core::ToHex(cert.order.hash)));
      !open.ok())
    return Err(fail(open));
  if (o.seq > acct->next_seq)
    return Err(fail(Status::NotFound(fmt::format(
        "certificate for sequence number {} of {}: this authority has applied up to {} only; "
        "pull the sender's certificates from {} on from a peer first",
        o.seq, AddressOfKey(o.sender), acct->next_seq, acct->next_seq))));
  constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (o.amount() > kMax || fee > kMax)
    return Err(fail(Status::Corruption(fmt::format(
        "certificate for order {}: an amount or fee past 2^63 - 1 (a quorum voted for it)",
        core::ToHex(cert.order.hash)))));
  const int64_t amount = static_cast<int64_t>(o.amount());
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
  // Credits: the recipient (or the new escrow) and the committee's fee account.
  if (s.ok() && o.kind == OrderKind::kTransfer)
    s = CreditLocked(o.transfer.to, amount, cert.order.hash);
  if (s.ok() && o.opens_escrow()) {
    const EscrowOpen& e = o.escrow;
    const crypto::Hash id = EscrowId(o.sender, o.seq);
    SqlStmt ins(db_, "INSERT INTO escrows VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?4)");
    ins.BindBlob(1, View(id)).BindBlob(2, View(o.sender));
    ins.BindBlob(3, View(e.provider)).Bind(4, amount);
    ins.BindBlob(5, o.kind == OrderKind::kEscrowOpen       ? EncodeTerms(e.terms)
                    : o.kind == OrderKind::kReadEscrowOpen ? EncodeReadTerms(e.read)
                                                           : EncodeJobTerms(e.job));
    // The margin and its recipient are fixed when the escrow opens.
    if (owner_) ins.BindBlob(6, View(*owner_));
    ins.Bind(7, static_cast<int64_t>(owner_ ? opt_.policy->margin_bps : 0));
    if (ins.Step() != SQLITE_DONE) s = SqlError("opening the escrow");
    if (s.ok() && o.kind == OrderKind::kReadEscrowOpen) {
      SqlStmt rd(db_, "INSERT INTO read_escrows VALUES (?1, 0, 0)");
      rd.BindBlob(1, View(id));
      if (rd.Step() != SQLITE_DONE) s = SqlError("opening the read escrow");
    }
    if (s.ok() && o.kind == OrderKind::kJobEscrowOpen) {
      SqlStmt jb(db_, "INSERT INTO job_escrows VALUES (?1)");
      jb.BindBlob(1, View(id));
      if (jb.Step() != SQLITE_DONE) s = SqlError("opening the compute escrow");
    }
  }
  if (s.ok() && o.kind == OrderKind::kJobCollateral) {
    const crypto::Hash& id = o.collateral.escrow_id;
    SqlStmt ins(db_,
                "INSERT INTO job_collateral VALUES (?1, ?2, ?3, 0, 0) ON CONFLICT (escrow_id) DO "
                "UPDATE SET held = held + ?3");
    ins.BindBlob(1, View(id)).BindBlob(2, View(o.sender)).Bind(3, amount);
    if (ins.Step() != SQLITE_DONE) s = SqlError("holding the collateral");
    // Settled here already (this certificate arrived late): the stake follows the settlement
    // at once, so the end state is the same in either order of application.
    if (s.ok()) s = PayOutCollateralLocked(id, cert.order.hash);
  }
  if (s.ok() && fee > 0)
    s = CreditLocked(kCommitteeAccount, static_cast<int64_t>(fee), cert.order.hash);
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

Status Authority::CreditLocked(const KeyBytes& to, int64_t add, const crypto::Hash& why) {
  // Read, checked and written: SQLite would turn an overflowing sum into a float without a word.
  DFRP_ASSIGN_OR_RETURN(AccountInfo before, AccountLocked(to));
  int64_t after = 0;
  if (__builtin_add_overflow(before.balance, add, &after))
    return Status::Corruption(
        fmt::format("certificate {}: crediting {} would leave the 64-bit range", core::ToHex(why),
                    AddressOfKey(to)));
  SqlStmt credit(db_,
                 "INSERT INTO accounts VALUES (?1, ?2, 0) ON CONFLICT (key) DO UPDATE SET "
                 "balance = ?2");
  credit.BindBlob(1, View(to)).Bind(2, after);
  if (credit.Step() != SQLITE_DONE) return SqlError("crediting an account");
  return Status::OK();
}

Result<std::optional<EscrowInfo>> Authority::EscrowLocked(const crypto::Hash& id) {
  SqlStmt st(db_,
             "SELECT payer, provider, amount, terms, owner, margin_bps, remaining FROM escrows "
             "WHERE id = ?1");
  st.BindBlob(1, View(id));
  const int step = st.Step();
  if (step == SQLITE_DONE) return std::optional<EscrowInfo>();
  if (step != SQLITE_ROW) return Err(SqlError("reading an escrow"));
  EscrowInfo e;
  e.id = id;
  {
    SqlStmt rd(db_,
               "SELECT r.redeemed, r.closed, coalesce(v.max_voted, 0), (SELECT count(*) FROM "
               "read_settlements WHERE escrow_id = ?1) FROM read_escrows r LEFT JOIN read_votes "
               "v ON v.id = r.id WHERE r.id = ?1");
    rd.BindBlob(1, View(id));
    const int rstep = rd.Step();
    if (rstep == SQLITE_ROW) {
      e.is_read = true;
      e.redeemed_bytes = static_cast<uint64_t>(rd.Int(0));
      e.closed = rd.Int(1) != 0;
      e.max_voted_bytes = static_cast<uint64_t>(rd.Int(2));
      e.read_settlements = static_cast<uint32_t>(rd.Int(3));
    } else if (rstep != SQLITE_DONE) {
      return Err(SqlError("reading a read escrow"));
    }
  }
  if (!e.is_read) {
    SqlStmt jb(db_, "SELECT 1 FROM job_escrows WHERE id = ?1");
    jb.BindBlob(1, View(id));
    const int jstep = jb.Step();
    if (jstep == SQLITE_ROW)
      e.is_job = true;
    else if (jstep != SQLITE_DONE)
      return Err(SqlError("reading a compute escrow"));
  }
  bool terms_ok = true;
  if (e.is_job) {
    auto job = DecodeJobTerms(st.Blob(3));
    terms_ok = job.has_value();
    if (job) e.job = *job;
  } else if (e.is_read) {
    auto read = DecodeReadTerms(st.Blob(3));
    terms_ok = read.has_value();
    if (read) e.read = *read;
  } else {
    auto terms = DecodeTerms(st.Blob(3));
    terms_ok = terms.has_value();
    if (terms) e.terms = *terms;
  }
  if (!ToArray(st.Blob(0), &e.payer) || !ToArray(st.Blob(1), &e.provider) || !terms_ok)
    return Err(Status::Corruption(
        fmt::format("ledger database {}: escrow {} is malformed", opt_.path, core::ToHex(id))));
  e.amount = static_cast<uint64_t>(st.Int(2));
  if (!st.IsNull(4)) {
    KeyBytes owner{};
    if (ToArray(st.Blob(4), &owner)) e.owner = owner;
  }
  e.margin_bps = static_cast<uint32_t>(st.Int(5));
  e.remaining = static_cast<uint64_t>(st.Int(6));
  SqlStmt ps(db_,
             "SELECT period, kind, paid, margin FROM settlements WHERE escrow_id = ?1 ORDER BY "
             "period");
  ps.BindBlob(1, View(id));
  int r;
  while ((r = ps.Step()) == SQLITE_ROW)
    e.settled.push_back({static_cast<uint32_t>(ps.Int(0)), static_cast<SettleKind>(ps.Int(1)),
                         static_cast<uint64_t>(ps.Int(2)), static_cast<uint64_t>(ps.Int(3))});
  if (r != SQLITE_DONE) return Err(SqlError("reading an escrow's settlements"));
  if (e.is_job) {
    SqlStmt c(db_, "SELECT held, to_provider, to_payer FROM job_collateral WHERE escrow_id = ?1");
    c.BindBlob(1, View(id));
    const int cstep = c.Step();
    if (cstep == SQLITE_ROW) {
      e.collateral_held = static_cast<uint64_t>(c.Int(0));
      e.collateral_to_provider = static_cast<uint64_t>(c.Int(1));
      e.collateral_to_payer = static_cast<uint64_t>(c.Int(2));
    } else if (cstep != SQLITE_DONE) {
      return Err(SqlError("reading a compute escrow's collateral"));
    }
  }
  return std::optional<EscrowInfo>(std::move(e));
}

Result<EscrowInfo> Authority::Escrow(const crypto::Hash& id) {
  core::MutexLock lock(&mu_);
  DFRP_ASSIGN_OR_RETURN(auto e, EscrowLocked(id));
  if (!e)
    return Err(Status::NotFound(fmt::format(
        "escrow {} is not open at authority {}: its escrow_open certificate was not applied "
        "here (send the payer's certificates)",
        core::ToHex(id), opt_.index)));
  return std::move(*e);
}

Result<std::vector<EscrowInfo>> Authority::OpenEscrows(const KeyBytes& party, size_t limit,
                                                       const crypto::Hash& after) {
  core::MutexLock lock(&mu_);
  SqlStmt st(db_,
             "SELECT id FROM escrows WHERE remaining > 0 AND (provider = ?1 OR payer = ?1) AND "
             "id > ?3 ORDER BY id LIMIT ?2");
  st.BindBlob(1, View(party)).Bind(2, static_cast<int64_t>(limit)).BindBlob(3, View(after));
  std::vector<crypto::Hash> ids;
  int r;
  while ((r = st.Step()) == SQLITE_ROW) {
    crypto::Hash id{};
    if (ToArray(st.Blob(0), &id)) ids.push_back(id);
  }
  if (r != SQLITE_DONE) return Err(SqlError("listing escrows"));
  std::vector<EscrowInfo> out;
  for (const auto& id : ids) {
    DFRP_ASSIGN_OR_RETURN(auto e, EscrowLocked(id));
    if (e) out.push_back(std::move(*e));
  }
  return out;
}

Result<std::vector<std::string>> Authority::SettleCertificates(const crypto::Hash& id) {
  core::MutexLock lock(&mu_);
  SqlStmt st(db_, "SELECT cert FROM settlements WHERE escrow_id = ?1 ORDER BY period");
  st.BindBlob(1, View(id));
  std::vector<std::string> out;
  int r;
  while ((r = st.Step()) == SQLITE_ROW) out.push_back(st.Blob(0));
  if (r != SQLITE_DONE) return Err(SqlError("reading settlement certificates"));
  return out;
}

Result<Vote> Authority::BeaconShare(uint64_t slot) {
  const uint64_t slot_ms = uint64_t{opt_.policy->storage.beacon_slot_seconds} * 1000;
  const int64_t now = opt_.clock->NowUnixMillis();
  if (slot > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / slot_ms ||
      now < static_cast<int64_t>(slot * slot_ms))
    return Err(Status::Refused(fmt::format(
        "beacon slot {} has not begun at authority {} (its clock reads slot {}): no seed is "
        "signed before its slot",
        slot, opt_.index, now < 0 ? 0 : static_cast<uint64_t>(now) / slot_ms)));
  const uint64_t e = epoch();
  return SignVote(BeaconItemHash(slot, e, network_id()), e, opt_.index, *opt_.key, network_id());
}

Result<Vote> Authority::HandleSettlement(const Settlement& s) {
  if (s.kind == SettleKind::kRedeem || s.kind == SettleKind::kClose) return HandleReadSettlement(s);
  if (s.kind == SettleKind::kJobRelease || s.kind == SettleKind::kJobRefund)
    return HandleJobSettlement(s);
  const std::string what = fmt::format("{} of period {} of escrow {}", SettleKindName(s.kind),
                                       s.period, core::ToHex(s.escrow_id).substr(0, 16));
  if (s.epoch != epoch())
    return Err(Status::InvalidArgument(
        fmt::format("{}: for epoch {}, the committee's is {}", what, s.epoch, epoch())));
  // Reads the escrow and the period's state; the slow proof check runs without the lock, and
  // everything is read again before the lock is written.
  auto state = [&]() REQUIRES(mu_) -> Result<EscrowInfo> {
    DFRP_ASSIGN_OR_RETURN(auto e, EscrowLocked(s.escrow_id));
    if (!e)
      return Err(Status::NotFound(fmt::format(
          "{}: the escrow is not open at authority {} (its escrow_open certificate was not "
          "applied here: send the payer's certificates)",
          what, opt_.index)));
    if (e->is_read || e->is_job)
      return Err(Status::InvalidArgument(
          fmt::format("{}: a {} escrow is not settled period by period (docs/PROTOCOL.md)", what,
                      e->is_read ? "read" : "compute")));
    if (s.period >= e->terms.periods)
      return Err(
          Status::InvalidArgument(fmt::format("{}: the escrow has {} periods (0 to {})", what,
                                              e->terms.periods, e->terms.periods - 1)));
    for (const auto& p : e->settled)
      if (p.period == s.period && p.kind != s.kind)
        return Err(Status::Refused(
            fmt::format("{}: the period was {}d already", what, SettleKindName(p.kind))));
    DFRP_RETURN_IF_ERROR(SettleLockAllowsLocked(s, what));
    return std::move(*e);
  };
  EscrowInfo e;
  {
    core::MutexLock lock(&mu_);
    DFRP_ASSIGN_OR_RETURN(e, state());
  }
  const PeriodWindow w = WindowOf(s.escrow_id, e.terms, s.period, opt_.policy->storage);
  const int64_t now = opt_.clock->NowUnixMillis();
  if (s.kind == SettleKind::kRelease) {
    if (now < w.open_ms || now >= w.vote_until_ms)
      return Err(Status::Refused(fmt::format(
          "{}: authority {} votes releases from {} to {} (Unix ms: the answer window less the "
          "{} ms guard); its clock reads {}",
          what, opt_.index, w.open_ms, w.vote_until_ms, opt_.policy->storage.max_skew_ms, now)));
    Status ok = CheckRelease(s, e.terms, w, committee_.AtEpoch(s.epoch), network_id());
    if (!ok.ok()) return Err(Status::Refused(ok.message()));
    // The check takes time: the vote still has to leave inside the window.
    const int64_t after = opt_.clock->NowUnixMillis();
    if (after >= w.vote_until_ms)
      return Err(Status::Refused(fmt::format(
          "{}: the answer window (less the guard) closed at {} while the proof was checked "
          "(authority {}'s clock reads {})",
          what, w.vote_until_ms, opt_.index, after)));
  } else if (now < w.refund_ms) {
    return Err(Status::Refused(fmt::format(
        "{}: refundable from {} (Unix ms: the answer window's close plus the {} s grace); "
        "authority {}'s clock reads {}",
        what, w.refund_ms, opt_.policy->storage.grace_seconds, opt_.index, now)));
  }
  core::MutexLock lock(&mu_);
  DFRP_RETURN_IF_ERROR(CheckVotingLocked(what, s.epoch));
  DFRP_ASSIGN_OR_RETURN(EscrowInfo now_e, state());
  bool settled = false;
  for (const auto& p : now_e.settled) settled = settled || p.period == s.period;
  // (A period settled already this way needs no lock: its settlement row refuses the other
  // kind.)
  if (!settled) DFRP_RETURN_IF_ERROR(PersistSettleLockLocked(s));
  return SignVote(s.hash, s.epoch, opt_.index, *opt_.key, network_id());
}

Result<ApplyOutcome> Authority::HandleSettleCertificate(const SettleCertificate& c) {
  if (c.epoch > epoch())
    return Err(Status::NotFound(fmt::format(
        "settlement certificate: certified in epoch {}, this authority is at epoch {}: it "
        "applies that epoch's certificate first",
        c.epoch, epoch())));
  DFRP_RETURN_IF_ERROR(VerifySettleCertificate(c, committee_.AtEpoch(c.epoch), network_id(),
                                               &verifier_));  // outside the lock
  const Settlement& s = c.settlement;
  const std::string what = fmt::format("{} of period {} of escrow {}", SettleKindName(s.kind),
                                       s.period, core::ToHex(s.escrow_id).substr(0, 16));
  const std::string wire = EncodeSettleCertificate(c, network_id());

  core::MutexLock lock(&mu_);
  DFRP_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  auto fail = [&](Status st) REQUIRES(mu_) {
    (void)Exec("ROLLBACK");
    return st;
  };
  auto e = EscrowLocked(s.escrow_id);
  if (!e) return Err(fail(e.error()));
  if (!*e)
    return Err(fail(Status::NotFound(fmt::format(
        "{}: the escrow is not open at authority {} (send the payer's certificates first)", what,
        opt_.index))));
  const bool read_kind = s.kind == SettleKind::kRedeem || s.kind == SettleKind::kClose;
  const bool job_kind = s.kind == SettleKind::kJobRelease || s.kind == SettleKind::kJobRefund;
  if (read_kind != (*e)->is_read || job_kind != (*e)->is_job)
    return Err(fail(Status::Corruption(
        fmt::format("{}: certified for a {} escrow (a quorum voted for it)", what,
                    (*e)->is_read ? "read" : ((*e)->is_job ? "compute" : "storage")))));
  if (read_kind) return ApplyReadSettlement(c, wire, **e);
  const uint32_t periods = job_kind ? 1 : (*e)->terms.periods;
  if (s.period >= periods)
    return Err(fail(Status::Corruption(
        fmt::format("{}: certified for a period past the escrow's {}", what, periods))));
  for (const auto& p : (*e)->settled)
    if (p.period == s.period) {
      std::optional<uint64_t> applied_epoch;
      if (p.kind != s.kind) {
        SqlStmt st(db_, "SELECT cert FROM settlements WHERE escrow_id = ?1 AND period = ?2");
        st.BindBlob(1, View(s.escrow_id)).Bind(2, int64_t{s.period});
        if (st.Step() == SQLITE_ROW)
          if (auto applied = DecodeSettleCertificate(st.Blob(0), network_id()))
            applied_epoch = applied->epoch;
      }
      (void)Exec("ROLLBACK");
      if (p.kind == s.kind) return ApplyOutcome::kAlreadyApplied;
      if (applied_epoch && *applied_epoch != c.epoch)
        return Err(Status::Refused(fmt::format(
            "{}: certified in epoch {}, which closed without it; the period was {}d in epoch {}: "
            "it is void",
            what, c.epoch, SettleKindName(p.kind), *applied_epoch)));
      return Err(Status::Corruption(fmt::format(
          "ALARM: {} certified, where the period was {}d already: more than f authorities are "
          "faulty",
          what, SettleKindName(p.kind))));
    }
  if (Status open = ApplyingEpochLocked(c.epoch, what); !open.ok()) return Err(fail(open));
  // A compute escrow pays its whole amount out at once: the price (less the margin) to the
  // provider and the rest to the payer, or all of it to the payer.
  const uint64_t paid =
      job_kind ? (*e)->amount : PeriodAmount((*e)->amount, (*e)->terms.periods, s.period);
  uint64_t margin = 0;
  Status st;
  if (paid > (*e)->remaining)
    st = Status::Corruption(fmt::format("{}: the escrow holds {} base units, the period pays {}",
                                        what, (*e)->remaining, paid));
  if (st.ok() && s.kind == SettleKind::kJobRelease) {
    const JobPayout pay =
        JobReleasePayout((*e)->amount, (*e)->job, (*e)->owner ? (*e)->margin_bps : 0);
    margin = pay.margin;
    if (margin > 0) st = CreditLocked(*(*e)->owner, static_cast<int64_t>(margin), s.hash);
    if (st.ok() && pay.to_provider > 0)
      st = CreditLocked((*e)->provider, static_cast<int64_t>(pay.to_provider), s.hash);
    if (st.ok() && pay.to_payer > 0)
      st = CreditLocked((*e)->payer, static_cast<int64_t>(pay.to_payer), s.hash);
  } else if (st.ok() && s.kind == SettleKind::kRelease) {
    margin = (*e)->owner ? MarginOf(paid, (*e)->margin_bps) : 0;
    if (margin > 0) st = CreditLocked(*(*e)->owner, static_cast<int64_t>(margin), s.hash);
    if (st.ok() && paid > margin)
      st = CreditLocked((*e)->provider, static_cast<int64_t>(paid - margin), s.hash);
  } else if (st.ok() && paid > 0) {
    st = CreditLocked((*e)->payer, static_cast<int64_t>(paid), s.hash);
  }
  if (st.ok()) {
    SqlStmt up(db_, "UPDATE escrows SET remaining = remaining - ?2 WHERE id = ?1");
    up.BindBlob(1, View(s.escrow_id)).Bind(2, static_cast<int64_t>(paid));
    if (up.Step() != SQLITE_DONE) st = SqlError("paying out of the escrow");
  }
  if (st.ok()) {
    auto applied = NextSettleAppliedLocked();
    SqlStmt ins(db_, "INSERT INTO settlements VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
    ins.BindBlob(1, View(s.escrow_id)).Bind(2, int64_t{s.period});
    ins.Bind(3, static_cast<int64_t>(s.kind)).BindBlob(4, View(s.hash));
    ins.Bind(5, static_cast<int64_t>(paid)).Bind(6, static_cast<int64_t>(margin)).BindBlob(7, wire);
    ins.Bind(8, applied ? *applied : 0);
    if (!applied)
      st = applied.error();
    else if (ins.Step() != SQLITE_DONE)
      st = SqlError("recording the settlement");
  }
  if (st.ok()) {
    SqlStmt del(db_, "DELETE FROM settle_locks WHERE escrow_id = ?1 AND period = ?2");
    del.BindBlob(1, View(s.escrow_id)).Bind(2, int64_t{s.period});
    if (del.Step() != SQLITE_DONE) st = SqlError("clearing the settle lock");
  }
  if (st.ok() && job_kind)
    st = PayOutCollateralLocked(s.escrow_id, s.hash,
                                s.kind == SettleKind::kJobRefund && !s.proof.empty());
  if (st.ok()) st = Exec("COMMIT");
  if (!st.ok()) return Err(fail(st));
  return ApplyOutcome::kApplied;
}

Status Authority::CollateralAllowedLocked(const SignedOrder& so) {
  const Order& o = so.order;
  const std::string what =
      fmt::format("job_collateral {} for escrow {}", core::ToHex(so.hash).substr(0, 16),
                  core::ToHex(o.collateral.escrow_id).substr(0, 16));
  DFRP_ASSIGN_OR_RETURN(auto e, EscrowLocked(o.collateral.escrow_id));
  if (!e)
    return Status::NotFound(fmt::format(
        "{}: the escrow is not open at authority {} (send the payer's certificates first)", what,
        opt_.index));
  if (!e->is_job) return Status::InvalidArgument(fmt::format("{}: not a compute escrow", what));
  if (e->provider != o.sender)
    return Status::InvalidArgument(fmt::format("{}: the escrow's provider is {}, not {}", what,
                                               AddressOfKey(e->provider), AddressOfKey(o.sender)));
  if (e->job.collateral != o.collateral.amount)
    return Status::InvalidArgument(
        fmt::format("{}: the terms ask a collateral of {} base units, the order stakes {}", what,
                    e->job.collateral, o.collateral.amount));
  if (e->collateral_staked() > 0)
    return Status::Refused(fmt::format("{}: its collateral is staked already", what));
  // No clock and no settle lock is consulted: a vote that some authorities gave and others
  // refused for a reason of time would leave the provider's sequence number locked to an
  // order no quorum certifies. A late stake is harmless: it follows the settlement at once.
  return Status::OK();
}

Status Authority::PayOutCollateralLocked(const crypto::Hash& escrow_id, const crypto::Hash& why,
                                         std::optional<bool> fraud) {
  SqlStmt c(db_, "SELECT provider, held FROM job_collateral WHERE escrow_id = ?1");
  c.BindBlob(1, View(escrow_id));
  const int cstep = c.Step();
  if (cstep == SQLITE_DONE) return Status::OK();  // no stake
  if (cstep != SQLITE_ROW) return SqlError("reading a collateral");
  KeyBytes provider{};
  ToArray(c.Blob(0), &provider);
  const int64_t held = c.Int(1);
  if (held <= 0) return Status::OK();
  if (!fraud) {
    // Called for a stake: how was the escrow settled here, if it was?
    SqlStmt st(db_, "SELECT kind, cert FROM settlements WHERE escrow_id = ?1 AND period = 0");
    st.BindBlob(1, View(escrow_id));
    const int sstep = st.Step();
    if (sstep == SQLITE_DONE) return Status::OK();  // not settled here yet: it stays held
    if (sstep != SQLITE_ROW) return SqlError("reading a settlement");
    fraud = false;
    if (static_cast<SettleKind>(st.Int(0)) == SettleKind::kJobRefund) {
      auto sc = DecodeSettleCertificate(st.Blob(1), network_id());
      if (!sc) return Status::Corruption("a stored settlement certificate does not decode");
      fraud = !sc->settlement.proof.empty();
    }
  }
  DFRP_ASSIGN_OR_RETURN(auto e, EscrowLocked(escrow_id));
  if (!e) return Status::Corruption("a settled escrow that is not open");
  // A refund on a fraud proof gives the stake to the payer; a release, or a refund because no
  // claim came, returns it to the provider.
  DFRP_RETURN_IF_ERROR(CreditLocked(*fraud ? e->payer : provider, held, why));
  SqlStmt up(db_, *fraud ? "UPDATE job_collateral SET held = 0, to_payer = to_payer + ?2 WHERE "
                           "escrow_id = ?1"
                         : "UPDATE job_collateral SET held = 0, to_provider = to_provider + ?2 "
                           "WHERE escrow_id = ?1");
  up.BindBlob(1, View(escrow_id)).Bind(2, held);
  if (up.Step() != SQLITE_DONE) return SqlError("paying out a collateral");
  return Status::OK();
}

Status Authority::SettleLockAllowsLocked(const Settlement& s, std::string_view what) {
  SqlStmt lk(db_, "SELECT kind FROM settle_locks WHERE escrow_id = ?1 AND period = ?2");
  lk.BindBlob(1, View(s.escrow_id)).Bind(2, int64_t{s.period});
  const int step = lk.Step();
  if (step == SQLITE_ROW && lk.Int(0) != static_cast<int64_t>(s.kind))
    return Status::Refused(
        fmt::format("{}: authority {} voted for a {} of it; it never votes both ways", what,
                    opt_.index, SettleKindName(static_cast<SettleKind>(lk.Int(0)))));
  if (step != SQLITE_ROW && step != SQLITE_DONE) return SqlError("reading a settle lock");
  return Status::OK();
}

Status Authority::PersistSettleLockLocked(const Settlement& s) {
  // On disk (synchronous=FULL) before the vote leaves.
  SqlStmt ins(db_, "INSERT OR IGNORE INTO settle_locks VALUES (?1, ?2, ?3)");
  ins.BindBlob(1, View(s.escrow_id)).Bind(2, int64_t{s.period});
  ins.Bind(3, static_cast<int64_t>(s.kind));
  if (ins.Step() != SQLITE_DONE) return SqlError("persisting a settle lock");
  return Status::OK();
}

// --- Compute escrows (ledger/escrow.h, "Compute escrows").

Result<Vote> Authority::HandleJobSettlement(const Settlement& s) {
  const std::string what = fmt::format("{} of compute escrow {}", SettleKindName(s.kind),
                                       core::ToHex(s.escrow_id).substr(0, 16));
  if (s.epoch != epoch())
    return Err(Status::InvalidArgument(
        fmt::format("{}: for epoch {}, the committee's is {}", what, s.epoch, epoch())));
  auto state = [&]() REQUIRES(mu_) -> Result<EscrowInfo> {
    DFRP_ASSIGN_OR_RETURN(auto e, EscrowLocked(s.escrow_id));
    if (!e)
      return Err(Status::NotFound(fmt::format(
          "{}: the escrow is not open at authority {} (its job_escrow_open certificate was not "
          "applied here: send the payer's certificates)",
          what, opt_.index)));
    if (!e->is_job)
      return Err(Status::InvalidArgument(fmt::format("{}: a {} escrow is not settled as a job",
                                                     what, e->is_read ? "read" : "storage")));
    for (const auto& p : e->settled)
      if (p.kind != s.kind)
        return Err(Status::Refused(
            fmt::format("{}: the job was settled by a {} already", what, SettleKindName(p.kind))));
    DFRP_RETURN_IF_ERROR(SettleLockAllowsLocked(s, what));
    return std::move(*e);
  };
  EscrowInfo e;
  {
    core::MutexLock lock(&mu_);
    DFRP_ASSIGN_OR_RETURN(e, state());
  }
  const JobWindow w = JobWindowOf(e.job, opt_.policy->storage);
  const int64_t now = opt_.clock->NowUnixMillis();
  const int64_t skew = static_cast<int64_t>(opt_.policy->storage.max_skew_ms);
  if (s.kind == SettleKind::kJobRelease) {
    if (now < w.release_from_ms || now >= w.release_until_ms)
      return Err(Status::Refused(fmt::format(
          "{}: authority {} votes releases from {} to {} (Unix ms: the settle time, to it plus "
          "the grace less the {} ms guard; disputes come first); its clock reads {}",
          what, opt_.index, w.release_from_ms, w.release_until_ms, skew, now)));
    // Staked at all (held, or already paid out by this very release applied here).
    if (e.collateral_staked() < e.job.collateral)
      return Err(Status::Unavailable(fmt::format(
          "{}: the terms ask the provider to stake {} base units, authority {} holds {} of it: "
          "no release before the stake (its job_collateral certificate) is here; try again "
          "once it is",
          what, e.job.collateral, opt_.index, e.collateral_held)));
    if (Status ok = CheckJobClaim(s.proof, e.job, e.provider, network_id()); !ok.ok())
      return Err(Status::Refused(fmt::format("{}: {}", what, ok.message())));
    if (opt_.clock->NowUnixMillis() >= w.release_until_ms)
      return Err(Status::Refused(
          fmt::format("{}: the release window closed at {} while the claim was checked", what,
                      w.release_until_ms)));
  } else if (!s.proof.empty()) {
    if (now >= w.dispute_until_ms)
      return Err(Status::Refused(fmt::format(
          "{}: authority {} votes fraud proofs until {} (Unix ms: the settle time less the {} "
          "ms guard); its clock reads {}: the dispute window is over",
          what, opt_.index, w.dispute_until_ms, skew, now)));
    if (Status ok = CheckFraudProof(s.proof, e.job, e.provider, network_id()); !ok.ok())
      return Err(Status::Refused(fmt::format("{}: {}", what, ok.message())));
    if (opt_.clock->NowUnixMillis() >= w.dispute_until_ms)
      return Err(Status::Refused(
          fmt::format("{}: the dispute window closed at {} while the fraud proof was checked", what,
                      w.dispute_until_ms)));
  } else if (now < w.refund_from_ms) {
    return Err(Status::Refused(fmt::format(
        "{}: with no fraud proof, refundable from {} (Unix ms: the settle time plus the {} s "
        "grace, when no release came); authority {}'s clock reads {}",
        what, w.refund_from_ms, opt_.policy->storage.grace_seconds, opt_.index, now)));
  }
  core::MutexLock lock(&mu_);
  DFRP_RETURN_IF_ERROR(CheckVotingLocked(what, s.epoch));
  DFRP_ASSIGN_OR_RETURN(EscrowInfo now_e, state());
  if (now_e.settled.empty()) DFRP_RETURN_IF_ERROR(PersistSettleLockLocked(s));
  return SignVote(s.hash, s.epoch, opt_.index, *opt_.key, network_id());
}

// --- Read escrows (ledger/escrow.h, "Read escrows").

Result<int64_t> Authority::NextSettleAppliedLocked() {
  SqlStmt st(db_,
             "SELECT max(coalesce((SELECT max(applied) FROM settlements), 0), coalesce((SELECT "
             "max(applied) FROM read_settlements), 0)) + 1");
  if (st.Step() != SQLITE_ROW) return Err(SqlError("numbering a settlement"));
  return st.Int(0);
}

Result<Vote> Authority::HandleReadSettlement(const Settlement& s) {
  const std::string what = fmt::format("{} of read escrow {}", SettleKindName(s.kind),
                                       core::ToHex(s.escrow_id).substr(0, 16));
  if (s.epoch != epoch())
    return Err(Status::InvalidArgument(
        fmt::format("{}: for epoch {}, the committee's is {}", what, s.epoch, epoch())));
  std::optional<UsageReceipt> receipt;
  if (!s.proof.empty()) {
    auto r = DecodeReceipt(s.proof, network_id());
    if (!r) return Err(Status::InvalidArgument(fmt::format("{}: {}", what, r.error().message())));
    receipt = *r;
  }
  auto state = [&]() REQUIRES(mu_) -> Result<EscrowInfo> {
    DFRP_ASSIGN_OR_RETURN(auto e, EscrowLocked(s.escrow_id));
    if (!e)
      return Err(Status::NotFound(fmt::format(
          "{}: the escrow is not open at authority {} (its read_escrow_open certificate was not "
          "applied here: send the payer's certificates)",
          what, opt_.index)));
    if (!e->is_read)
      return Err(Status::InvalidArgument(
          fmt::format("{}: a storage escrow is settled period by period", what)));
    if (e->closed)
      return Err(Status::Refused(fmt::format(
          "{}: the escrow is closed (authority {} applied its close)", what, opt_.index)));
    return std::move(*e);
  };
  EscrowInfo e;
  {
    core::MutexLock lock(&mu_);
    DFRP_ASSIGN_OR_RETURN(e, state());
  }
  const uint64_t bytes = receipt ? receipt->bytes_total : 0;
  if (receipt)  // slow: outside the lock
    DFRP_RETURN_IF_ERROR(
        VerifyReceipt(*receipt, s.escrow_id, e.payer, e.provider, e.read.end_unix, network_id()));
  const auto& sp = opt_.policy->storage;
  const int64_t close_ms =
      (static_cast<int64_t>(e.read.end_unix) + static_cast<int64_t>(sp.grace_seconds)) * 1000;
  const int64_t now = opt_.clock->NowUnixMillis();
  if (s.kind == SettleKind::kRedeem && now >= close_ms - static_cast<int64_t>(sp.max_skew_ms))
    return Err(Status::Refused(fmt::format(
        "{}: authority {} votes redemptions until {} (Unix ms: the escrow's end plus the {} s "
        "grace, less the {} ms guard); its clock reads {}: close the escrow with the receipt",
        what, opt_.index, close_ms - static_cast<int64_t>(sp.max_skew_ms), sp.grace_seconds,
        sp.max_skew_ms, now)));
  if (s.kind == SettleKind::kClose && now < close_ms)
    return Err(Status::Refused(fmt::format(
        "{}: closable from {} (Unix ms: the escrow's end plus the {} s grace); authority {}'s "
        "clock reads {}",
        what, close_ms, sp.grace_seconds, opt_.index, now)));

  core::MutexLock lock(&mu_);
  DFRP_RETURN_IF_ERROR(CheckVotingLocked(what, s.epoch));
  DFRP_ASSIGN_OR_RETURN(e, state());
  std::optional<crypto::Hash> close_voted;
  {
    SqlStmt st(db_, "SELECT close_hash FROM read_votes WHERE id = ?1 AND close_hash IS NOT NULL");
    st.BindBlob(1, View(s.escrow_id));
    const int step = st.Step();
    if (step == SQLITE_ROW) {
      crypto::Hash h{};
      ToArray(st.Blob(0), &h);
      close_voted = h;
    } else if (step != SQLITE_DONE) {
      return Err(SqlError("reading a read escrow's votes"));
    }
  }
  if (s.kind == SettleKind::kRedeem) {
    if (bytes <= e.redeemed_bytes)
      return Err(Status::Refused(fmt::format(
          "{}: a receipt for {} bytes earns nothing: {} bytes of this escrow are redeemed "
          "already (an old or replayed receipt)",
          what, bytes, e.redeemed_bytes)));
    if (close_voted)
      return Err(Status::Refused(fmt::format(
          "{}: authority {} voted to close this escrow and votes no more redemptions of it", what,
          opt_.index)));
  } else {
    const uint64_t floor = std::max(e.redeemed_bytes, e.max_voted_bytes);
    if (bytes < floor)
      return Err(Status::Refused(fmt::format(
          "{}: it closes at {} bytes, and authority {} voted to redeem {} (applied {}): close "
          "with a receipt for at least {} bytes",
          what, bytes, opt_.index, e.max_voted_bytes, e.redeemed_bytes, floor)));
    if (close_voted && *close_voted != s.hash)
      return Err(Status::Refused(fmt::format(
          "{}: authority {} voted for another close of this escrow ({}); it votes for one only",
          what, opt_.index, core::ToHex(*close_voted).substr(0, 16))));
  }
  // On disk (synchronous=FULL) before the vote leaves.
  SqlStmt up(db_,
             "INSERT INTO read_votes VALUES (?1, ?2, ?3) ON CONFLICT (id) DO UPDATE SET "
             "max_voted = max(max_voted, ?2), close_hash = coalesce(close_hash, ?3)");
  up.BindBlob(1, View(s.escrow_id));
  up.Bind(2, static_cast<int64_t>(s.kind == SettleKind::kRedeem ? bytes : 0));
  if (s.kind == SettleKind::kClose) up.BindBlob(3, View(s.hash));
  if (up.Step() != SQLITE_DONE) return Err(SqlError("persisting a read escrow's vote"));
  return SignVote(s.hash, s.epoch, opt_.index, *opt_.key, network_id());
}

Result<ApplyOutcome> Authority::ApplyReadSettlement(const SettleCertificate& c,
                                                    const std::string& wire, const EscrowInfo& e) {
  const Settlement& s = c.settlement;
  const std::string what = fmt::format("{} of read escrow {}", SettleKindName(s.kind),
                                       core::ToHex(s.escrow_id).substr(0, 16));
  auto fail = [&](Status st) REQUIRES(mu_) {
    (void)Exec("ROLLBACK");
    return st;
  };
  int step;
  {
    SqlStmt st(db_, "SELECT 1 FROM read_settlements WHERE escrow_id = ?1 AND hash = ?2");
    st.BindBlob(1, View(s.escrow_id)).BindBlob(2, View(s.hash));
    step = st.Step();
  }
  if (step == SQLITE_ROW) {
    (void)Exec("ROLLBACK");
    return ApplyOutcome::kAlreadyApplied;
  }
  if (step != SQLITE_DONE) return Err(fail(SqlError("reading read settlements")));
  if (Status open = ApplyingEpochLocked(c.epoch, what); !open.ok()) return Err(fail(open));
  uint64_t bytes = 0;
  if (!s.proof.empty()) {
    auto r = DecodeReceipt(s.proof, network_id());
    if (!r)
      return Err(fail(Status::Corruption(
          fmt::format("{}: certified with a malformed receipt: {}", what, r.error().message()))));
    bytes = r->bytes_total;
  }
  // (A certificate of a closed epoch was refused above as void: this one is of the current
  // epoch, whose honest voters never vote past a close they applied or voted.)
  if (e.closed && (s.kind == SettleKind::kClose || bytes > e.redeemed_bytes)) {
    (void)Exec("ROLLBACK");
    return Err(Status::Corruption(fmt::format(
        "ALARM: {} certified for {} bytes, where the escrow was closed at {}: more than f "
        "authorities are faulty",
        what, bytes, e.redeemed_bytes)));
  }
  const uint64_t after = std::max(e.redeemed_bytes, bytes);
  const ReadPayout pay = ReadPayoutOf(e.redeemed_bytes, after, e.read, e.amount, e.margin_bps);
  Status st;
  if (pay.paid > e.remaining)
    st = Status::Corruption(fmt::format("{}: the escrow holds {} base units, the receipt pays {}",
                                        what, e.remaining, pay.paid));
  const uint64_t refunded = s.kind == SettleKind::kClose && st.ok() ? e.remaining - pay.paid : 0;
  if (st.ok() && pay.margin > 0 && e.owner)
    st = CreditLocked(*e.owner, static_cast<int64_t>(pay.margin), s.hash);
  if (st.ok() && pay.paid > pay.margin)
    st = CreditLocked(e.provider, static_cast<int64_t>(pay.paid - pay.margin), s.hash);
  if (st.ok() && refunded > 0) st = CreditLocked(e.payer, static_cast<int64_t>(refunded), s.hash);
  if (st.ok()) {
    SqlStmt up(db_, "UPDATE escrows SET remaining = remaining - ?2 WHERE id = ?1");
    up.BindBlob(1, View(s.escrow_id)).Bind(2, static_cast<int64_t>(pay.paid + refunded));
    if (up.Step() != SQLITE_DONE) st = SqlError("paying out of the escrow");
  }
  if (st.ok()) {
    SqlStmt up(db_,
               "UPDATE read_escrows SET redeemed = ?2, closed = max(closed, ?3) WHERE id = ?1");
    up.BindBlob(1, View(s.escrow_id)).Bind(2, static_cast<int64_t>(after));
    up.Bind(3, int64_t{s.kind == SettleKind::kClose ? 1 : 0});
    if (up.Step() != SQLITE_DONE) st = SqlError("recording the redeemed bytes");
  }
  if (st.ok()) {
    auto applied = NextSettleAppliedLocked();
    SqlStmt ins(db_, "INSERT INTO read_settlements VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
    ins.BindBlob(1, View(s.escrow_id)).BindBlob(2, View(s.hash));
    ins.Bind(3, static_cast<int64_t>(s.kind)).Bind(4, static_cast<int64_t>(bytes));
    ins.Bind(5, static_cast<int64_t>(pay.paid)).Bind(6, static_cast<int64_t>(pay.margin));
    ins.Bind(7, static_cast<int64_t>(refunded)).BindBlob(8, wire).Bind(9, applied ? *applied : 0);
    if (!applied)
      st = applied.error();
    else if (ins.Step() != SQLITE_DONE)
      st = SqlError("recording the read settlement");
  }
  if (st.ok()) st = Exec("COMMIT");
  if (!st.ok()) return Err(fail(st));
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

Result<std::vector<std::string>> Authority::BlobsLocked(const char* sql, int64_t a, int64_t b,
                                                        std::string_view what) {
  SqlStmt st(db_, sql);
  st.Bind(1, a).Bind(2, b);
  std::vector<std::string> out;
  int r;
  while ((r = st.Step()) == SQLITE_ROW) out.push_back(st.Blob(0));
  if (r != SQLITE_DONE) return Err(SqlError(what));
  return out;
}

Result<std::vector<std::string>> Authority::Log(uint64_t from, size_t limit) {
  core::MutexLock lock(&mu_);
  return BlobsLocked("SELECT cert FROM certificates WHERE applied >= ?1 ORDER BY applied LIMIT ?2",
                     static_cast<int64_t>(from), static_cast<int64_t>(limit), "reading the log");
}

Result<std::vector<std::string>> Authority::SettleLog(uint64_t from, size_t limit) {
  core::MutexLock lock(&mu_);
  return BlobsLocked(
      "SELECT cert FROM (SELECT cert, applied FROM settlements UNION ALL SELECT "
      "cert, applied FROM read_settlements) WHERE applied >= ?1 ORDER BY applied "
      "LIMIT ?2",
      static_cast<int64_t>(from), static_cast<int64_t>(limit), "reading the settlement log");
}

Result<std::vector<AccountInfo>> Authority::Accounts(size_t limit) {
  core::MutexLock lock(&mu_);
  SqlStmt st(db_, "SELECT key, balance, next_seq FROM accounts ORDER BY key LIMIT ?1");
  st.Bind(1, static_cast<int64_t>(limit));
  std::vector<AccountInfo> out;
  int r;
  while ((r = st.Step()) == SQLITE_ROW) {
    AccountInfo a;
    ToArray(st.Blob(0), &a.key);
    a.balance = st.Int(1);
    a.next_seq = static_cast<uint64_t>(st.Int(2));
    out.push_back(a);
  }
  if (r != SQLITE_DONE) return Err(SqlError("listing accounts"));
  return out;
}

Result<std::vector<std::pair<crypto::Hash, uint64_t>>> Authority::HeldCollateral(size_t limit) {
  core::MutexLock lock(&mu_);
  SqlStmt st(db_,
             "SELECT escrow_id, held FROM job_collateral WHERE held > 0 ORDER BY escrow_id "
             "LIMIT ?1");
  st.Bind(1, static_cast<int64_t>(limit));
  std::vector<std::pair<crypto::Hash, uint64_t>> out;
  int r;
  while ((r = st.Step()) == SQLITE_ROW) {
    crypto::Hash id{};
    ToArray(st.Blob(0), &id);
    out.emplace_back(id, static_cast<uint64_t>(st.Int(1)));
  }
  if (r != SQLITE_DONE) return Err(SqlError("listing collateral"));
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
             "SELECT (SELECT sum(balance) FROM accounts), (SELECT coalesce(sum(remaining), 0) "
             "FROM escrows), (SELECT value FROM meta WHERE key = 'supply'), (SELECT "
             "coalesce(sum(held), 0) FROM job_collateral)");
  if (st.Step() != SQLITE_ROW) return SqlError("summing balances");
  const std::string total = std::to_string(st.Int(0) + st.Int(1) + st.Int(3)), supply = st.Text(2);
  if (total != supply)
    return Status::Corruption(fmt::format(
        "ledger database {}: the balances ({}), open escrows ({}) and held collateral ({}) sum "
        "to {} base units, the supply is {}",
        opt_.path, st.Int(0), st.Int(1), st.Int(3), total, supply));
  return Status::OK();
}

Result<std::vector<Authority::ProofOutcome>> Authority::ProofOutcomes(
    size_t limit, const std::vector<KeyBytes>& first) {
  core::MutexLock lock(&mu_);
  // ?5: one payer only (its pairs), or none (every pair).
  const char* sql =
      "SELECT e.payer, e.provider, SUM(s.kind IN (?1, ?3)), SUM(s.kind IN (?2, ?4)) FROM "
      "settlements s JOIN escrows e ON e.id = s.escrow_id WHERE s.kind IN (?1, ?2, ?3, ?4) "
      "AND (?5 IS NULL OR e.payer = ?5) GROUP BY e.payer, e.provider ORDER BY COUNT(*) DESC "
      "LIMIT ?6";
  std::vector<ProofOutcome> out;
  std::set<KeyBytes> firsts(first.begin(), first.end());
  // The pre-trusted payers' pairs, all of them; then every pair (theirs skipped), up to
  // `limit` in all.
  std::vector<const KeyBytes*> passes;
  for (const KeyBytes& p : firsts) passes.push_back(&p);
  passes.push_back(nullptr);
  size_t kept = limit;
  for (const KeyBytes* payer : passes) {
    if (!payer) {
      kept = std::max(limit, out.size());
      if (out.size() >= limit) break;
    }
    SqlStmt st(db_, sql);
    st.Bind(1, static_cast<int64_t>(SettleKind::kRelease))
        .Bind(2, static_cast<int64_t>(SettleKind::kRefund))
        .Bind(3, static_cast<int64_t>(SettleKind::kJobRelease))
        .Bind(4, static_cast<int64_t>(SettleKind::kJobRefund))
        .Bind(6, static_cast<int64_t>(payer ? INT64_MAX : std::min<size_t>(limit, INT64_MAX)));
    if (payer) st.BindBlob(5, View(*payer));
    int r;
    while ((r = st.Step()) == SQLITE_ROW) {
      ProofOutcome o;
      if (!ToArray(st.Blob(0), &o.payer) || !ToArray(st.Blob(1), &o.provider))
        return Err(Status::Corruption(fmt::format(
            "ledger database {}: an escrow's payer or provider is malformed", opt_.path)));
      if (!payer && firsts.contains(o.payer)) continue;  // read already
      o.released = static_cast<uint64_t>(st.Int(2));
      o.refunded = static_cast<uint64_t>(st.Int(3));
      out.push_back(o);
    }
    if (r != SQLITE_DONE) return Err(SqlError("reading the proof outcomes"));
  }
  if (out.size() > kept) out.resize(kept);
  return out;
}

Result<std::vector<PayoutBucket>> Authority::Payouts(uint32_t bucket_seconds, size_t limit) {
  const int64_t bucket = std::max<int64_t>(1, bucket_seconds);
  std::map<int64_t, PayoutBucket> by_start;
  {
    core::MutexLock lock(&mu_);
    SqlStmt st(db_,
               "SELECT s.period, s.kind, s.paid, s.margin, e.terms FROM settlements s JOIN "
               "escrows e ON e.id = s.escrow_id");
    int r;
    while ((r = st.Step()) == SQLITE_ROW) {
      const int64_t kind = st.Int(1);
      if (kind == static_cast<int64_t>(SettleKind::kJobRelease) ||
          kind == static_cast<int64_t>(SettleKind::kJobRefund)) {
        // A compute escrow's payout counts in the bucket of its settle time.
        auto job = DecodeJobTerms(st.Blob(4));
        if (!job)
          return Err(Status::Corruption(fmt::format(
              "ledger database {}: a compute escrow's terms are malformed", opt_.path)));
        const auto at = static_cast<int64_t>(job->settle_unix);
        PayoutBucket& b = by_start[at - at % bucket];
        b.start_unix = at - at % bucket;
        const auto paid = static_cast<uint64_t>(st.Int(2));
        const auto margin = static_cast<uint64_t>(st.Int(3));
        if (kind == static_cast<int64_t>(SettleKind::kJobRelease)) {
          const uint64_t price = std::min(job->price, paid);
          b.to_providers += price - margin;
          b.margin += margin;
          b.refunded += paid - price;
          ++b.releases;
        } else {
          b.refunded += paid;
          ++b.refunds;
        }
        continue;
      }
      auto terms = DecodeTerms(st.Blob(4));
      if (!terms)
        return Err(Status::Corruption(
            fmt::format("ledger database {}: an escrow's terms are malformed", opt_.path)));
      const int64_t began = static_cast<int64_t>(terms->start_unix) +
                            st.Int(0) * static_cast<int64_t>(terms->period_seconds);
      PayoutBucket& b = by_start[began - began % bucket];
      b.start_unix = began - began % bucket;
      const auto paid = static_cast<uint64_t>(st.Int(2));
      const auto margin = static_cast<uint64_t>(st.Int(3));
      if (st.Int(1) == static_cast<int64_t>(SettleKind::kRelease)) {
        b.to_providers += paid - margin;
        b.margin += margin;
        ++b.releases;
      } else {
        b.refunded += paid;
        ++b.refunds;
      }
    }
    if (r != SQLITE_DONE) return Err(SqlError("reading settlements for payouts"));
    // Read escrows' payouts count in the bucket of the escrow's end.
    SqlStmt rs(db_,
               "SELECT s.kind, s.paid, s.margin, s.refunded, e.terms FROM read_settlements s "
               "JOIN escrows e ON e.id = s.escrow_id");
    while ((r = rs.Step()) == SQLITE_ROW) {
      auto terms = DecodeReadTerms(rs.Blob(4));
      if (!terms)
        return Err(Status::Corruption(
            fmt::format("ledger database {}: a read escrow's terms are malformed", opt_.path)));
      const auto end = static_cast<int64_t>(terms->end_unix);
      PayoutBucket& b = by_start[end - end % bucket];
      b.start_unix = end - end % bucket;
      const auto paid = static_cast<uint64_t>(rs.Int(1));
      const auto margin = static_cast<uint64_t>(rs.Int(2));
      b.to_providers += paid - margin;
      b.margin += margin;
      b.refunded += static_cast<uint64_t>(rs.Int(3));
      // Counted by kind: what each row paid depends on the order of application, what the
      // rows are does not.
      if (rs.Int(0) == static_cast<int64_t>(SettleKind::kRedeem)) ++b.releases;
      if (rs.Int(0) == static_cast<int64_t>(SettleKind::kClose) && rs.Int(3) > 0) ++b.refunds;
    }
    if (r != SQLITE_DONE) return Err(SqlError("reading read settlements for payouts"));
  }
  std::vector<PayoutBucket> out;
  for (const auto& [start, b] : by_start) out.push_back(b);
  if (out.size() > limit) out.erase(out.begin(), out.end() - static_cast<ptrdiff_t>(limit));
  return out;
}

Result<uint64_t> Authority::AppliedCount() {
  core::MutexLock lock(&mu_);
  SqlStmt st(db_, "SELECT count(*) FROM certificates");
  if (st.Step() != SQLITE_ROW) return Err(SqlError("counting certificates"));
  return static_cast<uint64_t>(st.Int(0));
}

// --- The epoch change.

Status Authority::SetMetaLocked(std::string_view key, const std::string& value) {
  SqlStmt st(db_, "INSERT INTO meta VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2");
  st.Bind(1, std::string(key)).Bind(2, value);
  if (st.Step() != SQLITE_DONE) return SqlError("writing meta");
  return Status::OK();
}

Status Authority::CheckVotingLocked(std::string_view what, uint64_t item_epoch) {
  // Every vote's record is written in autocommit mode (each commit synced): a connection left
  // inside a transaction by a failed COMMIT would let a vote leave before its record is on disk.
  if (!sqlite3_get_autocommit(db_))
    return Status::Internal(fmt::format(
        "ledger database {}: a transaction was left open; restart the node", opt_.path));
  if (sealed_ || voted_)
    return Status::Busy(fmt::format(
        "{}: epoch {} is closing at authority {} (sealed for the epoch change): it votes again "
        "in epoch {}; try again then",
        what, epoch(), opt_.index, epoch() + 1));
  if (item_epoch != epoch())
    return Status::InvalidArgument(
        fmt::format("{}: for epoch {}, the committee moved to {} meanwhile: make it again for "
                    "that epoch",
                    what, item_epoch, epoch()));
  return Status::OK();
}

Status Authority::ApplyingEpochLocked(uint64_t cert_epoch, std::string_view what) {
  const uint64_t e = epoch();
  if (cert_epoch < e)
    return Status::Refused(fmt::format(
        "{}: certified in epoch {}, which closed without it (the epoch certificate's checkpoint "
        "does not hold it): it is void; sign the order again for epoch {}",
        what, cert_epoch, e));
  if (voted_)
    return Status::Refused(fmt::format(
        "{}: authority {} voted to close epoch {} at a checkpoint without it, and applies "
        "nothing more of that epoch; sign the order again for epoch {} once it begins",
        what, opt_.index, e, e + 1));
  return Status::OK();
}

Result<Checkpoint> Authority::CheckpointLocked() {
  // SHA-256 of: the tag ‖ network id ‖ every account by key (key ‖ i64 balance ‖ u64 next
  // seq) ‖ 0xff ‖ every escrow by id (id ‖ u64 remaining) ‖ 0xff ‖ every settled period by
  // (escrow, period) (escrow id ‖ u32 period ‖ u8 kind) ‖ 0xff ‖ every applied read settlement
  // by (escrow, hash) (escrow id ‖ settlement hash) ‖ 0xff ‖ every read escrow by id (id ‖ u64
  // redeemed bytes ‖ u8 closed) ‖ 0xff ‖ every compute escrow's collateral by escrow id (id ‖
  // u64 held ‖ u64 to provider ‖ u64 to payer). Integers big-endian.
  crypto::Sha256 h;
  std::string buf;
  buf += static_cast<char>(kCheckpointTag.size());
  buf += kCheckpointTag;
  wire::PutArray(&buf, network_id());
  Checkpoint cp;
  // One section: each row of `sql`, its blob column first, then its integer columns of the
  // given widths; `counted` rows add to the settlements.
  auto section = [&](const char* sql, std::initializer_list<int> widths, bool counted,
                     std::string_view what) REQUIRES(mu_) -> Status {
    SqlStmt st(db_, sql);
    int r;
    while ((r = st.Step()) == SQLITE_ROW) {
      buf += st.Blob(0);
      int col = 1;
      for (int w : widths) {
        if (w == 0)
          buf += st.Blob(col++);
        else
          wire::PutBe(&buf, static_cast<uint64_t>(st.Int(col++)), w);
      }
      if (counted) ++cp.settlements;
      if (buf.size() >= (1u << 16)) {
        h.Update(buf);
        buf.clear();
      }
    }
    if (r != SQLITE_DONE) return SqlError(what);
    return Status::OK();
  };
  DFRP_RETURN_IF_ERROR(section("SELECT key, balance, next_seq FROM accounts ORDER BY key", {8, 8},
                               false, "reading accounts for a checkpoint"));
  buf += '\xff';
  DFRP_RETURN_IF_ERROR(section("SELECT id, remaining FROM escrows ORDER BY id", {8}, false,
                               "reading escrows for a checkpoint"));
  buf += '\xff';
  DFRP_RETURN_IF_ERROR(
      section("SELECT escrow_id, period, kind FROM settlements ORDER BY escrow_id, period", {4, 1},
              true, "reading settlements for a checkpoint"));
  buf += '\xff';
  DFRP_RETURN_IF_ERROR(
      section("SELECT escrow_id, hash FROM read_settlements ORDER BY escrow_id, hash", {0}, true,
              "reading read settlements for a checkpoint"));
  buf += '\xff';
  DFRP_RETURN_IF_ERROR(section("SELECT id, redeemed, closed FROM read_escrows ORDER BY id", {8, 1},
                               false, "reading read escrows for a checkpoint"));
  buf += '\xff';
  DFRP_RETURN_IF_ERROR(section(
      "SELECT escrow_id, held, to_provider, to_payer FROM job_collateral ORDER BY escrow_id",
      {8, 8, 8}, false, "reading collateral for a checkpoint"));
  h.Update(buf);
  cp.state = h.Final();
  SqlStmt n(db_, "SELECT count(*) FROM certificates");
  if (n.Step() != SQLITE_ROW) return Err(SqlError("counting certificates"));
  cp.certificates = static_cast<uint64_t>(n.Int(0));
  return cp;
}

Status Authority::Seal(const Vote& seal) {
  const uint64_t e = epoch();
  if (seal.order_hash != SealItemHash(e, network_id()))
    return Status::InvalidArgument(fmt::format(
        "seal: it does not seal epoch {} (authority {} is at epoch {})", e, opt_.index, e));
  DFRP_RETURN_IF_ERROR(VerifyVote(seal, committee_.AtEpoch(e), network_id()));
  core::MutexLock lock(&mu_);
  if (epoch() != e)
    return Status::InvalidArgument(fmt::format(
        "seal: epoch {} closed meanwhile (authority {} is at epoch {})", e, opt_.index, epoch()));
  if (sealed_) return Status::OK();
  DFRP_RETURN_IF_ERROR(SetMetaLocked("sealed", std::to_string(seal.authority)));
  sealed_ = true;
  return Status::OK();
}

Result<EpochState> Authority::GetEpochState() {
  core::MutexLock lock(&mu_);
  EpochState st;
  st.epoch = epoch();
  st.sealed = sealed_;
  st.voted = voted_;
  DFRP_ASSIGN_OR_RETURN(st.checkpoint, CheckpointLocked());
  return st;
}

Result<Vote> Authority::HandleEpochProposal(const EpochProposal& p) {
  const std::string what =
      fmt::format("proposal {} for epoch {}", core::ToHex(p.hash).substr(0, 16), p.next_epoch);
  if (p.epoch != epoch())
    return Err(
        Status::InvalidArgument(fmt::format("{}: it closes epoch {}, authority {} is at epoch {}",
                                            what, p.epoch, opt_.index, epoch())));
  if (p.committee != CommitteeDigest(committee_))
    return Err(Status::Refused(fmt::format(
        "{}: it names another committee; this authority follows only its own (economic.toml's "
        "genesis.committee; committee changes are not built)",
        what)));
  if (p.policy_version != opt_.policy->version)
    return Err(Status::Refused(fmt::format("{}: policy version {}, this authority runs version {}",
                                           what, p.policy_version, opt_.policy->version)));
  core::MutexLock lock(&mu_);
  if (p.epoch != epoch())
    return Err(
        Status::InvalidArgument(fmt::format("{}: epoch {} closed meanwhile", what, p.epoch)));
  if (!sealed_)
    return Err(Status::Refused(fmt::format(
        "{}: authority {} is not sealed: epoch {} must be sealed first (it still votes)", what,
        opt_.index, p.epoch)));
  if (voted_ && *voted_ != p.hash)
    return Err(Status::Refused(fmt::format(
        "{}: authority {} voted for proposal {} of this epoch already, and votes for one only",
        what, opt_.index, core::ToHex(*voted_).substr(0, 16))));
  DFRP_ASSIGN_OR_RETURN(Checkpoint cp, CheckpointLocked());
  if (cp != p.checkpoint)
    return Err(Status::Refused(fmt::format(
        "{}: authority {} holds {} certificates and {} settlements (state {}), the checkpoint "
        "{} and {} (state {}): it votes only for its own state",
        what, opt_.index, cp.certificates, cp.settlements, core::ToHex(cp.state).substr(0, 16),
        p.checkpoint.certificates, p.checkpoint.settlements,
        core::ToHex(p.checkpoint.state).substr(0, 16))));
  if (!voted_) {
    // On disk (synchronous=FULL) before the vote leaves: after a crash it still applies
    // nothing more of this epoch and votes for no other proposal.
    DFRP_RETURN_IF_ERROR(SetMetaLocked("epoch_vote", core::ToHex(p.hash)));
    voted_ = p.hash;
  }
  return SignVote(p.hash, p.epoch, opt_.index, *opt_.key, network_id());
}

Result<ApplyOutcome> Authority::HandleEpochCertificate(const EpochCertificate& c) {
  const EpochProposal& p = c.proposal;
  const std::string wire = EncodeEpochCertificate(c, network_id());
  const std::string what = fmt::format("epoch certificate for epoch {}", p.next_epoch);
  if (p.next_epoch <= epoch()) {
    core::MutexLock lock(&mu_);
    SqlStmt st(db_, "SELECT cert FROM epochs WHERE epoch = ?1");
    st.Bind(1, static_cast<int64_t>(p.next_epoch));
    // The same proposal (perhaps signed by another quorum) is the same epoch change.
    auto stored = st.Step() == SQLITE_ROW ? DecodeEpochCertificate(st.Blob(0), network_id())
                                          : Result<EpochCertificate>(Err(Status::NotFound("")));
    if (stored && stored->proposal.hash == p.hash) return ApplyOutcome::kAlreadyApplied;
    DFRP_RETURN_IF_ERROR(VerifyEpochCertificate(c, committee_.AtEpoch(p.epoch), network_id()));
    return Err(Status::Corruption(fmt::format(
        "ALARM: {}: authority {} applied another one for that epoch: two epoch certificates "
        "mean more than f authorities are faulty",
        what, opt_.index)));
  }
  if (p.epoch != epoch())
    return Err(Status::NotFound(fmt::format(
        "{}: it closes epoch {}, authority {} is at epoch {}: apply the epoch certificates "
        "between first",
        what, p.epoch, opt_.index, epoch())));
  DFRP_RETURN_IF_ERROR(VerifyEpochCertificate(c, committee_.AtEpoch(p.epoch), network_id()));
  if (p.committee != CommitteeDigest(committee_) || p.policy_version != opt_.policy->version)
    return Err(Status::InvalidArgument(fmt::format(
        "{}: a quorum certified another committee or policy version ({}); this authority cannot "
        "follow it (committee and policy changes are not built)",
        what, p.policy_version)));
  core::MutexLock lock(&mu_);
  if (p.epoch != epoch())
    return Err(Status::NotFound(fmt::format("{}: epoch {} closed meanwhile", what, p.epoch)));
  DFRP_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  auto fail = [&](Status st) REQUIRES(mu_) {
    (void)Exec("ROLLBACK");
    return st;
  };
  auto cp = CheckpointLocked();
  if (!cp) return Err(fail(cp.error()));
  if (*cp != p.checkpoint) {
    const bool behind =
        cp->certificates < p.checkpoint.certificates || cp->settlements < p.checkpoint.settlements;
    return Err(fail((behind ? Status::NotFound : Status::Corruption)(fmt::format(
        "{}: authority {} holds {} certificates and {} settlements of epoch {}, the "
        "certified checkpoint {} and {}{}",
        what, opt_.index, cp->certificates, cp->settlements, p.epoch, p.checkpoint.certificates,
        p.checkpoint.settlements,
        behind ? ": it applies the rest first (its ledger sync pulls them from its peers)"
               : ": ALARM: it applied what the checkpoint does not hold and cannot follow the "
                 "next epoch; restore its ledger from a peer's"))));
  }
  // Every lock of the closing epoch goes: the orders and settlements they hold were signed
  // for that epoch and can no longer be certified.
  // A read escrow's vote records go too: a redemption certified in the closing epoch and not
  // in the checkpoint is void, so the next close need only cover what was applied.
  Status st = Exec("DELETE FROM locks; DELETE FROM settle_locks; DELETE FROM read_votes");
  if (st.ok()) {
    SqlStmt ins(db_, "INSERT INTO epochs VALUES (?1, ?2)");
    ins.Bind(1, static_cast<int64_t>(p.next_epoch)).BindBlob(2, wire);
    if (ins.Step() != SQLITE_DONE) st = SqlError("recording the epoch certificate");
  }
  if (st.ok()) st = SetMetaLocked("epoch", std::to_string(p.next_epoch));
  if (st.ok()) st = Exec("DELETE FROM meta WHERE key IN ('sealed', 'epoch_vote')");
  if (st.ok()) st = Exec("COMMIT");
  if (!st.ok()) return Err(fail(st));
  epoch_.store(p.next_epoch, std::memory_order_release);
  sealed_ = false;
  voted_.reset();
  return ApplyOutcome::kApplied;
}

Result<std::vector<std::string>> Authority::EpochCertificates(uint64_t after_epoch, size_t limit) {
  core::MutexLock lock(&mu_);
  return BlobsLocked("SELECT cert FROM epochs WHERE epoch > ?1 ORDER BY epoch LIMIT ?2",
                     static_cast<int64_t>(after_epoch), static_cast<int64_t>(limit),
                     "reading epoch certificates");
}

}  // namespace dfrp::ledger
