// dfrp-ledger's command line (ledger_cli.cc has the commands and their flags).
#pragma once

#include "dfrp/core/clock.h"
#include "dfrp/core/file_system.h"

namespace dfrp::cli {

int RunLedgerCli(int argc, char** argv, core::FileSystem* fs, core::Clock* clock);

}  // namespace dfrp::cli
