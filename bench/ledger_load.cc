// dfrp-ledger-load: the load generator and the bound of bench/ledger_throughput.sh (issue 13).
//
//   dfrp-ledger-load addresses --accounts K
//       the addresses of K load accounts (keys from IETF KeyGen over SHA-256("dfrp-bench-" ‖
//       i), so no wallet files are needed), one per line: the script funds them at genesis.
//   dfrp-ledger-load bound [--seconds S] [--committee N]
//       BLS verifications per second on all cores, batched (crypto::bls::BatchVerify of 256
//       independent triples at a time), and one by one on one thread; and the bound on
//       certified transfers per second this machine sets: batched verifications per second
//       divided by what one transfer needs with N authorities and its client on this machine
//       (3N: each authority verifies the order's signature and the certificate's aggregate,
//       the client each authority's vote). JSON on stdout.
//   dfrp-ledger-load run --policy P --accounts K --seconds S (--concurrency C | --rate R)
//       transfers of one base unit between the load accounts, each signed here and certified
//       through the committee (ledger::LedgerClient::Submit: votes gathered and verified,
//       the certificate made and sent to every authority). Closed loop with C workers, or
//       open loop at R transfers per second (latency counted from each transfer's scheduled
//       start, so a slow committee cannot hide its queue). JSON on stdout: completed,
//       failed, transfers per second, latency percentiles (ms).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "dfrp/core/bytes.h"
#include "dfrp/core/file_system.h"
#include "dfrp/crypto/bls.h"
#include "dfrp/crypto/sha256.h"
#include "dfrp/economy/policy.h"
#include "dfrp/ledger/client.h"
#include "dfrp/ledger/messages.h"
#include "dfrp/wallet/address.h"

