// The wallet's journal of an order signed and not yet certified: WALLET.pending, the order's
// wire in hex and a newline, written (synced) before the order leaves. Every signer of a wallet
// (dfrp-ledger and dfrp-wallet, cli/ledger_cli.cc; dfrpd's stakes, node/collateral_staker.h)
// completes the journaled order before it signs another, so no two orders ever take one
// sequence number, even across a crash.
//
// Thread-safety: plain functions; the caller holds the wallet's lock (WALLET.lock).
#pragma once

#include <string>

#include "dfrp/core/file_system.h"
#include "dfrp/core/status.h"
#include "dfrp/ledger/messages.h"

namespace dfrp::ledger {

// The journaled order, decoded: Corruption for a file that is not the hex of a signed order,
// InvalidArgument for an order of another wallet than `me`.
core::Result<SignedOrder> ReadPendingOrder(core::FileSystem* fs, const std::string& path,
                                           const crypto::Hash& network_id, const KeyBytes& me);
// Journals `order` at `path`, atomically and synced.
core::Status WritePendingOrder(core::FileSystem* fs, const std::string& path,
                               const SignedOrder& order, const crypto::Hash& network_id);

}  // namespace dfrp::ledger
