// dfrp-ledger: the ledger from a wallet's and an operator's side (docs/PROTOCOL.md, "Ledger").
//
//   init-committee --authorities N --dir DIR [--base-port P] [--genesis ADDR=AMOUNT]...
//                  [--order-fee X] [--insecure-test-kdf]
//       a wallet, a passphrase file and a dfrpd config (ROLES = storage,authority) per
//       authority on loopback (DIR/authority-<i>/), and the shared DIR/economic.toml
//   transfer --wallet FILE --to ADDR --amount X [--memo T] [--seq N] [--offline -o FILE]
//       signs a transfer and has the committee certify it (exit 7 when refused: funds, a
//       frozen account); --offline only signs, to FILE (hex), and keeps no journal
//   epoch-change --wallet FILE [--timeout S]
//       a committee member leads the change to the next epoch (epoch_cli.cc): seal, checkpoint,
//       a quorum's votes, the epoch certificate to every authority
//   submit FILE        sends a signed order (certifying it) or a certificate (hex) to the
//                      committee
//   balance ADDR       the balance and next sequence number a quorum agrees on
//   history ADDR       the certified orders ADDR signed (transfers, escrows), each verified
//   escrow open|status|list|refund   storage escrows (escrow_cli.cc)
//   audit              fetches every authority's log, verifies every certificate (and every
//                      release's proof), replays it from the genesis against the state the
//                      authority reports, and checks conservation and gap-free sequences;
//                      exit 3 naming the first violation (ledger/audit.h); --exclude I
//                      leaves out an authority known to be down or faulty
//   supply             each authority's supply check
//
// The committee and network come from economic.toml: --policy FILE, else the config's
// ECONOMIC_POLICY or economic.toml beside it. The wallet's passphrase: --passphrase-file,
// else DFRP_PASSPHRASE, else a prompt.
//
// No equivocation across a crash: before a transfer is signed for the committee, the signed
// order is written, synced, to FILE.pending (beside the wallet). If a later run finds there
// an order that the committee has not certified yet, it completes that one first and never
// signs another order for the same sequence number.
#include "dfrp/cli/ledger_cli.h"

#include <fmt/format.h>
#include <sodium.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <nlohmann/json.hpp>

#include "dfrp/cli/ledger_cli_internal.h"
#include "dfrp/core/config.h"
#include "dfrp/core/version.h"
#include "dfrp/ledger/client.h"
#include "dfrp/ledger/escrow.h"
#include "dfrp/ledger/pending_order.h"
#include "dfrp/storage/store.h"
#include "dfrp/wallet/address.h"
#include "dfrp/wallet/keystore.h"
#include "dfrp/wallet/passphrase.h"
#include "dfrp/wallet/wallet.h"

