// What storage_cli.cc shares with the files of its commands (storage_cli_write.cc): the
// parsed global options and the context every command runs in. Not for use outside cli/.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "dfrp/cli/remote.h"
#include "dfrp/core/config.h"
#include "dfrp/core/status.h"
#include "dfrp/storage/store.h"

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

struct Context {
  GlobalOptions g;
  core::NodeConfig config;
  bool progress = false;
  Remote* remote = nullptr;  // the dfrpd serving this store, if one runs (remote.h)

  void Notice(const std::string& msg) const {
    if (!g.quiet) std::fprintf(stderr, "dfrp-storage: %s\n", msg.c_str());
  }
};

// Prints one JSON document (indented) on stdout.
void PrintJson(const nlohmann::json& j);
// Opens the store (direct path) and prints its notices.
core::Result<std::unique_ptr<storage::Store>> OpenStore(Context& ctx, storage::Store::Mode mode);
// Writes all of `data` to `fd` (standard output), retrying on EINTR.
core::Status WriteAllToFd(int fd, std::string_view data);

// write-shard (storage_cli_write.cc): directly as one batch, or through dfrpd one file a write.
core::Status CmdWrite(Context& ctx, const WriteOptions& w);

}  // namespace dfrp::cli
