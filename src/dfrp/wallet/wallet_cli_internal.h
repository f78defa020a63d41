// The pieces the dfrp-wallet command files share (wallet_cli.cc: the keystore commands and
// the parser; wallet_cli_verify.cc: verify, aggregate, verify-aggregate). Not a public header:
// only those files include it.
//
// Thread-safety: as wallet_cli.h.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dfrp/core/status.h"
#include "dfrp/wallet/wallet_cli.h"

namespace dfrp::wallet::cli {

// The parsed command line.
struct Options {
  std::string config, wallet, passphrase_file, new_passphrase_file;
  bool json = false, quiet = false, insecure_test_kdf = false;
  std::string vector_csv, secret_file;
  std::vector<std::string> message_hex, message_file, public_keys, pops, signatures;
};

struct Ctx {
  CliIo& io;
  Options& o;
};

// The messages named by --message-hex or --file (never both). InvalidArgument for none, for
// both, or for bad hex.
core::Result<std::vector<std::string>> Messages(Ctx& c);

// Prints `obj` as one JSON line with --json, else "key: value" lines; `primary` (when set and
// not --json) prints only that value, for piping.
void Emit(Ctx& c, const nlohmann::json& obj, const char* primary = nullptr);

// The signature commands (wallet_cli_verify.cc); they need no wallet.
core::Status CmdVerify(Ctx& c);
core::Status CmdAggregate(Ctx& c);
core::Status CmdVerifyAggregate(Ctx& c);

}  // namespace dfrp::wallet::cli
