// dfrp-ledger escrow: storage escrows from the payer's side (docs/PROTOCOL.md, "Escrow").
//
//   escrow open --wallet FILE --provider URL (--receipt FILE | --shard ID --root HEX --size N
//               --leaf-size L) --amount X --periods P [--start UNIX] [--challenges K]
//       asks the provider's node to accept the terms (it signs only for a shard it holds, as
//       the terms describe it), then has the committee certify the escrow_open order; prints
//       the escrow id
//   escrow status ID      the escrow as the committee reports it: what is left, each settled
//                         period, the next answer window
//   escrow list ADDRESS   the open escrows an address pays or provides
//   escrow refund ID      refunds every period whose answer window closed unreleased more
//                         than the grace ago (exit 7 when none is due yet)
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "dfrp/cli/ledger_cli_internal.h"
#include "dfrp/node/client.h"
#include "dfrp/wallet/address.h"

namespace dfrp::cli {

using core::Err;
using core::Result;
using core::Status;
using nlohmann::json;

namespace {

Result<crypto::Hash> ParseHash(const std::string& text, std::string_view what) {
  auto bytes = core::FromHex(text);
  if (!bytes || bytes->size() != 32)
    return Err(Status::InvalidArgument(
        fmt::format("{} '{}' is not 64 hex digits", what, text.substr(0, 80))));
  crypto::Hash h{};
  std::memcpy(h.data(), bytes->data(), 32);
  return h;
}

// The shard's facts: from the write receipt (PUT's answer, `dfrp-storage write-shard --json`)
// or from the flags.
Result<ledger::StorageTerms> ShardTerms(core::FileSystem* fs, const EscrowCommands& c) {
  ledger::StorageTerms t;
  std::string shard = c.shard, root = c.root;
  uint64_t size = c.size;
  uint32_t leaf = c.leaf_size;
  if (!c.receipt.empty()) {
    DFRP_ASSIGN_OR_RETURN(std::string text, core::ReadWholeFile(fs, c.receipt));
    json j = json::parse(text, nullptr, false);
    if (j.is_object() && j.contains("shards") && j["shards"].is_array() && j["shards"].size() == 1)
      j = j["shards"][0];
    if (!j.is_object() || !j.contains("shard_id") || !j["shard_id"].is_string() ||
        !j.contains("merkle_root") || !j["merkle_root"].is_string() || !j.contains("size") ||
        !j["size"].is_number_unsigned() || !j.contains("leaf_size") ||
        !j["leaf_size"].is_number_unsigned())
      return Err(Status::InvalidArgument(fmt::format(
          "--receipt {}: not a write receipt (a JSON object with shard_id, merkle_root, size and "
          "leaf_size, as the PUT answer or write-shard --json gives it)",
          c.receipt)));
    shard = j["shard_id"].get<std::string>();
    root = j["merkle_root"].get<std::string>();
    size = j["size"].get<uint64_t>();
    leaf = j["leaf_size"].get<uint32_t>();
  }
  if (shard.empty() || root.empty() || size == 0 || leaf == 0)
    return Err(Status::InvalidArgument(
        "escrow open needs the shard's facts: --receipt FILE, or --shard, --root, --size and "
        "--leaf-size"));
  auto id = core::Uuid::Parse(shard);
  if (!id)
    return Err(Status::InvalidArgument(fmt::format("--shard '{}' is not a shard id", shard)));
  t.shard_id = *id;
  DFRP_ASSIGN_OR_RETURN(t.root, ParseHash(root, "--root"));
  t.size = size;
  t.leaf_size = leaf;
  return t;
}

// The provider's signed acceptance of the escrow (POST /v1/escrows/accept on its node).
Result<std::pair<ledger::KeyBytes, ledger::SigBytes>> AskAcceptance(const std::string& url,
                                                                    const std::string& payer,
                                                                    uint64_t seq, uint64_t amount,
                                                                    const ledger::StorageTerms& t,
                                                                    uint64_t epoch) {
  node::DaemonInfo info;
  info.url = url;
  DFRP_ASSIGN_OR_RETURN(info.api_addr, ledger::HostPortOfUrl(url));
  node::Client client(info, {.connect_timeout_ms = 3000, .request_timeout_ms = 30'000});
  const json body{{"payer", payer},
                  {"seq", seq},
                  {"epoch", epoch},
                  {"amount_base_units", amount},
                  {"terms_hex", core::ToHex(ledger::EncodeTerms(t))}};
  DFRP_ASSIGN_OR_RETURN(node::HttpResponse r,
                        client.Request("POST", "/v1/escrows/accept",
                                       {{"Content-Type", "application/json"}}, body.dump()));
  if (r.status / 100 != 2)
    return Err(node::StatusFromResponse(info, r).WithContext("the provider " + url));
  json j = json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("provider") || !j["provider"].is_string() ||
      !j.contains("acceptance") || !j["acceptance"].is_string())
    return Err(Status::IOError(fmt::format("the provider {} answered no acceptance", url)));
  DFRP_ASSIGN_OR_RETURN(auto key, wallet::PublicKeyFromAddress(j["provider"].get<std::string>()));
  auto sig = core::FromHex(j["acceptance"].get<std::string>());
  if (!sig || sig->size() != crypto::bls::kSignatureSize)
    return Err(
        Status::IOError(fmt::format("the provider {} answered a malformed acceptance", url)));
  ledger::SigBytes s{};
  std::memcpy(s.data(), sig->data(), s.size());
  return std::make_pair(key.bytes(), s);
}

json ViewJson(const economy::EconomicPolicy& p, const ledger::EscrowView& v, int64_t now_ms) {
  json settled = json::array();
  for (const auto& [k, s] : v.settled)
    settled.push_back({{"period", k},
                       {"kind", ledger::SettleKindName(s.kind)},
                       {"paid", p.FormatAmount(s.paid)},
                       {"margin", p.FormatAmount(s.margin)}});
  json periods = json::array();
  for (uint32_t k = 0; k < v.terms.periods && k < 1000; ++k) {
    if (v.settled.contains(k)) continue;
    const ledger::PeriodWindow w = ledger::WindowOf(v.id, v.terms, k, p.storage);
    periods.push_back({{"period", k},
                       {"window_open_ms", w.open_ms},
                       {"window_close_ms", w.close_ms},
                       {"refundable_from_ms", w.refund_ms},
                       {"refundable_now", now_ms >= w.refund_ms}});
  }
  return json{{"id", core::ToHex(v.id)},
              {"payer", ledger::AddressOfKey(v.payer)},
              {"provider", ledger::AddressOfKey(v.provider)},
              {"amount", p.FormatAmount(v.amount)},
              {"remaining", p.FormatAmount(v.remaining)},
              {"margin_bps", v.margin_bps},
              {"owner", v.owner},
              {"shard_id", v.terms.shard_id.ToString()},
              {"periods", v.terms.periods},
              {"period_seconds", v.terms.period_seconds},
              {"start_unix", v.terms.start_unix},
              {"settled", settled},
              {"open_periods", periods},
              {"authorities_answered", v.answers},
              {"notes", v.notes}};
}

Status CmdOpen(const LedgerGlobals& g, core::FileSystem* fs, core::Clock* clock,
               const economy::EconomicPolicy& p, const EscrowCommands& c) {
  DFRP_ASSIGN_OR_RETURN(ledger::StorageTerms t, ShardTerms(fs, c));
  DFRP_ASSIGN_OR_RETURN(economy::Amount amount, p.ParseAmount(c.amount, "--amount"));
  if (amount == 0) return Status::InvalidArgument("--amount must be more than 0");
  if (c.periods == 0 || c.periods > ledger::kMaxEscrowPeriods)
    return Status::InvalidArgument(
        fmt::format("--periods {}: give 1 to {}", c.periods, ledger::kMaxEscrowPeriods));
  t.periods = c.periods;
  t.period_seconds = p.storage.period_seconds;
  t.challenges = c.challenges ? c.challenges : p.storage.challenges_per_period;
  // By default the first period starts a second from now.
  t.start_unix = c.start ? c.start : static_cast<uint64_t>(clock->NowUnixMillis() / 1000 + 1);
  DFRP_ASSIGN_OR_RETURN(OpenedWallet w,
                        OpenWalletForOrders(fs, c.order.wallet, c.order.passphrase_file));
  DFRP_ASSIGN_OR_RETURN(ledger::LedgerClient client, ledger::LedgerClient::Make(p));
  std::string provider_address;
  DFRP_ASSIGN_OR_RETURN(
      json out,
      CertifyNewOrder(
          fs, p, client, w, c.order, "escrow", amount, [&](uint64_t seq) -> Result<ledger::Order> {
            DFRP_ASSIGN_OR_RETURN(auto accepted, AskAcceptance(c.provider_url, w.address, seq,
                                                               amount, t, client.epoch()));
            ledger::Order o;
            o.kind = ledger::OrderKind::kEscrowOpen;
            o.escrow.provider = accepted.first;
            o.escrow.amount = amount;
            o.escrow.terms = t;
            o.escrow.acceptance = accepted.second;
            // Checked before anything is signed: a bad acceptance would leave a signed
            // order in the journal that no committee certifies.
            o.sender = w.key->GetPublicKey().bytes();
            o.seq = seq;
            o.epoch = client.epoch();  // learnt by CertifyNewOrder before it calls this
            DFRP_RETURN_IF_ERROR(ledger::VerifyAcceptance(o, p.network_id)
                                     .WithContext("the provider " + c.provider_url));
            provider_address = ledger::AddressOfKey(accepted.first);
            return o;
          }));
  const uint64_t seq = out["seq"].get<uint64_t>();
  const crypto::Hash id = ledger::EscrowId(w.key->GetPublicKey().bytes(), seq);
  out["escrow_id"] = core::ToHex(id);
  out["provider"] = provider_address;
  out["shard_id"] = t.shard_id.ToString();
  out["periods"] = t.periods;
  out["period_seconds"] = t.period_seconds;
  out["start_unix"] = t.start_unix;
  if (g.json)
    std::printf("%s\n", out.dump(2).c_str());
  else
    std::printf(
        "escrow %s: %s %s for shard %s on %s, %u periods of %u s from %llu (certified by %zu)\n",
        core::ToHex(id).c_str(), p.FormatAmount(amount).c_str(), p.genesis.currency.c_str(),
        t.shard_id.ToString().c_str(), provider_address.c_str(), t.periods, t.period_seconds,
        static_cast<unsigned long long>(t.start_unix), out["votes"].get<size_t>());
  return Status::OK();
}

Status CmdStatus(const LedgerGlobals& g, core::Clock* clock, const economy::EconomicPolicy& p,
                 const EscrowCommands& c) {
  DFRP_ASSIGN_OR_RETURN(crypto::Hash id, ParseHash(c.id, "escrow id"));
  DFRP_ASSIGN_OR_RETURN(ledger::LedgerClient client, ledger::LedgerClient::Make(p));
  DFRP_ASSIGN_OR_RETURN(ledger::EscrowView v, client.Escrow(id));
  const json j = ViewJson(p, v, clock->NowUnixMillis());
  if (g.json) {
    std::printf("%s\n", j.dump(2).c_str());
    return Status::OK();
  }
  std::printf("escrow %s: %s of %s %s left; %zu of %u periods settled\n", c.id.c_str(),
              p.FormatAmount(v.remaining).c_str(), p.FormatAmount(v.amount).c_str(),
              p.genesis.currency.c_str(), v.settled.size(), v.terms.periods);
  for (const auto& [k, s] : v.settled)
    std::printf("  period %u: %s, %s paid (margin %s)\n", k,
                std::string(ledger::SettleKindName(s.kind)).c_str(), p.FormatAmount(s.paid).c_str(),
                p.FormatAmount(s.margin).c_str());
  return Status::OK();
}

Status CmdList(const LedgerGlobals& g, core::Clock* clock, const economy::EconomicPolicy& p,
               const EscrowCommands& c) {
  DFRP_RETURN_IF_ERROR(wallet::PublicKeyFromAddress(c.id).status());
  DFRP_ASSIGN_OR_RETURN(ledger::LedgerClient client, ledger::LedgerClient::Make(p));
  DFRP_ASSIGN_OR_RETURN(auto list, client.OpenEscrows(c.id));
  json out = json::array();
  for (const auto& v : list) out.push_back(ViewJson(p, v, clock->NowUnixMillis()));
  if (g.json) {
    std::printf("%s\n", json{{"address", c.id}, {"escrows", out}}.dump(2).c_str());
    return Status::OK();
  }
  for (const auto& v : out)
    std::printf("%s  %s left of %s, %zu settled, shard %s\n", v["id"].get<std::string>().c_str(),
                v["remaining"].get<std::string>().c_str(), v["amount"].get<std::string>().c_str(),
                v["settled"].size(), v["shard_id"].get<std::string>().c_str());
  if (out.empty()) std::printf("no open escrows for %s\n", c.id.c_str());
  return Status::OK();
}

Status CmdRefund(const LedgerGlobals& g, core::Clock* clock, const economy::EconomicPolicy& p,
                 const EscrowCommands& c) {
  DFRP_ASSIGN_OR_RETURN(crypto::Hash id, ParseHash(c.id, "escrow id"));
  DFRP_ASSIGN_OR_RETURN(ledger::LedgerClient client, ledger::LedgerClient::Make(p));
  DFRP_ASSIGN_OR_RETURN(ledger::EscrowView v, client.Escrow(id));
  DFRP_ASSIGN_OR_RETURN(const uint64_t epoch, client.RefreshEpoch());
  const int64_t now = clock->NowUnixMillis();
  json refunded = json::array(), failed = json::array();
  int64_t next_due = -1;
  for (uint32_t k = 0; k < v.terms.periods; ++k) {
    if (v.settled.contains(k)) continue;
    const ledger::PeriodWindow w = ledger::WindowOf(id, v.terms, k, p.storage);
    if (now < w.refund_ms) {
      next_due = w.refund_ms;
      break;  // later periods are due later still
    }
    auto r = client.Settle(
        ledger::MakeSettlement(id, k, ledger::SettleKind::kRefund, epoch, "", "", p.network_id));
    if (r) {
      refunded.push_back(
          {{"period", k},
           {"amount", p.FormatAmount(ledger::PeriodAmount(v.amount, v.terms.periods, k))},
           {"applied_by", r->applied}});
    } else {
      failed.push_back({{"period", k}, {"error", r.error().message()}});
    }
  }
  const json out{{"escrow_id", c.id},
                 {"refunded", refunded},
                 {"failed", failed},
                 {"next_refundable_ms", next_due < 0 ? json() : json(next_due)}};
  if (g.json) std::printf("%s\n", out.dump(2).c_str());
  if (refunded.empty()) {
    std::string why = failed.empty()
                          ? fmt::format("escrow {}: no period is refundable yet", c.id)
                          : fmt::format("escrow {}: the committee refunded no period", c.id);
    if (next_due >= 0)
      why += fmt::format(
          " (the next is refundable from Unix ms {}, once its answer window "
          "closed unreleased and the grace passed)",
          next_due);
    for (const auto& f : failed)
      why += fmt::format("; period {}: {}", f["period"].get<uint32_t>(),
                         f["error"].get<std::string>());
    return Status::Refused(why);
  }
  if (!g.json)
    for (const auto& r : refunded)
      std::printf("period %u refunded: %s %s\n", r["period"].get<uint32_t>(),
                  r["amount"].get<std::string>().c_str(), p.genesis.currency.c_str());
  return Status::OK();
}

}  // namespace

void AddEscrowCommands(CLI::App& app, EscrowCommands* c) {
  c->escrow = app.add_subcommand("escrow", "storage escrows: open, status, list, refund");
  c->escrow->require_subcommand(1);
  c->open = c->escrow->add_subcommand("open", "lock an amount for a provider keeping a shard");
  c->open->add_option("--wallet", c->order.wallet, "the paying wallet's keystore")->required();
  c->open->add_option("--passphrase-file", c->order.passphrase_file,
                      "the wallet's passphrase file");
  c->open->add_option("--provider", c->provider_url, "the provider node's URL (http://HOST:PORT)")
      ->required();
  c->open->add_option("--receipt", c->receipt, "the shard's write receipt (JSON)");
  c->open->add_option("--shard", c->shard, "the shard id (without --receipt)");
  c->open->add_option("--root", c->root, "its Merkle root, hex");
  c->open->add_option("--size", c->size, "its payload bytes");
  c->open->add_option("--leaf-size", c->leaf_size, "its leaf size");
  c->open->add_option("--amount", c->amount, "the whole escrow, in the currency")->required();
  c->open->add_option("--periods", c->periods, "how many periods it pays for")->required();
  c->open->add_option("--start", c->start, "Unix seconds when period 0 begins (default: now)");
  c->open->add_option("--challenges", c->challenges,
                      "leaves per audit (default: the policy's challenges_per_period)");
  c->open->add_flag("--abandon-pending", c->order.abandon_pending,
                    "sign past an earlier order that was never certified");
  c->status = c->escrow->add_subcommand("status", "an escrow as the committee reports it");
  c->status->add_option("id", c->id, "the escrow id")->required();
  c->list = c->escrow->add_subcommand("list", "the open escrows an address pays or provides");
  c->list->add_option("address", c->id, "a wallet address")->required();
  c->refund = c->escrow->add_subcommand("refund", "refund the periods past their grace");
  c->refund->add_option("id", c->id, "the escrow id")->required();
}

Status RunEscrowCommand(const LedgerGlobals& g, core::FileSystem* fs, core::Clock* clock,
                        const economy::EconomicPolicy& p, const EscrowCommands& c) {
  if (*c.open) return CmdOpen(g, fs, clock, p, c);
  if (*c.status) return CmdStatus(g, clock, p, c);
  if (*c.list) return CmdList(g, clock, p, c);
  if (*c.refund) return CmdRefund(g, clock, p, c);
  return Status::InvalidArgument("escrow: give open, status, list or refund");
}

}  // namespace dfrp::cli
