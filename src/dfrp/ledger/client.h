// LedgerClient: a wallet's side of the ledger (docs/PROTOCOL.md, "Ledger"). It sends a
// signed order to every authority of the committee at once, checks each vote, aggregates a
// quorum of them into a certificate, and sends the certificate to every authority; it is done
// when a quorum has applied it. An authority that lags behind the sender (it answers "not its
// next" for an order, or 404 for a certificate) is brought up to date by the client itself:
// the sender's certificates it misses are fetched from an authority that has them and sent
// to it (FastPay's client-driven sync), then the call is retried.
//
// Authorities are reached over HTTP (/v1/ledger/...) through one node::PeerClient shared by
// copies of this client, which keeps connections to them alive between calls; one thread per
// authority per round waits for its answer. A Byzantine authority can refuse, stall (each call has
// a timeout) or answer garbage: its votes are verified before they count.
//
// Thread-safety: a LedgerClient may be used from several threads at once.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "dfrp/core/status.h"
#include "dfrp/economy/policy.h"
#include "dfrp/ledger/audit.h"
#include "dfrp/ledger/escrow.h"
#include "dfrp/ledger/messages.h"

namespace dfrp::node {
class PeerClient;
}

namespace dfrp::ledger {

struct SubmitResult {
  Certificate certificate;
  std::string certificate_wire;
  size_t votes = 0;                // valid votes gathered (at least the quorum)
  size_t applied = 0;              // authorities that applied it: fewer than the quorum means the
                                   // certificate must be sent again (Broadcast), so keep it
  std::vector<std::string> notes;  // per authority, what went wrong (refusals, timeouts)
};

struct AccountView {
  int64_t balance = 0;  // as a quorum of authorities reports it (the most common answer)
  uint64_t next_seq = 0;
  size_t answers = 0;
  std::vector<std::string> notes;  // authorities that did not answer or disagreed
};

struct SettleResult {
  SettleCertificate certificate;
  std::string certificate_wire;
  size_t votes = 0;
  size_t applied = 0;  // fewer than the quorum: send it again (BroadcastSettlement)
  std::vector<std::string> notes;
};

// An escrow as the committee reports it: each authority's answer merged (a period counts as
// settled when any authority applied its certificate; `remaining` is the least reported).
struct EscrowView {
  crypto::Hash id{};
  KeyBytes payer{}, provider{};
  uint64_t amount = 0, remaining = 0;
  StorageTerms terms;
  uint32_t margin_bps = 0;
  std::string owner;                          // address, empty when no margin is taken
  std::map<uint32_t, PeriodSettled> settled;  // by period
  // A read escrow: `read` holds its terms (`terms` is unset). `redeemed_bytes` is the highest
  // total that f + 1 authorities report redeemed (one of them honest), `closed` whether f + 1
  // report it closed, `max_voted_bytes` the highest total f + 1 report having voted to redeem
  // or applied (what a close must cover at each of them, as far as the honest ones go).
  bool is_read = false;
  ReadTerms read;
  uint64_t redeemed_bytes = 0;
  bool closed = false;
  uint64_t max_voted_bytes = 0;
  // A compute escrow: `job` holds its terms, settled once as period 0.
  bool is_job = false;
  JobTerms job;
  // Its provider's stake, each figure the highest that f + 1 authorities report.
  uint64_t collateral_held = 0, collateral_to_provider = 0, collateral_to_payer = 0;
  // Staked at all (held or paid out): what f + 1 report.
  uint64_t collateral_staked() const {
    return collateral_held + collateral_to_provider + collateral_to_payer;
  }
  size_t answers = 0;
  std::vector<std::string> notes;
};

class LedgerClient {
 public:
  // `urls`: the authorities in committee order; empty takes genesis.committee's urls.
  // InvalidArgument: no committee, a url that is not http://host:port, as many urls as members.
  static core::Result<LedgerClient> Make(const economy::EconomicPolicy& policy,
                                         std::vector<std::string> urls = {});

  // See the file comment. Refused (exit 7) when refusals alone keep a quorum of votes out of
  // reach (funds, a frozen account); Busy when too few answered. Once certified, the result
  // comes back even if fewer than a quorum applied it (`applied`): keep the certificate.
  // `locked_nowhere`, when given, is set on failure when every authority answered and none
  // voted: no authority holds a lock on the order, so its sequence number is free again.
  core::Result<SubmitResult> Submit(const SignedOrder& order, bool* locked_nowhere = nullptr);
  // Sends an already made certificate to every authority (syncing laggards as Submit does);
  // returns how many applied it.
  core::Result<size_t> Broadcast(const std::string& certificate_wire);
  // Asks every authority; the answer a quorum agrees on. Busy when no quorum answers alike.
  core::Result<AccountView> Account(const std::string& address);

