#include "dfrp/wallet/wallet_cli.h"

#include <fmt/format.h>
#include <sodium.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "dfrp/core/config.h"
#include "dfrp/core/version.h"
#include "dfrp/crypto/bls.h"
#include "dfrp/wallet/address.h"
#include "dfrp/wallet/keystore.h"
#include "dfrp/wallet/wallet.h"
#include "dfrp/wallet/wallet_cli_internal.h"

namespace dfrp::wallet {
namespace cli {

using core::Err;
using core::Result;
using core::Status;
using nlohmann::json;

Result<std::vector<std::string>> Messages(Ctx& c) {
  if (!c.o.message_hex.empty() && !c.o.message_file.empty()) {
    return Err(Status::InvalidArgument("give messages with --message-hex or --file, not both"));
  }
  std::vector<std::string> out;
  for (const std::string& h : c.o.message_hex) {
    auto raw = core::FromHex(h);
    if (!raw) {
      return Err(Status::InvalidArgument(fmt::format(
          "--message-hex '{}' is not hex: write bytes as pairs of 0-9a-f", h.substr(0, 32))));
    }
    out.push_back(*raw);
  }
  for (const std::string& f : c.o.message_file) {
    DFRP_ASSIGN_OR_RETURN(std::string data, core::ReadWholeFile(c.io.fs, f));
    out.push_back(std::move(data));
  }
  if (out.empty()) {
    return Err(Status::InvalidArgument("no message: pass --message-hex HEX or --file FILE"));
  }
  return out;
}

namespace {
std::string Plain(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (!v.is_array()) return v.dump();
  std::string s;
  for (const json& e : v) s += (s.empty() ? "" : ",") + Plain(e);
  return s;
}
}  // namespace

void Emit(Ctx& c, const json& obj, const char* primary) {
  std::ostream& out = *c.io.out;
  if (c.o.json) {
    out << obj.dump() << "\n";
  } else if (primary != nullptr) {
    out << Plain(obj.at(primary)) << "\n";
  } else {
    for (const auto& item : obj.items()) out << item.key() << ": " << Plain(item.value()) << "\n";
  }
}

}  // namespace cli

namespace {

using cli::Ctx;
using cli::Emit;
using cli::Messages;
using cli::Options;
using core::Err;
using core::Result;
using core::Status;
using crypto::bls::SecretKey;
using crypto::bls::Signature;
using nlohmann::json;

// ---- inputs ----

Result<core::NodeConfig> Config(Ctx& c) {
  core::ConfigOptions opts;
  opts.explicit_path = c.o.config;
  opts.getenv = c.io.getenv;
  opts.require_drives = false;  // a client holds a wallet and no storage
  auto cfg = core::LoadConfig(opts);
  if (!cfg) return Err(cfg.error().WithContext("config"));
  return cfg;
}

Result<std::string> WalletPath(Ctx& c) {
  if (!c.o.wallet.empty()) return c.o.wallet;
  DFRP_ASSIGN_OR_RETURN(core::NodeConfig cfg, Config(c));
  return core::JoinPath(cfg.state_dir, "wallet.json");
}

PassphraseSource Source(Ctx& c, bool fresh) {
  if (fresh) {
    return {c.o.new_passphrase_file, "DFRP_NEW_PASSPHRASE", c.io.getenv, c.io.prompt};
  }
  return {c.o.passphrase_file, "DFRP_PASSPHRASE", c.io.getenv, c.io.prompt};
}

// The secret key to import, from --file or standard input, in wiped memory.
Result<SecretString> SecretInput(Ctx& c) {
  if (!c.o.secret_file.empty() && c.o.secret_file != "-") {
    return ReadSecretFile(c.io.fs, c.o.secret_file);
  }
  SecretString text;
  char buf[256];
  while (c.io.in->read(buf, sizeof buf) || c.io.in->gcount() > 0) {
    text.append(std::string_view(buf, static_cast<size_t>(c.io.in->gcount())));
  }
  sodium_memzero(buf, sizeof buf);
  return text;
}

// The KDF parameters for a new keystore: DFRP_KDF_PROFILE, whose "test" needs
// --insecure-test-kdf.
Result<KdfParams> NewKdf(Ctx& c) {
  return KdfParamsForProfile(c.io.getenv("DFRP_KDF_PROFILE").value_or(""), c.o.insecure_test_kdf);
}

// ---- output ----

json PublicJson(const WalletPublic& w) {
  return {{"address", w.address},
          {"public_key", w.public_key.ToHex()},
          {"proof_of_possession", w.proof_of_possession.ToHex()},
          {"vector", w.vector},
          {"vector_signature", w.vector_signature.ToHex()}};
}

void Note(Ctx& c, std::string_view text) {
  if (!c.o.quiet && !c.o.json) *c.io.err << "dfrp-wallet: " << text << "\n";
}

// A weak keystore is flagged wherever it is read or written: this warning on the error
// stream (even with --quiet or --json) and "weak_kdf": true in the printed object.
void WarnIfWeak(Ctx& c, const KdfParams& kdf, const std::string& path) {
  if (!IsWeakKdf(kdf)) return;
  *c.io.err << fmt::format(
      "dfrp-wallet: warning: wallet {} is sealed with weak KDF parameters (Argon2id opslimit "
      "{}, memlimit {}; at least {} and {} are safe), so a copy of it is quick to crack: re-seal "
      "it with `dfrp-wallet change-passphrase` and DFRP_KDF_PROFILE unset\n",
      path, kdf.opslimit, core::FormatBytes(kdf.memlimit), kMinStrongKdf.opslimit,
      core::FormatBytes(kMinStrongKdf.memlimit));
}

// The public identity of a keystore, the file it is in, and whether its KDF is weak.
json KeystoreJson(const WalletPublic& pub, const KdfParams& kdf, const std::string& path) {
  json obj = PublicJson(pub);
  obj["wallet"] = path;
  obj["weak_kdf"] = IsWeakKdf(kdf);
  return obj;
}

// ---- commands ----

Status CreateWallet(Ctx& c, SecretKey key) {
  DFRP_ASSIGN_OR_RETURN(std::string path, WalletPath(c));
  DFRP_RETURN_IF_ERROR(RefuseExisting(c.io.fs, path));  // before asking for a passphrase
  DFRP_ASSIGN_OR_RETURN(core::NodeConfig cfg, Config(c));
  std::vector<float> vec = DefaultIdentityVector(key.GetPublicKey(), cfg.vector_dim);
  if (!c.o.vector_csv.empty()) {
    DFRP_ASSIGN_OR_RETURN(vec, ParseVector(c.o.vector_csv));
    if (vec.size() != cfg.vector_dim) {
      return Status::InvalidArgument(
          fmt::format("--vector has {} values but VECTOR_DIM is {}: give {} values", vec.size(),
                      cfg.vector_dim, cfg.vector_dim));
    }
  }
  DFRP_ASSIGN_OR_RETURN(KdfParams kdf, NewKdf(c));
  DFRP_ASSIGN_OR_RETURN(SecretString pass,
                        ReadPassphrase(c.io.fs, Source(c, false), "new passphrase", true));
  DFRP_ASSIGN_OR_RETURN(WalletPublic pub, MakeWalletPublic(key, std::move(vec)));
  DFRP_ASSIGN_OR_RETURN(Keystore ks, SealKeystore(key, pub, pass.view(), kdf));
  pass.Clear();
  DFRP_RETURN_IF_ERROR(SaveKeystore(c.io.fs, path, ks, false));
  Note(c, "wrote wallet " + path);
  WarnIfWeak(c, kdf, path);
  Emit(c, KeystoreJson(pub, kdf, path));
  return Status::OK();
}

Status CmdNew(Ctx& c) {
  DFRP_ASSIGN_OR_RETURN(SecretKey key, SecretKey::Generate());
  return CreateWallet(c, std::move(key));
}

// Hex (whitespace allowed anywhere between digit pairs) to a secret key; every copy of the
// bytes is in wiped memory.
Result<SecretKey> SecretKeyFromHex(const SecretString& text) {
  SecretString raw;
  raw.resize(crypto::bls::kSecretKeySize);
  size_t len = 0;
  const char* end = nullptr;
  int rc = sodium_hex2bin(reinterpret_cast<unsigned char*>(raw.data()), raw.size(),
                          text.view().data(), text.size(), " \t\r\n", &len, &end);
  if (rc != 0 || len != raw.size() || end != text.view().data() + text.size()) {
    return Err(Status::InvalidArgument(
        "the secret key to import is not 64 hex characters (32 bytes, big-endian): check the "
        "input"));
  }
  return SecretKey::FromBytes(core::AsBytes(raw.view()));
}

Status CmdImport(Ctx& c) {
  DFRP_ASSIGN_OR_RETURN(SecretString text, SecretInput(c));
  DFRP_ASSIGN_OR_RETURN(SecretKey key, SecretKeyFromHex(text));
  text.Clear();
  return CreateWallet(c, std::move(key));
}

Result<Keystore> Load(Ctx& c, std::string* path) {
  DFRP_ASSIGN_OR_RETURN(*path, WalletPath(c));
  DFRP_ASSIGN_OR_RETURN(Keystore ks, LoadKeystore(c.io.fs, *path));
  WarnIfWeak(c, ks.kdf, *path);
  return ks;
}

// The passphrase is wiped when this returns (SecretString).
Result<SecretKey> Unlock(Ctx& c, const Keystore& ks, const std::string& path) {
  DFRP_ASSIGN_OR_RETURN(SecretString pass,
                        ReadPassphrase(c.io.fs, Source(c, false), "passphrase", false));
  return UnlockKeystore(ks, pass.view(), path);
}

Status CmdShow(Ctx& c) {
  std::string path;
  DFRP_ASSIGN_OR_RETURN(Keystore ks, Load(c, &path));
  Emit(c, KeystoreJson(ks.pub, ks.kdf, path));
  return Status::OK();
}

Status CmdExportPublic(Ctx& c) {
  std::string path;
  DFRP_ASSIGN_OR_RETURN(Keystore ks, Load(c, &path));
  *c.io.out << PublicJson(ks.pub).dump(2) << "\n";  // always JSON: it is an export format
  return Status::OK();
}

Status CmdSign(Ctx& c) {
  DFRP_ASSIGN_OR_RETURN(std::vector<std::string> msgs, Messages(c));
  if (msgs.size() != 1) return Status::InvalidArgument("sign takes one message");
  // dfrp's protocol messages (ledger orders and votes) begin with a length byte and a
  // "DFRP-" tag, and share this key and DST: signing one here would make an order or a vote
  // (docs/FORMAT-wallet.md, "Signatures and domain separation tags").
  const std::string& m = msgs[0];
  if (m.size() > 6 && static_cast<uint8_t>(m[0]) >= 5 && static_cast<uint8_t>(m[0]) <= 32 &&
      m.compare(1, 5, "DFRP-") == 0)
    return Status::InvalidArgument(
        "this message begins like a dfrp protocol message (a ledger order or vote): "
        "dfrp-wallet sign refuses it; use dfrp-ledger to make orders");
  std::string path;
  DFRP_ASSIGN_OR_RETURN(Keystore ks, Load(c, &path));
  DFRP_ASSIGN_OR_RETURN(SecretKey key, Unlock(c, ks, path));
  Signature sig = key.Sign(core::AsBytes(msgs[0]));
  Emit(c,
       {{"signature", sig.ToHex()},
        {"public_key", ks.pub.public_key.ToHex()},
        {"address", ks.pub.address}},
       "signature");
  return Status::OK();
}

Status CmdChangePassphrase(Ctx& c) {
  std::string path;
  DFRP_ASSIGN_OR_RETURN(Keystore ks, Load(c, &path));
  DFRP_ASSIGN_OR_RETURN(SecretKey key, Unlock(c, ks, path));
  DFRP_ASSIGN_OR_RETURN(KdfParams kdf, NewKdf(c));
  DFRP_ASSIGN_OR_RETURN(SecretString pass,
                        ReadPassphrase(c.io.fs, Source(c, true), "new passphrase", true));
  DFRP_ASSIGN_OR_RETURN(Keystore fresh, SealKeystore(key, ks.pub, pass.view(), kdf));
  pass.Clear();
  DFRP_RETURN_IF_ERROR(SaveKeystore(c.io.fs, path, fresh, /*overwrite=*/true));
  Note(c, "changed the passphrase of " + path);
  WarnIfWeak(c, kdf, path);
  Emit(c, {{"wallet", path}, {"address", ks.pub.address}, {"weak_kdf", IsWeakKdf(kdf)}});
  return Status::OK();
}

// ---- parsing ----

using Command = Status (*)(Ctx&);

void AddMessageOptions(CLI::App* sub, Options& o, bool many) {
  auto* hex = sub->add_option("--message-hex", o.message_hex, "message bytes in hex");
  auto* file = sub->add_option("--file", o.message_file, "file holding the message");
  if (!many) {
    hex->expected(1);
    file->expected(1);
  }
}

std::vector<std::pair<CLI::App*, Command>> AddCommands(CLI::App& app, Options& o) {
  std::vector<std::pair<CLI::App*, Command>> cmds;
  auto* n = app.add_subcommand("new", "create a wallet with a fresh key");
  n->add_option("--vector", o.vector_csv, "identity vector, VECTOR_DIM comma-separated numbers");
  cmds.emplace_back(n, CmdNew);
  auto* imp = app.add_subcommand("import", "create a wallet from a 32-byte secret key in hex");
  imp->add_option("--file", o.secret_file, "file with the hex secret key (default: stdin)");
  imp->add_option("--vector", o.vector_csv, "identity vector");
  cmds.emplace_back(imp, CmdImport);
  cmds.emplace_back(app.add_subcommand("show", "print the wallet's public identity"), CmdShow);
  cmds.emplace_back(app.add_subcommand("export-public", "print the public identity as JSON"),
                    CmdExportPublic);
  auto* sign = app.add_subcommand("sign", "sign a message with the wallet key");
  AddMessageOptions(sign, o, false);
  cmds.emplace_back(sign, CmdSign);
  auto* ver = app.add_subcommand("verify", "verify a signature (needs no wallet)");
  ver->add_option("--public-key", o.public_keys, "public key (hex) or address")->expected(1);
  ver->add_option("--signature", o.signatures, "signature (hex)")->expected(1);
  AddMessageOptions(ver, o, false);
  cmds.emplace_back(ver, cli::CmdVerify);
  auto* agg = app.add_subcommand("aggregate", "sum signatures into one");
  agg->add_option("--signature,signatures", o.signatures, "signatures (hex)")->required();
  cmds.emplace_back(agg, cli::CmdAggregate);
  auto* va = app.add_subcommand("verify-aggregate", "verify an aggregate signature");
  va->add_option("--public-key", o.public_keys, "public keys (hex or address), repeatable");
  va->add_option("--proof-of-possession", o.pops, "one per key for the same-message form");
  va->add_option("--signature", o.signatures, "the aggregate signature")->expected(1);
  AddMessageOptions(va, o, true);
  cmds.emplace_back(va, cli::CmdVerifyAggregate);
  auto* cp = app.add_subcommand("change-passphrase", "re-encrypt under a new passphrase");
  cp->add_option("--new-passphrase-file", o.new_passphrase_file,
                 "file with the new passphrase (else DFRP_NEW_PASSPHRASE, else a prompt)");
  cmds.emplace_back(cp, CmdChangePassphrase);
  return cmds;
}

void AddGlobals(CLI::App& app, Options& o) {
  app.add_option("--config", o.config, "config file (TOML or .env), as for the other tools");
  app.add_option("--wallet", o.wallet, "keystore file (default: STATE_DIR/wallet.json)");
  app.add_option("--passphrase-file", o.passphrase_file,
                 "file whose first line is the passphrase (else DFRP_PASSPHRASE, else a prompt)");
  app.add_flag("--json", o.json, "print one JSON object");
  app.add_flag("--quiet,-q", o.quiet, "print only the result");
  app.add_flag("--insecure-test-kdf", o.insecure_test_kdf,
               "honour DFRP_KDF_PROFILE=test (weak keystores, for tests only)");
  app.set_version_flag("--version", fmt::format("dfrp-wallet {}", core::kVersion));
}

int Fail(CliIo& io, const Status& s) {
  *io.err << "dfrp-wallet: " << s.message() << "\n";
  return core::ExitCodeFor(s);
}

}  // namespace

int RunWalletCli(const std::vector<std::string>& args, CliIo& io) {
  Options o;
  CLI::App app{"dfrp-wallet: BLS12-381 wallets, signatures and aggregates", "dfrp-wallet"};
  app.require_subcommand(1);
  app.fallthrough();
  app.footer(
      "Ledger commands, for this wallet (dfrp-ledger's; --policy P or the config's "
      "ECONOMIC_POLICY names the network):\n"
      "  balance [--address A]    history [--address A] [--limit N]\n"
      "  transfer --to ADDR --amount X [--memo T] [--seq N] [--offline -o FILE]\n"
      "  escrow open ... | status ID | list [--address A] | refund ID");
  AddGlobals(app, o);
  auto cmds = AddCommands(app, o);
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e, *io.out, *io.err);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e, *io.out, *io.err);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e, *io.out, *io.err);
  } catch (const CLI::ParseError& e) {
    return Fail(
        io, Status::InvalidArgument(fmt::format("{}: run dfrp-wallet --help for usage", e.what())));
  }
  Ctx ctx{io, o};
  for (auto& [sub, fn] : cmds) {
    if (sub->parsed()) {
      Status s = fn(ctx);
      return s.ok() ? core::kExitOk : Fail(io, s);
    }
  }
  return Fail(io, Status::InvalidArgument("no command: run dfrp-wallet --help"));
}

CliIo ProcessCliIo(core::FileSystem* fs) {
  return CliIo{&std::cin,
               &std::cout,
               &std::cerr,
               [](const std::string& k) -> std::optional<std::string> {
                 const char* v = std::getenv(k.c_str());
                 return v ? std::optional<std::string>(v) : std::nullopt;
               },
               PromptOnTerminal,
               fs};
}

}  // namespace dfrp::wallet
