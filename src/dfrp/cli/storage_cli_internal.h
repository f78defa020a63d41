// What storage_cli.cc shares with the files of its commands: the parsed global options and
// the context every command runs in. Not for use outside cli/.
#pragma once

#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dfrp/cli/storage_service.h"
#include "dfrp/core/clock.h"
#include "dfrp/core/config.h"
#include "dfrp/core/file_system.h"
#include "dfrp/core/status.h"

namespace dfrp::cli {

struct GlobalOptions {
  std::string config;
  bool json = false;
  bool quiet = false;
};

struct WriteOptions {
  std::vector<std::string> files;
  std::string files_from;
  std::vector<std::string> meta;
  std::string vector;
  uint32_t leaf_size = 0;
  std::string content_type = "application/octet-stream";
  std::string owner;
};

// What every command runs with, set up by RunStorageCli (the edge): the file system and clock
// it was given, and the storage service it picked.
struct Context {
  GlobalOptions g;
  core::NodeConfig config;
  bool progress = false;  // draw progress bars: stderr is a terminal and not --quiet
  core::FileSystem* fs = nullptr;
  core::Clock* clock = nullptr;
  // The store, opened here or through the dfrpd that serves it (storage_service.h). Null only
  // for commands that need no store (verify-proof).
  StorageService* service = nullptr;

  // Prints a notice on stderr the way every dfrp-storage notice looks, unless quiet.
  void Notice(const std::string& msg) const {
    if (!g.quiet) std::fprintf(stderr, "dfrp-storage: %s\n", msg.c_str());
  }
  // A line on stdout, unless --json or --quiet.
  void Say(const std::string& line) const {
    if (!g.json && !g.quiet) std::printf("%s\n", line.c_str());
  }
};

// Proof files are small; a larger one is not a proof (1024 challenges of 64 KiB leaves in hex
// fit well inside this). audit keeps its answers well inside it.
inline constexpr uint64_t kMaxProofFileBytes = 256ull << 20;

// Prints one JSON document (indented) on stdout.
void PrintJson(const nlohmann::json& j);
// `path` made absolute against the current folder (unchanged if it is absolute or empty).
std::string AbsolutePath(const std::string& path);

// write-shard (storage_cli_write.cc).
core::Status CmdWrite(Context& ctx, const WriteOptions& w);
// read-shard (storage_cli_read.cc): to standard output, or -o PATH (a regular file through a
// temporary file renamed into place; a device or FIFO written straight through).
core::Status CmdRead(Context& ctx, const std::string& id_text, const std::string& out_path,
                     const std::string& range);

}  // namespace dfrp::cli
