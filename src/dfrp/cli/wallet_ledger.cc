#include "dfrp/cli/wallet_ledger.h"

#include <cstdio>
#include <cstdlib>
#include <set>

#include "dfrp/cli/ledger_cli.h"
#include "dfrp/core/config.h"
#include "dfrp/wallet/keystore.h"

namespace dfrp::cli {

namespace {

int Usage(const std::string& why) {
  std::fprintf(stderr, "dfrp-wallet: %s (see dfrp-wallet --help)\n", why.c_str());
  return core::kExitUsage;
}

}  // namespace

std::optional<int> RunWalletLedgerCommand(const std::vector<std::string>& args,
                                          core::FileSystem* fs, core::Clock* clock) {
  static const std::set<std::string> kWithValue = {"--config", "--wallet", "--passphrase-file",
                                                   "--policy"};
  static const std::set<std::string> kCommands = {"balance", "transfer", "history", "escrow"};
  std::string config, wallet, passphrase_file, policy;
  bool json = false;
  size_t cmd = 0;
  for (size_t i = 1; i < args.size() && cmd == 0; ++i) {
    std::string a = args[i], value;
    const auto eq = a.find('=');
    const bool inline_value = a.starts_with("--") && eq != std::string::npos;
    if (inline_value) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
    }
    if (kWithValue.contains(a)) {
      if (!inline_value) {
        if (i + 1 >= args.size()) return std::nullopt;  // dfrp-wallet's parser says why
        value = args[++i];
      }
      (a == "--config"            ? config
       : a == "--wallet"          ? wallet
       : a == "--passphrase-file" ? passphrase_file
                                  : policy) = value;
    } else if (a == "--json") {
      json = true;
    } else if (!a.starts_with("-")) {
      if (!kCommands.contains(a)) return std::nullopt;
      cmd = i;
    }
  }
  if (cmd == 0) return std::nullopt;
  const std::string command = args[cmd];
  std::vector<std::string> rest(args.begin() + static_cast<long>(cmd) + 1, args.end());
  // --address A, taken out of `rest`.
  std::string address;
  for (size_t i = 0; i < rest.size(); ++i)
    if (rest[i] == "--address" || rest[i].starts_with("--address=")) {
      if (rest[i] == "--address") {
        if (i + 1 >= rest.size()) return Usage("--address needs an address");
        address = rest[i + 1];
        rest.erase(rest.begin() + static_cast<long>(i), rest.begin() + static_cast<long>(i) + 2);
      } else {
        address = rest[i].substr(10);
        rest.erase(rest.begin() + static_cast<long>(i));
      }
      break;
    }
  auto wallet_path = [&]() -> core::Result<std::string> {
    if (!wallet.empty()) return wallet;
    core::ConfigOptions opts;
    opts.explicit_path = config;
    opts.getenv = [](const std::string& name) -> std::optional<std::string> {
      const char* v = std::getenv(name.c_str());
      if (!v) return std::nullopt;
      return std::string(v);
    };
    opts.require_drives = false;
    DFRP_ASSIGN_OR_RETURN(core::NodeConfig cfg, core::LoadConfig(opts));
    return core::JoinPath(cfg.state_dir, "wallet.json");
  };
  auto own_address = [&]() -> core::Result<std::string> {
    DFRP_ASSIGN_OR_RETURN(std::string path, wallet_path());
    DFRP_ASSIGN_OR_RETURN(wallet::Keystore ks, wallet::LoadKeystore(fs, path));
    return ks.pub.address;
  };
  std::vector<std::string> out = {"dfrp-wallet"};
  if (!config.empty()) out.insert(out.end(), {"--config", config});
  if (!policy.empty()) out.insert(out.end(), {"--policy", policy});
  if (json) out.push_back("--json");
  out.push_back(command);
  auto add_wallet = [&]() -> core::Status {
    DFRP_ASSIGN_OR_RETURN(std::string path, wallet_path());
    out.insert(out.end(), {"--wallet", path});
    if (!passphrase_file.empty()) out.insert(out.end(), {"--passphrase-file", passphrase_file});
    return core::Status::OK();
  };
  core::Status s;
  const bool listing = !rest.empty() && rest[0] == "list";  // escrow list
  if (command == "balance" || command == "history" || (command == "escrow" && listing)) {
    if (listing) {
      out.push_back("list");
      rest.erase(rest.begin());
    }
    if (address.empty()) {
      auto own = own_address();
      if (!own) {
        std::fprintf(stderr, "dfrp-wallet: %s\n", own.error().ToString().c_str());
        return core::ExitCodeFor(own.error());
      }
      address = *own;
    }
    out.push_back(address);
  } else if (command == "transfer") {
    s = add_wallet();
  } else if (!rest.empty() && rest[0] == "open") {  // escrow open
    out.push_back("open");
    rest.erase(rest.begin());
    s = add_wallet();
  } else if (!address.empty()) {
    return Usage("--address is for balance, history and escrow list");
  }
  if (!s.ok()) {
    std::fprintf(stderr, "dfrp-wallet: %s\n", s.ToString().c_str());
    return core::ExitCodeFor(s);
  }
  out.insert(out.end(), rest.begin(), rest.end());
  std::vector<char*> argv;
  for (auto& a : out) argv.push_back(a.data());
  argv.push_back(nullptr);
  return RunLedgerCli(static_cast<int>(out.size()), argv.data(), fs, clock);
}

}  // namespace dfrp::cli
