// CheckFraudCertificate: a committee's certificate of a refund on a fraud proof is a fraud
// record anyone can check alone; anything else (a release, a refund for a missing claim, a
// certificate signed by fewer than a quorum, a flipped byte) is refused.
#include "dfrp/compute/fraud.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "dfrp/core/bytes.h"
#include "dfrp/crypto/bls.h"
#include "dfrp/ledger/job_claim.h"

namespace dfrp::compute {
namespace {

namespace bls = crypto::bls;

bls::SecretKey FraudKey(int i) {
  std::string ikm(32, static_cast<char>(i + 1));
  ikm[0] = 'f';
  return *bls::SecretKey::FromIkm(core::AsBytes(ikm));
}

class FraudRecordTest : public ::testing::Test {
 protected:
  void SetUp() override {
    net_ = crypto::Sha256Of("fraud test network");
    job_ = crypto::Sha256Of("a job");
    std::vector<std::pair<std::string, std::string>> members;
    for (int a = 0; a < 4; ++a)
      members.push_back(
          {FraudKey(100 + a).GetPublicKey().ToHex(), FraudKey(100 + a).ProvePossession().ToHex()});
    auto c = ledger::Committee::Make(0, members);
    ASSERT_TRUE(c.has_value()) << c.error().ToString();
    committee_ = *c;
  }
  // A claim for the job signed by key `signer`, with result root SHA-256(`result`).
  std::string Claim(int signer, const std::string& result, uint32_t ranks = 2) {
    ledger::ResultClaim c;
    c.job_id = job_;
    c.result_root = crypto::Sha256Of(result);
    c.ranks = ranks;
    ledger::SignClaim(&c, FraudKey(signer), net_);
    return ledger::EncodeClaim(c, net_);
  }
  // The settlement certified by the authorities `signers`, on the wire.
  std::string Certify(ledger::SettleKind kind, const std::string& proof,
                      const std::vector<uint32_t>& signers, uint64_t epoch = 3) {
    const ledger::Settlement s =
        ledger::MakeSettlement(crypto::Sha256Of("escrow"), 0, kind, epoch, proof, "", net_);
    std::vector<ledger::Vote> votes;
    for (uint32_t a : signers)
      votes.push_back(
          ledger::SignVote(s.hash, epoch, a, FraudKey(100 + static_cast<int>(a)), net_));
    if (signers.size() < committee_.quorum()) {
      // Fewer than a quorum: the certificate built by hand, as a forger would, with the
      // aggregate of the votes it has.
      ledger::SettleCertificate forged;
      forged.settlement = s;
      forged.epoch = epoch;
      forged.signers.assign(committee_.size(), false);
      std::vector<bls::Signature> sigs;
      for (const ledger::Vote& v : votes) {
        forged.signers[v.authority] = true;
        sigs.push_back(*bls::Signature::FromBytes(std::as_bytes(std::span(v.signature))));
      }
      forged.aggregate = bls::AggregateSignatures(sigs)->bytes();
      return ledger::EncodeSettleCertificate(forged, net_);
    }
    auto cert = ledger::MakeSettleCertificate(s, votes, committee_.AtEpoch(epoch));
    EXPECT_TRUE(cert.has_value()) << cert.error().ToString();
    return cert ? ledger::EncodeSettleCertificate(*cert, net_) : std::string();
  }

  crypto::Hash net_{}, job_{};
  ledger::Committee committee_;
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
