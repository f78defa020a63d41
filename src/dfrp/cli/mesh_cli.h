// dfrp-mesh: the mesh as the running dfrpd of this config sees it (docs/PROTOCOL.md, "Mesh").
//
//   dfrp-mesh node                  this node's address, node key, URL and counters
//   dfrp-mesh peers                 the peers it knows: state, URL, roles, uptime, prices
//   dfrp-mesh offers REQUEST [--k N]  the nodes that would take a request (the market's
//                                   request options, as `dfrp-market quote`), nearest first;
//                                   exit 7 when none does, naming the cheapest
//   dfrp-mesh put FILE --wallet W --max-fee F --periods N [--replicas R] [--vector V]
//   dfrp-mesh get ID [-o FILE] | status ID | repair [ID] --wallet W
//                                   paid copies on distinct nodes (mesh_store.h)
//
// Every command asks the dfrpd serving the config's STATE_DIR, or the one at --node URL (exit
// 4 when none runs: the mesh lives in the running node). --json prints the API's JSON.
//
// Thread-safety: one call per process.
#pragma once

#include "dfrp/core/clock.h"
#include "dfrp/core/file_system.h"

namespace dfrp::cli {

int RunMeshCli(int argc, char** argv, core::FileSystem* fs, core::Clock* clock);

}  // namespace dfrp::cli
