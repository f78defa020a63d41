#include "dfrp/economy/policy.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <array>

#include "dfrp/core/bytes.h"
#include "dfrp/crypto/bls.h"
#include "dfrp/wallet/address.h"

namespace dfrp::economy {
namespace {

using crypto::bls::SecretKey;

SecretKey Key(uint8_t seed) {
  const std::string ikm(32, static_cast<char>(seed));
  return std::move(*SecretKey::FromIkm(core::AsBytes(ikm)));
}
std::string AddressOf(uint8_t seed) { return wallet::AddressOf(Key(seed).GetPublicKey()); }

EconomicPolicy Parse(const std::string& text) {
  auto p = ParseEconomicPolicy(text, "economic.toml");
  EXPECT_TRUE(p.has_value()) << (p ? "" : p.error().message());
  return p ? *p : EconomicPolicy{};
}

// The error for `text`, which must name `key` and contain `words`.
void ExpectError(const std::string& text, const std::string& key, const std::string& words = "") {
  auto p = ParseEconomicPolicy(text, "economic.toml");
  ASSERT_FALSE(p.has_value()) << "accepted:\n" << text;
  EXPECT_TRUE(p.error().code() == core::Status::Code::kInvalidArgument) << p.error().ToString();
  const std::string& m = p.error().message();
  EXPECT_NE(m.find("economic.toml"), std::string::npos) << m;
  EXPECT_NE(m.find(key), std::string::npos) << "wanted the key " << key << " in: " << m;
  EXPECT_NE(m.find(words), std::string::npos) << "wanted \"" << words << "\" in: " << m;
}

TEST(Policy, EmbeddedDefaultLoads) {
  auto p = ParseEconomicPolicy(kDefaultEconomicToml, "embedded default");
  ASSERT_TRUE(p.has_value()) << p.error().message();
  EXPECT_EQ(p->genesis.currency, "DFRP");
  EXPECT_EQ(p->genesis.decimals, 9u);
  EXPECT_EQ(p->pricing.target_utilization_bps, 5000u);
  EXPECT_EQ(p->pricing.max_change_denominator, 8u);
  EXPECT_EQ(p->FormatPrice(p->pricing.floor[0]), "0.00001");
  EXPECT_EQ(p->FormatPrice(p->pricing.ceiling[static_cast<size_t>(Resource::kReadGib)]), "0.7");
  EXPECT_EQ(p->genesis.supply, 0u);
  EXPECT_EQ(p->trust.pretrust_weight_bps, 1500u);
  EXPECT_EQ(p->trust.min_trust_bps, 0u);
  EXPECT_EQ(p->trust.routing_weight_bps, 2000u);
  auto trust = ParseEconomicPolicy("[trust]\nmin_trust_bps = 3000\nrouting_weight_bps = 0\n",
                                   "economic.toml");
  ASSERT_TRUE(trust.has_value()) << trust.error().message();
  EXPECT_EQ(trust->trust.min_trust_bps, 3000u);
  EXPECT_EQ(trust->trust.routing_weight_bps, 0u);
  EXPECT_EQ(ParseEconomicPolicy(RenderEconomicToml(*trust), "rendered")->trust.min_trust_bps,
            3000u);
  // An empty document is the same policy: every key has its default.
  auto empty = ParseEconomicPolicy("", "economic.toml");
  ASSERT_TRUE(empty.has_value()) << empty.error().message();
  EXPECT_EQ(empty->pricing.floor, p->pricing.floor);
  EXPECT_EQ(empty->pricing.ceiling, p->pricing.ceiling);
  EXPECT_EQ(empty->network_id, p->network_id);
}

TEST(Policy, GenesisAllocationsCommitteeAndNetworkId) {
  const SecretKey authority = Key(3);
  const std::string pk = authority.GetPublicKey().ToHex();
  const std::string pop = core::ToHex(authority.ProvePossession().bytes());
  const std::string text =
      fmt::format(R"(
[genesis]
network = "testnet"
currency = "TST"
decimals = 6
allocations = [{{ address = "{}", amount = "1000.5" }}, {{ address = "{}", amount = 42 }},
               {{ address = "{}", amount = 0.25 }}]
committee = [{{ address = "{}", public_key = "{}", proof_of_possession = "{}", url = "http://127.0.0.1:9000" }}]
[policy]
owner = "{}"
margin_bps = 500
order_fee = "0.000001"
)",
                  AddressOf(1), AddressOf(2), AddressOf(4), AddressOf(3), pk, pop, AddressOf(1));
  EconomicPolicy p = Parse(text);
  ASSERT_EQ(p.genesis.allocations.size(), 3u);
  EXPECT_EQ(p.genesis.allocations[0].amount, 1'000'500'000u);
  EXPECT_EQ(p.genesis.allocations[1].amount, 42'000'000u);
  EXPECT_EQ(p.genesis.allocations[2].amount, 250'000u);  // a TOML float, read from its text
  EXPECT_EQ(p.genesis.supply, 1'000'500'000u + 42'000'000u + 250'000u);
  EXPECT_EQ(p.FormatAmount(p.genesis.supply), "1042.75");
  EXPECT_EQ(p.margin_bps, 500u);
  EXPECT_EQ(p.order_fee, 1u);
  ASSERT_EQ(p.genesis.committee.size(), 1u);
  // Prices default to the embedded figures at this currency's scale.
  EXPECT_EQ(p.FormatPrice(p.pricing.floor[0]), "0.00001");
  // The network id is the hash of the genesis: any change to it is another network.
  EconomicPolicy again = Parse(text);
  EXPECT_EQ(p.network_id, again.network_id);
  std::string other = text;
  other.replace(other.find("\"1000.5\""), 8, "\"1000.4\"");
  EXPECT_NE(Parse(other).network_id, p.network_id);
  // ...but the policy part is not in it.
  std::string knob = text;
  knob.replace(knob.find("margin_bps = 500"), 16, "margin_bps = 400");
  EXPECT_EQ(Parse(knob).network_id, p.network_id);
  // What `dfrp-market policy` prints parses back to the same policy.
  EconomicPolicy round = Parse(RenderEconomicToml(p));
  EXPECT_EQ(round.network_id, p.network_id);
  EXPECT_EQ(round.pricing.floor, p.pricing.floor);
  EXPECT_EQ(round.pricing.ceiling, p.pricing.ceiling);
  EXPECT_EQ(round.margin_bps, p.margin_bps);
  EXPECT_EQ(round.reward.sigmoid_steepness, p.reward.sigmoid_steepness);
  EXPECT_EQ(RenderEconomicToml(round).substr(RenderEconomicToml(round).find('\n')),
            RenderEconomicToml(p).substr(RenderEconomicToml(p).find('\n')));
}

TEST(Policy, BadInputNamesTheKey) {
  ExpectError("[pricing]\nepoch_second = 60\n", "pricing.epoch_second", "unknown key");
  ExpectError("[pricingg]\n", "pricingg", "unknown key");
  ExpectError("[pricing]\nepoch_seconds = \"60\"\n", "pricing.epoch_seconds", "whole number");
  ExpectError("[pricing]\nepoch_seconds = 0\n", "pricing.epoch_seconds", "out of range");
  ExpectError("[pricing]\nepoch_seconds = -5\n", "pricing.epoch_seconds", "out of range");
  ExpectError("[pricing]\nepoch_seconds = 1.5\n", "pricing.epoch_seconds", "whole number");
  ExpectError("[policy]\nmargin_bps = 10001\n", "policy.margin_bps", "out of range");
  ExpectError("[policy]\nmargin_bps = 100\n", "policy.owner", "needs an owner");
  ExpectError("[policy]\nowner = \"dfrp1qqq\"\n", "policy.owner", "not a dfrp wallet address");
  ExpectError("[pricing.floor]\ncpu_sec = \"0.01\"\n", "pricing.floor.cpu_sec",
              "above its ceiling 0.001");
  ExpectError("[pricing.floor]\ncpu_sec = 0\n", "pricing.floor.cpu_sec", "more than 0");
  ExpectError("[pricing.floor]\ncpu_sec = \"-0.1\"\n", "pricing.floor.cpu_sec", "negative");
  ExpectError("[pricing.floor]\ncpu_sec = -1\n", "pricing.floor.cpu_sec", "negative");
  ExpectError("[pricing.floor]\ncpu_sec = nan\n", "pricing.floor.cpu_sec", "finite");
  ExpectError("[pricing.floor]\ncpu_sec = inf\n", "pricing.floor.cpu_sec", "finite");
  // toml++ itself refuses a float literal past the double range, naming line and column.
  ExpectError("[pricing.floor]\ncpu_sec = 1e400\n", "economic.toml:2:", "1e400");
  ExpectError("[pricing.ceiling]\nproof = \"1e400\"\n", "pricing.ceiling.proof", "too large");
  ExpectError("[pricing.floor]\nmemory_sec = \"1\"\n", "pricing.floor.memory_sec", "unknown key");
  ExpectError("[pricing.floor]\ncpu_sec = true\n", "pricing.floor.cpu_sec", "a boolean");
  ExpectError("[policy]\norder_fee = \"0.0000000001\"\n", "policy.order_fee", "more decimals");
  ExpectError("[genesis]\ndecimals = 13\n", "genesis.decimals", "out of range");
  ExpectError("[reward]\nsigmoid_steepness = 0\n", "reward.sigmoid_steepness", "out of range");
  ExpectError("[reward]\nsigmoid_steepness = nan\n", "reward.sigmoid_steepness", "finite");
  ExpectError("[reward]\nsigmoid_midpoint = \"1\"\n", "reward.sigmoid_midpoint", "a number");
  ExpectError("[compute]\nvector_threshold = 1.5\n", "compute.vector_threshold", "out of range");
  ExpectError("[storage]\nanswer_window_seconds = 4000\n", "storage.answer_window_seconds",
              "shorter than");
  ExpectError("[gossip]\nprobe_timeout_ms = 2000\n", "gossip.probe_timeout_ms", "");
  ExpectError("[trust]\npretrust_weight_bps = 0\n", "trust.pretrust_weight_bps", "out of range");
  ExpectError("[trust]\nmin_trust_bps = 10001\n", "trust.min_trust_bps", "out of range");
  ExpectError("[trust]\nrouting_weigth_bps = 1\n", "trust.routing_weigth_bps", "unknown key");
  ExpectError("pricing = 5\n", "pricing", "must be a table");
  ExpectError("[genesis]\nallocations = 5\n", "genesis.allocations", "must be an array");
  ExpectError("[genesis]\nallocations = [5]\n", "genesis.allocations[0]", "must be a table");
  ExpectError("[genesis]\nallocations = [{ address = \"x\", amount = 1, extra = 2 }]\n",
              "genesis.allocations[0].extra", "unknown key");
  const std::string a = AddressOf(1);
  ExpectError(fmt::format("[genesis]\nallocations = [{{ address = \"{}\", amount = 0 }}]\n", a),
              "genesis.allocations[0].amount", "more than 0");
  ExpectError(fmt::format("[genesis]\nallocations = [{{ address = \"{}\", amount = 1 }}, "
                          "{{ address = \"{}\", amount = 2 }}]\n",
                          a, a),
              "genesis.allocations[1].address", "already");
  ExpectError(fmt::format("[genesis]\ndecimals = 0\nallocations = [{{ address = \"{}\", amount = "
                          "\"18446744073709551615\" }}, {{ address = \"{}\", amount = 1 }}]\n",
                          a, AddressOf(2)),
              "genesis.allocations[1].amount", "past 2^64");
  // A committee member whose proof of possession is for another key.
  const SecretKey k3 = Key(3), k5 = Key(5);
  ExpectError(fmt::format("[genesis]\ncommittee = [{{ address = \"{}\", public_key = \"{}\", "
                          "proof_of_possession = \"{}\", url = \"http://x\" }}]\n",
                          AddressOf(3), k3.GetPublicKey().ToHex(),
                          core::ToHex(k5.ProvePossession().bytes())),
              "genesis.committee[0].proof_of_possession", "does not verify");
  ExpectError(fmt::format("[genesis]\ncommittee = [{{ address = \"{}\", public_key = \"{}\", "
                          "proof_of_possession = \"{}\", url = \"http://x\" }}]\n",
                          AddressOf(5), k3.GetPublicKey().ToHex(),
                          core::ToHex(k3.ProvePossession().bytes())),
              "genesis.committee[0].public_key", "not the key that its address carries");
  ExpectError("[pricing\n", "economic.toml:", "not valid TOML");
}

}  // namespace
}  // namespace dfrp::economy
