// dfrp-storage: the storage node's command-line front end. Each command is a function over a
// Store; main() only hands argv here. Exit codes are core::ExitCode (see the README).
#pragma once

namespace dfrp::cli {

// Parses argv, runs one command, prints to stdout/stderr, and returns the process exit code.
int RunStorageCli(int argc, char** argv);

}  // namespace dfrp::cli
