// dfrp-wallet: the wallet command line as a library function, so that it is tested without a
// process (apps/dfrp-wallet/main.cc only picks the real streams and file system and forwards
// argv).
//
// Commands: new, import, show, sign, verify, aggregate, verify-aggregate, change-passphrase,
// export-public. (The ledger commands balance, transfer, history and escrow are dfrp-ledger's,
// run for the wallet by apps/dfrp-wallet: src/dfrp/cli/wallet_ledger.h.) Global options: --config,
// --wallet, --json, --quiet, --passphrase-file,
// --insecure-test-kdf, --version. Errors print one line "dfrp-wallet: <message>" on the error
// stream; the exit code comes from core::ExitCodeFor (0 ok, 1 other, 2 usage/config,
// 3 integrity, 4 not found, 5 capacity, 6 busy). A signature to verify that is 96 bytes of
// hex but does not verify exits 3 whether or not it decodes to a curve point; bad hex or a
// wrong length exits 2.
//
// The config may name no drives (a client holds a wallet and no storage); only STATE_DIR and
// VECTOR_DIM are used. DFRP_KDF_PROFILE=test (tiny Argon2id parameters) is refused unless
// --insecure-test-kdf is given; a keystore with weak KDF parameters is flagged wherever it is
// read or written: a warning line on the error stream and "weak_kdf": true.
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

// Standard streams, the process environment, /dev/tty, and `fs` (the real file system: the
// caller is the edge that picks it).
CliIo ProcessCliIo(core::FileSystem* fs);

// Runs one command; args[0] is the program name. Returns the process exit code.
int RunWalletCli(const std::vector<std::string>& args, CliIo& io);

}  // namespace dfrp::wallet
