// LedgerSyncService: an authority's pull of the certificates it missed (docs/PROTOCOL.md,
// "Ledger"). Clients send every certificate to every authority, but an authority that was
// down, cut off or slow when one went out would otherwise stay behind until that sender's next
// order; this thread closes the gap by itself. Once per tick it reads each peer's log and
// settlement log (GET /v1/ledger/log?from=, /v1/ledger/settlement-log?from=) from where it
// stopped last time, and applies what it has not applied yet through the same checks a
// certificate sent by a client gets (Authority::HandleCertificate / HandleSettleCertificate:
// the aggregate signature is verified, application happens once). A peer's log lists its
// certificates in the order it applied them, so a sender's sequence numbers and an escrow's
// opening come before what depends on them.
//
// A peer is trusted for nothing: an entry that does not decode or verify is counted, noted and
// passed over (an honest peer serves the real one), and that peer is read no further until
// the next tick, so a faulty peer costs at most one failed signature check a tick. What is applied
// here already is skipped before any signature check, so reading a peer's log again costs decoding
// only. The read positions live in memory: after a restart the logs are read again from their
// start.
//
// Thread-safety: every member may be called from any thread.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dfrp/core/thread_annotations.h"
#include "dfrp/ledger/client.h"
#include "dfrp/node/ticker.h"

namespace dfrp::node {

class Node;

class LedgerSyncService {
 public:
  LedgerSyncService(Node* node, core::Clock* clock, ledger::LedgerClient client, uint32_t self,
                    int64_t tick_ms);
  void Start() {
    ticker_.Start([this] { Tick(); });
  }
  void RequestStop() { ticker_.RequestStop(); }
  void Stop() { ticker_.Stop(); }
  // The "ledger_sync" section of /v1/status.
  nlohmann::json Json() const EXCLUDES(mu_);
  // Certificates (and settlement certificates) this service applied, over all peers.
  uint64_t applied() const EXCLUDES(mu_);

 private:
  struct Peer {
    uint64_t log_next = 1;     // the next entry of the peer's log to read (1-based)
    uint64_t settle_next = 1;  // likewise for its settlement log
    uint64_t applied = 0;      // entries applied here that this peer supplied
    uint64_t rejected = 0;     // entries that did not decode or verify
    uint64_t epoch = 0;        // the epoch it reported last
    std::string last_error;
  };
  void Tick() EXCLUDES(mu_);
  // Reads one of the peer's logs from `*next` on, page by page (at most a few per tick);
  // returns false when the peer could not be read.
  bool Pull(size_t peer, bool settle, Peer* p) EXCLUDES(mu_);
  // Applies the epoch certificates the peer has past this authority's epoch, in order (one
  // whose checkpoint this authority has not reached yet waits for the next tick).
  void PullEpochs(size_t peer, Peer* p) EXCLUDES(mu_);

  Node* const node_;
  ledger::LedgerClient client_;
  const uint32_t self_;

  mutable core::Mutex mu_;
  std::vector<Peer> peers_ GUARDED_BY(mu_);  // by committee index (self's entry unused)
  int64_t last_tick_ms_ GUARDED_BY(mu_) = 0;
  Ticker ticker_;  // last: stopped (joined) before the members its thread uses go
};

}  // namespace dfrp::node
