// dfrp-market: the operator's and client's market command (issue 12).
//
//   dfrp-market [--config F] [--json] [-q] policy            the effective economic.toml
//   dfrp-market ... measure [--quick]                        measure this node's capacity
//   dfrp-market ... prices [--history [N]]                   the price vector and its history
//   dfrp-market ... quote (--cpu-sec S | --storage-mb M ... | --context FILE|-)
//
// `measure` writes STATE_DIR/capacity.json, from which the first price vector is made;
// `prices` shows the oracle's state in STATE_DIR/market.db (prices move each epoch only while
// dfrpd runs); `quote` matches a request against the current prices: exit 0 when accepted, 7
// when the market refuses it (the reason on stderr, or in the JSON), 2 for a bad request.
//
// Thread-safety: one call per process.
#pragma once

#include "dfrp/core/clock.h"
#include "dfrp/core/file_system.h"

namespace dfrp::cli {

int RunMarketCli(int argc, char** argv, core::FileSystem* fs, core::Clock* clock);

}  // namespace dfrp::cli
