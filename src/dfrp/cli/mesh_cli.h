// dfrp-mesh: the mesh as the running dfrpd of this config sees it (docs/PROTOCOL.md, "Mesh").
//
//   dfrp-mesh node                  this node's address, node key, URL and counters
//   dfrp-mesh peers                 the peers it knows: state, URL, roles, uptime, prices
//   dfrp-mesh offers REQUEST [--k N]  the nodes that would take a request (the market's
//                                   request options, as `dfrp-market quote`), nearest first;
//                                   exit 7 when none does, naming the cheapest
//
// Every command asks the dfrpd serving the config's STATE_DIR (exit 4 when none runs: the
// mesh lives in the running node). --json prints the API's JSON.
//
// Thread-safety: one call per process.
#pragma once

#include "dfrp/core/file_system.h"

namespace dfrp::cli {

int RunMeshCli(int argc, char** argv, core::FileSystem* fs);

}  // namespace dfrp::cli
