// The read-only FUSE view of a store (libfuse3), kept in its own library so that nothing
// else links libfuse.
//
//   /shards/<id>            a shard's payload
//   /meta/<id>.json         its metadata, as `dfrp-storage --json stat-shard` prints it
//   /volumes/<n>/<id>       the payloads again, listed by volume
//
// The shard list is the index as it was at mount time. Every read verifies the leaves it
// touches against the shard's Merkle root (storage::ShardReader, fuse/read_ahead.h) before any
// byte is handed to the kernel; a leaf that does not verify makes that read fail with EIO (never
// wrong bytes), and is reported through `log` with the shard and the leaf. Reads of other leaves
// and other shards go on.
//
// Thread-safety: RunFuseView serves requests on several threads; it serializes its calls
// into the Store, while reads through already opened shards run in parallel.
#pragma once

#include <functional>
#include <string>

#include "dfrp/core/status.h"
#include "dfrp/storage/store.h"

namespace dfrp::fuse {

struct FuseViewOptions {
  std::string mountpoint;
  // Checked (opened read-write) before mounting, so that a machine without FUSE gets a clear
  // error. libfuse itself always mounts through /dev/fuse; another path here is for tests.
  std::string device = "/dev/fuse";
  // Problems met while serving (a leaf that does not verify), one line each, from any thread.
  std::function<void(const std::string&)> log;
  // Called once the view is mounted and serving.
  std::function<void()> on_mounted;
  unsigned max_threads = 4;
  // Payload files bypass the kernel's page cache (direct I/O): every read reaches the view
  // and is verified as it is served, each read() of a program is one request (st_blksize
  // tells programs 1 MiB), and a sequential reader's next reads are verified ahead on a pool
  // of threads (ShardStream). Such files cannot be mapped MAP_SHARED (mmap fails with ENODEV;
  // MAP_PRIVATE works). With false they are read through the page cache, which is dropped at
  // each open, and can be mapped either way; sequential reads then cost more CPU (the kernel
  // copies each byte once more, into its cache).
  bool direct_io = true;
  unsigned read_ahead = 2;  // reads verified ahead of a sequential reader (direct I/O only)
  // Told of the verified bytes served from each open payload file, once, when it is closed
  // (or when the view stops); not owned; null: nothing is counted.
  storage::IoObserver* observer = nullptr;
};

// Mounts the view and serves it until it is unmounted (fusermount3 -u MOUNTPOINT) or the
// process gets SIGINT, SIGTERM or SIGHUP, then unmounts. NotFound when the FUSE device cannot
// be opened; InvalidArgument for a mountpoint that is not an empty folder; IOError when the
// mount itself fails.
core::Status RunFuseView(storage::Store& store, const FuseViewOptions& opt);

}  // namespace dfrp::fuse
