// ReadDesk: the provider's side of read payments (docs/PROTOCOL.md, "Read payments"). A
// client that opened a read escrow with this node's wallet as provider reads a shard with
// its usage receipt in the request (X-Dfrp-Read-Receipt): a receipt signed by the escrow's
// payer whose bytes total covers every byte this escrow was served before plus the bytes of
// this request. The desk admits the read only then, keeps the highest receipt of each escrow
// in STATE_DIR/read_receipts.db (synced before the bytes go out), and the provider service
// redeems it with the committee (ledger/escrow.h, "Read escrows").
//
// So nobody but the payer can spend its escrow (every read carries its signature), and the
// provider serves nothing it holds no receipt for. What the payer risks is one request: it
// signs for a request's bytes before it has them, and stops when they do not verify; the
// client keeps its requests at most ledger::kReadChunkBytes.
//
// The escrow's terms (payer, provider, price, end, amount) are read once from the committee
// (f + 1 agreeing, LedgerClient::Escrow) and kept; they never change.
//
// Thread-safety: every member may be called from any thread.
#pragma once

#include <sqlite3.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "dfrp/core/clock.h"
#include "dfrp/core/thread_annotations.h"
#include "dfrp/ledger/client.h"

namespace dfrp::node {

inline constexpr std::string_view kReadReceiptsFileName = "read_receipts.db";

struct StoredReceipt {
  crypto::Hash escrow_id{};
  uint64_t bytes_total = 0;
  std::string wire;  // ledger::EncodeReceipt
};

class ReadDesk {
 public:
  // Opens (creating) `path`. `provider`: this node's wallet key.
  static core::Result<std::unique_ptr<ReadDesk>> Open(const std::string& path,
                                                      ledger::LedgerClient client,
                                                      const ledger::KeyBytes& provider,
                                                      const economy::EconomicPolicy* policy,
                                                      core::Clock* clock);
  ~ReadDesk();

  // A paid read of `length` bytes with `receipt_wire` (the header's bytes): Ok once the
  // receipt is kept (synced). InvalidArgument: a malformed receipt, or one for another
  // provider; Corruption: not signed by the escrow's payer; NotFound: an escrow the
  // committee does not know (remembered for kUnknownEscrowMs, so receipts naming made-up
  // escrows cost one committee lookup each that long); Refused: not a read escrow of this
  // node, past its end (so closed: a close comes only after the end), spent, or a receipt
  // that does not cover what was served before plus this read (the message names the total
  // to sign for).
  core::Status Admit(std::string_view receipt_wire, uint64_t length) EXCLUDES(mu_);
  // The highest receipt kept for an escrow.
  std::optional<StoredReceipt> Best(const crypto::Hash& escrow_id) EXCLUDES(mu_);
  std::vector<StoredReceipt> All() EXCLUDES(mu_);
  nlohmann::json Json() EXCLUDES(mu_);

 private:
  ReadDesk(ledger::LedgerClient client, const ledger::KeyBytes& provider,
           const economy::EconomicPolicy* policy, core::Clock* clock)
      : client_(std::move(client)), provider_(provider), policy_(policy), clock_(clock) {}

  ledger::LedgerClient client_;
  const ledger::KeyBytes provider_;
  const economy::EconomicPolicy* const policy_;
  core::Clock* const clock_;

  core::Mutex mu_;
  sqlite3* db_ GUARDED_BY(mu_) = nullptr;
  // The escrows' terms as the committee reported them (immutable once opened).
  std::map<crypto::Hash, ledger::EscrowView> escrows_ GUARDED_BY(mu_);
  // Bytes served per escrow since the start; at least the kept receipt's total.
  std::map<crypto::Hash, uint64_t> served_ GUARDED_BY(mu_);
  // Escrows the committee did not know, until when (Unix ms); at most kMaxUnknown kept.
  static constexpr int64_t kUnknownEscrowMs = 30'000;
  static constexpr size_t kMaxUnknown = 4096;
  std::map<crypto::Hash, int64_t> unknown_ GUARDED_BY(mu_);
  uint64_t admitted_ GUARDED_BY(mu_) = 0, refused_ GUARDED_BY(mu_) = 0;
  uint64_t bytes_admitted_ GUARDED_BY(mu_) = 0;
  std::string last_refusal_ GUARDED_BY(mu_);
};

}  // namespace dfrp::node
