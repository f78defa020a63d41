// The ledger tests' fixture: deterministic keys, a test economic.toml with a committee and
// funded users, and authorities opened on a manual clock in a temporary folder.
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "dfrp/core/clock.h"
#include "dfrp/economy/policy.h"
#include "dfrp/ledger/audit.h"
#include "dfrp/ledger/authority.h"
#include "dfrp/ledger/messages.h"
#include "dfrp/wallet/address.h"

namespace dfrp::ledger::testing {

namespace bls = crypto::bls;

inline bls::SecretKey KeyOf(int i) {
  std::string ikm(32, static_cast<char>(i + 1));
  ikm[0] = 'k';
  return *bls::SecretKey::FromIkm(core::AsBytes(ikm));
}

inline KeyBytes Pub(const bls::SecretKey& k) { return k.GetPublicKey().bytes(); }

// A network of `authorities` authorities (keys 100..) and `users` wallets (keys 0..), each
// user funded with 1000 base units; the order fee is 1 base unit.
// `extra` is appended to the TOML (more [policy] keys, a [storage] table).
inline economy::EconomicPolicy MakePolicy(int authorities, int users, int64_t each = 1000,
                                          const std::string& extra = "") {
  std::string toml = "[genesis]\ndecimals = 0\nallocations = [";
  for (int u = 0; u < users; ++u)
    toml += fmt::format("{}{{ address = \"{}\", amount = \"{}\" }}", u ? ", " : "",
                        wallet::AddressOf(KeyOf(u).GetPublicKey()), each);
  toml += "]\ncommittee = [";
  for (int a = 0; a < authorities; ++a) {
    const bls::SecretKey k = KeyOf(100 + a);
    toml += fmt::format(
        "{}{{ address = \"{}\", public_key = \"{}\", proof_of_possession = \"{}\", url = "
        "\"http://127.0.0.1:{}\" }}",
        a ? ", " : "", wallet::AddressOf(k.GetPublicKey()), k.GetPublicKey().ToHex(),
        k.ProvePossession().ToHex(), 9000 + a);
  }
  toml += "]\n\n[policy]\norder_fee = \"1\"\n" + extra;
  auto p = economy::ParseEconomicPolicy(toml, "test economic.toml");
  EXPECT_TRUE(p.has_value()) << p.error().ToString() << "\n" << toml;
  return p ? *p : economy::EconomicPolicy{};
}

// What an auditor fetches of authority `a`: its logs, accounts and escrows' remainders.
inline AuthorityLog LogOf(Authority& a, const std::string& name) {
  AuthorityLog log;
  log.name = name;
  log.certificates = *a.Log(1, 100000);
  log.settlements = *a.SettleLog(1, 100000);
  // Named: a range-for over *a.Accounts() would outlive the temporary Result.
  const std::vector<AccountInfo> accounts = *a.Accounts(100000);
  for (const auto& acct : accounts) log.accounts[acct.key] = {acct.balance, acct.next_seq};
  for (const auto& wire : log.certificates) {
    auto c = DecodeCertificate(wire, a.network_id());
    if (c && c->order.order.opens_escrow()) {
      const crypto::Hash id = EscrowId(c->order.order.sender, c->order.order.seq);
      log.escrow_remaining[id] = a.Escrow(id)->remaining;
    }
  }
  const auto held = *a.HeldCollateral(100000);
  for (const auto& [id, amount] : held) log.collateral_held[id] = amount;
  return log;
}

class LedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = std::filesystem::temp_directory_path().string() + "/dfrp-ledger-XXXXXX";
    dir_ = mkdtemp(tmpl.data());
  }
  void TearDown() override {
    authorities_.clear();
    std::filesystem::remove_all(dir_);
  }

  void StartCommittee(int n, int users, const std::string& extra = "") {
    policy_ = MakePolicy(n, users, 1000, extra);
    for (int a = 0; a < n; ++a) {
      keys_.push_back(std::make_unique<bls::SecretKey>(KeyOf(100 + a)));
      authorities_.push_back(OpenAuthority(a));
      ASSERT_NE(authorities_.back(), nullptr);
    }
  }
  std::unique_ptr<Authority> OpenAuthority(int a) {
    auto r = Authority::Open({.path = fmt::format("{}/ledger-{}.db", dir_, a),
                              .policy = &policy_,
                              .index = static_cast<uint32_t>(a),
                              .key = keys_[a].get(),
                              .clock = &clock_});
    EXPECT_TRUE(r.has_value()) << r.error().ToString();
    return r ? std::move(*r) : nullptr;
  }
  const crypto::Hash& Net() const { return policy_.network_id; }

  SignedOrder Transfer(int from, int to, uint64_t amount, uint64_t seq, std::string memo = "",
                       uint64_t fee = 1, uint64_t epoch = 0) {
    Order o;
    o.epoch = epoch;
    o.sender = Pub(KeyOf(from));
    o.seq = seq;
    o.fee = fee;
    o.transfer.to = Pub(KeyOf(to));
    o.transfer.amount = amount;
    o.transfer.memo = std::move(memo);
    return SignOrder(o, KeyOf(from), Net());
  }
  // Votes of the listed authorities (each must vote).
  std::vector<Vote> Votes(const SignedOrder& o, const std::vector<int>& who) {
    std::vector<Vote> votes;
    for (int a : who) {
      auto v = authorities_[a]->HandleOrder(o);
      EXPECT_TRUE(v.has_value()) << "authority " << a << ": " << v.error().ToString();
      if (v) votes.push_back(*v);
    }
    return votes;
  }
  Certificate Certify(const SignedOrder& o, const std::vector<int>& who) {
    auto c = MakeCertificate(o, Votes(o, who), authorities_[0]->committee());
    EXPECT_TRUE(c.has_value()) << c.error().ToString();
    return c ? *c : Certificate{};
  }
  void ApplyEverywhere(const Certificate& c) {
    for (auto& a : authorities_) ASSERT_TRUE(a->HandleCertificate(c).has_value());
  }
  // A settlement's certificate from the votes of the listed authorities (each must vote).
  SettleCertificate CertifySettlement(const Settlement& s, const std::vector<int>& who) {
    std::vector<Vote> votes;
    for (int a : who) {
      auto v = authorities_[a]->HandleSettlement(s);
      EXPECT_TRUE(v.has_value()) << "authority " << a << ": " << v.error().ToString();
      if (v) votes.push_back(*v);
    }
    auto c = MakeSettleCertificate(s, votes, authorities_[0]->committee());
    EXPECT_TRUE(c.has_value()) << c.error().ToString();
    return *c;
  }
  void ApplySettleEverywhere(const SettleCertificate& c) {
    for (auto& a : authorities_) {
      auto r = a->HandleSettleCertificate(c);
      ASSERT_TRUE(r.has_value()) << r.error().ToString();
    }
  }
  // Why authority `a` does not vote for `s` (OK when it does).
  core::Status VoteError(int a, const Settlement& s) {
    auto v = authorities_[a]->HandleSettlement(s);
    return v ? core::Status::OK() : v.error();
  }
  int64_t Balance(int a, const KeyBytes& k) { return authorities_[a]->Account(k)->balance; }
  void ExpectConserved() {
    for (size_t a = 0; a < authorities_.size(); ++a)
      EXPECT_TRUE(authorities_[a]->CheckSupply().ok())
          << "authority " << a << ": " << authorities_[a]->CheckSupply().ToString();
  }

  std::string dir_;
  core::ManualClock clock_;
  economy::EconomicPolicy policy_;
  std::vector<std::unique_ptr<bls::SecretKey>> keys_;
  std::vector<std::unique_ptr<Authority>> authorities_;
};

}  // namespace dfrp::ledger::testing
