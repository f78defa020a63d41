// FraudBook on a real folder: a record is kept (its file is the certificate, named by its
// hash) and counted once, a forged one is refused and counted as refused, a restart takes the
// kept records back and names a damaged file, and delivery to a peer that does not answer is
// counted as failed and tried again.
#include "dfrp/node/fraud_book.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <thread>

#include "dfrp/compute/fraud_test_util.h"
#include "dfrp/core/bytes.h"
#include "dfrp/core/clock.h"

namespace dfrp::node {
namespace {

using compute::testing::FraudFixture;
using compute::testing::FraudKey;

class FraudBookTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dfrp-fraud-book-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = std::string(tmpl) + "/fraud";
  }
  void TearDown() override { std::system(("rm -rf " + dir_.substr(0, dir_.rfind('/'))).c_str()); }

  std::unique_ptr<FraudBook> Open(std::vector<std::string> peers = {}) {
    FraudBookOptions o;
    o.fs = core::DefaultFileSystem();
    o.clock = core::SystemClock();
    o.dir = dir_;
    o.committee = f_.committee();
    o.network_id = f_.net();
    o.spread_interval_ms = 50;
    o.peers = [peers] { return peers; };
    auto b = FraudBook::Open(std::move(o));
    EXPECT_TRUE(b.has_value()) << b.error().ToString();
    return b ? std::move(*b) : nullptr;
  }

  FraudFixture f_{crypto::Sha256Of("fraud book test network")};
  std::string dir_;
};

TEST_F(FraudBookTest, KeepsACertifiedRecordOnceAndRefusesAForgedOne) {
  auto book = Open();
  ASSERT_NE(book, nullptr);
  const std::string wire = f_.FraudRefund(1, 2);
  auto added = book->Add(wire);
  ASSERT_TRUE(added.has_value()) << added.error().ToString();
  EXPECT_TRUE(added->added);
  EXPECT_EQ(added->spread_to, 0u);  // no peer
  const ledger::KeyBytes provider = FraudKey(1).GetPublicKey().bytes();
  EXPECT_EQ(book->CountFor(provider), 1u);
  EXPECT_EQ(book->CountFor(FraudKey(2).GetPublicKey().bytes()), 0u);  // the verifier
  EXPECT_TRUE(book->HasEscrow(crypto::Sha256Of("escrow")));
  EXPECT_FALSE(book->HasEscrow(crypto::Sha256Of("another escrow")));
  // Kept as the certificate's bytes, named by their hash.
  auto kept = core::ReadWholeFile(core::DefaultFileSystem(),
                                  dir_ + "/" + core::ToHex(crypto::Sha256Of(wire)) + ".cert");
  ASSERT_TRUE(kept.has_value()) << kept.error().ToString();
  EXPECT_EQ(*kept, wire);
  // The same record again: known, not counted twice.
  auto again = book->Add(wire);
  ASSERT_TRUE(again.has_value());
  EXPECT_FALSE(again->added);
  EXPECT_EQ(book->CountFor(provider), 1u);
  // Two signers of four: refused, counted as refused, nothing kept.
  auto forged = book->Add(
      f_.Certify(ledger::SettleKind::kJobRefund, f_.Claim(3, "x") + f_.Claim(2, "y"), {0, 1}));
  EXPECT_FALSE(forged.has_value());
  EXPECT_EQ(book->CountFor(FraudKey(3).GetPublicKey().bytes()), 0u);
  const nlohmann::json s = book->Summary();
  EXPECT_EQ(s["records"], 1u);
  EXPECT_EQ(s["refused"], 1u);
  const nlohmann::json listed = book->Json(ledger::AddressOfKey(provider), 10);
  EXPECT_EQ(listed["total"], 1u);
  EXPECT_EQ(listed["records"][0]["certificate"], core::ToHex(wire));
  EXPECT_EQ(book->Json("dfrp1nobody", 10)["total"], 0u);
}

TEST_F(FraudBookTest, ARestartTakesTheRecordsBackAndNamesADamagedFile) {
  const std::string wire = f_.FraudRefund(1, 2);
  {
    auto book = Open();
    ASSERT_NE(book, nullptr);
    ASSERT_TRUE(book->Add(wire).has_value());
  }
  // A damaged record and an interrupted write's temporary file.
  core::FileSystem* fs = core::DefaultFileSystem();
  ASSERT_TRUE(
      core::WriteFileAtomic(fs, dir_ + "/" + std::string(64, 'a') + ".cert", "garbage").ok());
  ASSERT_TRUE(core::WriteFileAtomic(fs, dir_ + "/half-written.tmp", wire.substr(0, 10)).ok());
  auto book = Open();
  ASSERT_NE(book, nullptr);
  EXPECT_EQ(book->CountFor(FraudKey(1).GetPublicKey().bytes()), 1u);
  ASSERT_EQ(book->notes().size(), 1u);
  EXPECT_NE(book->notes()[0].find(std::string(64, 'a') + ".cert"), std::string::npos)
      << book->notes()[0];
}

TEST_F(FraudBookTest, ARecordGoesToEveryPeerAndAFailedDeliveryIsTriedAgain) {
  // Nothing listens on port 1 of loopback: every delivery fails, and is tried on each tick.
  auto book = Open({"http://127.0.0.1:1"});
  ASSERT_NE(book, nullptr);
  book->Start();
  auto added = book->Add(f_.FraudRefund(1, 2));
  ASSERT_TRUE(added.has_value()) << added.error().ToString();
  EXPECT_EQ(added->spread_to, 1u);
  uint64_t failed = 0;
  for (int i = 0; i < 200 && failed < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    failed = book->Summary()["send_failed"].get<uint64_t>();
  }
  EXPECT_GE(failed, 2u) << book->Summary().dump();
  EXPECT_EQ(book->Summary()["delivered"], 0u);
  book->Stop();
}

}  // namespace
}  // namespace dfrp::node
