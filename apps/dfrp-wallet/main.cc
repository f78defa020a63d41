// dfrp-wallet: see src/dfrp/wallet/wallet_cli.h. The edge: picks the real file system.
#include "dfrp/wallet/wallet_cli.h"

int main(int argc, char** argv) {
  dfrp::wallet::CliIo io = dfrp::wallet::ProcessCliIo(dfrp::core::DefaultFileSystem());
  return dfrp::wallet::RunWalletCli(std::vector<std::string>(argv, argv + argc), io);
}
