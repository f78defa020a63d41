// FraudBook: the certified fraud records this node knows, kept and spread through the mesh
// (compute/fraud.h; docs/COMPUTE.md "A caught provider, across the mesh").
//
// A record arrives by POST /v1/compute/fraud (from the client that disputed a job, or from a
// peer); it is checked alone (the committee's quorum signature, the two signed claims) and
// kept in STATE_DIR/compute/fraud/<id>.cert (the certificate's wire, written atomically and
// synced before it counts). Every record is then delivered to every peer the mesh knows alive
// (POST /v1/compute/fraud), which does the same: at once when it is new, and on each tick
// (`spread_interval_ms`) to the alive peers that have not yet answered for it, so a peer that
// was unreachable or joins later gets every record too. A peer's answer other than a transport
// failure or a 5xx counts as delivered (one that refuses the record will not take it later);
// at most `max_sends_per_tick` are sent per tick. Which peers have a record is kept in memory
// only: after a restart every record goes once more to each peer, which keeps it once.
//
// What it changes: GET /v1/compute/fraud answers a provider's records (submit-job passes over
// a provider with one, after checking the certificate itself), and the mesh's peer list shows
// each peer's count. At most `max_records` are kept; beyond that new ones are refused (Busy).
//
// Thread-safety: every member may be called from any thread.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "dfrp/compute/fraud.h"
#include "dfrp/core/file_system.h"
#include "dfrp/core/thread_annotations.h"
#include "dfrp/node/peer_client.h"
#include "dfrp/node/ticker.h"

namespace dfrp::node {

struct FraudBookOptions {
  core::FileSystem* fs = nullptr;
  core::Clock* clock = nullptr;
  std::string dir;  // STATE_DIR/compute/fraud
  ledger::Committee committee;
  crypto::Hash network_id{};
  size_t max_records = 10'000;
  int64_t spread_interval_ms = 1000;
  size_t max_sends_per_tick = 64;
  // The base URLs records are delivered to (the mesh's alive peers); unset: none.
  std::function<std::vector<std::string>()> peers;
};

class FraudBook {
 public:
  // Loads every record kept in `dir`, checking each again; a file that does not check is left
  // where it is and named in notes().
  static core::Result<std::unique_ptr<FraudBook>> Open(FraudBookOptions opt);
  ~FraudBook();
  // Starts the delivery ticks (once the mesh is set up); Stop ends them (a send under way is
  // answered later, or failed when the book is destroyed).
  void Start();
  void Stop();

  struct Added {
    compute::FraudRecord record;
    bool added = false;    // new here (kept, and being spread)
    size_t spread_to = 0;  // the peers it is being sent to now
  };
  // A certificate's wire: InvalidArgument or Corruption when it is no certified fraud record
  // (compute::CheckFraudCertificate), Busy when the book is full, an IOError when it could not
  // be kept.
  core::Result<Added> Add(std::string_view wire) EXCLUDES(mu_);

  // Whether a record is of that compute escrow's refund.
  bool HasEscrow(const crypto::Hash& escrow_id) const EXCLUDES(mu_);
  // How many records name `provider` (its wallet key).
  size_t CountFor(const ledger::KeyBytes& provider) const EXCLUDES(mu_);
  // {"records": [FraudRecordJson...] newest first, at most `limit`, only those of the provider
  // `address` when it is not empty; "total": how many matched}.
  nlohmann::json Json(std::string_view address, size_t limit) const EXCLUDES(mu_);
  // {"records", "providers", "delivered", "send_failed", "refused"} for /v1/status.
  nlohmann::json Summary() const EXCLUDES(mu_);
  std::vector<std::string> notes() const EXCLUDES(mu_);

 private:
  struct Kept {
    compute::FraudRecord record;
    std::set<std::string> delivered;  // the peers that answered for it
    std::set<std::string> in_flight;  // sent, not yet answered
  };
  explicit FraudBook(FraudBookOptions opt);
  // Sends the records the alive peers have not answered for, at most `budget` of them; how
  // many were sent.
  size_t SendDue(size_t budget) EXCLUDES(mu_);
  void Answered(size_t index, const std::string& url, bool delivered) EXCLUDES(mu_);

  const FraudBookOptions opt_;
  mutable core::Mutex mu_;
  std::vector<Kept> records_ GUARDED_BY(mu_);  // in the order they came
  std::map<crypto::Hash, size_t> by_id_ GUARDED_BY(mu_);
  std::map<ledger::KeyBytes, size_t> per_provider_ GUARDED_BY(mu_);
  std::set<crypto::Hash> escrows_ GUARDED_BY(mu_);
  std::vector<std::string> notes_ GUARDED_BY(mu_);
  uint64_t refused_ GUARDED_BY(mu_) = 0;
  uint64_t delivered_ GUARDED_BY(mu_) = 0, send_failed_ GUARDED_BY(mu_) = 0;
  Ticker ticker_;
  // Destroyed before the records: its callbacks never outlive what they update.
  std::unique_ptr<PeerClient> client_;
};

}  // namespace dfrp::node
