// dfrp-mesh put|get|status|repair: a client's file stored as paid copies on distinct mesh
// nodes (docs/PROTOCOL.md, "Mesh": "Replicated storage"; issue 15, item 5).
//
//   put FILE    asks the node for offers (nearest by vector, within --max-fee), stores the file
//               on the first --replicas offering nodes that take it (a node whose write
//               receipt does not match the Merkle root computed here is skipped), opens one
//               storage escrow per copy (the provider signs the terms; the committee certifies
//               it), and keeps the contract as a manifest, PUTS_DIR/ID.json
//   get ID      reads the file from the first copy that serves it, alive peers first; the bytes
//               are checked against the root computed at put before anything is written
//   status ID   each copy: its node's state as the node sees it, the copy's facts on its node
//               (size and root), its escrow's released and refunded periods
//   repair [ID] re-creates every copy that needs it (its node is dead, the copy is missing or
//               does not match, or a period was refunded for want of a proof) from a good copy,
//               on a node not yet holding one, with a new escrow for the periods left
//
// The manifest (docs/FORMAT.md, "Mesh put manifest") is written atomically and synced; a put
// that stored fewer copies than asked keeps what it made (repair completes it) and exits 7.
//
// Thread-safety: one call per process.
#pragma once

#include <cstdint>
#include <string>

#include "dfrp/core/clock.h"
#include "dfrp/core/file_system.h"
#include "dfrp/core/status.h"
#include "dfrp/node/client.h"

namespace dfrp::cli {

struct MeshStoreFlags {
  core::Clock* clock = nullptr;  // the contract's start, repair's periods left
  node::DaemonInfo node;         // the node asked for offers and peer states
  std::string puts_dir;          // where the manifests live
  std::string config;            // for the economic policy when --policy is not given
  std::string policy;
  std::string wallet, passphrase_file;
  std::string file, id, output, max_fee, vector;
  uint32_t replicas = 2, periods = 0;
  bool json = false, quiet = false;
};

core::Status MeshPut(core::FileSystem* fs, const MeshStoreFlags& f);
core::Status MeshGet(core::FileSystem* fs, const MeshStoreFlags& f);
core::Status MeshStatus(core::FileSystem* fs, const MeshStoreFlags& f);
core::Status MeshRepair(core::FileSystem* fs, const MeshStoreFlags& f);

}  // namespace dfrp::cli
