// dfrp-wallet: see src/dfrp/wallet/wallet_cli.h, and src/dfrp/cli/wallet_ledger.h for its ledger
// commands (balance, transfer, history, escrow). The edge: picks the real file system and clock.
#include "dfrp/cli/wallet_ledger.h"
#include "dfrp/wallet/wallet_cli.h"

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv, argv + argc);
  if (auto rc = dfrp::cli::RunWalletLedgerCommand(args, dfrp::core::DefaultFileSystem(),
                                                  dfrp::core::SystemClock()))
    return *rc;
  dfrp::wallet::CliIo io = dfrp::wallet::ProcessCliIo(dfrp::core::DefaultFileSystem());
  return dfrp::wallet::RunWalletCli(args, io);
}
