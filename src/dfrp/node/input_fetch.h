// Fetching a compute job's inputs (issue 16; docs/COMPUTE.md, "Inputs"): a job names each input
// by shard id, Merkle root, size and leaf size, all signed by its client, so the provider may
// take the bytes from anyone: its own store, the nodes the client said hold them, its mesh
// peers. Each source is asked in turn (GET /v1/shards/{id}); the bytes go to a file while
// their leaves are hashed, and only bytes whose size and Merkle root match the job's are kept.
// A source that does not have the shard, cannot be reached, stops sending for idle_timeout_ms
// or serves other bytes is passed over, and the error names every source and why, so a job fails
// with a reason, never with unverified data.
//
// Thread-safety: a free function; each call uses its own connections.
#pragma once

#include <string>
#include <vector>

#include "dfrp/compute/job.h"
#include "dfrp/core/file_system.h"
#include "dfrp/core/status.h"

namespace dfrp::node {

struct InputFetchOptions {
  int connect_timeout_ms = 3000;
  int idle_timeout_ms = 30000;  // a source that sends nothing for this long is passed over
  size_t max_sources = 16;      // the most sources tried for one input
};

// Writes input `in` to `path` (created, synced, renamed into place; mode 0644) from the first
// of `sources` (node URLs, "http://host:port") that serves bytes of its size and root; sets
// `*from` to that source. Corruption when some source answered but none verified (the
// message lists each source and what it did); NotFound when no source had it.
core::Status FetchInput(core::FileSystem* fs, const compute::JobInput& in,
                        const std::vector<std::string>& sources, const std::string& path,
                        std::string* from, const InputFetchOptions& opt = {});

}  // namespace dfrp::node
