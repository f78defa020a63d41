#include "dfrp/wallet/address.h"

#include <gtest/gtest.h>

namespace dfrp::wallet {
namespace {

// BIP-350 test vectors: valid bech32m strings.
TEST(Bech32m, Bip350ValidVectors) {
  for (const char* s : {
           "A1LQFN3A",
           "a1lqfn3a",
           "an83characterlonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11sg7"
           "hg6",
           "abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx",
           "11lllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllud"
           "sr8",
           "split1checkupstagehandshakeupstreamerranterredcaperredlc445v",
           "?1v759aa",
       }) {
    auto d = Bech32mDecode(s);
    ASSERT_TRUE(d.has_value()) << s << ": " << d.error().message();
    // Re-encoding gives the lowercase form back.
    std::string lower(s);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    EXPECT_EQ(Bech32mEncode(d->hrp, d->data), lower);
  }
}

// BIP-350 test vectors: invalid bech32m strings (with the reason BIP-350 gives).
TEST(Bech32m, Bip350InvalidVectors) {
  for (std::string s : {
           std::string("\x20"
                       "1xj0phk"),  // HRP character out of range
           std::string("\x7f"
                       "1g6xzxy"),  // HRP character out of range
           std::string("\x80"
                       "1vctc34"),  // HRP character out of range
           std::string("an84characterslonghumanreadablepartthatcontainsthetheexcludedcharactersbioa"
                       "ndnumber11d6pts4"),  // too long
           std::string("qyrz8wqd2c9m"),      // no separator
           std::string("1qyrz8wqd2c9m"),     // empty HRP
           std::string("y1b0jsk6g"),         // invalid data character
           std::string("lt1igcx5c0"),        // invalid data character
           std::string("in1muywd"),          // too short checksum
           std::string("mm1crxm3i"),         // invalid character in checksum
           std::string("au1s5cgom"),         // invalid character in checksum
           std::string("M1VUXWEZ"),          // checksum computed with uppercase HRP
           std::string("16plkw9"),           // empty HRP
           std::string("1p2gdwpf"),          // empty HRP
       }) {
    EXPECT_FALSE(Bech32mDecode(s).has_value()) << s;
  }
  // A bech32 (BIP-173, constant 1) string is not bech32m.
  EXPECT_FALSE(Bech32mDecode("a12uel5l").has_value());
}

crypto::bls::PublicKey TestKey() {
  std::string ikm(32, 'k');
  return crypto::bls::SecretKey::FromIkm(core::AsBytes(ikm))->GetPublicKey();
}

TEST(Address, RoundTripAndShape) {
  auto pk = TestKey();
  std::string a = AddressOf(pk);
  EXPECT_EQ(a.size(), 88u);
  EXPECT_TRUE(a.starts_with("dfrp1"));
  auto back = PublicKeyFromAddress(a);
  ASSERT_TRUE(back.has_value()) << back.error().message();
  EXPECT_EQ(*back, pk);
  std::string upper = a;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_TRUE(PublicKeyFromAddress(upper).has_value());
}

TEST(Address, EverySingleMistypedCharacterIsCaught) {
  std::string a = AddressOf(TestKey());
  const std::string charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
  for (size_t i = 5; i < a.size(); ++i) {
    for (char c : charset) {
      if (c == a[i]) continue;
      std::string typo = a;
      typo[i] = c;
      ASSERT_FALSE(PublicKeyFromAddress(typo).has_value()) << "position " << i << " " << c;
    }
  }
  EXPECT_FALSE(PublicKeyFromAddress("xfrp" + a.substr(4)).has_value());
  EXPECT_FALSE(PublicKeyFromAddress(a.substr(0, 60)).has_value());
}

TEST(Address, WrongPrefixOrLengthIsRefused) {
  std::vector<uint8_t> five;
  ASSERT_TRUE(ConvertBits({1, 2, 3}, 8, 5, true, &five));
  auto r = PublicKeyFromAddress(Bech32mEncode("dfrp", five));
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("48-byte"), std::string::npos);
  auto pk = TestKey();
  five.clear();
  ConvertBits({pk.bytes().begin(), pk.bytes().end()}, 8, 5, true, &five);
  r = PublicKeyFromAddress(Bech32mEncode("bc", five));
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("prefix"), std::string::npos);
}

}  // namespace
}  // namespace dfrp::wallet
