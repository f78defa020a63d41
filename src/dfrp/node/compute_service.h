// The compute listener (issue 16; docs/COMPUTE.md, "The listener"): a dfrpd with ROLES
// compute and a WALLET takes signed jobs over its API, refuses what it cannot or will not do
// with the reason, runs the rest one at a time under mpirun (compute/executor.h), and signs
// a result claim for each job it ran to the end.
//
// A job is accepted only when it decodes for this network, its client's signature verifies,
// it has not expired, its app is in the catalog with arguments that fit the schema, its
// inputs (when it has any) fit max_input_bytes on a node that can fetch them, it fits the node's
// slots (ranks) and limits, it asks for no GPU on a node without one, and the node's price for its
// CPU-seconds (ranks × cpu_seconds at the current cpu_sec price) is within its max_fee with
// its vector at least compute.vector_threshold similar to the node's identity vector
// (economy::MatchFee). The same job sent again answers with its current state.
//
// A queued job whose expiry passed before its turn is "expired", never started.
//
// A job's inputs are fetched when its turn comes, before the app starts, into
// STATE_DIR/compute/jobs/<job id>/inputs/<i> (through fetch_input: the node's own store, the
// nodes the client named, its mesh peers; node/input_fetch.h), each verified against the root
// the job names; an argument of type "input" is replaced by that file's path. An input no
// source serves verified fails the job ("failed", the reason in its report, no claim). The
// files are removed when the job ends.
//
// Competing jobs are ranked by the sigmoid weighting (economy/fee_match.h, docs/PROTOCOL.md):
// when a job ends, the next to run is a funded one (paid through a compute escrow) before an
// unfunded one, then the one of highest weight, sigmoid(s * (max_fee / price - m)) times its
// vector similarity, divided by the client's excess request rate; the earliest on a tie. The
// weight is taken when the job is accepted (NextJob).
//
// Each job's folder, STATE_DIR/compute/jobs/<job id>/, holds job.bin (the signed job as sent),
// state.json (written atomically at every change) and run/ (dfrp-jobrun's folder). A job that
// was queued or running when the node stopped is "interrupted" when it starts again: no
// result and no claim, the client submits a new one.
//
// Thread-safety: every method may be called from any thread; one runner thread runs the jobs.
#pragma once

#include <sys/types.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "dfrp/compute/catalog.h"
#include "dfrp/compute/executor.h"
#include "dfrp/compute/job.h"
#include "dfrp/core/clock.h"
#include "dfrp/core/file_system.h"
#include "dfrp/core/thread_annotations.h"
#include "dfrp/economy/fee_match.h"
#include "dfrp/economy/policy.h"
#include "dfrp/ledger/client.h"

namespace dfrp::node {

struct ComputeServiceOptions {
  core::FileSystem* fs = nullptr;
  core::Clock* clock = nullptr;
  std::string dir;  // STATE_DIR/compute/jobs
  const economy::EconomicPolicy* policy = nullptr;
  const crypto::bls::SecretKey* wallet_key = nullptr;  // signs the result claims
  std::vector<float> vector;                           // the node's identity vector
  std::function<economy::PriceVector()> prices;        // the current price vector
  bool has_gpu = false;
  std::vector<compute::AppSpec> apps;
  compute::ExecutorConfig exec;
  uint32_t slots = 1;                // the most ranks of one job
  uint64_t max_wall_seconds = 3600;  // the longest job taken
  size_t max_queue = 16;
  // The committee's view of a compute escrow (ledger::LedgerClient::Escrow); unset on a node
  // whose economic.toml has no committee: it takes no paid jobs then.
  std::function<core::Result<ledger::EscrowView>(const crypto::Hash&)> escrow_of;
  // Writes a job's input to `path`, verified, from the node's sources and the client's
  // `hints` (node URLs); `from` gets the source. Unset: jobs with inputs are refused.
  std::function<core::Status(const compute::JobInput& in, const std::vector<std::string>& hints,
                             const std::string& path, std::string* from)>
      fetch_input;
  uint64_t max_input_bytes = 8ull << 30;  // the most input bytes of one job
  // Whether a certified fraud record names this compute escrow (node/fraud_book.h); unset:
  // never.
  std::function<bool(const crypto::Hash& escrow_id)> disputed;
  // Stakes the collateral a paid job's terms ask (node/collateral_staker.h) before the job is
  // queued, and this wallet's balance as the committee reports it (checked before terms that
  // ask a stake are accepted). Unset: terms that ask a stake are refused.
  std::function<core::Result<nlohmann::json>(const crypto::Hash& escrow_id, uint64_t amount)> stake;
  std::function<core::Result<int64_t>()> balance;
};

// A queued job as the queue ranks it.
struct QueuedJob {
  bool funded = false;  // paid through a compute escrow
  double weight = 0;    // economy::RequestWeight when it was accepted
};
// The index in `queue` (in arrival order) of the job to run next: funded before unfunded, then
// the highest weight, then the earliest. `queue` must not be empty.
size_t NextJob(const std::vector<QueuedJob>& queue);

class ComputeService {
 public:
  static core::Result<std::unique_ptr<ComputeService>> Open(ComputeServiceOptions opt);
  ~ComputeService();
  void Start();
  void Stop();  // the running job is stopped (SIGTERM to dfrp-jobrun) and the thread joined

