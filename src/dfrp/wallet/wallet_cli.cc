#include "dfrp/wallet/wallet_cli.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "dfrp/core/config.h"
#include "dfrp/crypto/bls.h"
#include "dfrp/wallet/address.h"
#include "dfrp/wallet/keystore.h"
#include "dfrp/wallet/wallet.h"

namespace dfrp::wallet {
namespace {

using core::Err;
using core::Result;
using core::Status;
using crypto::bls::PublicKey;
using crypto::bls::SecretKey;
using crypto::bls::Signature;
using nlohmann::json;

struct Options {
  std::string config, wallet, passphrase_file, new_passphrase_file;
  bool json = false, quiet = false;
  std::string vector_csv, secret_file;
  std::vector<std::string> message_hex, message_file, public_keys, pops, signatures;
};

struct Ctx {
  CliIo& io;
  Options& o;
};

// ---- inputs ----

Result<core::NodeConfig> Config(Ctx& c) {
  core::ConfigOptions opts;
  opts.explicit_path = c.o.config;
  opts.getenv = c.io.getenv;
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

Result<std::string> ReadAll(Ctx& c, const std::string& file) {
  if (!file.empty() && file != "-") return core::ReadWholeFile(c.io.fs, file);
  return std::string(std::istreambuf_iterator<char>(*c.io.in), {});
}

// The messages named by --message-hex or --file (never both).
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

// A public key given as hex or as a dfrp address.
Result<PublicKey> KeyArg(std::string_view text) {
  if (text.starts_with("dfrp1") || text.starts_with("DFRP1")) return PublicKeyFromAddress(text);
  return PublicKey::FromHex(text);
}

std::optional<core::Status> KdfFromEnv(Ctx& c, KdfParams* out) {
  auto kdf = KdfParamsForProfile(c.io.getenv("DFRP_KDF_PROFILE").value_or(""));
  if (!kdf) return kdf.error();
  *out = *kdf;
  return std::nullopt;
}

// ---- output ----

json PublicJson(const WalletPublic& w) {
  return {{"address", w.address},
          {"public_key", w.public_key.ToHex()},
          {"proof_of_possession", w.proof_of_possession.ToHex()},
          {"vector", w.vector},
          {"vector_signature", w.vector_signature.ToHex()}};
}

std::string Plain(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (!v.is_array()) return v.dump();
  std::string s;
  for (const json& e : v) s += (s.empty() ? "" : ",") + Plain(e);
  return s;
}

// Prints `obj` as one JSON line with --json, else "key: value" lines; `primary` (when set and
// not --json) prints only that value, for piping.
void Emit(Ctx& c, const json& obj, const char* primary = nullptr) {
  std::ostream& out = *c.io.out;
  if (c.o.json) {
    out << obj.dump() << "\n";
  } else if (primary != nullptr) {
    out << Plain(obj.at(primary)) << "\n";
  } else {
    for (const auto& item : obj.items()) out << item.key() << ": " << Plain(item.value()) << "\n";
  }
}

void Note(Ctx& c, std::string_view text) {
  if (!c.o.quiet && !c.o.json) *c.io.err << "dfrp-wallet: " << text << "\n";
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
  KdfParams kdf;
  if (auto bad = KdfFromEnv(c, &kdf)) return *bad;
  DFRP_ASSIGN_OR_RETURN(std::string pass,
                        ReadPassphrase(c.io.fs, Source(c, false), "new passphrase", true));
  DFRP_ASSIGN_OR_RETURN(WalletPublic pub, MakeWalletPublic(key, std::move(vec)));
  DFRP_ASSIGN_OR_RETURN(Keystore ks, SealKeystore(key, pub, pass, kdf));
  DFRP_RETURN_IF_ERROR(SaveKeystore(c.io.fs, path, ks, false));
  Note(c, "wrote wallet " + path);
  json obj = PublicJson(pub);
  obj["wallet"] = path;
  Emit(c, obj);
  return Status::OK();
}

Status CmdNew(Ctx& c) {
  DFRP_ASSIGN_OR_RETURN(SecretKey key, SecretKey::Generate());
  return CreateWallet(c, std::move(key));
}

Status CmdImport(Ctx& c) {
  DFRP_ASSIGN_OR_RETURN(std::string text, ReadAll(c, c.o.secret_file));
  std::string hex;
  for (char ch : text) {
    if (!std::isspace(static_cast<unsigned char>(ch))) hex.push_back(ch);
  }
  auto raw = core::FromHex(hex);
  if (!raw || raw->size() != crypto::bls::kSecretKeySize) {
    return Status::InvalidArgument(
        "the secret key to import is not 64 hex characters (32 bytes, big-endian): check the "
        "input");
  }
  auto key = SecretKey::FromBytes(core::AsBytes(*raw));
  std::fill(raw->begin(), raw->end(), '\0');
  std::fill(hex.begin(), hex.end(), '\0');
  std::fill(text.begin(), text.end(), '\0');
  if (!key) return key.error();
  return CreateWallet(c, std::move(*key));
}

Result<Keystore> Load(Ctx& c, std::string* path) {
  DFRP_ASSIGN_OR_RETURN(*path, WalletPath(c));
  return LoadKeystore(c.io.fs, *path);
}

Result<SecretKey> Unlock(Ctx& c, const Keystore& ks, const std::string& path) {
  DFRP_ASSIGN_OR_RETURN(std::string pass,
                        ReadPassphrase(c.io.fs, Source(c, false), "passphrase", false));
  return UnlockKeystore(ks, pass, path);
}

Status CmdShow(Ctx& c) {
  std::string path;
  DFRP_ASSIGN_OR_RETURN(Keystore ks, Load(c, &path));
  json obj = PublicJson(ks.pub);
  obj["wallet"] = path;
  Emit(c, obj);
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

Status CmdVerify(Ctx& c) {
  if (c.o.public_keys.size() != 1 || c.o.signatures.size() != 1) {
    return Status::InvalidArgument("verify takes one --public-key and one --signature");
  }
  DFRP_ASSIGN_OR_RETURN(std::vector<std::string> msgs, Messages(c));
  if (msgs.size() != 1) return Status::InvalidArgument("verify takes one message");
  DFRP_ASSIGN_OR_RETURN(PublicKey pk, KeyArg(c.o.public_keys[0]));
  DFRP_ASSIGN_OR_RETURN(Signature sig, Signature::FromHex(c.o.signatures[0]));
  DFRP_RETURN_IF_ERROR(crypto::bls::Verify(pk, core::AsBytes(msgs[0]), sig));
  Emit(c, {{"valid", true}, {"public_key", pk.ToHex()}, {"address", AddressOf(pk)}}, "valid");
  return Status::OK();
}

Result<std::vector<Signature>> SignatureArgs(Ctx& c) {
  std::vector<Signature> sigs;
  for (const std::string& h : c.o.signatures) {
    auto s = Signature::FromHex(h);
    if (!s) return Err(s.error().WithContext(fmt::format("--signature #{}", sigs.size() + 1)));
    sigs.push_back(*s);
  }
  return sigs;
}

Status CmdAggregate(Ctx& c) {
  DFRP_ASSIGN_OR_RETURN(std::vector<Signature> sigs, SignatureArgs(c));
  DFRP_ASSIGN_OR_RETURN(Signature agg, crypto::bls::AggregateSignatures(sigs));
  Emit(c, {{"signature", agg.ToHex()}, {"count", sigs.size()}}, "signature");
  return Status::OK();
}

// Same message: every key needs a proof of possession (the rogue-key defence).
Status VerifySameMessage(Ctx& c, const std::vector<PublicKey>& keys, const std::string& msg,
                         const Signature& agg) {
  if (c.o.pops.size() != keys.size()) {
    return Status::InvalidArgument(fmt::format(
        "public key #{} has no proof of possession: a same-message aggregate needs one "
        "--proof-of-possession per --public-key (without them a rogue key could forge it)",
        c.o.pops.size() + 1));
  }
  std::vector<crypto::bls::ProvenPublicKey> proven;
  for (size_t i = 0; i < keys.size(); ++i) {
    DFRP_ASSIGN_OR_RETURN(Signature pop, Signature::FromHex(c.o.pops[i]));
    auto p = crypto::bls::VerifyPossession(keys[i], pop);
    if (!p) return p.error().WithContext(fmt::format("public key #{}", i + 1));
    proven.push_back(*p);
  }
  return crypto::bls::FastAggregateVerify(proven, core::AsBytes(msg), agg);
}

Status CmdVerifyAggregate(Ctx& c) {
  if (c.o.signatures.size() != 1) {
    return Status::InvalidArgument("verify-aggregate takes one (aggregate) --signature");
  }
  DFRP_ASSIGN_OR_RETURN(std::vector<std::string> msgs, Messages(c));
  DFRP_ASSIGN_OR_RETURN(Signature agg, Signature::FromHex(c.o.signatures[0]));
  std::vector<PublicKey> keys;
  for (const std::string& k : c.o.public_keys) {
    auto pk = KeyArg(k);
    if (!pk) return pk.error().WithContext(fmt::format("--public-key #{}", keys.size() + 1));
    keys.push_back(*pk);
  }
  if (keys.empty()) return Status::InvalidArgument("no --public-key given");
  if (msgs.size() == 1) {
    DFRP_RETURN_IF_ERROR(VerifySameMessage(c, keys, msgs[0], agg));
  } else if (msgs.size() == keys.size()) {
    std::vector<core::ByteSpan> spans;
    for (const auto& m : msgs) spans.push_back(core::AsBytes(m));
    DFRP_RETURN_IF_ERROR(crypto::bls::AggregateVerify(keys, spans, agg));
  } else {
    return Status::InvalidArgument(
        fmt::format("{} keys and {} messages: give one message (same-message form) or one per key",
                    keys.size(), msgs.size()));
  }
  Emit(c, {{"valid", true}, {"keys", keys.size()}, {"messages", msgs.size()}}, "valid");
  return Status::OK();
}

Status CmdChangePassphrase(Ctx& c) {
  std::string path;
  DFRP_ASSIGN_OR_RETURN(Keystore ks, Load(c, &path));
  DFRP_ASSIGN_OR_RETURN(SecretKey key, Unlock(c, ks, path));
  KdfParams kdf;
  if (auto bad = KdfFromEnv(c, &kdf)) return *bad;
  DFRP_ASSIGN_OR_RETURN(std::string pass,
                        ReadPassphrase(c.io.fs, Source(c, true), "new passphrase", true));
  DFRP_ASSIGN_OR_RETURN(Keystore fresh, SealKeystore(key, ks.pub, pass, kdf));
  DFRP_RETURN_IF_ERROR(SaveKeystore(c.io.fs, path, fresh, /*overwrite=*/true));
  Note(c, "changed the passphrase of " + path);
  Emit(c, {{"wallet", path}, {"address", ks.pub.address}});
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
  cmds.emplace_back(ver, CmdVerify);
  auto* agg = app.add_subcommand("aggregate", "sum signatures into one");
  agg->add_option("--signature,signatures", o.signatures, "signatures (hex)")->required();
  cmds.emplace_back(agg, CmdAggregate);
  auto* va = app.add_subcommand("verify-aggregate", "verify an aggregate signature");
  va->add_option("--public-key", o.public_keys, "public keys (hex or address), repeatable");
  va->add_option("--proof-of-possession", o.pops, "one per key for the same-message form");
  va->add_option("--signature", o.signatures, "the aggregate signature")->expected(1);
  AddMessageOptions(va, o, true);
  cmds.emplace_back(va, CmdVerifyAggregate);
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

CliIo ProcessCliIo() {
  return CliIo{&std::cin,
               &std::cout,
               &std::cerr,
               [](const std::string& k) -> std::optional<std::string> {
                 const char* v = std::getenv(k.c_str());
                 return v ? std::optional<std::string>(v) : std::nullopt;
               },
               PromptOnTerminal,
               core::DefaultFileSystem()};
}

int RunWalletCli(int argc, char** argv) {
  CliIo io = ProcessCliIo();
  return RunWalletCli(std::vector<std::string>(argv, argv + argc), io);
}

}  // namespace dfrp::wallet
