// CollateralStaker: a provider's stake on a compute escrow it accepted (ledger/escrow.h,
// "Collateral"), sent by dfrpd from its own wallet as a job_collateral order.
//
// The order takes the wallet's next sequence number, so it follows the discipline every signer
// of that wallet follows (dfrp-ledger's, cli/ledger_cli.cc): one signer at a time (the flock on
// WALLET.lock, which dfrp-ledger and dfrp-wallet take too), an order signed earlier and not yet
// certified (WALLET.pending) is completed before another is signed, and each new order is
// synced to WALLET.pending before it leaves. So the node and an operator's commands never sign
// two orders for one sequence number, even across a crash.
//
// Thread-safety: Stake may be called from any thread (one at a time inside).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "dfrp/core/file_system.h"
#include "dfrp/core/status.h"
#include "dfrp/core/thread_annotations.h"
#include "dfrp/economy/policy.h"
#include "dfrp/ledger/client.h"

namespace dfrp::node {

class CollateralStaker {
 public:
  // `wallet_path`: the keystore (WALLET); its .lock and .pending files sit beside it.
  CollateralStaker(core::FileSystem* fs, std::string wallet_path, const crypto::bls::SecretKey* key,
                   const economy::EconomicPolicy* policy, ledger::LedgerClient client);

  // Stakes `amount` on `escrow_id` unless f + 1 authorities report it staked already:
  // {"staked": "now" | "already", and for a new stake "order_hash", "seq", "votes"}. Busy while
  // another signer holds the wallet; Refused when the wallet cannot cover the stake and the
  // order fee (nothing is signed then) or the committee refuses the order.
  core::Result<nlohmann::json> Stake(const crypto::Hash& escrow_id, uint64_t amount) EXCLUDES(mu_);
  // The wallet's balance as the committee reports it.
  core::Result<int64_t> Balance() EXCLUDES(mu_);

 private:
  core::FileSystem* const fs_;
  const std::string wallet_path_;
  const crypto::bls::SecretKey* const key_;
  const economy::EconomicPolicy* const policy_;
  core::Mutex mu_;
  ledger::LedgerClient client_ GUARDED_BY(mu_);
};

}  // namespace dfrp::node
