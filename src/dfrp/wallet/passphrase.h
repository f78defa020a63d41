// Where a keystore passphrase comes from, first found wins: a file named by
// --passphrase-file (its first line), the environment variable (DFRP_PASSPHRASE, or
// DFRP_NEW_PASSPHRASE for a new passphrase), or a no-echo prompt on the terminal.
//
// A passphrase travels as a SecretString from where it is read to where the key is derived,
// and is wiped when the command is done with it: the terminal line is read straight into one,
// the file is read straight into one, and the environment value's copy is wiped once taken.
//
// Thread-safety: the terminal prompt must not run on two threads at once.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "dfrp/core/file_system.h"
#include "dfrp/core/status.h"
#include "dfrp/wallet/secret_string.h"

namespace dfrp::wallet {

// Asks the user for a secret without echo; returns the line typed (without the newline).
using PromptFn = std::function<core::Result<SecretString>(std::string_view prompt)>;
using GetenvFn = std::function<std::optional<std::string>(const std::string&)>;

// Prompts on /dev/tty with echo turned off (termios). InvalidArgument when there is no
// terminal, naming the other two sources.
core::Result<SecretString> PromptOnTerminal(std::string_view prompt);

// A small file (a passphrase file, a secret key file) read whole, straight into wiped memory.
// InvalidArgument for a file over 64 KiB, naming it; NotFound if it does not exist.
core::Result<SecretString> ReadSecretFile(core::FileSystem* fs, const std::string& path);

struct PassphraseSource {
  std::string file;      // --passphrase-file; empty if not given
  std::string env_name;  // DFRP_PASSPHRASE or DFRP_NEW_PASSPHRASE
  GetenvFn getenv;
  PromptFn prompt;  // may be empty: no prompting
};

// Reads a passphrase. With `confirm`, a prompted passphrase is asked twice and must match.
// InvalidArgument for an empty passphrase or when no source gives one.
core::Result<SecretString> ReadPassphrase(core::FileSystem* fs, const PassphraseSource& src,
                                          std::string_view what, bool confirm);

}  // namespace dfrp::wallet