  // --- Escrows (ledger/escrow.h).
  // Gathers a quorum of votes for settling a period, certifies and broadcasts it (an
  // authority that has not applied the escrow's opening is sent the payer's certificates
  // first). Refused when refusals alone keep the quorum out of reach (outside the window, a
  // bad proof, the period locked the other way); Busy when too few answered.
  core::Result<SettleResult> Settle(const Settlement& s);
  core::Result<size_t> BroadcastSettlement(const std::string& certificate_wire);
  // The beacon of `slot`: every authority's signature gathered, verified, the first quorum
  // aggregated. Refused before the slot has begun at a quorum.
  core::Result<Beacon> GetBeacon(uint64_t slot);
  // NotFound when no authority knows the escrow.
  core::Result<EscrowView> Escrow(const crypto::Hash& id);
  // The escrows with money left where `address` pays or provides, merged across authorities.
  core::Result<std::vector<EscrowView>> OpenEscrows(const std::string& address);

  // --- Audits.
  // Everything authority `a` applied (its log and settlement log, page by page), the accounts
  // and the escrows it reports: what AuditLedger checks.
  core::Result<AuthorityLog> FetchLog(size_t authority);

  // The committee's members (at epoch 0; AtEpoch gives another epoch's).
  const Committee& committee() const { return committee_; }
  // The epoch new orders, settlements and beacons are for: 0 until RefreshEpoch learns more.
  uint64_t epoch() const { return epoch_->load(); }
  // Asks every authority its epoch and takes the highest one that f + 1 of them have reached
  // (so at least one honest authority is there: a faulty one cannot move a client to an epoch
  // that does not exist). Busy when fewer than f + 1 answer.
  core::Result<uint64_t> RefreshEpoch();
  const crypto::Hash& network_id() const { return policy_.network_id; }
  size_t quorum() const { return committee_.quorum(); }
  size_t size() const { return urls_.size(); }
  const std::string& url(size_t authority) const { return urls_[authority]; }

  // GET a JSON answer of one authority, or the Status it stands for.
  core::Result<nlohmann::json> Get(size_t authority, const std::string& target);
  // POST a JSON body; the answer's JSON or the Status it stands for.
  core::Result<nlohmann::json> Post(size_t authority, const std::string& target,
                                    const nlohmann::json& body);

 private:
  // Sends `authority` the certificates of `sender` it lacks (from a peer that has them).
  core::Status Sync(size_t authority, const KeyBytes& sender);
  // Sends it to every authority; how many applied it.
  size_t BroadcastCertificate(const Certificate& cert, const std::string& wire,
                              std::vector<std::string>* notes);
  core::Result<AuthorityLog> FetchLogOnce(size_t authority);
  // Sends the escrow's payer's certificates to an authority that lacks its opening.
  core::Status SyncEscrow(size_t authority, const crypto::Hash& escrow_id);

  // Votes for `item` from every authority in parallel (`body` null: a GET), each verified.
  // `resync(a, error)` may bring authority a up to date; true asks it once more.
  struct Gathered {
    std::vector<Vote> votes;
    std::vector<std::string> notes;
    core::Status first_refusal;
    size_t answered = 0, refused = 0;
  };
  Gathered GatherVotes(const std::string& target, const nlohmann::json& body,
                       const crypto::Hash& item, uint64_t epoch,
                       const std::function<bool(size_t, const core::Status&)>& resync);
  // Why `g` holds fewer votes than `need`: Refused, Busy or InvalidArgument.
  core::Status ShortOfQuorum(const Gathered& g, size_t need) const;
  // Sends a certificate to every authority at `target`; NotFound answers get `resync` and a
  // second try. How many applied it.
  size_t SendToAll(const std::string& target, const std::string& wire,
                   const std::function<bool(size_t)>& resync, std::vector<std::string>* notes);

  LedgerClient(const economy::EconomicPolicy& policy, Committee c, std::vector<std::string> urls)
      : policy_(policy),
        committee_(std::move(c)),
        urls_(std::move(urls)),
        verifier_(std::make_shared<crypto::bls::GroupVerifier>()),
        peers_(MakePeerClient()),
        epoch_(std::make_shared<std::atomic<uint64_t>>(0)) {}

  economy::EconomicPolicy policy_;
  Committee committee_;
  std::vector<std::string> urls_;
  // The votes of one order arrive together from several authorities (and those of
  // concurrent orders too): they are checked in batches. Shared by copies of this client.
  std::shared_ptr<crypto::bls::GroupVerifier> verifier_;
  // The HTTP client (kept-alive connections), shared by copies.
  static std::shared_ptr<node::PeerClient> MakePeerClient();
  std::shared_ptr<node::PeerClient> peers_;
  std::shared_ptr<std::atomic<uint64_t>> epoch_;  // shared by copies, like the verifier
};

// "http://127.0.0.1:9000/" -> "127.0.0.1:9000"; InvalidArgument for anything but http://.
core::Result<std::string> HostPortOfUrl(const std::string& url);

}  // namespace dfrp::ledger
