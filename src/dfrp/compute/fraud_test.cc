// CheckFraudCertificate: a committee's certificate of a refund on a fraud proof is a fraud
// record anyone can check alone; anything else (a release, a refund for a missing claim, a
// certificate signed by fewer than a quorum, a flipped byte) is refused.
#include "dfrp/compute/fraud.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "dfrp/compute/fraud_test_util.h"
#include "dfrp/core/bytes.h"
#include "dfrp/crypto/bls.h"
#include "dfrp/ledger/job_claim.h"

namespace dfrp::compute {
namespace {

using testing::FraudKey;

class FraudRecordTest : public ::testing::Test {
 protected:
  FraudRecordTest() : f_(crypto::Sha256Of("fraud test network")) {}
  std::string Claim(int signer, const std::string& result, uint32_t ranks = 2) {
    return f_.Claim(signer, result, ranks);
  }
  std::string Certify(ledger::SettleKind kind, const std::string& proof,
                      const std::vector<uint32_t>& signers, uint64_t epoch = 3) {
    return f_.Certify(kind, proof, signers, epoch);
  }

  testing::FraudFixture f_;
  const crypto::Hash net_ = f_.net();
  const crypto::Hash job_ = f_.job();
  const ledger::Committee& committee_ = f_.committee();
};

TEST_F(FraudRecordTest, ACertifiedRefundOnAFraudProofIsARecordOfTheProvider) {
  const std::string wire = Certify(ledger::SettleKind::kJobRefund,
                                   Claim(1, "random bytes") + Claim(2, "the truth"), {0, 1, 3});
  auto r = CheckFraudCertificate(wire, committee_, net_);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->provider, FraudKey(1).GetPublicKey().bytes());
  EXPECT_EQ(r->verifier, FraudKey(2).GetPublicKey().bytes());
  EXPECT_EQ(r->job_id, job_);
  EXPECT_EQ(r->escrow_id, crypto::Sha256Of("escrow"));
  EXPECT_EQ(r->claimed_root, crypto::Sha256Of("random bytes"));
  EXPECT_EQ(r->recomputed_root, crypto::Sha256Of("the truth"));
  EXPECT_EQ(r->epoch, 3u);
  EXPECT_EQ(r->id, crypto::Sha256Of(wire));
  const nlohmann::json j = FraudRecordJson(*r);
  EXPECT_EQ(j["provider"], ledger::AddressOfKey(r->provider));
  EXPECT_EQ(j["certificate"], core::ToHex(wire));
  // The rank count alone may differ.
  EXPECT_TRUE(CheckFraudCertificate(Certify(ledger::SettleKind::kJobRefund,
                                            Claim(1, "same", 3) + Claim(2, "same", 2), {0, 1, 2}),
                                    committee_, net_)
                  .has_value());
}

TEST_F(FraudRecordTest, WhatIsNotACertifiedFraudRefundIsRefused) {
  const std::string proof = Claim(1, "random bytes") + Claim(2, "the truth");
  auto refused = [&](const std::string& wire, core::Status::Code code, const std::string& what) {
    auto r = CheckFraudCertificate(wire, committee_, net_);
    ASSERT_FALSE(r.has_value()) << what;
    EXPECT_EQ(r.error().code(), code) << what << ": " << r.error().ToString();
  };
  // A release (the provider was paid) and a refund for a missing claim are no fraud.
  refused(Certify(ledger::SettleKind::kJobRelease, Claim(1, "x"), {0, 1, 2}),
          core::Status::Code::kInvalidArgument, "a release");
  refused(Certify(ledger::SettleKind::kJobRefund, "", {0, 1, 2}),
          core::Status::Code::kInvalidArgument, "a refund with no proof");
  // Claims that agree, or two claims by one key.
  refused(Certify(ledger::SettleKind::kJobRefund, Claim(1, "a") + Claim(2, "a"), {0, 1, 2}),
          core::Status::Code::kInvalidArgument, "claims that agree");
  refused(Certify(ledger::SettleKind::kJobRefund, Claim(1, "a") + Claim(1, "b"), {0, 1, 2}),
          core::Status::Code::kInvalidArgument, "one key");
  // Two signers are fewer than the quorum of four (three): a forger's certificate.
  refused(Certify(ledger::SettleKind::kJobRefund, proof, {0, 1}),
          core::Status::Code::kInvalidArgument, "two signers");
  // A flipped byte anywhere: refused, never a record of someone else.
  const std::string good = Certify(ledger::SettleKind::kJobRefund, proof, {0, 1, 2});
  for (size_t i = 0; i < good.size(); i += 7) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x20);
    auto r = CheckFraudCertificate(bad, committee_, net_);
    EXPECT_FALSE(r.has_value()) << "byte " << i;
  }
  // Truncated, too long, another network.
  refused(good.substr(0, good.size() - 1), core::Status::Code::kInvalidArgument, "truncated");
  refused(std::string(kMaxFraudCertificateBytes + 1, 'x'), core::Status::Code::kInvalidArgument,
          "too long");
  EXPECT_FALSE(CheckFraudCertificate(good, committee_, crypto::Sha256Of("another")).has_value());
}

}  // namespace
}  // namespace dfrp::compute
