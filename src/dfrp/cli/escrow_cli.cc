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
//                         than the grace ago (exit 7 when none is due yet); a read escrow is
//                         closed instead (what its receipts do not pay goes back)
//   escrow open-read --wallet FILE --provider URL --amount X --price-per-mib P --seconds S
//       a read escrow: the provider's node accepts the price (at least its read price) and
//       the committee certifies the read_escrow_open order
//   escrow read ID --wallet FILE --provider URL --shard SHARD [--root HEX] [-o FILE]
//       reads a shard paid from the read escrow: each request carries a usage receipt signed
//       for it; the bytes are verified against the root before anything is written
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "dfrp/cli/ledger_cli_internal.h"
#include "dfrp/crypto/merkle.h"
#include "dfrp/node/client.h"
#include "dfrp/storage/proof.h"
#include "dfrp/wallet/address.h"

namespace dfrp::cli {

using core::Err;
using core::Result;
using core::Status;
using nlohmann::json;

Result<crypto::Hash> ParseHash(const std::string& text, std::string_view what) {
  auto bytes = core::FromHex(text);
  if (!bytes || bytes->size() != 32)
    return Err(Status::InvalidArgument(
        fmt::format("{} '{}' is not 64 hex digits", what, text.substr(0, 80))));
  crypto::Hash h{};
  std::memcpy(h.data(), bytes->data(), 32);
  return h;
}

namespace {

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

Result<node::DaemonInfo> ProviderInfo(const std::string& url) {
  node::DaemonInfo info;
  info.url = url;
  DFRP_ASSIGN_OR_RETURN(info.api_addr, ledger::HostPortOfUrl(url));
  return info;
}

node::Client ProviderClient(const node::DaemonInfo& info) {
  return node::Client(info, {.connect_timeout_ms = 3000, .request_timeout_ms = 30'000});
}

// The provider's signed acceptance of an escrow (POST /v1/escrows/accept on its node) of
// `kind` ("storage" or "read") with those terms' bytes.
Result<std::pair<ledger::KeyBytes, ledger::SigBytes>> AskAcceptance(
    const std::string& url, std::string_view kind, const std::string& payer, uint64_t seq,
    uint64_t amount, const std::string& terms_bytes, uint64_t epoch, const std::string& job_wire) {
  DFRP_ASSIGN_OR_RETURN(node::DaemonInfo info, ProviderInfo(url));
  node::Client client = ProviderClient(info);
  json body{{"kind", kind},
            {"payer", payer},
            {"seq", seq},
            {"epoch", epoch},
            {"amount_base_units", amount},
            {"terms_hex", core::ToHex(terms_bytes)}};
  if (!job_wire.empty()) body["job_hex"] = core::ToHex(job_wire);
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

}  // namespace

// Has the committee certify an escrow_open or read_escrow_open (`tmpl`: its kind and terms)
// of `amount` at the wallet's next sequence number, once the provider accepted it. The
// certificate's JSON with the "escrow_id" and the "provider" added.
Result<json> CertifyEscrowOpen(core::FileSystem* fs, const economy::EconomicPolicy& p,
                               const OpenedWallet& w, const OrderFlags& order,
                               const std::string& provider_url, uint64_t amount,
                               const ledger::Order& tmpl, const std::string& expected_provider,
                               std::optional<uint64_t>* signed_seq, const std::string& job_wire) {
  DFRP_ASSIGN_OR_RETURN(ledger::LedgerClient client, ledger::LedgerClient::Make(p));
  const bool read = tmpl.kind == ledger::OrderKind::kReadEscrowOpen;
  const bool job = tmpl.kind == ledger::OrderKind::kJobEscrowOpen;
  std::string provider;
  DFRP_ASSIGN_OR_RETURN(
      json out, CertifyNewOrder(
                    fs, p, client, w, order,
                    read ? "read escrow" : (job ? "compute escrow" : "escrow"), amount,
                    [&](uint64_t seq) -> Result<ledger::Order> {
                      DFRP_ASSIGN_OR_RETURN(
                          auto accepted,
                          AskAcceptance(provider_url, read ? "read" : (job ? "job" : "storage"),
                                        w.address, seq, amount,
                                        read  ? ledger::EncodeReadTerms(tmpl.escrow.read)
                                        : job ? ledger::EncodeJobTerms(tmpl.escrow.job)
                                              : ledger::EncodeTerms(tmpl.escrow.terms),
                                        client.epoch(), job_wire));
                      ledger::Order o = tmpl;
                      o.escrow.provider = accepted.first;
                      o.escrow.amount = amount;
                      o.escrow.acceptance = accepted.second;
                      // Checked before anything is signed: a bad acceptance would leave a signed
                      // order in the journal that no committee certifies.
                      o.sender = w.key->GetPublicKey().bytes();
                      o.seq = seq;
                      o.epoch = client.epoch();  // learnt by CertifyNewOrder before it calls this
                      DFRP_RETURN_IF_ERROR(ledger::VerifyAcceptance(o, p.network_id)
                                               .WithContext("the provider " + provider_url));
                      provider = ledger::AddressOfKey(accepted.first);
                      if (!expected_provider.empty() && provider != expected_provider)
                        return Err(Status::InvalidArgument(fmt::format(
                            "the node at {} accepted the terms as {}, not as {} (its record's "
                            "wallet): nothing was signed",
                            provider_url, provider, expected_provider)));
                      return o;
                    },
                    signed_seq));
  out["escrow_id"] =
      core::ToHex(ledger::EscrowId(w.key->GetPublicKey().bytes(), out["seq"].get<uint64_t>()));
  out["provider"] = provider;
  return out;
}

namespace {

Result<json> CertifyEscrowOpen(core::FileSystem* fs, const economy::EconomicPolicy& p,
                               const EscrowCommands& c, uint64_t amount,
                               const ledger::Order& tmpl) {
  DFRP_ASSIGN_OR_RETURN(OpenedWallet w,
                        OpenWalletForOrders(fs, c.order.wallet, c.order.passphrase_file));
  return CertifyEscrowOpen(fs, p, w, c.order, c.provider_url, amount, tmpl);
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
  ledger::Order tmpl;
  tmpl.kind = ledger::OrderKind::kEscrowOpen;
  tmpl.escrow.terms = t;
  DFRP_ASSIGN_OR_RETURN(json out, CertifyEscrowOpen(fs, p, c, amount, tmpl));
  out["shard_id"] = t.shard_id.ToString();
  out["periods"] = t.periods;
  out["period_seconds"] = t.period_seconds;
  out["start_unix"] = t.start_unix;
  if (g.json)
    std::printf("%s\n", out.dump(2).c_str());
  else
    std::printf(
        "escrow %s: %s %s for shard %s on %s, %u periods of %u s from %llu (certified by %zu)\n",
        out["escrow_id"].get<std::string>().c_str(), p.FormatAmount(amount).c_str(),
        p.genesis.currency.c_str(), t.shard_id.ToString().c_str(),
        out["provider"].get<std::string>().c_str(), t.periods, t.period_seconds,
        static_cast<unsigned long long>(t.start_unix), out["votes"].get<size_t>());
  return Status::OK();
}

// A compute escrow as the committee reports it (dfrp-compute settle-job settles it).
json JobViewJson(const economy::EconomicPolicy& p, const ledger::EscrowView& v, int64_t now_ms) {
  const ledger::JobWindow w = ledger::JobWindowOf(v.job, p.storage);
  const auto settled = v.settled.find(0);
  return json{
      {"id", core::ToHex(v.id)},
      {"kind", "job"},
      {"payer", ledger::AddressOfKey(v.payer)},
      {"provider", ledger::AddressOfKey(v.provider)},
      {"amount", p.FormatAmount(v.amount)},
      {"remaining", p.FormatAmount(v.remaining)},
      {"job_id", core::ToHex(v.job.job_id)},
      {"price", p.FormatAmount(v.job.price)},
      {"verifier", v.job.has_verifier() ? json(ledger::AddressOfKey(v.job.verifier)) : json()},
      {"settle_unix", v.job.settle_unix},
      // The provider's stake (ledger/escrow.h, "Collateral"), as f + 1 authorities report it.
      {"collateral",
       {{"required", p.FormatAmount(v.job.collateral)},
        {"held", p.FormatAmount(v.collateral_held)},
        {"to_provider", p.FormatAmount(v.collateral_to_provider)},
        {"to_payer", p.FormatAmount(v.collateral_to_payer)}}},
      {"state",
       settled != v.settled.end()
           ? std::string(settled->second.kind == ledger::SettleKind::kJobRelease ? "released"
                                                                                 : "refunded")
       : now_ms < w.dispute_until_ms ? "dispute window"
       : now_ms < w.release_until_ms ? "release window"
       : now_ms < w.refund_from_ms   ? "grace"
                                     : "refundable"},
      {"settled", settled != v.settled.end()
                      ? json::array({json{{"kind", ledger::SettleKindName(settled->second.kind)},
                                          {"paid", p.FormatAmount(settled->second.paid)}}})
                      : json::array()},
      {"shard_id", "(job)"},
      {"authorities_answered", v.answers},
      {"notes", v.notes}};
}

Status CmdStatus(const LedgerGlobals& g, core::Clock* clock, const economy::EconomicPolicy& p,
                 const EscrowCommands& c) {
  DFRP_ASSIGN_OR_RETURN(crypto::Hash id, ParseHash(c.id, "escrow id"));
  DFRP_ASSIGN_OR_RETURN(ledger::LedgerClient client, ledger::LedgerClient::Make(p));
  DFRP_ASSIGN_OR_RETURN(ledger::EscrowView v, client.Escrow(id));
  if (v.is_job) {
    const json j = JobViewJson(p, v, clock->NowUnixMillis());
    if (g.json)
      std::printf("%s\n", j.dump(2).c_str());
    else
      std::printf(
          "compute escrow %s: %s of %s %s left for job %s at a price of %s; %s "
          "(dfrp-compute settle-job settles it)\n",
          c.id.c_str(), p.FormatAmount(v.remaining).c_str(), p.FormatAmount(v.amount).c_str(),
          p.genesis.currency.c_str(), core::ToHex(v.job.job_id).c_str(),
          p.FormatAmount(v.job.price).c_str(), j["state"].get<std::string>().c_str());
    if (!g.json && v.job.collateral > 0)
      std::printf(
          "the provider's stake: %s asked, %s held, %s returned to it, %s given to the "
          "payer\n",
          p.FormatAmount(v.job.collateral).c_str(), p.FormatAmount(v.collateral_held).c_str(),
          p.FormatAmount(v.collateral_to_provider).c_str(),
          p.FormatAmount(v.collateral_to_payer).c_str());
    return Status::OK();
  }
  if (v.is_read) {
    const uint64_t paid = ledger::ReadDue(v.redeemed_bytes, v.read, v.amount);
    const json j{{"id", c.id},
                 {"kind", "read"},
                 {"payer", ledger::AddressOfKey(v.payer)},
                 {"provider", ledger::AddressOfKey(v.provider)},
                 {"amount", p.FormatAmount(v.amount)},
                 {"remaining", p.FormatAmount(v.remaining)},
                 {"price_per_mib", p.FormatAmount(v.read.price_per_mib)},
                 {"end_unix", v.read.end_unix},
                 {"redeemed_bytes", v.redeemed_bytes},
                 {"paid", p.FormatAmount(paid)},
                 {"margin_bps", v.margin_bps},
                 {"owner", v.owner},
                 {"closed", v.closed},
                 {"authorities_answered", v.answers},
                 {"notes", v.notes}};
    if (g.json)
      std::printf("%s\n", j.dump(2).c_str());
    else
      std::printf(
          "read escrow %s: %s of %s %s left; %llu bytes redeemed (%s paid) at %s per "
          "MiB; ends %llu%s\n",
          c.id.c_str(), p.FormatAmount(v.remaining).c_str(), p.FormatAmount(v.amount).c_str(),
          p.genesis.currency.c_str(), static_cast<unsigned long long>(v.redeemed_bytes),
          p.FormatAmount(paid).c_str(), p.FormatAmount(v.read.price_per_mib).c_str(),
          static_cast<unsigned long long>(v.read.end_unix), v.closed ? "; closed" : "");
    return Status::OK();
  }
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
  for (const auto& v : list) {
    if (v.is_job) {
      out.push_back(JobViewJson(p, v, clock->NowUnixMillis()));
      continue;
    }
    if (v.is_read) {
      out.push_back({{"id", core::ToHex(v.id)},
                     {"kind", "read"},
                     {"amount", p.FormatAmount(v.amount)},
                     {"remaining", p.FormatAmount(v.remaining)},
                     {"redeemed_bytes", v.redeemed_bytes},
                     {"end_unix", v.read.end_unix},
                     {"settled", json::array()},
                     {"shard_id", "(reads)"}});
      continue;
    }
    out.push_back(ViewJson(p, v, clock->NowUnixMillis()));
  }
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

Status CloseRead(const LedgerGlobals& g, core::FileSystem* fs, core::Clock* clock,
                 const economy::EconomicPolicy& p, const EscrowCommands& c,
                 ledger::LedgerClient& client, const ledger::EscrowView& v);

Status CmdRefund(const LedgerGlobals& g, core::FileSystem* fs, core::Clock* clock,
                 const economy::EconomicPolicy& p, const EscrowCommands& c) {
  DFRP_ASSIGN_OR_RETURN(crypto::Hash id, ParseHash(c.id, "escrow id"));
  DFRP_ASSIGN_OR_RETURN(ledger::LedgerClient client, ledger::LedgerClient::Make(p));
  DFRP_ASSIGN_OR_RETURN(ledger::EscrowView v, client.Escrow(id));
  if (v.is_read) return CloseRead(g, fs, clock, p, c, client, v);
  if (v.is_job)
    return Status::InvalidArgument(
        fmt::format("escrow {} pays for a compute job: dfrp-compute settle-job {} releases or "
                    "refunds it",
                    c.id, core::ToHex(v.job.job_id)));
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

// --- Read escrows (ledger/escrow.h, "Read escrows"; node/read_desk.h).

Status CmdOpenRead(const LedgerGlobals& g, core::FileSystem* fs, core::Clock* clock,
                   const economy::EconomicPolicy& p, const EscrowCommands& c) {
  DFRP_ASSIGN_OR_RETURN(economy::Amount amount, p.ParseAmount(c.amount, "--amount"));
  if (amount == 0) return Status::InvalidArgument("--amount must be more than 0");
  DFRP_ASSIGN_OR_RETURN(economy::Amount price, p.ParseAmount(c.price_per_mib, "--price-per-mib"));
  if (price == 0) return Status::InvalidArgument("--price-per-mib must be more than 0");
  if (c.seconds == 0) return Status::InvalidArgument("--seconds must be more than 0");
  const ledger::ReadTerms t{price,
                            static_cast<uint64_t>(clock->NowUnixMillis() / 1000) + c.seconds};
  ledger::Order tmpl;
  tmpl.kind = ledger::OrderKind::kReadEscrowOpen;
  tmpl.escrow.read = t;
  DFRP_ASSIGN_OR_RETURN(json out, CertifyEscrowOpen(fs, p, c, amount, tmpl));
  out["kind"] = "read";
  out["price_per_mib"] = p.FormatAmount(price);
  out["end_unix"] = t.end_unix;
  if (g.json)
    std::printf("%s\n", out.dump(2).c_str());
  else
    std::printf(
        "read escrow %s: %s %s for reads from %s at %s per MiB until %llu (certified by "
        "%zu)\n",
        out["escrow_id"].get<std::string>().c_str(), p.FormatAmount(amount).c_str(),
        p.genesis.currency.c_str(), out["provider"].get<std::string>().c_str(),
        p.FormatAmount(price).c_str(), static_cast<unsigned long long>(t.end_unix),
        out["votes"].get<size_t>());
  return Status::OK();
}

// The highest receipt the provider keeps for the escrow, if it is this payer's own (a
// provider cannot make one up; one that hides a higher receipt only has the next read
// refused).
Result<uint64_t> ReceiptedTotal(node::Client& client, const node::DaemonInfo& info,
                                const ledger::EscrowView& v, const economy::EconomicPolicy& p) {
  DFRP_ASSIGN_OR_RETURN(node::HttpResponse r,
                        client.Request("GET", "/v1/read-receipts/" + core::ToHex(v.id), {}, ""));
  if (r.status / 100 != 2) return Err(node::StatusFromResponse(info, r));
  json j = json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("receipt") || j["receipt"].is_null()) return uint64_t{0};
  auto wire =
      j["receipt"].is_string() ? core::FromHex(j["receipt"].get<std::string>()) : std::nullopt;
  if (!wire) return Err(Status::IOError("the provider answered a malformed receipt"));
  DFRP_ASSIGN_OR_RETURN(ledger::UsageReceipt u, ledger::DecodeReceipt(*wire, p.network_id));
  DFRP_RETURN_IF_ERROR(
      ledger::VerifyReceipt(u, v.id, v.payer, v.provider, v.read.end_unix, p.network_id)
          .WithContext("the provider's kept receipt"));
  return u.bytes_total;
}

Status CmdRead(const LedgerGlobals& g, core::FileSystem* fs, core::Clock* clock,
               const economy::EconomicPolicy& p, const EscrowCommands& c) {
  DFRP_ASSIGN_OR_RETURN(crypto::Hash id, ParseHash(c.id, "escrow id"));
  auto shard = core::Uuid::Parse(c.shard);
  if (!shard)
    return Status::InvalidArgument(fmt::format("--shard '{}' is not a shard id", c.shard));
  DFRP_ASSIGN_OR_RETURN(ledger::LedgerClient ledger, ledger::LedgerClient::Make(p));
  DFRP_ASSIGN_OR_RETURN(ledger::EscrowView v, ledger.Escrow(id));
  if (!v.is_read)
    return Status::InvalidArgument(
        fmt::format("escrow {} pays for storage, not reads: open one with escrow open-read", c.id));
  DFRP_ASSIGN_OR_RETURN(OpenedWallet w,
                        OpenWalletForOrders(fs, c.order.wallet, c.order.passphrase_file));
  if (w.key->GetPublicKey().bytes() != v.payer)
    return Status::InvalidArgument(fmt::format("escrow {} is paid by {}, not by the wallet {}",
                                               c.id, ledger::AddressOfKey(v.payer), w.address));
  DFRP_ASSIGN_OR_RETURN(node::DaemonInfo info, ProviderInfo(c.provider_url));
  node::Client client = ProviderClient(info);
  DFRP_ASSIGN_OR_RETURN(node::HttpResponse meta,
                        client.Request("GET", "/v1/shards/" + shard->ToString() + "/meta", {}, ""));
  if (meta.status / 100 != 2)
    return node::StatusFromResponse(info, meta).WithContext("the provider " + c.provider_url);
  json m = json::parse(meta.body, nullptr, false);
  if (!m.is_object() || !m.contains("size") || !m["size"].is_number_unsigned() ||
      !m.contains("leaf_size") || !m["leaf_size"].is_number_unsigned() ||
      !m.contains("merkle_root") || !m["merkle_root"].is_string())
    return Status::IOError("the provider answered no shard facts (size, leaf_size, merkle_root)");
  const uint64_t size = m["size"].get<uint64_t>();
  const uint32_t leaf = m["leaf_size"].get<uint32_t>();
  // The root the bytes must prove: the caller's own record (the write receipt), else the
  // provider's word for it.
  DFRP_ASSIGN_OR_RETURN(crypto::Hash root,
                        ParseHash(c.root.empty() ? m["merkle_root"].get<std::string>() : c.root,
                                  c.root.empty() ? "the provider's merkle_root" : "--root"));
  if (leaf == 0 || leaf > ledger::kReadChunkBytes)
    return Status::IOError(
        fmt::format("the shard's leaf size {} is not 1 to {}", leaf, ledger::kReadChunkBytes));
  DFRP_ASSIGN_OR_RETURN(uint64_t signed_total, ReceiptedTotal(client, info, v, p));
  const uint64_t start_total = signed_total;
  // A power of two of whole leaves per request, at an offset that is a multiple of it: each
  // piece is one node of the shard's tree, checked on its own against the root.
  uint64_t chunk_leaves = 1;
  while (chunk_leaves * 2 * leaf <= ledger::kReadChunkBytes) chunk_leaves *= 2;
  const uint64_t chunk = chunk_leaves * leaf;
  std::vector<crypto::Hash> leaves(crypto::LeafCount(size, leaf));
  std::string data;
  std::unique_ptr<core::WritableFile> out;
  const std::string partial = c.output + ".partial";
  if (!c.output.empty()) {
    (void)fs->RemoveFile(partial);
    DFRP_ASSIGN_OR_RETURN(out, fs->CreateNew(partial));
  }
  for (uint64_t off = 0; off < size; off += chunk) {
    const uint64_t len = std::min(chunk, size - off);
    // Signed for this request's bytes before they come: the most the payer risks is one.
    const ledger::UsageReceipt u = ledger::SignReceipt(id, v.provider, signed_total + len,
                                                       v.read.end_unix, *w.key, p.network_id);
    DFRP_ASSIGN_OR_RETURN(node::HttpResponse r,
                          client.Request("GET", "/v1/shards/" + shard->ToString(),
                                         {{"Range", fmt::format("bytes={}-{}", off, off + len - 1)},
                                          {"X-Dfrp-Read-Receipt",
                                           core::ToHex(ledger::EncodeReceipt(u, p.network_id))}},
                                         ""));
    if (r.status / 100 != 2)
      return node::StatusFromResponse(info, r).WithContext(
          fmt::format("paid read of bytes {} to {}", off, off + len - 1));
    signed_total += len;
    if (r.body.size() != len)
      return Status::IOError(fmt::format("the provider sent {} bytes of {} for bytes {} to {}",
                                         r.body.size(), len, off, off + len - 1));
    const std::span<crypto::Hash> piece =
        std::span(leaves).subspan(off / leaf, crypto::LeafCount(len, leaf));
    crypto::HashLeaves(r.body, leaf, piece, 1);
    // The piece's node proved against the root: the path of its first leaf (free to ask) must
    // begin with the siblings the piece's own leaves give, and fold up to the root.
    DFRP_ASSIGN_OR_RETURN(
        node::HttpResponse pr,
        client.Request("GET",
                       fmt::format("/v1/shards/{}/proof?leaf={}", shard->ToString(), off / leaf),
                       {}, ""));
    if (pr.status / 100 != 2)
      return node::StatusFromResponse(info, pr).WithContext("the proof of a piece read");
    auto proof = storage::DecodeProof(pr.body);
    const std::vector<crypto::Hash> inner = crypto::ProofFromLeafHashes(piece, 0).path;
    const bool proved =
        proof && proof->proofs.size() == 1 && proof->tree_size == leaves.size() &&
        proof->proofs[0].path.size() >= inner.size() &&
        std::equal(inner.begin(), inner.end(), proof->proofs[0].path.begin()) &&
        crypto::VerifyInclusion(piece[0], off / leaf, leaves.size(), proof->proofs[0].path, root);
    if (!proved) {
      if (out) {
        (void)out->Close();
        (void)fs->RemoveFile(partial);
      }
      return Status::Corruption(fmt::format(
          "shard {}: bytes {} to {} do not prove against root {}: the read stopped and nothing "
          "is written; receipts were signed for {} bytes, this piece's included",
          shard->ToString(), off, off + len - 1, core::ToHex(root), signed_total - start_total));
    }
    if (out)
      DFRP_RETURN_IF_ERROR(out->WriteAt(off, r.body));
    else
      data += r.body;
    if (!g.json)
      std::fprintf(stderr, "\rread %llu of %llu bytes", static_cast<unsigned long long>(off + len),
                   static_cast<unsigned long long>(size));
  }
  if (!g.json && size > 0) std::fprintf(stderr, "\n");
  if (crypto::RootFromLeafHashes(leaves) != root) {
    if (out) {
      (void)out->Close();
      (void)fs->RemoveFile(partial);
    }
    return Status::Corruption(fmt::format(
        "shard {}: the {} bytes read do not hash to root {}: nothing is written; the provider "
        "served bytes that are not the shard (receipts were signed for {} bytes)",
        shard->ToString(), size, core::ToHex(root), signed_total - start_total));
  }
  if (out) {
    DFRP_RETURN_IF_ERROR(out->Sync());
    DFRP_RETURN_IF_ERROR(out->Close());
    DFRP_RETURN_IF_ERROR(fs->Rename(partial, c.output));
  }
  const uint64_t cost = ledger::ReadDue(signed_total, v.read, v.amount) -
                        ledger::ReadDue(start_total, v.read, v.amount);
  const json j{{"escrow_id", c.id},
               {"shard_id", shard->ToString()},
               {"bytes", size},
               {"merkle_root", core::ToHex(root)},
               {"verified", true},
               {"receipted_bytes", signed_total},
               {"cost", p.FormatAmount(cost)},
               {"cost_base_units", cost},
               {"output", c.output.empty() ? json() : json(c.output)}};
  if (g.json) {
    std::printf("%s\n", j.dump(2).c_str());
  } else if (out) {
    std::printf(
        "shard %s: %llu bytes verified against %s into %s; %s %s signed for (%llu bytes "
        "receipted under escrow %s)\n",
        shard->ToString().c_str(), static_cast<unsigned long long>(size),
        core::ToHex(root).substr(0, 16).c_str(), c.output.c_str(), p.FormatAmount(cost).c_str(),
        p.genesis.currency.c_str(), static_cast<unsigned long long>(signed_total),
        c.id.substr(0, 16).c_str());
  } else {
    std::fwrite(data.data(), 1, data.size(), stdout);
  }
  return Status::OK();
}

// A read escrow closed from its end plus the grace: the rest (beyond what its receipts pay)
// back to the payer. The close carries a receipt covering every total an authority voted to
// redeem: the payer's wallet signs one for the highest of those that f + 1 report.
Status CloseRead(const LedgerGlobals& g, core::FileSystem* fs, core::Clock* clock,
                 const economy::EconomicPolicy& p, const EscrowCommands& c,
                 ledger::LedgerClient& client, const ledger::EscrowView& v) {
  DFRP_ASSIGN_OR_RETURN(const uint64_t epoch, client.RefreshEpoch());
  const int64_t close_ms =
      (static_cast<int64_t>(v.read.end_unix) + static_cast<int64_t>(p.storage.grace_seconds)) *
      1000;
  if (v.closed) return Status::Refused(fmt::format("read escrow {} is closed already", c.id));
  if (clock->NowUnixMillis() < close_ms)
    return Status::Refused(
        fmt::format("read escrow {}: closable from Unix ms {} (its end plus the {} s grace)", c.id,
                    close_ms, p.storage.grace_seconds));
  std::string receipt;
  const uint64_t total = v.max_voted_bytes;
  if (total > 0) {
    if (c.order.wallet.empty())
      return Status::InvalidArgument(fmt::format(
          "read escrow {}: {} bytes were redeemed or voted; the close carries a receipt for "
          "them: give the payer's --wallet",
          c.id, total));
    DFRP_ASSIGN_OR_RETURN(OpenedWallet w,
                          OpenWalletForOrders(fs, c.order.wallet, c.order.passphrase_file));
    if (w.key->GetPublicKey().bytes() != v.payer)
      return Status::InvalidArgument(fmt::format("read escrow {} is paid by {}, not by {}", c.id,
                                                 ledger::AddressOfKey(v.payer), w.address));
    receipt = ledger::EncodeReceipt(
        ledger::SignReceipt(v.id, v.provider, total, v.read.end_unix, *w.key, p.network_id),
        p.network_id);
  }
  auto r = client.Settle(ledger::MakeSettlement(v.id, 0, ledger::SettleKind::kClose, epoch, receipt,
                                                "", p.network_id));
  if (!r) return r.error();
  const uint64_t paid_before = ledger::ReadDue(v.redeemed_bytes, v.read, v.amount);
  const uint64_t due = ledger::ReadDue(total, v.read, v.amount);
  const uint64_t back = v.amount - due;
  const json out{{"escrow_id", c.id},
                 {"closed_at_bytes", total},
                 {"paid_to_provider_now", p.FormatAmount(due - paid_before)},
                 {"refunded", p.FormatAmount(back)},
                 {"applied_by", r->applied}};
  if (g.json)
    std::printf("%s\n", out.dump(2).c_str());
  else
    std::printf("read escrow %s closed at %llu bytes: %s %s back to the payer (applied by %zu)\n",
                c.id.c_str(), static_cast<unsigned long long>(total), p.FormatAmount(back).c_str(),
                p.genesis.currency.c_str(), r->applied);
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
  c->refund = c->escrow->add_subcommand(
      "refund", "refund the periods past their grace (a read escrow: close it)");
  c->refund->add_option("id", c->id, "the escrow id")->required();
  c->refund->add_option("--wallet", c->order.wallet,
                        "a read escrow's payer wallet (signs the close's receipt)");
  c->refund->add_option("--passphrase-file", c->order.passphrase_file,
                        "the wallet's passphrase file");
  c->open_read =
      c->escrow->add_subcommand("open-read", "lock an amount to pay a provider for reads");
  c->open_read->add_option("--wallet", c->order.wallet, "the paying wallet's keystore")->required();
  c->open_read->add_option("--passphrase-file", c->order.passphrase_file,
                           "the wallet's passphrase file");
  c->open_read
      ->add_option("--provider", c->provider_url, "the provider node's URL (http://HOST:PORT)")
      ->required();
  c->open_read->add_option("--amount", c->amount, "the whole escrow, in the currency")->required();
  c->open_read
      ->add_option("--price-per-mib", c->price_per_mib,
                   "what a MiB read is paid, in the currency (at least the provider's price)")
      ->required();
  c->open_read->add_option("--seconds", c->seconds, "how long reads are paid from it")->required();
  c->open_read->add_flag("--abandon-pending", c->order.abandon_pending,
                         "sign past an earlier order that was never certified");
  c->read = c->escrow->add_subcommand("read", "read a shard, paid from a read escrow");
  c->read->add_option("id", c->id, "the read escrow's id")->required();
  c->read->add_option("--wallet", c->order.wallet, "the escrow's payer wallet")->required();
  c->read->add_option("--passphrase-file", c->order.passphrase_file,
                      "the wallet's passphrase file");
  c->read->add_option("--provider", c->provider_url, "the provider node's URL")->required();
  c->read->add_option("--shard", c->shard, "the shard id")->required();
  c->read->add_option("--root", c->root,
                      "its Merkle root (hex) from your write receipt (default: the provider's)");
  c->read->add_option("-o,--output", c->output, "write the verified bytes here (default: stdout)");
}

Status RunEscrowCommand(const LedgerGlobals& g, core::FileSystem* fs, core::Clock* clock,
                        const economy::EconomicPolicy& p, const EscrowCommands& c) {
  if (*c.open) return CmdOpen(g, fs, clock, p, c);
  if (*c.status) return CmdStatus(g, clock, p, c);
  if (*c.list) return CmdList(g, clock, p, c);
  if (*c.refund) return CmdRefund(g, fs, clock, p, c);
  if (*c.open_read) return CmdOpenRead(g, fs, clock, p, c);
  if (*c.read) return CmdRead(g, fs, clock, p, c);
  return Status::InvalidArgument("escrow: give open, status, list, refund, open-read or read");
}

}  // namespace dfrp::cli
