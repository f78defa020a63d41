#include "dfrp/wallet/wallet_cli.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "dfrp/core/version.h"

namespace dfrp::wallet {
namespace {

using nlohmann::json;

constexpr char kVectorSecret[] = "263dbd792f5b1be47ed85f8938c0f29586af0d3ac7b977f21c278fe1462040e3";
constexpr char kVectorPublic[] =
    "a491d1b0ecd9bb917989f0e74f0dea0422eac4a873e5e2644f368dffb9a6e20fd6e10c1b77654d067c0618f6e5"
    "a7f79a";

class WalletCli : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dfrp_wallet_cli_test_XXXXXX";
    dir_ = mkdtemp(tmpl);
    env_ = {{"DFRP_PASSPHRASE", "pw"}, {"DFRP_KDF_PROFILE", "test"}};
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Runs dfrp-wallet with `args`; fills out_ and err_.
  int Run(std::vector<std::string> args, const std::string& stdin_text = "") {
    std::istringstream in(stdin_text);
    std::ostringstream out, err;
    CliIo io{&in,
             &out,
             &err,
             [this](const std::string& k) -> std::optional<std::string> {
               if (on_getenv_) on_getenv_(k);
               auto it = env_.find(k);
               return it == env_.end() ? std::nullopt : std::optional(it->second);
             },
             nullptr,
             core::DefaultFileSystem()};
    if (insecure_test_kdf_) args.insert(args.begin(), "--insecure-test-kdf");
    args.insert(args.begin(), "dfrp-wallet");
    int rc = RunWalletCli(args, io);
    out_ = out.str();
    err_ = err.str();
    return rc;
  }
  std::string W(const std::string& name = "w.json") { return dir_ + "/" + name; }
  json Json() { return json::parse(out_); }
  std::string Trimmed() { return out_.substr(0, out_.find('\n')); }

