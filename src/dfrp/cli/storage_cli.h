// dfrp-storage: the storage node's command-line front end. Each command is a function over a
// storage service (storage_service.h); main() only hands argv here, with the file system and
// clock to use. Exit codes are core::ExitCode (see the README).
#pragma once

#include "dfrp/core/clock.h"
#include "dfrp/core/file_system.h"

namespace dfrp::cli {

// Parses argv, picks the storage service (the store opened here, or the dfrpd that serves it),
// runs one command, prints to stdout/stderr, and returns the process exit code. Every file
// goes through `fs`, every reading of the time through `clock`.
int RunStorageCli(int argc, char** argv, core::FileSystem* fs, core::Clock* clock);

}  // namespace dfrp::cli
