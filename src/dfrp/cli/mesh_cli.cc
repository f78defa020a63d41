#include "dfrp/cli/mesh_cli.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "dfrp/cli/mesh_store.h"
#include "dfrp/cli/request_flags.h"
#include "dfrp/core/config.h"
#include "dfrp/core/version.h"
#include "dfrp/ledger/client.h"
#include "dfrp/node/client.h"

namespace dfrp::cli {

using core::Err;
using core::Result;
using core::Status;
using json = nlohmann::json;

namespace {

struct MeshGlobals {
  std::string config;
  std::string node;  // --node URL: ask this node instead of the config's dfrpd
  bool json = false;
  bool quiet = false;
};

class MeshApi {
 public:
  explicit MeshApi(node::DaemonInfo info) : client_(std::move(info)) {}
  Result<json> Call(const char* method, const std::string& target, const std::string& body = "") {
    DFRP_ASSIGN_OR_RETURN(
        node::HttpResponse r,
        client_.Request(method, target, {{"Content-Type", "application/json"}}, body));
    json j = json::parse(r.body, nullptr, false);
    if (r.status / 100 == 2 && !j.is_discarded()) return j;
    return Err(node::StatusFromResponse(client_.info(), r));
  }

 private:
  node::Client client_;
};

std::string Short(const std::string& s, size_t n) {
  return s.size() <= n ? s : s.substr(0, n - 1) + "…";
}

Status CmdNode(const MeshGlobals& g, MeshApi& api) {
  DFRP_ASSIGN_OR_RETURN(json j, api.Call("GET", "/v1/mesh/node"));
  if (g.json) {
    std::printf("%s\n", j.dump(2).c_str());
    return Status::OK();
  }
  std::printf("address   %s\nnode key  %s\nurl       %s\n", j.value("address", "").c_str(),
              j.value("node_key", "").c_str(), j.value("url", "").c_str());
  if (j.value("leaving", false)) std::printf("leaving   yes (dfrp-mesh leave --cancel stays)\n");
  const json& p = j["peers"];
  std::printf("peers     %llu alive, %llu suspect, %llu dead, %llu unverified\n",
              static_cast<unsigned long long>(p.value("alive", uint64_t{0})),
              static_cast<unsigned long long>(p.value("suspect", uint64_t{0})),
              static_cast<unsigned long long>(p.value("dead", uint64_t{0})),
              static_cast<unsigned long long>(p.value("unverified", uint64_t{0})));
  std::printf("exchanges %llu ok, %llu failed, %llu served\n",
              static_cast<unsigned long long>(j.value("exchanges_ok", uint64_t{0})),
              static_cast<unsigned long long>(j.value("exchanges_failed", uint64_t{0})),
              static_cast<unsigned long long>(j.value("exchanges_served", uint64_t{0})));
  if (!j.value("last_error", "").empty())
    std::printf("last error %s\n", j.value("last_error", "").c_str());
  return Status::OK();
}

// dfrp-mesh leave [--cancel]: the node stops taking contracts and says so in its record; its
// payers' repair moves their copies (it goes on serving and proving them meanwhile).
Status CmdLeave(const MeshGlobals& g, MeshApi& api, bool cancel) {
  DFRP_ASSIGN_OR_RETURN(json j,
                        api.Call("POST", "/v1/mesh/leave", json{{"leaving", !cancel}}.dump()));
  if (g.json) {
    std::printf("%s\n", j.dump(2).c_str());
  } else if (!g.quiet) {
    if (cancel)
      std::printf("%s stays in the mesh: its record no longer says it is leaving\n",
                  j.value("address", "").c_str());
    else
      std::printf(
          "%s is leaving the mesh: its next record (within a gossip round) says so, offers "
          "refuse it, and its payers' `dfrp-mesh repair` moves their copies to other nodes. It "
          "keeps serving and proving what it holds: stop dfrpd once the escrows it serves have "
          "ended. `dfrp-mesh leave --cancel` undoes it.\n",
          j.value("address", "").c_str());
  }
  return Status::OK();
}

Status CmdPeers(const MeshGlobals& g, MeshApi& api) {
  DFRP_ASSIGN_OR_RETURN(json j, api.Call("GET", "/v1/mesh/peers"));
  if (g.json) {
    std::printf("%s\n", j.dump(2).c_str());
    return Status::OK();
  }
  if (!g.quiet)
    std::printf("%-10s %-24s %-28s %-7s %-6s %s\n", "STATE", "ADDRESS", "URL", "UPTIME", "TRUST",
                "ROLES");
  for (const auto& p : j["peers"]) {
    std::string roles;
    for (const auto& r : p["roles"]) roles += (roles.empty() ? "" : ",") + r.get<std::string>();
    const double trust =
        p.contains("trust") && p["trust"].is_object() ? p["trust"].value("score", 0.0) : 0.0;
    std::printf("%-10s %-24s %-28s %-7.2f %-6.2f %s\n", p.value("state", "").c_str(),
                Short(p.value("address", ""), 24).c_str(), Short(p.value("url", ""), 28).c_str(),
                p.value("uptime", 0.0), trust, roles.c_str());
  }
  return Status::OK();
}

Status CmdOffers(const MeshGlobals& g, core::FileSystem* fs, MeshApi& api, const RequestFlags& f,
                 size_t k) {
  DFRP_ASSIGN_OR_RETURN(std::string text, RequestText(fs, f, "offers for"));
  DFRP_ASSIGN_OR_RETURN(json j, api.Call("POST", fmt::format("/v1/mesh/offers?k={}", k), text));
  const json& offers = j["offers"];
  if (g.json) {
    std::printf("%s\n", j.dump(2).c_str());
  } else if (!g.quiet) {
    std::printf("%-24s %-28s %10s %6s %14s\n", "ADDRESS", "URL", "SIMILARITY", "TRUST", "TOTAL");
    for (const auto& o : offers)
      std::printf("%-24s %-28s %10.3f %6.2f %14s\n", Short(o.value("address", ""), 24).c_str(),
                  Short(o.value("url", ""), 28).c_str(), o.value("similarity", 0.0),
                  o.value("trust", 0.0), o.value("total", "").c_str());
    for (const auto& r : j["refused"])
      std::printf("refused %s: %s\n", Short(r.value("address", ""), 24).c_str(),
                  r.value("reason", "").c_str());
  } else {
    for (const auto& o : offers) std::printf("%s\n", o.value("url", "").c_str());
  }
  if (offers.empty()) {
    const json& c = j["cheapest_over_max_fee"];
    if (c.is_object())
      return Status::Refused(fmt::format(
          "no node takes the request within max_fee {} {}: the cheapest, {} ({}), asks {}",
          j.value("max_fee", ""), j.value("currency", ""), c.value("address", ""),
          c.value("url", ""), c.value("total", "")));
    return Status::Refused(
        fmt::format("no node takes the request ({} refused; see --json)", j["refused"].size()));
  }
  return Status::OK();
}

int Fail(const Status& s) {
  std::fprintf(stderr, "dfrp-mesh: %s\n", s.message().c_str());
  return core::ExitCodeFor(s);
}

}  // namespace

int RunMeshCli(int argc, char** argv, core::FileSystem* fs, core::Clock* clock) {
  CLI::App app{"dfrp-mesh: the mesh as this node's dfrpd sees it", "dfrp-mesh"};
  app.require_subcommand(1);
  app.fallthrough();
  app.set_version_flag("--version", fmt::format("dfrp-mesh {}", core::kVersion));
  MeshGlobals g;
  app.add_option("--config", g.config,
                 "config file (.toml or .env); default $DFRP_CONFIG, ./dfrp.toml, ./.env, else "
                 "the embedded default");
  app.add_flag("--json", g.json, "print one JSON object on stdout");
  app.add_flag("-q,--quiet", g.quiet, "print only what a script needs");
  auto* node_cmd = app.add_subcommand("node", "this node's address, node key, URL and counters");
  auto* peers = app.add_subcommand("peers", "the peers this node knows, with their state");
  bool cancel_leave = false;
  auto* leave = app.add_subcommand(
      "leave", "this node takes no new contracts; its payers' repair moves their copies");
  leave->add_flag("--cancel", cancel_leave, "stay in the mesh after all");
  RequestFlags rf;
  size_t k = 3;
  auto* offers = app.add_subcommand(
      "offers", "the nodes that would take a request, nearest first (exit 7 when none)");
  AddRequestOptions(offers, &rf);
  offers->add_option("--k", k, "how many offers (1 to 1000, default 3)")
      ->check(CLI::Range(1, 1000));
  app.add_option("--node", g.node,
                 "ask the dfrpd at this URL (http://host:port) instead of the config's");
  MeshStoreFlags sf;
  app.add_option("--policy", sf.policy,
                 "the committee's economic.toml (put, status, repair); default the config's "
                 "ECONOMIC_POLICY");
  app.add_option("--puts-dir", sf.puts_dir,
                 "where put manifests are kept; default STATE_DIR/puts of the config");
  auto wallet_opts = [&](CLI::App* c) {
    c->add_option("--wallet", sf.wallet, "the paying wallet file")->required();
    c->add_option("--passphrase-file", sf.passphrase_file,
                  "the wallet's passphrase (default $DFRP_PASSPHRASE, else a prompt)");
  };
  auto* put = app.add_subcommand(
      "put", "store FILE as --replicas paid copies on distinct nodes; prints the put id");
  put->add_option("FILE", sf.file, "the file to store")->required();
  wallet_opts(put);
  put->add_option("--replicas", sf.replicas, "copies on distinct nodes (1 to 16, default 2)");
  put->add_option("--max-fee", sf.max_fee, "the most one copy's whole contract may cost")
      ->required();
  put->add_option("--periods", sf.periods, "proof periods paid for (the policy's period length)")
      ->required();
  put->add_option("--vector", sf.vector,
                  "the file's place in the vector space (comma-separated numbers): nearest "
                  "nodes first");
  auto* get = app.add_subcommand("get", "read a put from any live copy, verified");
  get->add_option("ID", sf.id, "the put id")->required();
  get->add_option("-o,--output", sf.output, "write here (atomically) instead of standard output");
  auto* status = app.add_subcommand("status", "each copy of a put: node, copy, escrow");
  status->add_option("ID", sf.id, "the put id")->required();
  auto* repair = app.add_subcommand(
      "repair",
      "re-create the copies whose node died or failed its audits (every put of the "
      "wallet without ID)");
  repair->add_option("ID", sf.id, "the put id");
  wallet_opts(repair);
  repair->add_option("--max-fee", sf.max_fee,
                     "the most a new copy may cost (default: what the put's dearest copy cost)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "dfrp-mesh: %s (see dfrp-mesh --help)\n", e.what());
    return core::kExitUsage;
  }
  core::ConfigOptions copt;
  copt.explicit_path = g.config;
  copt.require_drives = false;
  auto cfg = core::LoadConfig(copt);
  if (!cfg) return Fail(cfg.error());
  node::DaemonInfo info;
  if (!g.node.empty()) {
    info.url = g.node;
    auto hp = ledger::HostPortOfUrl(g.node);
    if (!hp) return Fail(Status::InvalidArgument("--node: " + hp.error().message()));
    info.api_addr = *hp;
  } else {
    auto daemon = node::FindDaemon(fs, cfg->state_dir);
    if (!daemon) return Fail(daemon.error());
    if (!*daemon)
      return Fail(Status::NotFound(fmt::format(
          "no dfrpd serves {} (the mesh lives in the running node): start dfrpd with this "
          "config, or give --node URL",
          cfg->state_dir)));
    info = **daemon;
  }
  sf.node = info;
  sf.clock = clock;
  sf.config = g.config;
  sf.json = g.json;
  sf.quiet = g.quiet;
  if (sf.puts_dir.empty()) sf.puts_dir = core::JoinPath(cfg->state_dir, "puts");
  MeshApi api(info);
  Status s;
  try {
    if (*put)
      s = MeshPut(fs, sf);
    else if (*get)
      s = MeshGet(fs, sf);
    else if (*status)
      s = MeshStatus(fs, sf);
    else if (*repair)
      s = MeshRepair(fs, sf);
    else if (*node_cmd)
      s = CmdNode(g, api);
    else if (*peers)
      s = CmdPeers(g, api);
    else if (*leave)
      s = CmdLeave(g, api, cancel_leave);
    else if (*offers)
      s = CmdOffers(g, fs, api, rf, k);
  } catch (const json::exception& e) {
    // A node's answer of another shape than expected: an I/O failure to report, not a crash.
    s = Status::IOError(fmt::format("a node answered JSON of an unexpected shape ({})", e.what()));
  }
  if (!s.ok()) return Fail(s);
  return core::kExitOk;
}

}  // namespace dfrp::cli
