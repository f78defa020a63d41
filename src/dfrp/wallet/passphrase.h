// Where a keystore passphrase comes from, first found wins: a file named by
// --passphrase-file (its first line), the environment variable (DFRP_PASSPHRASE, or
// DFRP_NEW_PASSPHRASE for a new passphrase), or a no-echo prompt on the terminal.
//
// Thread-safety: the terminal prompt must not run on two threads at once.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "dfrp/core/file_system.h"
#include "dfrp/core/status.h"

namespace dfrp::wallet {

// Asks the user for a secret without echo; returns the line typed (without the newline).
using PromptFn = std::function<core::Result<std::string>(std::string_view prompt)>;
using GetenvFn = std::function<std::optional<std::string>(const std::string&)>;

// Prompts on /dev/tty with echo turned off (termios). InvalidArgument when there is no
// terminal, naming the other two sources.
core::Result<std::string> PromptOnTerminal(std::string_view prompt);

struct PassphraseSource {
  std::string file;      // --passphrase-file; empty if not given
  std::string env_name;  // DFRP_PASSPHRASE or DFRP_NEW_PASSPHRASE
  GetenvFn getenv;
  PromptFn prompt;  // may be empty: no prompting
};

// Reads a passphrase. With `confirm`, a prompted passphrase is asked twice and must match.
// InvalidArgument for an empty passphrase or when no source gives one.
core::Result<std::string> ReadPassphrase(core::FileSystem* fs, const PassphraseSource& src,
                                         std::string_view what, bool confirm);

}  // namespace dfrp::wallet
