// dfrp-byzantine-signer: the key of the faulty authority in tests/node/bank_test.py.
//
//   dfrp-byzantine-signer --policy economic.toml --wallet W --passphrase-file F
//
// Unlocks committee member W's key and then, for each line on stdin, answers one line on
// stdout:
//   vote ORDER_HEX       -> "ok VOTE_HEX ORDER_HASH_HEX" : a vote for any order that decodes,
//                           with no lock, no balance and no sequence check, so conflicting
//                           orders of one (sender, seq) both get this authority's vote
//   settle SETTLEMENT_HEX -> "ok VOTE_HEX HASH_HEX" : likewise for a release or a refund
//   beacon SLOT          -> "ok VOTE_HEX" : a beacon share for any slot, early or not
// and "err MESSAGE" for a line it cannot read. The Python side of the test serves these
// votes over HTTP in place of a real dfrpd, so honest authorities and clients face an
// authority that signs everything.
#include <sodium.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <string>

#include "dfrp/core/bytes.h"
#include "dfrp/core/file_system.h"
#include "dfrp/crypto/bls.h"
#include "dfrp/economy/policy.h"
#include "dfrp/ledger/escrow.h"
#include "dfrp/ledger/messages.h"
#include "dfrp/wallet/keystore.h"
#include "dfrp/wallet/passphrase.h"

namespace {

namespace ledger = dfrp::ledger;

int Die(const std::string& what) {
  std::fprintf(stderr, "dfrp-byzantine-signer: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dfrp-byzantine-signer: signs every vote asked (tests only)"};
  std::string policy_path, wallet_path, pass_file;
  app.add_option("--policy", policy_path)->required();
  app.add_option("--wallet", wallet_path)->required();
  app.add_option("--passphrase-file", pass_file)->required();
  CLI11_PARSE(app, argc, argv);
  if (sodium_init() < 0) return Die("libsodium did not initialise");
  dfrp::core::FileSystem* fs = dfrp::core::DefaultFileSystem();
  auto policy = dfrp::economy::LoadEconomicPolicy(fs, policy_path, ".");
  if (!policy) return Die(policy.error().ToString());
  auto ks = dfrp::wallet::LoadKeystore(fs, wallet_path);
  if (!ks) return Die(ks.error().ToString());
  dfrp::wallet::PassphraseSource src{
      .file = pass_file, .env_name = "", .getenv = nullptr, .prompt = nullptr};
  auto pass = dfrp::wallet::ReadPassphrase(fs, src, "the Byzantine authority's wallet", false);
  if (!pass) return Die(pass.error().ToString());
  auto key = dfrp::wallet::UnlockKeystore(*ks, pass->view(), wallet_path);
  if (!key) return Die(key.error().ToString());
  const auto& committee = policy->genesis.committee;
  uint32_t index = 0;
  bool found = false;
  for (size_t i = 0; i < committee.size(); ++i) {
    auto pk = dfrp::crypto::bls::PublicKey::FromHex(committee[i].public_key_hex);
    if (pk && *pk == key->GetPublicKey()) {
      index = static_cast<uint32_t>(i);
      found = true;
    }
  }
  if (!found) return Die("the wallet is not a committee member");
  const auto& net = policy->network_id;
  std::string line;
  std::printf("ready %u\n", index);
  std::fflush(stdout);
  while (std::getline(std::cin, line)) {
    const auto space = line.find(' ');
    const std::string verb = line.substr(0, space);
    const std::string arg = space == std::string::npos ? "" : line.substr(space + 1);
    std::string out;
    if (verb == "beacon") {
      const uint64_t slot = std::stoull(arg);
      out = "ok " + dfrp::core::ToHex(ledger::EncodeVote(ledger::SignVote(
                        ledger::BeaconItemHash(slot, 0, net), 0, index, *key, net)));
    } else {
      auto bytes = dfrp::core::FromHex(arg);
      if (!bytes) {
        out = "err not hex";
      } else if (verb == "vote") {
        auto o = ledger::DecodeSignedOrder(*bytes, net);
        out = o ? "ok " +
                      dfrp::core::ToHex(ledger::EncodeVote(
                          ledger::SignVote(o->hash, o->order.epoch, index, *key, net))) +
                      " " + dfrp::core::ToHex(o->hash)
                : "err " + o.error().message();
      } else if (verb == "settle") {
        auto s = ledger::DecodeSettlement(*bytes, net);
        out = s ? "ok " +
                      dfrp::core::ToHex(ledger::EncodeVote(
                          ledger::SignVote(s->hash, s->epoch, index, *key, net))) +
                      " " + dfrp::core::ToHex(s->hash)
                : "err " + s.error().message();
      } else {
        out = "err unknown verb " + verb;
      }
    }
    std::printf("%s\n", out.c_str());
    std::fflush(stdout);
  }
  return 0;
}
