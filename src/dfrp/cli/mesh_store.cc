#include "dfrp/cli/mesh_store.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "dfrp/cli/ledger_cli_internal.h"
#include "dfrp/cli/node_json.h"
#include "dfrp/cli/request_flags.h"
#include "dfrp/core/bytes.h"
#include "dfrp/core/uuid.h"
#include "dfrp/crypto/merkle.h"
#include "dfrp/economy/market.h"
#include "dfrp/ledger/escrow.h"

namespace dfrp::cli {

using core::Err;
using core::Result;
using core::Status;
using nlohmann::json;

namespace {

constexpr const char* kManifestFormat = "dfrp-mesh-put-v1";
constexpr uint64_t kSecondsPerMonth = 30ull * 24 * 3600;  // the market's month
constexpr uint32_t kMaxLeafSize = 16u << 20;

// One copy of a put: where it lives and the escrow that pays for it.
struct Copy {
  std::string url, address, shard_id, escrow_id;
  std::string root;  // hex, computed here from the bytes with the copy's leaf size
  uint32_t leaf_size = 0;
  uint64_t amount = 0;  // base units locked in the escrow
  uint64_t start_unix = 0;
  uint32_t periods = 0;
  // "active"; "replaced" (a repair made another in its place); "unconfirmed" (its escrow order
  // was signed but its certificate not seen: repair looks it up and makes it active if the
  // committee has the escrow).
  std::string state = "active";
  std::string reason;  // why it was replaced, or why it is unconfirmed
};

struct Manifest {
  std::string id, file, payer;
  uint64_t size = 0;
  uint32_t replicas = 0, periods = 0, period_seconds = 0;
  uint64_t start_unix = 0, created_unix = 0;
  std::vector<Copy> copies;

