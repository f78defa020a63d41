// Internal to dfrp-ledger (ledger_cli.cc, escrow_cli.cc): the global flags, the policy, and
// the one way a new order is signed and certified (wallet lock, journal, funds check).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "dfrp/core/clock.h"
#include "dfrp/core/file_system.h"
#include "dfrp/core/status.h"
#include "dfrp/economy/policy.h"
#include "dfrp/ledger/client.h"

namespace dfrp::cli {

struct LedgerGlobals {
  std::string config;
  std::string policy;
  bool json = false;
};

// Prints "dfrp-ledger: <message>" and returns the exit code of the status.
int Fail(const core::Status& s);
std::optional<std::string> Getenv(const std::string& name);
// --policy FILE, else the config's ECONOMIC_POLICY, else economic.toml beside the config.
core::Result<economy::EconomicPolicy> LoadPolicy(core::FileSystem* fs, const LedgerGlobals& g);

// How every new order picks its wallet and sequence number.
struct OrderFlags {
  std::string wallet;
  std::string passphrase_file;
  std::optional<uint64_t> seq;
  bool abandon_pending = false;
};

// A wallet unlocked for signing orders, holding WALLET.lock while it lives.
struct OpenedWallet {
  std::string path;
  std::string address;
  std::unique_ptr<core::FileLock> lock;
  std::unique_ptr<crypto::bls::SecretKey> key;
};
core::Result<OpenedWallet> OpenWalletForOrders(core::FileSystem* fs, const std::string& path,
                                               const std::string& passphrase_file);

// Completes an order the journal (WALLET.pending) holds first, checks that the sender has
// `amount` (for `what`: "transfer", "escrow") plus the order fee (nothing is signed otherwise:
// Refused), asks `build` for the order at the committee's next sequence number (sender, seq and fee
// are filled in here), signs it, writes it synced to the journal, and has the committee certify it.
// The JSON of the certificate, or why not. `signed_seq`, when given, is set to the new order's
// sequence number once it is signed: an error after that may leave it certified (or certifiable
// from the journal), so the caller must not act as if nothing was paid.
core::Result<nlohmann::json> CertifyNewOrder(
    core::FileSystem* fs, const economy::EconomicPolicy& p, ledger::LedgerClient& client,
    const OpenedWallet& w, const OrderFlags& f, std::string_view what, uint64_t amount,
    const std::function<core::Result<ledger::Order>(uint64_t seq)>& build,
    std::optional<uint64_t>* signed_seq = nullptr);

// Asks the provider at `provider_url` to accept an escrow opening (`tmpl`: its
// kind and terms) of `amount`, then has the committee certify it at the wallet's next sequence
// number (escrow_cli.cc; dfrp-mesh put and repair open theirs with it). The certificate's JSON
// with "escrow_id" and "provider" (the provider's address) added. A non-empty
// `expected_provider` (an address) refuses, before anything is signed, terms accepted under
// another wallet. `signed_seq` as for CertifyNewOrder. A job_escrow_open sends the signed job
// (`job_wire`) along, for the provider to check and quote.
core::Result<nlohmann::json> CertifyEscrowOpen(
    core::FileSystem* fs, const economy::EconomicPolicy& p, const OpenedWallet& w,
    const OrderFlags& order, const std::string& provider_url, uint64_t amount,
    const ledger::Order& tmpl, const std::string& expected_provider = "",
    std::optional<uint64_t>* signed_seq = nullptr, const std::string& job_wire = "");

// 64 hex digits as a hash (an escrow id, a root); InvalidArgument naming `what` otherwise.
core::Result<crypto::Hash> ParseHash(const std::string& text, std::string_view what);

// `dfrp-ledger escrow open|status|list|refund` (escrow_cli.cc).
// dfrp-ledger epoch-change (epoch_cli.cc).
struct EpochChangeFlags {
  std::string wallet;  // a committee member's wallet: the leader of this change
  std::string passphrase_file;
  uint32_t timeout_seconds = 120;
};
core::Status CmdEpochChange(const LedgerGlobals& g, core::FileSystem* fs, core::Clock* clock,
                            const economy::EconomicPolicy& p, const EpochChangeFlags& f);

struct EscrowCommands {
  CLI::App* escrow = nullptr;
  CLI::App* open = nullptr;
  CLI::App* status = nullptr;
  CLI::App* list = nullptr;
  CLI::App* refund = nullptr;
  CLI::App* open_read = nullptr;
  CLI::App* read = nullptr;
  OrderFlags order;
  std::string price_per_mib, output;
  uint64_t seconds = 0;
  std::string provider_url, receipt, shard, root, amount;
  uint64_t size = 0, start = 0;
  uint32_t leaf_size = 0, periods = 0, challenges = 0;
  std::string id;  // status, refund: the escrow id; list: the address
};
void AddEscrowCommands(CLI::App& app, EscrowCommands* c);
// Runs the escrow subcommand that was given.
core::Status RunEscrowCommand(const LedgerGlobals& g, core::FileSystem* fs, core::Clock* clock,
                              const economy::EconomicPolicy& p, const EscrowCommands& c);

}  // namespace dfrp::cli