  // A job's wire bytes: {"job_id", "state", "quote", "provider"} when accepted (or already
  // known); InvalidArgument for bytes that do not decode, Corruption for a signature that does
  // not verify, Refused with the reason for a job this node will not run, Busy when the queue
  // is full.
  //
  // With `escrow` (a paid job, docs/COMPUTE.md "Paying for a job"): the committee must report
  // that compute escrow open for this job, with this node as its provider and the job's client
  // as its payer, and not settled; its price (accepted by AcceptEscrow) is the job's price, so
  // no fee match is made again. `input_from`: the nodes the client says hold the job's inputs
  // (hints: whatever they serve is verified; at most 8 http URLs).
  core::Result<nlohmann::json> Submit(std::string_view wire,
                                      std::optional<crypto::Hash> escrow = std::nullopt,
                                      std::vector<std::string> input_from = {});
  // What this node would charge for the job now, with every check Submit makes, queueing
  // nothing: {"job_id", "provider", "price_base_units", "quote"}.
  core::Result<nlohmann::json> Quote(std::string_view wire);
  // This node's signed acceptance of a compute escrow for the job (ledger::JobTerms): the job
  // passes Quote's checks, it is the payer's, the terms are for it, the price is at least this
  // node's quote now and the amount at most the job's max_fee, and the settle time leaves the
  // job's wall time (and a margin) to run it. Refused otherwise, with the reason.
  core::Result<ledger::SigBytes> AcceptEscrow(std::string_view job_wire,
                                              const ledger::KeyBytes& payer, uint64_t seq,
                                              uint64_t epoch, uint64_t amount,
                                              const ledger::JobTerms& terms);
  // The compute escrows of this node's paid jobs whose settlement it has not recorded yet.
  std::vector<crypto::Hash> UnsettledEscrows() const EXCLUDES(mu_);
  // Records how the committee settled a paid job's escrow (ProviderService learns it):
  // released, with what the provider was paid, or refunded. Kept in the job's state.json;
  // the job's JSON shows it as "settlement" and the node's as "earned".
  core::Status SetSettlement(const crypto::Hash& escrow_id, bool released, uint64_t to_provider)
      EXCLUDES(mu_);
  // The signed claim (wire) of a job this node ran to the end; nullopt otherwise.
  std::optional<std::string> ClaimOf(const crypto::Hash& job_id) const;
  // The least time between the end of a job's wall time and its settle time that
  // AcceptEscrow takes: the queue, the claim, the client's check.
  static constexpr uint64_t kSettleMarginSeconds = 10;
  // The job's state: queued, running, done (with its claim), failed, expired, interrupted.
  core::Result<nlohmann::json> JobJson(const std::string& id_hex) const;
  // The path of rank `rank`'s output of a done job.
  core::Result<std::string> OutputPath(const std::string& id_hex, uint32_t rank) const;
  // Slots, the queue, the catalog, counts.
  nlohmann::json Json() const;
  // The jobs this node holds, newest first: at most `limit` of them, only those in `state`
  // when it is not empty. {"jobs": [JobJson...], "total": how many matched}.
  nlohmann::json JobsJson(std::string_view state, size_t limit) const;

 private:
  struct Job {
    compute::JobContext ctx;
    std::string id_hex;
    std::string state;  // queued, running, done, failed, interrupted
    nlohmann::json quote;
    nlohmann::json report;  // when it ran
    std::string claim_hex;  // when done
    std::string result_root_hex;
    int64_t submitted_ms = 0;
    std::optional<crypto::Hash> escrow;   // a paid job: its compute escrow
    double weight = 0;                    // the sigmoid weighting's, when it was accepted
    std::vector<std::string> input_from;  // the client's hints for its inputs
    int64_t started_ms = 0;               // when it started running (0: not yet)
    std::string settled;                  // a paid job: "released" or "refunded" once known
    uint64_t paid_base_units = 0;         // released: what the provider was paid
  };
  struct Checked {
    compute::JobContext ctx;
    std::string id_hex;
    economy::Quote quote;
  };
  // Decodes and checks a job as Submit does; `match_fee` false: no fee match (a paid job's
  // price was agreed in its escrow).
  core::Result<Checked> Check(std::string_view wire, bool match_fee);
  // Checks that the escrow pays this node for this job; `price` gets the price it agreed,
  // `unstaked` the collateral its terms ask that the committee does not report staked yet.
  core::Status CheckEscrow(const Checked& c, const crypto::Hash& escrow_id, economy::Amount* price,
                           uint64_t* unstaked) const;
  nlohmann::json QuoteJson(const economy::Quote& q) const;
  explicit ComputeService(ComputeServiceOptions opt)
      : opt_(std::move(opt)), admission_(opt_.policy->reward) {}
  core::Status Load();
  core::Status Save(const Job& j) const;
  nlohmann::json ToJson(const Job& j) const;
  void RunLoop() EXCLUDES(mu_);
  void RunOne(const std::string& id) EXCLUDES(mu_);
  // Fetches job `j`'s inputs into `dir` (one file per input); `paths` gets their paths and
  // `fetched` a JSON line each (shard, source).
  core::Status FetchInputs(const Job& j, const std::string& dir, std::vector<std::string>* paths,
                           nlohmann::json* fetched);

  const ComputeServiceOptions opt_;
  core::Mutex submit_mu_ ACQUIRED_BEFORE(mu_);  // one acceptance at a time
  mutable core::Mutex mu_;
  core::CondVar cv_;
  std::map<std::string, Job> jobs_ GUARDED_BY(mu_);
  std::deque<std::string> queue_ GUARDED_BY(mu_);
  bool stop_ GUARDED_BY(mu_) = false;
  pid_t running_pid_ GUARDED_BY(mu_) = 0;  // dfrp-jobrun of the running job
  std::string running_id_ GUARDED_BY(mu_);
  uint64_t refused_ GUARDED_BY(mu_) = 0;
  economy::AdmissionControl admission_;  // the clients' request rates (internally locked)
  std::thread runner_;
};

}  // namespace dfrp::node