namespace {

namespace bls = dfrp::crypto::bls;
namespace ledger = dfrp::ledger;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

bls::SecretKey LoadKey(size_t i) {
  const std::string seed = "dfrp-bench-" + std::to_string(i);
  const dfrp::crypto::Hash ikm = dfrp::crypto::Sha256Of(seed);
  auto k = bls::SecretKey::FromIkm(
      dfrp::core::AsBytes(std::string_view(reinterpret_cast<const char*>(ikm.data()), ikm.size())));
  if (!k) {
    std::fprintf(stderr, "key %zu: %s\n", i, k.error().ToString().c_str());
    std::exit(1);
  }
  return std::move(*k);
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

int Addresses(size_t accounts) {
  for (size_t i = 0; i < accounts; ++i)
    std::printf("%s\n", dfrp::wallet::AddressOf(LoadKey(i).GetPublicKey()).c_str());
  return 0;
}

int Bound(double seconds, size_t committee) {
  constexpr size_t kBatch = 256;
  std::vector<bls::SecretKey> keys;
  std::vector<bls::PublicKey> pubs;
  std::vector<std::string> msgs;
  std::vector<bls::Signature> sigs;
  for (size_t i = 0; i < kBatch; ++i) {
    keys.push_back(LoadKey(1'000'000 + i));
    pubs.push_back(keys.back().GetPublicKey());
    msgs.push_back("an order to verify, number " + std::to_string(i));
    sigs.push_back(keys.back().Sign(dfrp::core::AsBytes(msgs[i])));
  }
  std::vector<bls::SignedMessage> batch;
  for (size_t i = 0; i < kBatch; ++i)
    batch.push_back({&pubs[i], dfrp::core::AsBytes(msgs[i]), &sigs[i]});
  // Batched, all cores.
  size_t batched = 0;
  const auto t0 = Clock::now();
  while (Seconds(Clock::now() - t0) < seconds) {
    if (!bls::BatchVerify(batch, 0).ok()) return 1;
    batched += kBatch;
  }
  const double batched_per_s = static_cast<double>(batched) / Seconds(Clock::now() - t0);
  // One by one, one thread.
  size_t single = 0;
  const auto t1 = Clock::now();
  while (Seconds(Clock::now() - t1) < seconds / 2) {
    const size_t i = single % kBatch;
    if (!bls::Verify(pubs[i], batch[i].message, sigs[i]).ok()) return 1;
    ++single;
  }
  const double single_per_s = static_cast<double>(single) / Seconds(Clock::now() - t1);
  // At each authority the order's signature and the certificate's aggregate; at the client the
  // quorum's votes, checked as one aggregate (ledger/client.cc, GatherVotes).
  const size_t per_transfer = 2 * committee + 1;
  std::printf("%s\n", json{{"cores", std::thread::hardware_concurrency()},
                           {"batched_verifications_per_s", batched_per_s},
                           {"single_verifications_per_s_one_thread", single_per_s},
                           {"verifications_per_transfer", per_transfer},
                           {"bound_transfers_per_s", batched_per_s / per_transfer}}
                          .dump()
                          .c_str());
  return 0;
}

struct Account {
  explicit Account(bls::SecretKey k) : key(std::move(k)), pub(key.GetPublicKey().bytes()) {}
  bls::SecretKey key;
  ledger::KeyBytes pub{};
  uint64_t next_seq = 0;
  std::mutex mu;  // one order in flight per account
};

int Run(const std::string& policy_path, size_t accounts, double seconds, size_t concurrency,
        double rate) {
  auto policy =
      dfrp::economy::LoadEconomicPolicy(dfrp::core::DefaultFileSystem(), policy_path, ".");
  if (!policy) {
    std::fprintf(stderr, "%s\n", policy.error().ToString().c_str());
    return 2;
  }
  auto client = ledger::LedgerClient::Make(*policy);
  if (!client) {
    std::fprintf(stderr, "%s\n", client.error().ToString().c_str());
    return 2;
  }
  std::vector<std::unique_ptr<Account>> accts;
  for (size_t i = 0; i < accounts; ++i) {
    accts.push_back(std::make_unique<Account>(LoadKey(i)));
  }
  // Where each account's sequence stands now (a run may follow an earlier one).
  for (auto& a : accts) {
    auto v = client->Account(ledger::AddressOfKey(a->pub));
    if (!v) {
      std::fprintf(stderr, "account: %s\n", v.error().ToString().c_str());
      return 2;
    }
    a->next_seq = v->next_seq;
  }
  std::mutex mu;
  std::vector<double> latencies_ms;
  std::atomic<size_t> failed{0};
  std::string first_error;
  std::atomic<size_t> cursor{0};
  // One transfer from account `from` (its lock held by the caller) to the next account.
  auto transfer = [&](size_t from, Clock::time_point start) {
    Account& a = *accts[from];
    ledger::Order o;
    o.sender = a.pub;
    o.seq = a.next_seq;
    o.fee = policy->order_fee;
    o.transfer.to = accts[(from + 1) % accts.size()]->pub;
    o.transfer.amount = 1;
    const ledger::SignedOrder so = ledger::SignOrder(o, a.key, policy->network_id);
    auto r = client->Submit(so);
    const double ms = Seconds(Clock::now() - start) * 1000;
    std::lock_guard<std::mutex> lock(mu);
    if (r && r->applied >= client->quorum()) {
      ++a.next_seq;
      latencies_ms.push_back(ms);
    } else {
      ++failed;
      if (first_error.empty())
        first_error = r ? "certified but applied by fewer than a quorum" : r.error().ToString();
      // The order may hold locks: this account's next order reuses the sequence number only
      // if it was refused everywhere; simplest is to leave the account.
    }
  };
  const auto t0 = Clock::now();
  const auto end =
      t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::vector<std::thread> workers;
  if (rate <= 0) {
    for (size_t w = 0; w < concurrency; ++w)
      workers.emplace_back([&] {
        while (Clock::now() < end) {
          const size_t i = cursor.fetch_add(1) % accts.size();
          std::unique_lock<std::mutex> own(accts[i]->mu, std::try_to_lock);
          if (!own.owns_lock()) continue;
          transfer(i, Clock::now());
        }
      });
  } else {
    // Open loop: transfers are due at fixed intervals; a pool of workers takes them in turn.
    std::mutex qmu;
    std::condition_variable qcv;
    std::deque<Clock::time_point> due;
    bool done = false;
    const size_t pool = std::max<size_t>(concurrency, 8);
    for (size_t w = 0; w < pool; ++w)
      workers.emplace_back([&] {
        for (;;) {
          Clock::time_point start;
          {
            std::unique_lock<std::mutex> lock(qmu);
            qcv.wait(lock, [&] { return done || !due.empty(); });
            if (due.empty()) return;
            start = due.front();
            due.pop_front();
          }
          for (;;) {
            const size_t i = cursor.fetch_add(1) % accts.size();
            std::unique_lock<std::mutex> own(accts[i]->mu, std::try_to_lock);
            if (!own.owns_lock()) continue;
            transfer(i, start);
            break;
          }
        }
      });
    const auto interval =
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / rate));
    for (auto next = t0; next < end; next += interval) {
      std::this_thread::sleep_until(next);
      {
        std::lock_guard<std::mutex> lock(qmu);
        due.push_back(next);
      }
      qcv.notify_one();
    }
    {
      std::lock_guard<std::mutex> lock(qmu);
      done = true;
    }
    qcv.notify_all();
  }
  for (auto& w : workers) w.join();
  const double elapsed = Seconds(Clock::now() - t0);
  std::sort(latencies_ms.begin(), latencies_ms.end());
  auto pct = [&](double p) {
    if (latencies_ms.empty()) return 0.0;
    const size_t i = std::min(latencies_ms.size() - 1,
                              static_cast<size_t>(p * static_cast<double>(latencies_ms.size())));
    return latencies_ms[i];
  };
  std::printf("%s\n", json{{"mode", rate > 0 ? "open" : "closed"},
                           {"rate_asked", rate},
                           {"concurrency", concurrency},
                           {"seconds", elapsed},
                           {"completed", latencies_ms.size()},
                           {"failed", failed.load()},
                           {"first_error", first_error},
                           {"transfers_per_s", static_cast<double>(latencies_ms.size()) / elapsed},
                           {"p50_ms", pct(0.5)},
                           {"p90_ms", pct(0.9)},
                           {"p99_ms", pct(0.99)},
                           {"max_ms", latencies_ms.empty() ? 0.0 : latencies_ms.back()}}
                          .dump()
                          .c_str());
  return failed.load() > latencies_ms.size() / 100 ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dfrp-ledger-load: the ledger's throughput benchmark"};
  app.require_subcommand(1);
  size_t accounts = 64, committee = 4, concurrency = 8;
  double seconds = 10, rate = 0;
  std::string policy;
  auto* addr = app.add_subcommand("addresses", "the load accounts' addresses");
  addr->add_option("--accounts", accounts);
  auto* bound = app.add_subcommand("bound", "BLS verifications per second, and the bound");
  bound->add_option("--seconds", seconds);
  bound->add_option("--committee", committee);
  auto* run = app.add_subcommand("run", "transfers through the committee");
  run->add_option("--policy", policy)->required();
  run->add_option("--accounts", accounts);
  run->add_option("--seconds", seconds);
  run->add_option("--concurrency", concurrency);
  run->add_option("--rate", rate, "transfers per second (open loop); 0: closed loop");
  CLI11_PARSE(app, argc, argv);
  if (*addr) return Addresses(accounts);
  if (*bound) return Bound(seconds, committee);
  return Run(policy, accounts, seconds, concurrency, rate);
}
