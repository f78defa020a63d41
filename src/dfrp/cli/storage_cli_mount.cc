// dfrp-storage mount: the read-only FUSE view (fuse/fuse_view.h).
#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "dfrp/cli/storage_cli_extra.h"
#include "dfrp/cli/storage_cli_internal.h"
#include "dfrp/fuse/fuse_view.h"

namespace dfrp::cli {

using core::Status;

namespace {

struct MountArgs {
  std::string mountpoint;
  std::string device;
  bool page_cache = false;
};

Status CmdMount(Context& ctx, const MountArgs& a) {
  fuse::FuseViewOptions opt;
  opt.mountpoint = a.mountpoint;
  opt.direct_io = !a.page_cache;
  if (!a.device.empty()) {
    opt.device = a.device;
  } else if (const char* env = std::getenv("DFRP_FUSE_DEVICE"); env != nullptr && *env) {
    opt.device = env;
  }
  // Problems while serving always reach stderr, --quiet or not: they are why a read failed.
  opt.log = [](const std::string& line) {
    std::fprintf(stderr, "dfrp-storage: mount: %s\n", line.c_str());
  };
  opt.on_mounted = [&] {
    ctx.Notice(
        fmt::format("mounted on {} (read-only); unmount with fusermount3 -u {} or "
                    "Ctrl-C",
                    a.mountpoint, a.mountpoint));
  };
  return ctx.service->Mount(opt);
}

}  // namespace

void AddMountCommands(CLI::App& app, std::vector<ExtraCommand>* out) {
  auto args = std::make_shared<MountArgs>();
  auto* m = app.add_subcommand(
      "mount", "serve a read-only view of the shards at MOUNTPOINT (FUSE); every read verified");
  m->add_option("mountpoint", args->mountpoint, "an existing folder")->required();
  m->add_option("--fuse-device", args->device,
                "FUSE device to check before mounting (default $DFRP_FUSE_DEVICE or /dev/fuse)");
  m->add_flag("--page-cache", args->page_cache,
              "serve the shards through the kernel page cache, so that programs can mmap them "
              "shared (sequential reads then cost more CPU)");
  out->push_back({m, true, [args](Context& ctx) { return CmdMount(ctx, *args); }});
}

}  // namespace dfrp::cli
