// Test helpers: a committee of four and certificates of job settlements it signs, for the
// tests of fraud records (compute/fraud_test.cc, node/fraud_book_test.cc).
#pragma once

#include <gtest/gtest.h>

#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dfrp/core/bytes.h"
#include "dfrp/crypto/bls.h"
#include "dfrp/ledger/escrow.h"
#include "dfrp/ledger/job_claim.h"
#include "dfrp/ledger/messages.h"

namespace dfrp::compute::testing {

inline crypto::bls::SecretKey FraudKey(int i) {
  std::string ikm(32, static_cast<char>(i + 1));
  ikm[0] = 'f';
  return *crypto::bls::SecretKey::FromIkm(core::AsBytes(ikm));
}

// Authorities are keys 100..103; claims are signed by any other key.
class FraudFixture {
 public:
  explicit FraudFixture(crypto::Hash net, crypto::Hash job = crypto::Sha256Of("a job"))
      : net_(net), job_(job) {
    std::vector<std::pair<std::string, std::string>> members;
    for (int a = 0; a < 4; ++a)
      members.push_back(
          {FraudKey(100 + a).GetPublicKey().ToHex(), FraudKey(100 + a).ProvePossession().ToHex()});
    auto c = ledger::Committee::Make(0, members);
    EXPECT_TRUE(c.has_value()) << c.error().ToString();
    if (c) committee_ = *c;
  }
  const ledger::Committee& committee() const { return committee_; }
  const crypto::Hash& net() const { return net_; }
  const crypto::Hash& job() const { return job_; }

  // A claim for the job signed by key `signer`, with result root SHA-256(`result`).
  std::string Claim(int signer, const std::string& result, uint32_t ranks = 2) const {
    ledger::ResultClaim c;
    c.job_id = job_;
    c.result_root = crypto::Sha256Of(result);
    c.ranks = ranks;
    ledger::SignClaim(&c, FraudKey(signer), net_);
    return ledger::EncodeClaim(c, net_);
  }
  // The settlement of `escrow` certified by the authorities `signers`, on the wire; with fewer
  // than a quorum, built by hand as a forger would (the aggregate of the votes it has).
  std::string Certify(ledger::SettleKind kind, const std::string& proof,
                      const std::vector<uint32_t>& signers, uint64_t epoch = 3,
                      const std::string& escrow = "escrow") const {
    const ledger::Settlement s =
        ledger::MakeSettlement(crypto::Sha256Of(escrow), 0, kind, epoch, proof, "", net_);
    std::vector<ledger::Vote> votes;
    for (uint32_t a : signers)
      votes.push_back(
          ledger::SignVote(s.hash, epoch, a, FraudKey(100 + static_cast<int>(a)), net_));
    if (signers.size() < committee_.quorum()) {
      ledger::SettleCertificate forged;
      forged.settlement = s;
      forged.epoch = epoch;
      forged.signers.assign(committee_.size(), false);
      std::vector<crypto::bls::Signature> sigs;
      for (const ledger::Vote& v : votes) {
        forged.signers[v.authority] = true;
        sigs.push_back(*crypto::bls::Signature::FromBytes(std::as_bytes(std::span(v.signature))));
      }
      forged.aggregate = crypto::bls::AggregateSignatures(sigs)->bytes();
      return ledger::EncodeSettleCertificate(forged, net_);
    }
    auto cert = ledger::MakeSettleCertificate(s, votes, committee_.AtEpoch(epoch));
    EXPECT_TRUE(cert.has_value()) << cert.error().ToString();
    return cert ? ledger::EncodeSettleCertificate(*cert, net_) : std::string();
  }
  // A certified refund on a fraud proof: provider key `provider`, verifier key `verifier`.
  std::string FraudRefund(int provider = 1, int verifier = 2,
                          const std::string& escrow = "escrow") const {
    return Certify(ledger::SettleKind::kJobRefund,
                   Claim(provider, "random bytes") + Claim(verifier, "the truth"), {0, 1, 2}, 3,
                   escrow);
  }

 private:
  crypto::Hash net_{}, job_{};
  ledger::Committee committee_;
};

}  // namespace dfrp::compute::testing