  std::string dir_, out_, err_;
  std::map<std::string, std::string> env_;
  bool insecure_test_kdf_ = true;  // the tests' own allowance for DFRP_KDF_PROFILE=test
  // Called when the command looks up an environment variable (to act "meanwhile").
  std::function<void(const std::string&)> on_getenv_;
};

TEST_F(WalletCli, NewShowSignVerify) {
  ASSERT_EQ(Run({"--wallet", W(), "--json", "new"}), 0) << err_;
  json created = Json();
  ASSERT_EQ(Run({"--wallet", W(), "show", "--json"}), 0) << err_;
  json shown = Json();
  for (const char* k : {"address", "public_key", "proof_of_possession", "vector"}) {
    EXPECT_TRUE(shown.contains(k)) << k;
    EXPECT_EQ(shown[k], created[k]);
  }
  EXPECT_EQ(shown["vector"].size(), 16u);  // VECTOR_DIM of the embedded default config
  std::string pk = shown["public_key"];
  ASSERT_EQ(Run({"--wallet", W(), "sign", "--message-hex", "c0ffee"}), 0) << err_;
  std::string sig = Trimmed();
  EXPECT_EQ(sig.size(), 192u);
  EXPECT_EQ(Run({"verify", "--public-key", pk, "--message-hex", "c0ffee", "--signature", sig}), 0)
      << err_;
  EXPECT_EQ(Run({"verify", "--public-key", shown["address"], "--message-hex", "c0ffee",
                 "--signature", sig}),
            0)
      << err_;
  EXPECT_EQ(Run({"verify", "--public-key", pk, "--message-hex", "c0ffef", "--signature", sig}), 3);
  EXPECT_NE(err_.find("dfrp-wallet: signature does not verify"), std::string::npos) << err_;
}

TEST_F(WalletCli, BadKeysAndSignaturesAreUsageErrors) {
  ASSERT_EQ(Run({"--wallet", W(), "new"}), 0) << err_;
  ASSERT_EQ(Run({"--wallet", W(), "--json", "show"}), 0);
  std::string pk = Json()["public_key"];
  ASSERT_EQ(Run({"--wallet", W(), "sign", "--message-hex", "00"}), 0);
  std::string sig = Trimmed();
  for (auto [k, s] :
       std::vector<std::pair<std::string, std::string>>{{pk, sig.substr(2)},
                                                        {pk, "zz" + sig.substr(2)},
                                                        {pk, sig + "00"},
                                                        {pk.substr(2), sig},
                                                        {"c0" + std::string(94, '0'), sig},
                                                        {"dfrp1qqqqqq", sig}}) {
    EXPECT_EQ(Run({"verify", "--public-key", k, "--message-hex", "00", "--signature", s}), 2)
        << k << " " << s;
    EXPECT_EQ(err_.rfind("dfrp-wallet: ", 0), 0u);
    EXPECT_EQ(std::count(err_.begin(), err_.end(), '\n'), 1) << err_;
  }
  EXPECT_EQ(Run({"verify", "--public-key", pk, "--message-hex", "0g", "--signature", sig}), 2);
  EXPECT_EQ(Run({"frobnicate"}), 2);
  EXPECT_EQ(Run({"--wallet", W("none.json"), "show"}), 4);
  EXPECT_NE(err_.find("does not exist"), std::string::npos);
}

// 96 bytes of hex that do not verify exit 3 whether or not they decode to a curve point.
TEST_F(WalletCli, SignatureThatIsNoPointDoesNotVerify) {
  ASSERT_EQ(Run({"--wallet", W(), "--json", "new"}), 0) << err_;
  std::string pk = Json()["public_key"], pop = Json()["proof_of_possession"];
  ASSERT_EQ(Run({"--wallet", W(), "sign", "--message-hex", "00"}), 0);
  std::string sig = Trimmed();
  std::string off_curve = sig;
  off_curve[40] = off_curve[40] == '0' ? '1' : '0';  // an x-coordinate from nowhere
  for (const std::string& bad : {"c0" + std::string(190, '0'), off_curve}) {
    EXPECT_EQ(Run({"verify", "--public-key", pk, "--message-hex", "00", "--signature", bad}), 3);
    EXPECT_EQ(err_.rfind("dfrp-wallet: signature does not verify", 0), 0u) << err_;
    EXPECT_EQ(Run({"verify-aggregate", "--public-key", pk, "--proof-of-possession", pop,
                   "--message-hex", "00", "--signature", bad}),
              3);
    EXPECT_EQ(Run({"verify-aggregate", "--public-key", pk, "--proof-of-possession", bad,
                   "--message-hex", "00", "--signature", sig}),
              3);
    EXPECT_NE(err_.find("proof of possession of key #1 does not verify"), std::string::npos);
    EXPECT_EQ(Run({"aggregate", "--signature", bad}), 2);  // it verifies nothing: a usage error
  }
}

TEST_F(WalletCli, WrongPassphraseChangesNothing) {
  ASSERT_EQ(Run({"--wallet", W(), "new"}), 0);
  std::string before = *core::ReadWholeFile(core::DefaultFileSystem(), W());
  env_["DFRP_PASSPHRASE"] = "not it";
  EXPECT_EQ(Run({"--wallet", W(), "sign", "--message-hex", "00"}), 3);
  EXPECT_NE(err_.find("wrong passphrase for keystore " + W()), std::string::npos) << err_;
  EXPECT_EQ(Run({"--wallet", W(), "change-passphrase"}), 3);
  EXPECT_EQ(*core::ReadWholeFile(core::DefaultFileSystem(), W()), before);
  env_.erase("DFRP_PASSPHRASE");
  EXPECT_EQ(Run({"--wallet", W(), "sign", "--message-hex", "00"}), 2);  // no source at all
  EXPECT_NE(err_.find("DFRP_PASSPHRASE"), std::string::npos);
}

TEST_F(WalletCli, HelpVersionAndKdfProfile) {
  EXPECT_EQ(Run({"--help"}), 0);
  EXPECT_NE(out_.find("verify-aggregate"), std::string::npos);
  EXPECT_EQ(Run({"--version"}), 0);
  EXPECT_EQ(out_, std::string("dfrp-wallet ") + core::kVersion + "\n");
  env_["DFRP_KDF_PROFILE"] = "fast";
  EXPECT_EQ(Run({"--wallet", W(), "new"}), 2);
  EXPECT_NE(err_.find("unknown KDF profile"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(W()));
}

TEST_F(WalletCli, TestKdfNeedsTheFlagAndIsFlaggedWhereverShown) {
  insecure_test_kdf_ = false;
  EXPECT_EQ(Run({"--wallet", W(), "new"}), 2);
  EXPECT_NE(err_.find("DFRP_KDF_PROFILE=test makes weak keystores"), std::string::npos) << err_;
  EXPECT_NE(err_.find("--insecure-test-kdf"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(W()));
  insecure_test_kdf_ = true;
  const std::string warning = "dfrp-wallet: warning: wallet " + W() + " is sealed with weak KDF";
  ASSERT_EQ(Run({"--wallet", W(), "--json", "new"}), 0) << err_;
  EXPECT_EQ(Json()["weak_kdf"], true);
  EXPECT_NE(err_.find(warning), std::string::npos) << err_;
  insecure_test_kdf_ = false;  // reading a weak keystore needs no flag; it is only flagged
  ASSERT_EQ(Run({"--wallet", W(), "--json", "show"}), 0) << err_;
  EXPECT_EQ(Json()["weak_kdf"], true);
  EXPECT_NE(err_.find(warning), std::string::npos);
  ASSERT_EQ(Run({"--wallet", W(), "--quiet", "show"}), 0);
  EXPECT_NE(out_.find("weak_kdf: true\n"), std::string::npos) << out_;
  EXPECT_NE(err_.find(warning), std::string::npos);  // even with --quiet
  for (auto args : std::vector<std::vector<std::string>>{
           {"--wallet", W(), "sign", "--message-hex", "00"}, {"--wallet", W(), "export-public"}}) {
    ASSERT_EQ(Run(args), 0) << err_;
    EXPECT_NE(err_.find(warning), std::string::npos) << args[2];
  }
  env_.erase("DFRP_KDF_PROFILE");  // re-sealed with the default parameters: no longer weak
  env_["DFRP_NEW_PASSPHRASE"] = "strong";
  ASSERT_EQ(Run({"--wallet", W(), "--json", "change-passphrase"}), 0) << err_;
  EXPECT_EQ(Json()["weak_kdf"], false);
  env_["DFRP_PASSPHRASE"] = "strong";
  ASSERT_EQ(Run({"--wallet", W(), "--json", "show"}), 0) << err_;
  EXPECT_EQ(Json()["weak_kdf"], false);
  EXPECT_EQ(err_, "");
}

// The wallet appears while the passphrase is typed: it is kept, and `new` says so.
TEST_F(WalletCli, NewNeverOverwritesAWalletMadeMeanwhile) {
  ASSERT_EQ(Run({"--wallet", W("other.json"), "new"}), 0) << err_;
  std::string other = *core::ReadWholeFile(core::DefaultFileSystem(), W("other.json"));
  on_getenv_ = [&](const std::string& name) {
    if (name == "DFRP_PASSPHRASE") std::filesystem::copy_file(W("other.json"), W());
  };
  EXPECT_EQ(Run({"--wallet", W(), "new"}), 2);
  EXPECT_NE(err_.find("already exists and is never overwritten"), std::string::npos) << err_;
  EXPECT_EQ(*core::ReadWholeFile(core::DefaultFileSystem(), W()), other);
}

TEST_F(WalletCli, ChangePassphrase) {
  ASSERT_EQ(Run({"--wallet", W(), "new"}), 0);
  env_["DFRP_NEW_PASSPHRASE"] = "second";
  ASSERT_EQ(Run({"--wallet", W(), "change-passphrase"}), 0) << err_;
  EXPECT_EQ(Run({"--wallet", W(), "sign", "--message-hex", "00"}), 3);
  std::string pf = W("pass.txt");
  ASSERT_TRUE(core::WriteFileAtomic(core::DefaultFileSystem(), pf, "second\n").ok());
  EXPECT_EQ(Run({"--wallet", W(), "--passphrase-file", pf, "sign", "--message-hex", "00"}), 0)
      << err_;
}

TEST_F(WalletCli, ImportVectorSecretAndNeverOverwrite) {
  ASSERT_EQ(Run({"--wallet", W(), "--json", "import"}, std::string(kVectorSecret) + "\n"), 0)
      << err_;
  EXPECT_EQ(Json()["public_key"], kVectorPublic);
  std::string before = *core::ReadWholeFile(core::DefaultFileSystem(), W());
  EXPECT_EQ(Run({"--wallet", W(), "new"}), 2);
  EXPECT_NE(err_.find("already exists"), std::string::npos);
  EXPECT_EQ(Run({"--wallet", W(), "import"}, kVectorSecret), 2);
  EXPECT_EQ(*core::ReadWholeFile(core::DefaultFileSystem(), W()), before);
  EXPECT_EQ(Run({"--wallet", W("b.json"), "import"}, "abcd"), 2);
  EXPECT_EQ(Run({"--wallet", W("b.json"), "import"}, std::string(64, 'f')), 2);
}

TEST_F(WalletCli, ConfigStateDirAndVector) {
  std::string cfg = W("dfrp.toml");
  ASSERT_TRUE(core::WriteFileAtomic(core::DefaultFileSystem(), cfg,
                                    "STATE_DIR = \"state\"\nVECTOR_DIM = 3\nDRIVE_0 = \"d0\"\n"
                                    "QUOTA_0 = \"1G\"\n")
                  .ok());
  ASSERT_EQ(Run({"--config", cfg, "--json", "new", "--vector", "1,0,-0.5"}), 0) << err_;
  EXPECT_EQ(Json()["wallet"], dir_ + "/state/wallet.json");
  EXPECT_EQ(Json()["vector"], json::parse("[1.0, 0.0, -0.5]"));
  ASSERT_EQ(Run({"--config", cfg, "export-public"}), 0);
  EXPECT_EQ(Json()["vector"].size(), 3u);
  EXPECT_EQ(Run({"--wallet", W("x.json"), "--config", cfg, "new", "--vector", "1,2"}), 2);
}

// A client holds a wallet and no storage: its config may name no drives.
TEST_F(WalletCli, ConfigWithoutDrives) {
  std::string cfg = W("client.toml");
  ASSERT_TRUE(core::WriteFileAtomic(core::DefaultFileSystem(), cfg,
                                    "STATE_DIR = \"client\"\nVECTOR_DIM = 2\n")
                  .ok());
  ASSERT_EQ(Run({"--config", cfg, "--json", "new"}), 0) << err_;
  EXPECT_EQ(Json()["wallet"], dir_ + "/client/wallet.json");
  EXPECT_EQ(Json()["vector"].size(), 2u);
  ASSERT_EQ(Run({"--config", cfg, "--json", "show"}), 0) << err_;
  EXPECT_EQ(Json()["wallet"], dir_ + "/client/wallet.json");
}

TEST_F(WalletCli, AggregateAndVerifyAggregate) {
  std::vector<std::string> pks, pops, same, distinct, msgs = {"01", "02", "03"};
  for (int i = 0; i < 3; ++i) {
    std::string w = W("w" + std::to_string(i) + ".json");
    ASSERT_EQ(Run({"--wallet", w, "--json", "new"}), 0);
    pks.push_back(Json()["public_key"]);
    pops.push_back(Json()["proof_of_possession"]);
    ASSERT_EQ(Run({"--wallet", w, "sign", "--message-hex", "aa"}), 0);
    same.push_back(Trimmed());
    ASSERT_EQ(Run({"--wallet", w, "sign", "--message-hex", msgs[i]}), 0);
    distinct.push_back(Trimmed());
  }
  std::vector<std::string> args = {"aggregate"};
  for (auto& s : same) args.insert(args.end(), {"--signature", s});
  ASSERT_EQ(Run(args), 0) << err_;
  std::string agg = Trimmed();
  args = {"verify-aggregate", "--message-hex", "aa", "--signature", agg};
  for (auto& k : pks) args.insert(args.end(), {"--public-key", k});
  EXPECT_EQ(Run(args), 2);  // no proofs of possession
  EXPECT_NE(err_.find("proof of possession"), std::string::npos);
  std::vector<std::string> with_pops = args;
  for (auto& p : pops) with_pops.insert(with_pops.end(), {"--proof-of-possession", p});
  EXPECT_EQ(Run(with_pops), 0) << err_;
  with_pops[with_pops.size() - 1] = pops[0];  // key 3 with key 1's proof
  EXPECT_EQ(Run(with_pops), 3);

  ASSERT_EQ(Run({"aggregate", distinct[0], distinct[1], distinct[2]}), 0) << err_;
  std::string agg2 = Trimmed();
  args = {"verify-aggregate", "--signature", agg2};
  for (int i = 0; i < 3; ++i) args.insert(args.end(), {"--public-key", pks[i]});
  for (auto& m : msgs) args.insert(args.end(), {"--message-hex", m});
  EXPECT_EQ(Run(args), 0) << err_;
  args.back() = "01";  // duplicate message
  EXPECT_EQ(Run(args), 2);
  args.back() = "04";
  EXPECT_EQ(Run(args), 3);
}

}  // namespace
}  // namespace dfrp::wallet
