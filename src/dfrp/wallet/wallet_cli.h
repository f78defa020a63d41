// dfrp-wallet: the wallet command line as a library function, so that it is tested without a
// process (apps/dfrp-wallet/main.cc only forwards argv).
//
// Commands: new, import, show, sign, verify, aggregate, verify-aggregate, change-passphrase,
// export-public. Global options: --config, --wallet, --json, --quiet, --passphrase-file.
// Errors print one line "dfrp-wallet: <message>" on the error stream; the exit code comes from
// core::ExitCodeFor (0 ok, 1 other, 2 usage/config, 3 integrity, 4 not found, 5 capacity,
// 6 busy). DFRP_KDF_PROFILE=test selects tiny Argon2id parameters, for tests only.
//
// Thread-safety: not reentrant with respect to the streams in CliIo.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "dfrp/core/file_system.h"
#include "dfrp/wallet/passphrase.h"

namespace dfrp::wallet {

struct CliIo {
  std::istream* in;
  std::ostream* out;
  std::ostream* err;
  GetenvFn getenv;       // environment lookups (DFRP_PASSPHRASE, DFRP_KDF_PROFILE, config)
  PromptFn prompt;       // no-echo prompt; empty disables prompting
  core::FileSystem* fs;  // not owned
};

// Standard streams, the process environment, /dev/tty, the POSIX file system.
CliIo ProcessCliIo();

// Runs one command; args[0] is the program name. Returns the process exit code.
int RunWalletCli(const std::vector<std::string>& args, CliIo& io);
int RunWalletCli(int argc, char** argv);

}  // namespace dfrp::wallet
