#include "dfrp/core/status.h"

#include <gtest/gtest.h>

namespace dfrp::core {
namespace {

TEST(StatusTest, OkIsOkAndHasEmptyMessage) {
  Status s = Status::OK();
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.message(), "");
  EXPECT_EQ(s.ToString(), "OK");
  EXPECT_EQ(ExitCodeFor(s), kExitOk);
}

TEST(StatusTest, EachCodeMapsToItsExitCode) {
  EXPECT_EQ(ExitCodeFor(Status::InvalidArgument("x")), kExitUsage);
  EXPECT_EQ(ExitCodeFor(Status::Corruption("x")), kExitIntegrity);
  EXPECT_EQ(ExitCodeFor(Status::NotFound("x")), kExitNotFound);
  EXPECT_EQ(ExitCodeFor(Status::NoSpace("x")), kExitCapacity);
  EXPECT_EQ(ExitCodeFor(Status::Busy("x")), kExitBusy);
  EXPECT_EQ(ExitCodeFor(Status::IOError("x")), kExitFailure);
  EXPECT_EQ(ExitCodeFor(Status::Internal("x")), kExitFailure);
}

TEST(StatusTest, FromErrnoClassifiesSpaceAndMissing) {
  EXPECT_TRUE(Status::FromErrno(ENOSPC, "cannot write", "/x").IsNoSpace());
  EXPECT_TRUE(Status::FromErrno(ENOENT, "cannot open", "/x").IsNotFound());
  Status eio = Status::FromErrno(EIO, "cannot read", "/d/seg");
  EXPECT_EQ(eio.code(), Status::Code::kIOError);
  EXPECT_NE(eio.message().find("/d/seg"), std::string::npos);
}

TEST(StatusTest, WithContextPrefixesAndKeepsCode) {
  Status s = Status::Corruption("bad crc").WithContext("volume 1");
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_EQ(s.message(), "volume 1: bad crc");
}

Result<int> Half(int x) {
  if (x % 2) return Err(Status::InvalidArgument("odd"));
  return x / 2;
}
Result<int> Quarter(int x) {
  DFRP_ASSIGN_OR_RETURN(int h, Half(x));
  DFRP_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

TEST(StatusTest, AssignOrReturnPropagates) {
  EXPECT_EQ(*Quarter(8), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message(), "odd");
}

}  // namespace
}  // namespace dfrp::core
