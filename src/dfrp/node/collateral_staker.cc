#include "dfrp/node/collateral_staker.h"

#include <fmt/format.h>

#include "dfrp/core/bytes.h"
#include "dfrp/ledger/pending_order.h"
#include "dfrp/wallet/address.h"

namespace dfrp::node {

using core::Err;
using core::Result;
using core::Status;
using nlohmann::json;

CollateralStaker::CollateralStaker(core::FileSystem* fs, std::string wallet_path,
                                   const crypto::bls::SecretKey* key,
                                   const economy::EconomicPolicy* policy,
                                   ledger::LedgerClient client)
    : fs_(fs),
      wallet_path_(std::move(wallet_path)),
      key_(key),
      policy_(policy),
      client_(std::move(client)) {}

Result<int64_t> CollateralStaker::Balance() {
  core::MutexLock lock(&mu_);
  DFRP_ASSIGN_OR_RETURN(ledger::AccountView v,
                        client_.Account(wallet::AddressOf(key_->GetPublicKey())));
  return v.balance;
}

Result<json> CollateralStaker::Stake(const crypto::Hash& escrow_id, uint64_t amount) {
  const std::string what = fmt::format("the stake of {} base units on compute escrow {}", amount,
                                       core::ToHex(escrow_id).substr(0, 16));
  core::MutexLock lock(&mu_);
  auto held = fs_->TryLock(wallet_path_ + ".lock");
  if (!held)
    return Err(held.error().code() == Status::Code::kBusy
                   ? Status::Busy(fmt::format(
                         "{}: another program (dfrp-ledger, dfrp-wallet) is signing with the "
                         "wallet {}: send the job again when it is done",
                         what, wallet_path_))
                   : held.error());
  // Asked again under the wallet's lock: a stake certified meanwhile is never signed twice (a
  // second one would be refused, and stay valid in WALLET.pending for nothing).
  DFRP_ASSIGN_OR_RETURN(ledger::EscrowView e, client_.Escrow(escrow_id));
  if (e.collateral_staked() >= amount) return json{{"staked", "already"}};
  if (!e.settled.empty())
    return Err(Status::Refused(fmt::format("{}: the job is settled already", what)));
  const ledger::KeyBytes me = key_->GetPublicKey().bytes();
  const std::string address = wallet::AddressOf(key_->GetPublicKey());
  DFRP_ASSIGN_OR_RETURN(const uint64_t epoch, client_.RefreshEpoch());
  DFRP_ASSIGN_OR_RETURN(ledger::AccountView acct, client_.Account(address));
  uint64_t next = acct.next_seq;
  int64_t balance = acct.balance;
  const std::string pending = wallet_path_ + ".pending";
  json out;
  if (fs_->Exists(pending)) {
    auto read = ledger::ReadPendingOrder(fs_, pending, policy_->network_id, me);
    if (!read) return Err(read.error().WithContext(what + ": nothing was signed"));
    const ledger::SignedOrder& old = *read;
    if (old.order.seq >= next && old.order.epoch >= epoch) {
      // Signed earlier and not certified yet: completed first, so no other order ever takes
      // its sequence number.
      auto done = client_.Submit(old);
      if (!done)
        return Err(done.error().WithContext(fmt::format(
            "{}: the order signed earlier at seq {} ({}) must be certified first (dfrp-ledger "
            "transfer --abandon-pending moves past it)",
            what, old.order.seq, core::ToHex(old.hash).substr(0, 16))));
      out["completed_first"] = core::ToHex(old.hash);
      // That was this very stake (signed before a crash or a failed send): done.
      if (old.order.kind == ledger::OrderKind::kJobCollateral &&
          old.order.collateral.escrow_id == escrow_id && old.order.collateral.amount == amount) {
        out["staked"] = "now";
        out["order_hash"] = core::ToHex(old.hash);
        out["seq"] = old.order.seq;
        return out;
      }
      next = old.order.seq + 1;
      balance -= static_cast<int64_t>(old.order.amount() + old.order.fee);
    }
  }
  const uint64_t fee = policy_->order_fee;
  if (balance < 0 || static_cast<uint64_t>(balance) < amount ||
      static_cast<uint64_t>(balance) - amount < fee)
    return Err(Status::Refused(fmt::format(
        "{}: this node's wallet {} has {} {} (as the committee reports it), the stake needs {} "
        "plus the order fee {}: nothing was signed",
        what, address, policy_->FormatSignedAmount(balance), policy_->genesis.currency,
        policy_->FormatAmount(amount), policy_->FormatAmount(fee))));
  ledger::Order o;
  o.kind = ledger::OrderKind::kJobCollateral;
  o.sender = me;
  o.seq = next;
  o.epoch = epoch;
  o.fee = fee;
  o.collateral.escrow_id = escrow_id;
  o.collateral.amount = amount;
  const ledger::SignedOrder so = ledger::SignOrder(o, *key_, policy_->network_id);
  // Synced before anything leaves: a crash after this point sends this order again first.
  DFRP_RETURN_IF_ERROR(ledger::WritePendingOrder(fs_, pending, so, policy_->network_id));
  DFRP_ASSIGN_OR_RETURN(ledger::SubmitResult r, client_.Submit(so));
  out.update(json{{"staked", "now"},
                  {"order_hash", core::ToHex(so.hash)},
                  {"seq", o.seq},
                  {"votes", r.votes},
                  {"applied_by", r.applied}});
  return out;
}

}  // namespace dfrp::node
