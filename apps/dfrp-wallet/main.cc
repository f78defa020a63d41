// dfrp-wallet: see src/dfrp/wallet/wallet_cli.h.
#include "dfrp/wallet/wallet_cli.h"

int main(int argc, char** argv) { return dfrp::wallet::RunWalletCli(argc, argv); }
