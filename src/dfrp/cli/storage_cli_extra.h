// Subcommands of dfrp-storage that live outside storage_cli.cc (issue 4: proofs, audits,
// scrubbing, the FUSE view). Each Add* function registers its subcommands on the app and
// appends how to run them; RunStorageCli runs the one that was chosen.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "dfrp/cli/storage_cli_internal.h"
#include "dfrp/core/status.h"
#include "dfrp/core/uuid.h"

namespace dfrp::cli {

struct ExtraCommand {
  CLI::App* app = nullptr;
  // false: runs with no config and no storage service at all (verify-proof).
  bool needs_config = true;
  std::function<core::Status(Context& ctx)> run;
};

// prove-shard, audit, verify-proof (storage_cli_proof.cc).
void AddProofCommands(CLI::App& app, std::vector<ExtraCommand>* out);

// scrub (storage_cli_scrub.cc).
void AddScrubCommands(CLI::App& app, std::vector<ExtraCommand>* out);

// mount (storage_cli_mount.cc).
void AddMountCommands(CLI::App& app, std::vector<ExtraCommand>* out);

// Parses a shard id given on the command line; InvalidArgument with an example otherwise.
core::Result<core::Uuid> ParseShardId(const std::string& text);

// Parses read-shard's --range OFFSET:LENGTH (decimal bytes). InvalidArgument otherwise.
core::Result<std::pair<uint64_t, uint64_t>> ParseRange(const std::string& text);

}  // namespace dfrp::cli