namespace dfrp::cli {

using core::Err;
using core::Result;
using core::Status;
using nlohmann::json;

int Fail(const Status& s) {
  std::fprintf(stderr, "dfrp-ledger: %s\n", s.message().c_str());
  return core::ExitCodeFor(s);
}

std::optional<std::string> Getenv(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  return v ? std::optional<std::string>(v) : std::nullopt;
}

Result<economy::EconomicPolicy> LoadPolicy(core::FileSystem* fs, const LedgerGlobals& g) {
  if (!g.policy.empty()) {
    DFRP_ASSIGN_OR_RETURN(std::string text, core::ReadWholeFile(fs, g.policy));
    return economy::ParseEconomicPolicy(text, g.policy);
  }
  core::ConfigOptions copt;
  copt.explicit_path = g.config;
  copt.require_drives = false;
  DFRP_ASSIGN_OR_RETURN(core::NodeConfig cfg, core::LoadConfig(copt));
  return economy::LoadEconomicPolicy(fs, cfg.economic_policy, cfg.config_dir);
}

namespace {

// --- init-committee

struct InitFlags {
  int authorities = 0;
  std::string dir;
  int base_port = 7600;
  std::vector<std::string> genesis;
  std::string order_fee = "0";
  bool test_kdf = false;
};

Status CmdInitCommittee(const LedgerGlobals& g, core::FileSystem* fs, core::Clock* clock,
                        const InitFlags& f) {
  if (f.authorities < 1 || f.authorities > 64)
    return Status::InvalidArgument(
        fmt::format("--authorities {}: give 1 (a single operator) to 64; 4 tolerates one "
                    "faulty authority",
                    f.authorities));
  if (f.base_port < 1 || f.base_port + f.authorities > 65535)
    return Status::InvalidArgument(fmt::format("--base-port {} is out of range", f.base_port));
  if (auto names = fs->ListDir(f.dir); names && !names->empty())
    return Status::InvalidArgument(
        fmt::format("{} is not empty: init-committee writes into an empty or new folder", f.dir));
  DFRP_ASSIGN_OR_RETURN(wallet::KdfParams kdf,
                        wallet::KdfParamsForProfile(f.test_kdf ? "test" : "", f.test_kdf));
  std::string allocations;
  for (const std::string& ga : f.genesis) {
    const size_t eq = ga.find('=');
    if (eq == std::string::npos)
      return Status::InvalidArgument(
          fmt::format("--genesis '{}' is not ADDR=AMOUNT", ga.substr(0, 120)));
    allocations += fmt::format("  {{ address = \"{}\", amount = \"{}\" }},\n", ga.substr(0, eq),
                               ga.substr(eq + 1));
  }
  // The allocations are checked before anything is written.
  DFRP_RETURN_IF_ERROR(
      economy::ParseEconomicPolicy(fmt::format("[genesis]\nallocations = [\n{}]\n", allocations),
                                   "--genesis")
          .status());
  std::string committee;
  json out = {{"dir", f.dir}, {"authorities", json::array()}};
  for (int i = 0; i < f.authorities; ++i) {
    const std::string adir = core::JoinPath(f.dir, fmt::format("authority-{}", i));
    DFRP_RETURN_IF_ERROR(fs->CreateDirRecursive(adir));
    DFRP_ASSIGN_OR_RETURN(crypto::bls::SecretKey key, crypto::bls::SecretKey::Generate());
    DFRP_ASSIGN_OR_RETURN(
        wallet::WalletPublic pub,
        wallet::MakeWalletPublic(key, wallet::DefaultIdentityVector(key.GetPublicKey(), 16)));
    unsigned char raw[24];
    randombytes_buf(raw, sizeof raw);
    const std::string pass = core::ToHex(std::string_view(reinterpret_cast<char*>(raw), 24));
    DFRP_RETURN_IF_ERROR(core::WriteFileAtomic(fs, core::JoinPath(adir, "passphrase"), pass + "\n",
                                               /*private_mode=*/true));
    const std::string address = pub.address;
    const std::string pk = pub.public_key.ToHex(), pop = pub.proof_of_possession.ToHex();
    DFRP_ASSIGN_OR_RETURN(wallet::Keystore ks,
                          wallet::SealKeystore(key, std::move(pub), pass, kdf));
    DFRP_RETURN_IF_ERROR(wallet::SaveKeystore(fs, core::JoinPath(adir, "wallet.json"), ks, false));
    const int port = f.base_port + i;
    DFRP_RETURN_IF_ERROR(core::WriteFileAtomic(
        fs, core::JoinPath(adir, "dfrp.toml"),
        fmt::format("# authority {} of {} (written by dfrp-ledger init-committee)\n"
                    "DRIVE_0 = \"data/d0\"\nQUOTA_0 = \"1G\"\nSTATE_DIR = \"state\"\n"
                    "API_ADDR = \"127.0.0.1:{}\"\nROLES = \"storage,authority\"\n"
                    "WALLET = \"wallet.json\"\nWALLET_PASSPHRASE_FILE = \"passphrase\"\n"
                    "ECONOMIC_POLICY = \"../economic.toml\"\n",
                    i, f.authorities, port)));
    {
      // The authority's store, so that dfrpd starts on it at once.
      core::ConfigOptions copt;
      copt.explicit_path = core::JoinPath(adir, "dfrp.toml");
      copt.env_names = [] { return std::vector<std::string>(); };
      DFRP_ASSIGN_OR_RETURN(core::NodeConfig cfg, core::LoadConfig(copt));
      storage::StoreOptions so;
      so.fs = fs;
      so.clock = clock;
      so.create_missing_drive_folders = true;
      DFRP_RETURN_IF_ERROR(storage::Store::Init(cfg, so).status());
    }
    committee += fmt::format(
        "  {{ address = \"{}\", public_key = \"{}\", proof_of_possession = \"{}\", url = "
        "\"http://127.0.0.1:{}\" }},\n",
        address, pk, pop, port);
    out["authorities"].push_back({{"index", i},
                                  {"address", address},
                                  {"url", fmt::format("http://127.0.0.1:{}", port)},
                                  {"config", core::JoinPath(adir, "dfrp.toml")}});
  }
  const std::string toml = fmt::format(
      "# A committee of {} authorities on loopback (dfrp-ledger init-committee).\n"
      "[genesis]\nnetwork = \"dfrp-committee\"\nallocations = [\n{}]\ncommittee = [\n{}]\n\n"
      "[policy]\norder_fee = \"{}\"\n",
      f.authorities, allocations, committee, f.order_fee);
  DFRP_RETURN_IF_ERROR(economy::ParseEconomicPolicy(toml, "the new economic.toml").status());
  DFRP_RETURN_IF_ERROR(core::WriteFileAtomic(fs, core::JoinPath(f.dir, "economic.toml"), toml));
  out["economic_toml"] = core::JoinPath(f.dir, "economic.toml");
  if (g.json) {
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    std::printf("committee of %d in %s (quorum %d); start each with:\n", f.authorities,
                f.dir.c_str(), f.authorities - (f.authorities - 1) / 3);
    for (const auto& a : out["authorities"])
      std::printf("  dfrpd --config %s\n", a["config"].get<std::string>().c_str());
  }
  return Status::OK();
}

// --- transfer

struct TransferFlags {
  OrderFlags order;
  std::string to;
  std::string amount;
  std::string memo;
  bool offline = false;
  uint64_t epoch = 0;  // --offline: the committee epoch to sign for
  std::string out;
};

// A file holding one hex string (what transfer --offline and the journal write), as bytes;
// nullopt when it is not hex.
Result<std::optional<std::string>> ReadHexFile(core::FileSystem* fs, const std::string& path) {
  DFRP_ASSIGN_OR_RETURN(std::string text, core::ReadWholeFile(fs, path));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return core::FromHex(text);
}

json CertJson(const economy::EconomicPolicy& p, const ledger::SubmitResult& r) {
  const ledger::Order& o = r.certificate.order.order;
  return json{{"order_hash", core::ToHex(r.certificate.order.hash)},
              {"kind", std::string(ledger::OrderKindName(o.kind))},
              {"seq", o.seq},
              {"amount", p.FormatAmount(o.amount())},
              {"amount_base_units", o.amount()},
              {"votes", r.votes},
              {"applied_by", r.applied},
              {"certificate", core::ToHex(r.certificate_wire)},
              {"notes", r.notes}};
}

// A certificate that fewer than a quorum applied must not be lost: it is written to `path`
// and the command fails (Busy) naming it and how to send it again.
Status KeepIfUnapplied(core::FileSystem* fs, const ledger::LedgerClient& client,
                       const std::string& path, const ledger::SubmitResult& r) {
  if (r.applied >= client.quorum()) return Status::OK();
  DFRP_RETURN_IF_ERROR(core::WriteFileAtomic(fs, path, core::ToHex(r.certificate_wire) + "\n"));
  std::string why = fmt::format(
      "the order is certified, but only {} authorities applied it (a quorum is {}); the "
      "certificate is in {}: send it again with `dfrp-ledger submit {}`",
      r.applied, client.quorum(), path, path);
  for (const auto& note : r.notes) why += "; " + note;
  return Status::Busy(why);
}

}  // namespace

Result<OpenedWallet> OpenWalletForOrders(core::FileSystem* fs, const std::string& path,
                                         const std::string& passphrase_file) {
  OpenedWallet w;
  w.path = path;
  DFRP_ASSIGN_OR_RETURN(wallet::Keystore ks, wallet::LoadKeystore(fs, path));
  // One signer at a time per wallet: two runs reading the same next sequence number would
  // sign two orders for it (an equivocation, which freezes the account).
  auto held = fs->TryLock(path + ".lock");
  if (!held)
    return Err(
        held.error().code() == Status::Code::kBusy
            ? Status::Busy(fmt::format("another dfrp-ledger is using the wallet {} ({}.lock): "
                                       "wait for it to finish",
                                       path, path))
            : held.error());
  w.lock = std::move(*held);
  wallet::PassphraseSource src{.file = passphrase_file,
                               .env_name = "DFRP_PASSPHRASE",
                               .getenv = Getenv,
                               .prompt = wallet::PromptOnTerminal};
  DFRP_ASSIGN_OR_RETURN(wallet::SecretString pass,
                        wallet::ReadPassphrase(fs, src, "the wallet", false));
  DFRP_ASSIGN_OR_RETURN(crypto::bls::SecretKey key, wallet::UnlockKeystore(ks, pass.view(), path));
  w.key = std::make_unique<crypto::bls::SecretKey>(std::move(key));
  w.address = ks.pub.address;
  return w;
}

Result<json> CertifyNewOrder(core::FileSystem* fs, const economy::EconomicPolicy& p,
                             ledger::LedgerClient& client, const OpenedWallet& w,
                             const OrderFlags& f, std::string_view what, uint64_t amount,
                             const std::function<Result<ledger::Order>(uint64_t seq)>& build,
                             std::optional<uint64_t>* signed_seq) {
  const ledger::KeyBytes me = w.key->GetPublicKey().bytes();
  DFRP_ASSIGN_OR_RETURN(const uint64_t epoch, client.RefreshEpoch());
  DFRP_ASSIGN_OR_RETURN(ledger::AccountView view, client.Account(w.address));
  uint64_t next = view.next_seq;
  int64_t balance = view.balance;
  json out;
  const std::string pending = w.path + ".pending";
  if (fs->Exists(pending)) {
    DFRP_ASSIGN_OR_RETURN(ledger::SignedOrder old,
                          ledger::ReadPendingOrder(fs, pending, p.network_id, me));
    if (old.order.seq >= next && old.order.epoch < epoch) {
      // Signed for an epoch that closed without it: no authority takes it any more, so its
      // sequence number is free for a new order.
      std::fprintf(stderr,
                   "dfrp-ledger: the order signed earlier at seq %llu (%s) was for epoch %llu, "
                   "which closed without it: it is void, and this order takes its place\n",
                   static_cast<unsigned long long>(old.order.seq),
                   core::ToHex(old.hash).substr(0, 16).c_str(),
                   static_cast<unsigned long long>(old.order.epoch));
    } else if (old.order.seq >= next) {
      // Signed earlier (before a crash, or refused then): anyone who saw it can still send
      // it, so it is completed first and no other order is ever signed for its seq.
      if (f.abandon_pending) {
        std::fprintf(stderr,
                     "dfrp-ledger: abandoning the order signed earlier at seq %llu (%s): it "
                     "stays valid, and if it is ever certified it takes seq %llu\n",
                     static_cast<unsigned long long>(old.order.seq),
                     core::ToHex(old.hash).substr(0, 16).c_str(),
                     static_cast<unsigned long long>(old.order.seq));
        next = old.order.seq + 1;
      } else {
        std::fprintf(stderr,
                     "dfrp-ledger: an order signed earlier (seq %llu, %s) is not certified "
                     "yet: completing it first\n",
                     static_cast<unsigned long long>(old.order.seq),
                     core::ToHex(old.hash).substr(0, 16).c_str());
        auto done = client.Submit(old);
        if (done) DFRP_RETURN_IF_ERROR(KeepIfUnapplied(fs, client, w.path + ".certificate", *done));
        if (!done)
          return Err(done.error().WithContext(fmt::format(
              "the order signed earlier at seq {} ({}) must be certified before any other "
              "(or give --abandon-pending to sign the next one at seq {}; the earlier one "
              "stays valid)",
              old.order.seq, core::ToHex(old.hash).substr(0, 16), old.order.seq + 1)));
        out["completed_first"] = CertJson(p, *done);
        next = old.order.seq + 1;
        balance -= static_cast<int64_t>(old.order.amount() + old.order.fee);
      }
    }
  }
  if (f.seq && *f.seq != next)
    return Err(Status::InvalidArgument(fmt::format(
        "--seq {}: the committee's next sequence number for {} is {}", *f.seq, w.address, next)));
  // The funds, as a quorum reports them, before anything is signed: an order signed and
  // refused would stay valid, and could be replayed once funds arrive.
  if (balance < 0 || static_cast<uint64_t>(balance) < amount ||
      static_cast<uint64_t>(balance) - amount < p.order_fee)
    return Err(Status::Refused(fmt::format(
        "{} has {} {} (as the committee reports it); the {} needs {} plus the order fee {}: "
        "nothing was signed",
        w.address, p.FormatSignedAmount(balance), p.genesis.currency, what, p.FormatAmount(amount),
        p.FormatAmount(p.order_fee))));
  DFRP_ASSIGN_OR_RETURN(ledger::Order o, build(next));
  o.sender = me;
  o.seq = next;
  o.fee = p.order_fee;
  o.epoch = epoch;
  const ledger::SignedOrder so = ledger::SignOrder(o, *w.key, p.network_id);
  // Synced before anything leaves: a crash after this point resends this order.
  DFRP_RETURN_IF_ERROR(ledger::WritePendingOrder(fs, pending, so, p.network_id));
  if (signed_seq) *signed_seq = so.order.seq;
  auto r = client.Submit(so);
  if (!r) return Err(r.error());
  DFRP_RETURN_IF_ERROR(KeepIfUnapplied(fs, client, w.path + ".certificate", *r));
  out.update(CertJson(p, *r));
  out["from"] = w.address;
  return out;
}

namespace {

Status CmdTransfer(const LedgerGlobals& g, core::FileSystem* fs, const economy::EconomicPolicy& p,
                   const TransferFlags& f) {
  DFRP_ASSIGN_OR_RETURN(auto to, wallet::PublicKeyFromAddress(f.to));
  DFRP_ASSIGN_OR_RETURN(economy::Amount amount, p.ParseAmount(f.amount, "--amount"));
  if (amount == 0) return Status::InvalidArgument("--amount must be more than 0");
  if (f.memo.size() > ledger::kMaxMemoBytes)
    return Status::InvalidArgument(
        fmt::format("--memo is {} bytes, more than {}", f.memo.size(), ledger::kMaxMemoBytes));
  DFRP_ASSIGN_OR_RETURN(OpenedWallet w,
                        OpenWalletForOrders(fs, f.order.wallet, f.order.passphrase_file));
  if (to == w.key->GetPublicKey())
    return Status::InvalidArgument(fmt::format(
        "--to {} is the paying wallet's own address: a wallet cannot pay itself (nothing was "
        "signed)",
        f.to));
  DFRP_ASSIGN_OR_RETURN(ledger::LedgerClient client, ledger::LedgerClient::Make(p));
  ledger::Order o;
  o.transfer.to = to.bytes();
  o.transfer.amount = amount;
  o.transfer.memo = f.memo;
  json out;
  if (f.offline) {
    if (!f.order.seq)
      return Status::InvalidArgument("--offline needs --seq (no committee is asked)");
    if (f.out.empty()) return Status::InvalidArgument("--offline needs -o FILE");
    o.sender = w.key->GetPublicKey().bytes();
    o.seq = *f.order.seq;
    o.fee = p.order_fee;
    o.epoch = f.epoch;
    const ledger::SignedOrder so = ledger::SignOrder(o, *w.key, p.network_id);
    DFRP_RETURN_IF_ERROR(core::WriteFileAtomic(
        fs, f.out, core::ToHex(ledger::EncodeSignedOrder(so, p.network_id)) + "\n"));
    out = {{"order_hash", core::ToHex(so.hash)}, {"seq", o.seq}, {"file", f.out}};
  } else {
    DFRP_ASSIGN_OR_RETURN(out,
                          CertifyNewOrder(fs, p, client, w, f.order, "transfer", amount,
                                          [&](uint64_t) -> Result<ledger::Order> { return o; }));
    out["to"] = f.to;
  }
  if (g.json) {
    std::printf("%s\n", out.dump(2).c_str());
  } else if (f.offline) {
    std::printf("signed order %s (seq %llu) written to %s; nothing was sent\n",
                out["order_hash"].get<std::string>().c_str(),
                static_cast<unsigned long long>(out["seq"].get<uint64_t>()), f.out.c_str());
  } else {
    std::printf("%s %s to %s: certified by %zu, applied by %zu (seq %llu, order %s)\n",
                p.FormatAmount(amount).c_str(), p.genesis.currency.c_str(), f.to.c_str(),
                out["votes"].get<size_t>(), out["applied_by"].get<size_t>(),
                static_cast<unsigned long long>(out["seq"].get<uint64_t>()),
                out["order_hash"].get<std::string>().substr(0, 16).c_str());
  }
  return Status::OK();
}

Status CmdSubmit(const LedgerGlobals& g, core::FileSystem* fs, const economy::EconomicPolicy& p,
                 const std::string& file) {
  DFRP_ASSIGN_OR_RETURN(auto bytes, ReadHexFile(fs, file));
  if (!bytes)
    return Status::InvalidArgument(
        fmt::format("{} is not hex (a signed order or certificate, "
                    "as transfer --offline writes)",
                    file));
  DFRP_ASSIGN_OR_RETURN(ledger::LedgerClient client, ledger::LedgerClient::Make(p));
  json out;
  if (auto order = ledger::DecodeSignedOrder(*bytes, p.network_id)) {
    DFRP_ASSIGN_OR_RETURN(ledger::SubmitResult r, client.Submit(*order));
    DFRP_RETURN_IF_ERROR(KeepIfUnapplied(fs, client, file + ".certificate", r));
    out = CertJson(p, r);
  } else {
    auto cert = ledger::DecodeCertificate(*bytes, p.network_id);
    if (!cert)
      return Status::InvalidArgument(
          fmt::format("{} is neither a signed order ({}) nor a certificate ({})", file,
                      order.error().message(), cert.error().message()));
    DFRP_ASSIGN_OR_RETURN(size_t applied, client.Broadcast(*bytes));
    out = {{"order_hash", core::ToHex(cert->order.hash)}, {"applied_by", applied}};
  }
  if (g.json)
    std::printf("%s\n", out.dump(2).c_str());
  else
    std::printf("order %s: applied by %zu authorities\n",
                out["order_hash"].get<std::string>().substr(0, 16).c_str(),
                out["applied_by"].get<size_t>());
  return Status::OK();
}

Status CmdBalance(const LedgerGlobals& g, const economy::EconomicPolicy& p,
                  const std::string& addr) {
  if (addr != "committee") DFRP_RETURN_IF_ERROR(wallet::PublicKeyFromAddress(addr).status());
  DFRP_ASSIGN_OR_RETURN(ledger::LedgerClient client, ledger::LedgerClient::Make(p));
  DFRP_ASSIGN_OR_RETURN(ledger::AccountView v, client.Account(addr));
  if (g.json)
    std::printf("%s\n", json{{"address", addr},
                             {"balance", p.FormatSignedAmount(v.balance)},
                             {"balance_base_units", v.balance},
                             {"next_seq", v.next_seq},
                             {"answers", v.answers},
                             {"notes", v.notes}}
                            .dump(2)
                            .c_str());
  else
    std::printf("%s %s (next seq %llu; %zu authorities answered)\n",
                p.FormatSignedAmount(v.balance).c_str(), p.genesis.currency.c_str(),
                static_cast<unsigned long long>(v.next_seq), v.answers);
  return Status::OK();
}

// The orders `addr` signed that the committee certified, oldest first: each authority's list is
// read and every certificate in it verified; the longest list of consecutive sequence numbers
// from 0 wins (an authority that lags shows fewer; a faulty one cannot add a forged entry).
Status CmdHistory(const LedgerGlobals& g, const economy::EconomicPolicy& p, const std::string& addr,
                  size_t limit) {
  DFRP_ASSIGN_OR_RETURN(auto sender, wallet::PublicKeyFromAddress(addr));
  DFRP_ASSIGN_OR_RETURN(ledger::LedgerClient client, ledger::LedgerClient::Make(p));
  std::vector<ledger::Certificate> best;
  std::vector<std::string> notes;
  for (size_t a = 0; a < client.size(); ++a) {
    std::vector<ledger::Certificate> mine;
    Status bad;
    while (bad.ok() && mine.size() < limit) {
      auto page =
          client.Get(a, fmt::format("/v1/ledger/certificates/{}?from={}", addr, mine.size()));
      if (!page) {
        bad = page.error();
        break;
      }
      const json& list = (*page)["certificates"];
      if (!list.is_array() || list.empty()) break;
      for (const json& item : list) {
        auto bytes = item.is_string() ? core::FromHex(item.get<std::string>()) : std::nullopt;
        auto cert = bytes ? ledger::DecodeCertificate(*bytes, p.network_id)
                          : Result<ledger::Certificate>(Err(Status::InvalidArgument("not hex")));
        Status ok = cert ? ledger::VerifyCertificate(*cert, client.committee().AtEpoch(cert->epoch),
                                                     p.network_id)
                         : cert.error();
        if (ok.ok() &&
            (cert->order.order.sender != sender.bytes() || cert->order.order.seq != mine.size()))
          ok = Status::Corruption("a certificate of another sender or sequence number");
        if (!ok.ok()) {
          bad = ok;
          break;
        }
        mine.push_back(std::move(*cert));
        if (mine.size() == limit) break;
      }
    }
    if (!bad.ok())
      notes.push_back(fmt::format("authority {} ({}): {}", a, client.url(a), bad.message()));
    if (mine.size() > best.size()) best = std::move(mine);
  }
  json orders = json::array();
  for (const ledger::Certificate& c : best) {
    const ledger::Order& o = c.order.order;
    json e{{"seq", o.seq},
           {"kind", std::string(ledger::OrderKindName(o.kind))},
           {"amount", p.FormatAmount(o.amount())},
           {"amount_base_units", o.amount()},
           {"fee_base_units", o.fee},
           {"order_hash", core::ToHex(c.order.hash)}};
    if (o.kind == ledger::OrderKind::kTransfer) {
      e["to"] = ledger::AddressOfKey(o.transfer.to);
      e["memo"] = o.transfer.memo;
    } else if (o.kind == ledger::OrderKind::kJobCollateral) {
      e["escrow_id"] = core::ToHex(o.collateral.escrow_id);  // the stake's escrow
    } else {
      e["provider"] = ledger::AddressOfKey(o.escrow.provider);
      e["escrow_id"] = core::ToHex(ledger::EscrowId(o.sender, o.seq));
    }
    orders.push_back(std::move(e));
  }
  if (g.json) {
    std::printf("%s\n",
                json{{"address", addr}, {"orders", orders}, {"notes", notes}}.dump(2).c_str());
  } else {
    for (const json& e : orders)
      std::printf("seq %llu  %-11s %s %s  to %s\n",
                  static_cast<unsigned long long>(e["seq"].get<uint64_t>()),
                  e["kind"].get<std::string>().c_str(), e["amount"].get<std::string>().c_str(),
                  p.genesis.currency.c_str(),
                  e.contains("to") ? e["to"].get<std::string>().c_str()
                  : e.contains("provider")
                      ? e["provider"].get<std::string>().c_str()
                      : ("stake on escrow " + e.value("escrow_id", "")).c_str());
    if (orders.empty()) std::printf("no certified orders signed by %s\n", addr.c_str());
    for (const auto& n : notes) std::fprintf(stderr, "dfrp-ledger: note: %s\n", n.c_str());
  }
  return Status::OK();
}

Status CmdSupply(const LedgerGlobals& g, const economy::EconomicPolicy& p) {
  DFRP_ASSIGN_OR_RETURN(ledger::LedgerClient client, ledger::LedgerClient::Make(p));
  json list = json::array();
  std::string problems;
  size_t answered = 0;
  for (size_t a = 0; a < client.size(); ++a) {
    auto r = client.Get(a, "/v1/ledger/supply");
    if (!r) {
      list.push_back({{"authority", a}, {"url", client.url(a)}, {"error", r.error().message()}});
      continue;
    }
    ++answered;
    const bool conserved = r->contains("conserved") && (*r)["conserved"] == true;
    if (!conserved)
      problems += fmt::format("; authority {} ({}): {}", a, client.url(a),
                              r->value("problem", std::string("not conserved")));
    list.push_back({{"authority", a},
                    {"url", client.url(a)},
                    {"conserved", conserved},
                    {"certificates_applied", r->value("certificates_applied", 0)}});
  }
  if (g.json)
    std::printf("%s\n", json{{"supply", p.FormatAmount(p.genesis.supply)},
                             {"supply_base_units", p.genesis.supply},
                             {"authorities", list}}
                            .dump(2)
                            .c_str());
  else
    for (const auto& a : list)
      std::printf("authority %zu (%s): %s\n", a["authority"].get<size_t>(),
                  a["url"].get<std::string>().c_str(),
                  a.contains("error") ? a["error"].get<std::string>().c_str()
                  : a["conserved"].get<bool>()
                      ? fmt::format("{} {} conserved, {} certificates applied",
                                    p.FormatAmount(p.genesis.supply), p.genesis.currency,
                                    a["certificates_applied"].get<uint64_t>())
                            .c_str()
                      : "NOT CONSERVED");
  if (!problems.empty()) return Status::Corruption("the supply is not conserved" + problems);
  if (answered == 0) return Status::Busy("no authority answered");
  return Status::OK();
}

Status CmdAudit(const LedgerGlobals& g, const economy::EconomicPolicy& p,
                const std::vector<size_t>& exclude) {
  DFRP_ASSIGN_OR_RETURN(ledger::LedgerClient client, ledger::LedgerClient::Make(p));
  for (size_t a : exclude)
    if (a >= client.size())
      return Status::InvalidArgument(
          fmt::format("--exclude {}: the committee has authorities 0 to {}", a, client.size() - 1));
  std::vector<ledger::AuthorityLog> logs;
  std::vector<std::string> unreachable, faulty;
  for (size_t a = 0; a < client.size(); ++a) {
    if (std::ranges::find(exclude, a) != exclude.end()) continue;
    auto log = client.FetchLog(a);
    if (log)
      logs.push_back(std::move(*log));
    else if (log.error().code() == Status::Code::kCorruption)
      faulty.push_back(log.error().message());  // it serves a forged or repeated entry
    else
      unreachable.push_back(
          fmt::format("authority {} ({}): {}", a, client.url(a), log.error().message()));
  }
  ledger::AuditReport r = ledger::AuditLedger(p, logs);
  r.violations.insert(r.violations.begin(), faulty.begin(), faulty.end());
  if (g.json)
    std::printf("%s\n", json{{"ok", r.ok() && unreachable.empty()},
                             {"authorities_audited", logs.size()},
                             {"excluded", exclude},
                             {"certificates", r.certificates},
                             {"settlements", r.settlements},
                             {"releases_verified", r.releases_verified},
                             {"receipts_verified", r.receipts_verified},
                             {"violations", r.violations},
                             {"notes", r.notes},
                             {"unreachable", unreachable}}
                            .dump(2)
                            .c_str());
  else if (r.ok())
    std::printf(
        "audited %zu of %zu authorities: %llu certificates and %llu settlements verify (%llu "
        "releases' proofs and %llu usage receipts checked again), sequences are gap-free, every "
        "log replays to the "
        "state its authority reports, and the supply of %s %s is conserved\n",
        logs.size(), client.size(), static_cast<unsigned long long>(r.certificates),
        static_cast<unsigned long long>(r.settlements),
        static_cast<unsigned long long>(r.releases_verified),
        static_cast<unsigned long long>(r.receipts_verified),
        p.FormatAmount(p.genesis.supply).c_str(), p.genesis.currency.c_str());
  if (!g.json)
    for (const auto& n : r.notes) std::fprintf(stderr, "dfrp-ledger: note: %s\n", n.c_str());
  if (!r.ok()) {
    std::string why = "audit: " + r.violations.front();
    if (r.violations.size() > 1) why += fmt::format(" (and {} more)", r.violations.size() - 1);
    return Status::Corruption(why);
  }
  if (!unreachable.empty()) {
    std::string why = fmt::format("audit: {} of {} authorities could not be read",
                                  unreachable.size(), client.size());
    for (const auto& u : unreachable) why += "; " + u;
    return Status::Busy(why);
  }
  return Status::OK();
}

}  // namespace

int RunLedgerCli(int argc, char** argv, core::FileSystem* fs, core::Clock* clock) {
  CLI::App app{"dfrp-ledger: committee-certified transfers", "dfrp-ledger"};
  app.require_subcommand(1);
  app.fallthrough();
  app.set_version_flag("--version", fmt::format("dfrp-ledger {}", core::kVersion));
  LedgerGlobals g;
  app.add_option("--config", g.config, "config file whose ECONOMIC_POLICY names the network");
  app.add_option("--policy", g.policy, "economic.toml of the network (overrides --config)");
  app.add_flag("--json", g.json, "print one JSON object on stdout");

  InitFlags init;
  auto* init_cmd =
      app.add_subcommand("init-committee", "wallets, configs and economic.toml for a committee");
  init_cmd->add_option("--authorities", init.authorities, "how many (1 to 64)")->required();
  init_cmd->add_option("--dir", init.dir, "an empty folder")->required();
  init_cmd->add_option("--base-port", init.base_port, "authority i listens on port P + i");
  init_cmd->add_option("--genesis", init.genesis, "ADDR=AMOUNT, the supply (repeatable)");
  init_cmd->add_option("--order-fee", init.order_fee, "the fixed fee of an order");
  init_cmd->add_flag("--insecure-test-kdf", init.test_kdf,
                     "seal the wallets with the tiny test KDF (tests only)");
  TransferFlags tf;
  auto* transfer = app.add_subcommand("transfer", "pay an address (exit 7 when refused)");
  transfer->add_option("--wallet", tf.order.wallet, "the paying wallet's keystore")->required();
  transfer->add_option("--to", tf.to, "the address paid")->required();
  transfer->add_option("--amount", tf.amount, "in the currency, e.g. 0.25")->required();
  transfer->add_option("--memo", tf.memo, "up to 256 bytes");
  transfer->add_option("--passphrase-file", tf.order.passphrase_file,
                       "the wallet's passphrase file");
  uint64_t seq = 0;
  auto* seq_opt = transfer->add_option("--seq", seq, "the sequence number (default: the next)");
  transfer->add_flag("--offline", tf.offline,
                     "only sign, to -o FILE; send nothing (keeps no journal: never sign two "
                     "orders for one seq)");
  transfer->add_flag("--abandon-pending", tf.order.abandon_pending,
                     "sign the next order past an earlier one that was never certified (that "
                     "one stays valid)");
  transfer->add_option("-o,--out", tf.out, "where --offline writes the signed order (hex)");
  transfer->add_option("--epoch", tf.epoch,
                       "with --offline: the committee epoch to sign for (default 0; "
                       "dfrp-ledger's committee answers it: GET /v1/ledger/committee)");
  EpochChangeFlags ef;
  auto* epoch_change = app.add_subcommand(
      "epoch-change", "lead the committee to its next epoch (as a member: --wallet)");
  epoch_change->add_option("--wallet", ef.wallet, "a committee member's wallet")->required();
  epoch_change->add_option("--passphrase-file", ef.passphrase_file, "the wallet's passphrase file");
  epoch_change->add_option("--timeout", ef.timeout_seconds,
                           "give up (exit 6) after this many seconds (default 120)");
  std::string submit_file;
  auto* submit = app.add_subcommand("submit", "send a signed order or a certificate");
  submit->add_option("file", submit_file, "hex of a signed order or certificate")->required();
  std::string balance_addr;
  auto* balance = app.add_subcommand("balance", "an address's balance, as a quorum reports it");
  balance->add_option("address", balance_addr, "a wallet address, or committee")->required();
  std::string history_addr;
  size_t history_limit = 1000;
  auto* history =
      app.add_subcommand("history", "the certified orders an address signed, oldest first");
  history->add_option("address", history_addr, "a wallet address")->required();
  history->add_option("--limit", history_limit, "at most this many (default 1000)");
  auto* supply =
      app.add_subcommand("supply", "each authority's check that the supply is conserved");
  auto* audit = app.add_subcommand(
      "audit", "verify every authority's log and replay it (exit 3 on the first violation)");
  std::vector<size_t> audit_exclude;
  audit->add_option("--exclude", audit_exclude,
                    "an authority (committee index) not to read: one known to be down or "
                    "faulty (repeatable)");
  EscrowCommands escrow;
  AddEscrowCommands(app, &escrow);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "dfrp-ledger: %s (see dfrp-ledger --help)\n", e.what());
    return core::kExitUsage;
  }
  if (sodium_init() < 0) return Fail(Status::Internal("libsodium did not initialise"));
  if (seq_opt->count() > 0) tf.order.seq = seq;
  Status s;
  if (*init_cmd) {
    s = CmdInitCommittee(g, fs, clock, init);
  } else {
    auto pol = LoadPolicy(fs, g);
    if (!pol) return Fail(pol.error());
    if (*transfer)
      s = CmdTransfer(g, fs, *pol, tf);
    else if (*submit)
      s = CmdSubmit(g, fs, *pol, submit_file);
    else if (*balance)
      s = CmdBalance(g, *pol, balance_addr);
    else if (*supply)
      s = CmdSupply(g, *pol);
    else if (*history)
      s = CmdHistory(g, *pol, history_addr, history_limit);
    else if (*audit)
      s = CmdAudit(g, *pol, audit_exclude);
    else if (*epoch_change)
      s = CmdEpochChange(g, fs, clock, *pol, ef);
    else if (*escrow.escrow)
      s = RunEscrowCommand(g, fs, clock, *pol, escrow);
  }
  if (!s.ok()) return Fail(s);
  return core::kExitOk;
}

}  // namespace dfrp::cli