  uint64_t end_unix() const { return start_unix + uint64_t{periods} * period_seconds; }
  size_t active() const {
    return static_cast<size_t>(std::count_if(copies.begin(), copies.end(),
                                             [](const Copy& c) { return c.state == "active"; }));
  }
};

json CopyJson(const economy::EconomicPolicy& p, const Copy& c) {
  json j = {{"url", c.url},
            {"address", c.address},
            {"shard_id", c.shard_id},
            {"escrow_id", c.escrow_id},
            {"merkle_root", c.root},
            {"leaf_size", c.leaf_size},
            {"start_unix", c.start_unix},
            {"periods", c.periods},
            {"state", c.state}};
  economy::PutAmount(j, "amount", p, c.amount);
  if (!c.reason.empty()) j["reason"] = c.reason;
  return j;
}

json ManifestJson(const economy::EconomicPolicy& p, const Manifest& m) {
  json copies = json::array();
  for (const Copy& c : m.copies) copies.push_back(CopyJson(p, c));
  return {{"format", kManifestFormat},
          {"id", m.id},
          {"file", m.file},
          {"size", m.size},
          {"payer", m.payer},
          {"replicas", m.replicas},
          {"periods", m.periods},
          {"period_seconds", m.period_seconds},
          {"start_unix", m.start_unix},
          {"created_unix", m.created_unix},
          {"network", p.genesis.network},
          {"copies", copies}};
}

std::string ManifestPath(const MeshStoreFlags& f, const std::string& id) {
  return core::JoinPath(f.puts_dir, id + ".json");
}

Result<Manifest> ParseManifest(const std::string& text, const std::string& path) {
  auto bad = [&](const std::string& why) {
    return Err(Status::Corruption(fmt::format(
        "{} is not a put manifest ({}): it was changed by hand or by another program", path, why)));
  };
  json j = json::parse(text, nullptr, false);
  if (!j.is_object() || j.value("format", "") != kManifestFormat)
    return bad(fmt::format("no \"format\": \"{}\"", kManifestFormat));
  Manifest m;
  try {
    m.id = j.at("id").get<std::string>();
    m.file = j.at("file").get<std::string>();
    m.size = j.at("size").get<uint64_t>();
    m.payer = j.at("payer").get<std::string>();
    m.replicas = j.at("replicas").get<uint32_t>();
    m.periods = j.at("periods").get<uint32_t>();
    m.period_seconds = j.at("period_seconds").get<uint32_t>();
    m.start_unix = j.at("start_unix").get<uint64_t>();
    m.created_unix = j.at("created_unix").get<uint64_t>();
    for (const json& c : j.at("copies")) {
      Copy x;
      x.url = c.at("url").get<std::string>();
      x.address = c.at("address").get<std::string>();
      x.shard_id = c.at("shard_id").get<std::string>();
      x.escrow_id = c.at("escrow_id").get<std::string>();
      x.root = c.at("merkle_root").get<std::string>();
      x.leaf_size = c.at("leaf_size").get<uint32_t>();
      x.amount = c.at("amount_base_units").get<uint64_t>();
      x.start_unix = c.at("start_unix").get<uint64_t>();
      x.periods = c.at("periods").get<uint32_t>();
      x.state = c.at("state").get<std::string>();
      x.reason = c.value("reason", "");
      auto root = core::FromHex(x.root);
      if (!root || root->size() != 32 || x.leaf_size == 0 || x.leaf_size > kMaxLeafSize ||
          (x.state != "active" && x.state != "replaced" && x.state != "unconfirmed"))
        return bad("a copy's merkle_root, leaf_size or state is malformed");
      m.copies.push_back(std::move(x));
    }
  } catch (const json::exception& e) {
    return bad(e.what());
  }
  if (m.size == 0 || m.period_seconds == 0) return bad("size or period_seconds is 0");
  return m;
}

Result<Manifest> LoadManifest(core::FileSystem* fs, const MeshStoreFlags& f,
                              const std::string& id) {
  if (id.empty() || id.find('/') != std::string::npos || id.find("..") != std::string::npos)
    return Err(Status::InvalidArgument(fmt::format("'{}' is not a put id", id)));
  const std::string path = ManifestPath(f, id);
  auto text = core::ReadWholeFile(fs, path);
  if (!text) {
    if (text.error().IsNotFound())
      return Err(Status::NotFound(fmt::format(
          "no put {} in {} (dfrp-mesh put prints the id; --puts-dir names another folder)", id,
          f.puts_dir)));
    return Err(text.error());
  }
  return ParseManifest(*text, path);
}

Status SaveManifest(core::FileSystem* fs, const economy::EconomicPolicy& p, const MeshStoreFlags& f,
                    const Manifest& m) {
  DFRP_RETURN_IF_ERROR(fs->CreateDirRecursive(f.puts_dir));
  return core::WriteFileAtomic(fs, ManifestPath(f, m.id), ManifestJson(p, m).dump(2) + "\n")
      .WithContext("the put manifest");
}

Result<economy::EconomicPolicy> Policy(core::FileSystem* fs, const MeshStoreFlags& f) {
  LedgerGlobals g;
  g.config = f.config;
  g.policy = f.policy;
  DFRP_ASSIGN_OR_RETURN(economy::EconomicPolicy p, LoadPolicy(fs, g));
  if (p.genesis.committee.empty())
    return Err(Status::InvalidArgument(
        "the economic policy names no committee: paid storage needs one (--policy FILE, the "
        "committee's economic.toml)"));
  return p;
}

node::DaemonInfo InfoOf(const std::string& url) { return InfoOfUrl(url); }

Result<json> CallJson(const node::DaemonInfo& info, const char* method, const std::string& target,
                      const std::string& body = "", int timeout_ms = 30'000) {
  return CallNodeJson(info, method, target, body, timeout_ms);
}

std::string Micros(uint64_t micros) {
  return fmt::format("{}.{:06}", micros / 1'000'000, micros % 1'000'000);
}

// The market request for storing `size` bytes for `periods` periods.
Result<std::string> StorageRequest(core::FileSystem* fs, const MeshStoreFlags& f, uint64_t size,
                                   uint32_t periods, uint32_t period_seconds) {
  RequestFlags rf;
  rf.storage_mb = Micros(size);  // MB in micros: the bytes themselves
  const uint64_t secs = uint64_t{periods} * period_seconds;
  rf.months =
      Micros(std::max<uint64_t>(1, (secs * 1'000'000 + kSecondsPerMonth - 1) / kSecondsPerMonth));
  rf.max_fee = f.max_fee;
  rf.vector = f.vector;
  return RequestText(fs, rf, "dfrp-mesh put");
}

// The peers' states as `node` sees them, by address ("self" for the node itself, "leaving"
// for an alive peer whose record says it is leaving); empty when the node does not answer
// (the caller goes on without).
std::map<std::string, std::string> PeerStates(const node::DaemonInfo& node) {
  std::map<std::string, std::string> out;
  if (auto me = CallJson(node, "GET", "/v1/mesh/node", "", 5000); me && me->contains("address"))
    out[me->value("address", "")] = me->value("leaving", false) ? "leaving" : "self";
  if (auto peers = CallJson(node, "GET", "/v1/mesh/peers", "", 5000);
      peers && peers->contains("peers") && (*peers)["peers"].is_array())
    for (const json& p : (*peers)["peers"]) {
      if (!p.is_object()) continue;
      std::string state = p.value("state", "");
      const json roles = p.value("roles", json::array());
      if (state == "alive" && roles.is_array() &&
          std::find(roles.begin(), roles.end(), json("leaving")) != roles.end())
        state = "leaving";
      out[p.value("address", "")] = state;
    }
  return out;
}

Result<std::string> ReadCopy(const Copy& c, uint64_t size) {
  const node::DaemonInfo info = InfoOf(c.url);
  node::Client client(info, {.connect_timeout_ms = 3000,
                             .request_timeout_ms = 120'000,
                             .max_body_bytes = size + (64u << 10)});
  DFRP_ASSIGN_OR_RETURN(node::HttpResponse r,
                        client.Request("GET", "/v1/shards/" + c.shard_id, {}, ""));
  if (r.status / 100 != 2) return Err(node::StatusFromResponse(info, r));
  if (r.body.size() != size)
    return Err(Status::Corruption(fmt::format("{} sent {} bytes of shard {}, the put has {}", c.url,
                                              r.body.size(), c.shard_id, size)));
  const std::string root = core::ToHex(crypto::MerkleRoot(r.body, c.leaf_size));
  if (root != c.root)
    return Err(Status::Corruption(fmt::format(
        "{} sent shard {} with Merkle root {}, the put's is {}", c.url, c.shard_id, root, c.root)));
  return std::move(r.body);
}

// The copies in the order to try them: alive (or the asked node itself) first, unknown next,
// suspect, dead last.
std::vector<const Copy*> ReadOrder(const Manifest& m,
                                   const std::map<std::string, std::string>& states) {
  auto rank = [&](const Copy& c) {
    auto it = states.find(c.address);
    const std::string s = it == states.end() ? "" : it->second;
    if (s == "self" || s == "alive" || s == "leaving") return 0;
    if (s == "suspect") return 2;
    if (s == "dead") return 3;
    return 1;
  };
  std::vector<const Copy*> order;
  for (const Copy& c : m.copies)
    if (c.state == "active") order.push_back(&c);
  std::stable_sort(order.begin(), order.end(),
                   [&](const Copy* a, const Copy* b) { return rank(*a) < rank(*b); });
  return order;
}

// The file's bytes from the first copy that serves them intact. Corruption when a copy
// served bytes that do not match (and none served good ones), else the last failure.
Result<std::string> ReadAny(const Manifest& m, const std::vector<const Copy*>& order,
                            const Copy** from, std::vector<std::string>* tried) {
  bool corrupt = false;
  Status last = Status::NotFound(fmt::format("put {} has no active copy", m.id));
  for (const Copy* c : order) {
    auto data = ReadCopy(*c, m.size);
    if (data) {
      *from = c;
      return data;
    }
    corrupt |= data.error().IsCorruption();
    last = data.error();
    tried->push_back(fmt::format("{}: {}", c->url, data.error().message()));
  }
  std::string all;
  for (const std::string& t : *tried) all += (all.empty() ? "" : "; ") + t;
  if (corrupt)
    return Err(
        Status::Corruption(fmt::format("no copy of put {} served the file intact: {}", m.id, all)));
  if (tried->empty()) return Err(last);
  return Err(Status::Unavailable(fmt::format(
      "no copy of put {} could be read (try again, or dfrp-mesh repair {}): {}", m.id, m.id, all)));
}

struct Placement {
  std::vector<Copy> made;
  std::vector<std::string> skipped;  // "ADDRESS (URL): why"
  json refusal;                      // the offers' answer when none was made
  // Why placing stopped before trying every offer: the wallet cannot pay (nothing signed), or
  // an escrow order was signed but not seen certified (its copy is kept as "unconfirmed").
  std::optional<Status> stopped;
};

uint64_t NowUnix(const MeshStoreFlags& f) {
  return static_cast<uint64_t>(f.clock->NowUnixMillis() / 1000);
}

// Stores `data` on up to `want` offering nodes not in `exclude`, each with an escrow of
// `periods` from `start_unix` (or a second from now, if that is later: an upload may take a
// while, and a period that started before its escrow could not be proved); each copy made is
// added to `m` and the manifest saved at once (an escrow certified is never left without its
// record, but for a crash in between: then `dfrp-wallet escrow list` still shows it). An offer
// whose price is not a whole number of base units within --max-fee is skipped before any byte
// is sent: the amount paid is the asked node's word, checked here.
Result<Placement> Place(core::FileSystem* fs, const economy::EconomicPolicy& p,
                        const MeshStoreFlags& f, const OpenedWallet& w, const std::string& data,
                        Manifest* m, size_t want, const std::set<std::string>& exclude,
                        uint64_t start_unix, uint32_t periods) {
  Placement out;
  DFRP_ASSIGN_OR_RETURN(std::string request,
                        StorageRequest(fs, f, data.size(), periods, p.storage.period_seconds));
  const size_t k = std::min<size_t>(1000, want + exclude.size() + 8);
  DFRP_ASSIGN_OR_RETURN(json offers,
                        CallJson(f.node, "POST", fmt::format("/v1/mesh/offers?k={}", k), request));
  out.refusal = offers;
  DFRP_ASSIGN_OR_RETURN(const economy::Amount max_fee, p.ParseAmount(f.max_fee, "--max-fee"));
  // The payer's funds, as the committee reports them: an offer the wallet cannot pay (with the
  // order fee) stops placing before its bytes are sent, whatever any node answers.
  DFRP_ASSIGN_OR_RETURN(ledger::LedgerClient ledger, ledger::LedgerClient::Make(p));
  DFRP_ASSIGN_OR_RETURN(ledger::AccountView account, ledger.Account(w.address));
  int64_t balance = account.balance;
  std::set<std::string> used = exclude;
  const json list = offers.is_object() && offers.contains("offers") && offers["offers"].is_array()
                        ? offers["offers"]
                        : json::array();
  for (const json& o : list) {
    if (out.made.size() >= want) break;
    if (!o.is_object() || !o.contains("address") || !o["address"].is_string() ||
        !o.contains("url") || !o["url"].is_string())
      continue;
    const std::string address = o["address"].get<std::string>(), url = o["url"].get<std::string>();
    if (address.empty() || url.empty() || used.contains(address)) continue;
    used.insert(address);
    auto skip = [&](const Status& s) {
      out.skipped.push_back(fmt::format("{} ({}): {}", address, url, s.message()));
    };
    if (!o.contains("total_base_units") || !o["total_base_units"].is_number_unsigned() ||
        o["total_base_units"].get<uint64_t>() > max_fee) {
      skip(Status::InvalidArgument(fmt::format(
          "its offer's total {} is not a price within --max-fee {}",
          o.contains("total_base_units") ? o["total_base_units"].dump() : "(none)", f.max_fee)));
      continue;
    }
    // The offer's total for the whole contract (at least one base unit) is what the escrow locks.
    const uint64_t amount = std::max<uint64_t>(1, o["total_base_units"].get<uint64_t>());
    if (balance < 0 || static_cast<uint64_t>(balance) < amount ||
        static_cast<uint64_t>(balance) - amount < p.order_fee) {
      out.stopped = Status::Refused(fmt::format(
          "{} has {} {} as the committee reports it; a copy at {} ({}) needs {} plus the order "
          "fee {}: no more copies are placed",
          w.address, p.FormatSignedAmount(balance), p.genesis.currency, address, url,
          p.FormatAmount(amount), p.FormatAmount(p.order_fee)));
      break;
    }
    // The copy: PUT, then the receipt checked against the root computed here.
    const node::DaemonInfo info = InfoOf(url);
    node::Client client(info, {.connect_timeout_ms = 3000, .request_timeout_ms = 120'000});
    auto put =
        client.Request("PUT", "/v1/shards", {{"Content-Type", "application/octet-stream"}}, data);
    if (!put) {
      skip(put.error());
      continue;
    }
    if (put->status / 100 != 2) {
      skip(node::StatusFromResponse(info, *put));
      continue;
    }
    json r = json::parse(put->body, nullptr, false);
    if (!r.is_object() || !r.contains("shard_id") || !r["shard_id"].is_string() ||
        !r.contains("merkle_root") || !r["merkle_root"].is_string() || !r.contains("size") ||
        !r["size"].is_number_unsigned() || !r.contains("leaf_size") ||
        !r["leaf_size"].is_number_unsigned()) {
      skip(Status::IOError("its write receipt lacks shard_id, merkle_root, size or leaf_size"));
      continue;
    }
    const uint64_t leaf = r["leaf_size"].get<uint64_t>();
    if (leaf == 0 || leaf > kMaxLeafSize || r["size"].get<uint64_t>() != data.size()) {
      skip(Status::Corruption(fmt::format("its receipt says {} bytes in leaves of {}; sent {}",
                                          r["size"].get<uint64_t>(), leaf, data.size())));
      continue;
    }
    const crypto::Hash root = crypto::MerkleRoot(data, static_cast<uint32_t>(leaf));
    if (r["merkle_root"].get<std::string>() != core::ToHex(root)) {
      skip(Status::Corruption(fmt::format("its receipt's Merkle root {} is not the file's {}",
                                          r["merkle_root"].get<std::string>(), core::ToHex(root))));
      continue;
    }
    auto shard = core::Uuid::Parse(r["shard_id"].get<std::string>());
    if (!shard) {
      skip(Status::IOError("its receipt's shard_id is not a shard id"));
      continue;
    }
    // The escrow, for the amount checked above.
    ledger::Order tmpl;
    tmpl.kind = ledger::OrderKind::kEscrowOpen;
    ledger::StorageTerms& t = tmpl.escrow.terms;
    t.shard_id = *shard;
    t.root = root;
    t.size = data.size();
    t.leaf_size = static_cast<uint32_t>(leaf);
    t.periods = periods;
    t.period_seconds = p.storage.period_seconds;
    const uint64_t copy_start = std::max(start_unix, NowUnix(f) + 1);
    t.start_unix = copy_start;
    t.challenges = p.storage.challenges_per_period;
    OrderFlags order;
    order.wallet = f.wallet;
    order.passphrase_file = f.passphrase_file;
    Copy c;
    c.url = url;
    c.address = address;
    c.shard_id = shard->ToString();
    c.root = core::ToHex(root);
    c.leaf_size = static_cast<uint32_t>(leaf);
    c.amount = amount;
    c.start_unix = copy_start;
    c.periods = periods;
    std::optional<uint64_t> signed_seq;
    auto cert = CertifyEscrowOpen(fs, p, w, order, url, amount, tmpl, address, &signed_seq);
    if (!cert && signed_seq) {
      // Signed, so it may be certified (or be later, from the wallet's journal): the copy is
      // kept as unconfirmed under the escrow id that order opens, and placing stops here.
      c.state = "unconfirmed";
      c.escrow_id = core::ToHex(ledger::EscrowId(w.key->GetPublicKey().bytes(), *signed_seq));
      c.reason = cert.error().message();
      m->copies.push_back(c);
      DFRP_RETURN_IF_ERROR(SaveManifest(fs, p, f, *m));
      out.stopped = cert.error().WithContext(fmt::format(
          "the escrow for the copy on {} (escrow {}) was signed but is not seen certified; the "
          "copy is kept as unconfirmed (dfrp-mesh repair {} settles it)",
          url, c.escrow_id, m->id));
      break;
    }
    if (!cert) {  // refused before anything was signed (by the node, or by the funds)
      skip(cert.error());
      continue;
    }
    balance -= static_cast<int64_t>(amount + p.order_fee);
    if (cert->contains("completed_first"))
      out.skipped.push_back(
          "an order signed earlier by this wallet was certified first (if it opened an escrow, "
          "`dfrp-ledger escrow list` shows it)");
    c.escrow_id = cert->value("escrow_id", "");
    m->copies.push_back(c);
    DFRP_RETURN_IF_ERROR(SaveManifest(fs, p, f, *m));
    out.made.push_back(std::move(c));
  }
  return out;
}

Status NoOffers(const Placement& pl, size_t want, size_t made) {
  std::string why;
  for (const std::string& s : pl.skipped) why += "; " + s;
  const json& c = pl.refusal.value("cheapest_over_max_fee", json(nullptr));
  if (made == 0 && pl.skipped.empty() && c.is_object())
    return Status::Refused(
        fmt::format("no node stores it within max_fee {} {}: the cheapest, {} ({}), asks {}",
                    pl.refusal.value("max_fee", ""), pl.refusal.value("currency", ""),
                    c.value("address", ""), c.value("url", ""), c.value("total", "")));
  return Status::Refused(fmt::format(
      "{} of {} copies made: {} offering node(s) refused or failed, {} refused by the market "
      "(dfrp-mesh offers shows why){}",
      made, want, pl.skipped.size(), pl.refusal.value("refused", json::array()).size(), why));
}

void PrintCopies(const economy::EconomicPolicy& p, const Manifest& m) {
  for (const Copy& c : m.copies)
    std::printf("  %-8s %-28s %s  shard %s  escrow %.16s…  %s %s%s\n", c.state.c_str(),
                c.url.c_str(), c.address.c_str(), c.shard_id.c_str(), c.escrow_id.c_str(),
                p.FormatAmount(c.amount).c_str(), p.genesis.currency.c_str(),
                c.reason.empty() ? "" : (" (" + c.reason + ")").c_str());
}

// What a copy looks like now: its node's state, the copy on its node, its escrow.
struct Health {
  std::string node_state;  // as the asked node sees it: self, alive, suspect, dead, or unknown
  std::string copy;        // ok, missing, mismatch, unreachable
  std::string copy_detail;
  uint32_t released = 0, refunded = 0;
  bool last_refunded = false;  // the latest settled period was a refund
  std::string escrow_error;
  std::string bad;  // why the copy needs repair; empty when it does not
};

Health Check(const Copy& c, uint64_t size, const std::map<std::string, std::string>& states,
             ledger::LedgerClient* ledger) {
  Health h;
  auto it = states.find(c.address);
  h.node_state = it == states.end() ? "unknown" : it->second;
  auto meta = CallJson(InfoOf(c.url), "GET", "/v1/shards/" + c.shard_id + "/meta", "", 5000);
  if (!meta) {
    h.copy = meta.error().IsNotFound() ? "missing" : "unreachable";
    h.copy_detail = meta.error().message();
  } else if (meta->value("merkle_root", "") != c.root || meta->value("size", uint64_t{0}) != size) {
    h.copy = "mismatch";
    h.copy_detail = fmt::format("its node holds root {} and {} bytes",
                                meta->value("merkle_root", ""), meta->value("size", uint64_t{0}));
  } else {
    h.copy = "ok";
  }
  if (ledger) {
    if (auto eid = ParseHash(c.escrow_id, "the manifest's escrow id"); eid) {
      auto v = ledger->Escrow(*eid);
      if (v) {
        for (const auto& [k, s] : v->settled) {
          if (s.kind == ledger::SettleKind::kRelease) ++h.released;
          if (s.kind == ledger::SettleKind::kRefund) ++h.refunded;
        }
        h.last_refunded =
            !v->settled.empty() && v->settled.rbegin()->second.kind == ledger::SettleKind::kRefund;
      } else {
        h.escrow_error = v.error().message();
      }
    } else {
      h.escrow_error = "the manifest's escrow id is malformed";
    }
  }
  // A node the asked node sees dead, or one whose periods were refunded, may be back: its
  // copy is replaced only if it does not answer for it now either (a replaced copy's escrow
  // still pays its node for the periods it proves).
  if (h.copy == "missing" || h.copy == "mismatch")
    h.bad = fmt::format("the copy is {} on its node", h.copy);
  else if (h.last_refunded)
    h.bad = "its latest settled period was refunded: its node did not prove the copy";
  else if (h.copy != "ok" && h.node_state == "dead")
    h.bad = "its node is dead";
  else if (h.node_state == "leaving")
    h.bad = "its node is leaving the mesh";
  else if (h.copy != "ok" && h.refunded > 0)
    h.bad =
        fmt::format("{} period(s) refunded, and its node does not answer for the copy", h.refunded);
  return h;
}

json HealthJson(const Health& h) {
  json j = {{"node_state", h.node_state},
            {"copy", h.copy},
            {"released_periods", h.released},
            {"refunded_periods", h.refunded},
            {"needs_repair", !h.bad.empty()}};
  if (!h.copy_detail.empty()) j["copy_detail"] = h.copy_detail;
  if (!h.escrow_error.empty()) j["escrow_error"] = h.escrow_error;
  if (!h.bad.empty()) j["why"] = h.bad;
  return j;
}

Result<ledger::LedgerClient> Ledger(const economy::EconomicPolicy& p) {
  return ledger::LedgerClient::Make(p);
}

// Repairs one put; the JSON of what it did.
Result<json> RepairOne(core::FileSystem* fs, const economy::EconomicPolicy& p,
                       const MeshStoreFlags& f, OpenedWallet* w, Manifest m) {
  json out = {{"id", m.id}};
  if (w->address != m.payer)
    return Err(Status::InvalidArgument(
        fmt::format("put {} is paid by {}, not by the wallet {}: repair with the payer's wallet",
                    m.id, m.payer, w->address)));
  const auto states = PeerStates(f.node);
  DFRP_ASSIGN_OR_RETURN(ledger::LedgerClient ledger, Ledger(p));
  // A copy whose escrow order was signed but not seen certified: active if the committee has
  // the escrow now (the order may have been completed since, from the wallet's journal).
  // It counts only if that escrow pays this copy's node for this copy's shard: the id goes to
  // another order when the signed one was never certified (its epoch closed without it).
  json confirmed = json::array();
  std::vector<std::string> pending;
  bool changed = false;
  for (Copy& c : m.copies) {
    if (c.state != "unconfirmed") continue;
    auto eid = ParseHash(c.escrow_id, "the manifest's escrow id");
    if (!eid) continue;
    auto v = ledger.Escrow(*eid);
    if (!v) {
      pending.push_back(c.escrow_id);
      continue;
    }
    changed = true;
    if (ledger::AddressOfKey(v->provider) == c.address &&
        v->terms.shard_id.ToString() == c.shard_id) {
      c.state = "active";
      c.reason.clear();
      confirmed.push_back(c.escrow_id);
    } else {
      c.state = "replaced";
      c.reason = "its escrow order was never certified (the escrow id went to another order)";
    }
  }
  if (changed) DFRP_RETURN_IF_ERROR(SaveManifest(fs, p, f, m));
  if (!confirmed.empty()) out["confirmed"] = confirmed;
  // A copy whose order may still be certified from the wallet's journal: placing another now
  // could pay for one copy more than asked. The next order of this wallet sends the journal's
  // order first; then repair sees its escrow.
  if (!pending.empty())
    return Err(Status::Unavailable(fmt::format(
        "put {}: the escrow order of {} cop{} ({}) is signed but not certified yet: it waits in "
        "{}.pending and goes out before this wallet's next order (or the committee is "
        "unreachable); repair again once `dfrp-ledger escrow status ID` finds it",
        m.id, pending.size(), pending.size() == 1 ? "y" : "ies", pending.front(), w->path)));
  std::vector<std::pair<size_t, std::string>> bad;  // index in m.copies, why
  std::vector<const Copy*> good;
  json checked = json::array();
  for (size_t i = 0; i < m.copies.size(); ++i) {
    const Copy& c = m.copies[i];
    if (c.state != "active") continue;
    const Health h = Check(c, m.size, states, &ledger);
    json hj = HealthJson(h);
    hj["url"] = c.url;
    checked.push_back(hj);
    if (!h.bad.empty()) bad.emplace_back(i, h.bad);
    // A source may be a copy that needs moving but answers intact (its node is leaving).
    if (h.copy == "ok") good.push_back(&c);
  }
  out["checked"] = checked;
  const size_t healthy = m.active() - bad.size();
  if (bad.empty() && healthy >= m.replicas) {
    out["repaired"] = 0;
    out["note"] = "every copy is sound";
    return out;
  }
  const uint64_t now = NowUnix(f);
  if (now + 1 >= m.end_unix()) {
    out["repaired"] = 0;
    out["note"] = "the contract has ended: nothing is left to pay a new copy for";
    return out;
  }
  if (good.empty())
    return Err(Status::Unavailable(fmt::format(
        "put {}: no copy answers as sound to repair from (try again when a node is back)", m.id)));
  const Copy* from = nullptr;
  std::vector<std::string> tried;
  DFRP_ASSIGN_OR_RETURN(std::string data, ReadAny(m, good, &from, &tried));
  out["read_from"] = from->url;  // `from` points into m.copies, which Place grows
  std::set<std::string> exclude;
  for (const Copy& c : m.copies) exclude.insert(c.address);
  const uint64_t start = now + 1;
  const uint32_t periods =
      static_cast<uint32_t>((m.end_unix() - start + m.period_seconds - 1) / m.period_seconds);
  const size_t want = m.replicas > healthy ? m.replicas - healthy : 0;
  // Without --max-fee, a new copy may cost at most what the dearest copy cost for the whole
  // contract: the periods left are fewer, so an honest offer is within it.
  MeshStoreFlags fr = f;
  if (fr.max_fee.empty()) {
    uint64_t dearest = 0;
    for (const Copy& c : m.copies) dearest = std::max(dearest, c.amount);
    fr.max_fee = p.FormatAmount(std::max<uint64_t>(dearest, 1));
  }
  Placement pl;
  if (want > 0) {
    DFRP_ASSIGN_OR_RETURN(pl, Place(fs, p, fr, *w, data, &m, want, exclude, start, periods));
  }
  // A bad copy counts as replaced once enough sound ones stand without it (one per new copy
  // while they do not): one still active is looked at again by the next repair.
  const size_t replaced = healthy + pl.made.size() >= m.replicas ? bad.size() : pl.made.size();
  for (size_t i = 0; i < replaced && i < bad.size(); ++i) {
    m.copies[bad[i].first].state = "replaced";
    m.copies[bad[i].first].reason = bad[i].second;
  }
  DFRP_RETURN_IF_ERROR(SaveManifest(fs, p, f, m));
  out["repaired"] = pl.made.size();
  json made = json::array();
  for (const Copy& c : pl.made) made.push_back(CopyJson(p, c));
  out["made"] = made;
  out["skipped"] = pl.skipped;
  out["manifest"] = ManifestJson(p, m);
  if (pl.stopped) return Err(*pl.stopped);
  if (pl.made.size() < want) return Err(NoOffers(pl, want, pl.made.size()));
  return out;
}

}  // namespace

Status MeshPut(core::FileSystem* fs, const MeshStoreFlags& f) {
  if (f.replicas == 0 || f.replicas > 16)
    return Status::InvalidArgument(fmt::format("--replicas {}: give 1 to 16", f.replicas));
  if (f.periods == 0 || f.periods > ledger::kMaxEscrowPeriods)
    return Status::InvalidArgument(
        fmt::format("--periods {}: give 1 to {}", f.periods, ledger::kMaxEscrowPeriods));
  if (f.max_fee.empty()) return Status::InvalidArgument("put needs --max-fee (per copy)");
  if (f.wallet.empty()) return Status::InvalidArgument("put needs --wallet FILE (the payer)");
  DFRP_ASSIGN_OR_RETURN(economy::EconomicPolicy p, Policy(fs, f));
  DFRP_ASSIGN_OR_RETURN(std::string data, core::ReadWholeFile(fs, f.file));
  if (data.empty())
    return Status::InvalidArgument(
        fmt::format("{} is empty: a shard holds at least a byte", f.file));
  DFRP_ASSIGN_OR_RETURN(OpenedWallet w, OpenWalletForOrders(fs, f.wallet, f.passphrase_file));
  Manifest m;
  m.id = core::UuidGenerator(f.clock).NewV7().ToString();
  const size_t slash = f.file.find_last_of('/');
  m.file = slash == std::string::npos ? f.file : f.file.substr(slash + 1);
  m.size = data.size();
  m.payer = w.address;
  m.replicas = f.replicas;
  m.periods = f.periods;
  m.period_seconds = p.storage.period_seconds;
  m.created_unix = NowUnix(f);
  m.start_unix = m.created_unix + 1;  // the first period starts a second from now
  DFRP_ASSIGN_OR_RETURN(Placement pl,
                        Place(fs, p, f, w, data, &m, f.replicas, {}, m.start_unix, f.periods));
  if (pl.made.empty()) return pl.stopped ? *pl.stopped : NoOffers(pl, f.replicas, 0);
  if (f.json) {
    json j = ManifestJson(p, m);
    j["skipped"] = pl.skipped;
    j["manifest_path"] = ManifestPath(f, m.id);
    std::printf("%s\n", j.dump(2).c_str());
  } else if (f.quiet) {
    std::printf("%s\n", m.id.c_str());
  } else {
    std::printf("put %s: %s, %llu bytes, %zu of %u copies, %u periods of %u s\n", m.id.c_str(),
                m.file.c_str(), static_cast<unsigned long long>(m.size), pl.made.size(), f.replicas,
                m.periods, m.period_seconds);
    PrintCopies(p, m);
    for (const std::string& s : pl.skipped) std::printf("  skipped %s\n", s.c_str());
  }
  if (pl.stopped) return *pl.stopped;
  if (pl.made.size() < f.replicas) {
    Status s = NoOffers(pl, f.replicas, pl.made.size());
    return Status::Refused(s.message() + fmt::format(" (dfrp-mesh repair {} completes it)", m.id));
  }
  return Status::OK();
}

Status MeshGet(core::FileSystem* fs, const MeshStoreFlags& f) {
  DFRP_ASSIGN_OR_RETURN(Manifest m, LoadManifest(fs, f, f.id));
  const auto states = PeerStates(f.node);
  const Copy* from = nullptr;
  std::vector<std::string> tried;
  DFRP_ASSIGN_OR_RETURN(std::string data, ReadAny(m, ReadOrder(m, states), &from, &tried));
  if (!f.output.empty()) {
    DFRP_RETURN_IF_ERROR(core::WriteFileAtomic(fs, f.output, data));
  } else if (std::fwrite(data.data(), 1, data.size(), stdout) != data.size() ||
             std::fflush(stdout) != 0) {
    return Status::IOError("standard output: the file could not be written whole");
  }
  if (f.json && !f.output.empty()) {
    const json j = {{"id", m.id},
                    {"bytes", data.size()},
                    {"output", f.output},
                    {"read_from", from->url},
                    {"shard_id", from->shard_id},
                    {"failed_copies", tried}};
    std::printf("%s\n", j.dump(2).c_str());
  } else if (!f.quiet) {
    for (const std::string& t : tried) std::fprintf(stderr, "dfrp-mesh: skipped %s\n", t.c_str());
    std::fprintf(stderr, "dfrp-mesh: %zu bytes of put %s from %s, verified\n", data.size(),
                 m.id.c_str(), from->url.c_str());
  }
  return Status::OK();
}

Status MeshStatus(core::FileSystem* fs, const MeshStoreFlags& f) {
  DFRP_ASSIGN_OR_RETURN(economy::EconomicPolicy p, Policy(fs, f));
  DFRP_ASSIGN_OR_RETURN(Manifest m, LoadManifest(fs, f, f.id));
  const auto states = PeerStates(f.node);
  auto ledger = Ledger(p);
  json j = ManifestJson(p, m);
  size_t sound = 0;
  for (size_t i = 0; i < m.copies.size(); ++i) {
    if (m.copies[i].state != "active") continue;
    const Health h = Check(m.copies[i], m.size, states, ledger ? &*ledger : nullptr);
    if (h.bad.empty() && h.copy == "ok") ++sound;
    j["copies"][i]["health"] = HealthJson(h);
  }
  j["sound_copies"] = sound;
  j["needs_repair"] = sound < m.replicas;
  if (f.json) {
    std::printf("%s\n", j.dump(2).c_str());
    return Status::OK();
  }
  std::printf("put %s: %s, %llu bytes, %zu of %u copies sound, periods %u of %u s from %llu\n",
              m.id.c_str(), m.file.c_str(), static_cast<unsigned long long>(m.size), sound,
              m.replicas, m.periods, m.period_seconds,
              static_cast<unsigned long long>(m.start_unix));
  for (size_t i = 0; i < m.copies.size(); ++i) {
    const Copy& c = m.copies[i];
    if (c.state != "active") {
      std::printf("  %s %s (%s)\n", c.state.c_str(), c.url.c_str(), c.reason.c_str());
      continue;
    }
    const json& h = j["copies"][i]["health"];
    std::printf("  %-28s node %-8s copy %-11s released %u refunded %u%s\n", c.url.c_str(),
                h.value("node_state", "").c_str(), h.value("copy", "").c_str(),
                h.value("released_periods", 0u), h.value("refunded_periods", 0u),
                h.contains("why") ? (" NEEDS REPAIR: " + h.value("why", "")).c_str() : "");
  }
  if (sound < m.replicas) std::printf("run: dfrp-mesh repair %s\n", m.id.c_str());
  return Status::OK();
}

Status MeshRepair(core::FileSystem* fs, const MeshStoreFlags& f) {
  if (f.wallet.empty()) return Status::InvalidArgument("repair needs --wallet FILE (the payer)");
  DFRP_ASSIGN_OR_RETURN(economy::EconomicPolicy p, Policy(fs, f));
  std::vector<std::string> ids;
  if (!f.id.empty()) {
    ids.push_back(f.id);
  } else {
    auto names = fs->ListDir(f.puts_dir);
    if (!names && !names.error().IsNotFound()) return names.error();
    if (names)
      for (const std::string& n : *names)
        if (n.size() > 5 && n.ends_with(".json")) ids.push_back(n.substr(0, n.size() - 5));
    std::sort(ids.begin(), ids.end());
  }
  DFRP_ASSIGN_OR_RETURN(OpenedWallet w, OpenWalletForOrders(fs, f.wallet, f.passphrase_file));
  json all = json::array();
  Status first;
  for (const std::string& id : ids) {
    auto m = LoadManifest(fs, f, id);
    if (m && f.id.empty() && m->payer != w.address) continue;  // another wallet's puts
    auto r = m ? RepairOne(fs, p, f, &w, std::move(*m)) : Result<json>(Err(m.error()));
    if (!r) {
      if (first.ok()) first = r.error();
      all.push_back({{"id", id}, {"error", r.error().message()}});
      if (!f.json)
        std::fprintf(stderr, "dfrp-mesh: put %s: %s\n", id.c_str(), r.error().message().c_str());
      continue;
    }
    all.push_back(*r);
    if (!f.json && !f.quiet) {
      std::printf("put %s: %zu cop%s made", id.c_str(), r->value("repaired", size_t{0}),
                  r->value("repaired", size_t{0}) == 1 ? "y" : "ies");
      if (r->contains("note")) std::printf(" (%s)", r->value("note", "").c_str());
      if (r->contains("read_from")) std::printf(", from %s", r->value("read_from", "").c_str());
      std::printf("\n");
      for (const json& c : r->value("made", json::array()))
        std::printf("  new copy on %s (%s), escrow %s for %u periods\n", c.value("url", "").c_str(),
                    c.value("address", "").c_str(), c.value("escrow_id", "").c_str(),
                    c.value("periods", 0u));
    }
  }
  if (f.json) std::printf("%s\n", json{{"puts", all}}.dump(2).c_str());
  return first;
}

}  // namespace dfrp::cli
