#include "dfrp/crypto/sha256.h"

#include <gtest/gtest.h>

#include "dfrp/core/bytes.h"

namespace dfrp::crypto {
namespace {

using core::ToHex;

TEST(Sha256Test, FipsVectors) {
  EXPECT_EQ(ToHex(HashBytes(Sha256Of(""))),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(ToHex(HashBytes(Sha256Of("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256Test, IncrementalEqualsOneShot) {
  std::string data(10000, 'x');
  Sha256 h;
  h.Update(std::string_view(data).substr(0, 3333));
  h.Update(std::string_view(data).substr(3333));
  EXPECT_EQ(h.Final(), Sha256Of(data));
  h.Update("abc");  // Final resets
  EXPECT_EQ(h.Final(), Sha256Of("abc"));
}

}  // namespace
}  // namespace dfrp::crypto
