// The ledger commands of dfrp-wallet (issue 13): `balance`, `transfer`, `history` and
// `escrow ...` are dfrp-ledger's commands (ledger_cli.cc), run for the wallet that dfrp-wallet's
// global options name:
//
//   dfrp-wallet [--config C] [--wallet W] [--passphrase-file F] [--policy P] [--json]
//       balance [--address A]          the wallet's balance (or A's), as a quorum reports it
//       transfer --to ADDR --amount X [--memo T] [--seq N] [--offline -o FILE]
//       history [--address A] [--limit N]
//       escrow open ... | status ID | list [--address A] | refund ID
//
// The wallet is --wallet, else STATE_DIR/wallet.json of the config (as for every dfrp-wallet
// command); the network is --policy, else the config's ECONOMIC_POLICY. Exit codes are
// dfrp-ledger's (7: refused for funds, a frozen account, a closed escrow).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "dfrp/core/clock.h"
#include "dfrp/core/file_system.h"

namespace dfrp::cli {

// nullopt when `args` (args[0] the program) name no ledger command: dfrp-wallet's own
// commands run then. Otherwise the command's exit code.
std::optional<int> RunWalletLedgerCommand(const std::vector<std::string>& args,
                                          core::FileSystem* fs, core::Clock* clock);

}  // namespace dfrp::cli
