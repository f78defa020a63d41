#include "dfrp/node/client.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace dfrp::node {
namespace {

class FindDaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dfrp-client-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (lock_fd_ >= 0) ::close(lock_fd_);
    std::filesystem::remove_all(dir_);
  }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ + "/" + name) << text;
  }
  // Holds the lock as a running daemon would (flock conflicts between open files, even in
  // one process).
  void HoldLock() {
    lock_fd_ = ::open((dir_ + "/dfrpd.lock").c_str(), O_RDWR | O_CREAT, 0644);
    ASSERT_GE(lock_fd_, 0);
    ASSERT_EQ(::flock(lock_fd_, LOCK_EX | LOCK_NB), 0);
  }
  std::string dir_;
  int lock_fd_ = -1;
};

TEST_F(FindDaemonTest, NoLockFileMeansNoDaemon) {
  Write("dfrpd.json", R"({"pid": 1, "api_addr": "127.0.0.1:1", "url": "http://127.0.0.1:1"})");
  auto d = FindDaemon(dir_);
  ASSERT_TRUE(d.has_value());
  EXPECT_FALSE(d->has_value());
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/dfrpd.lock")) << "a client never creates it";
}

TEST_F(FindDaemonTest, AFreeLockMeansNoDaemonWhateverDfrpdJsonSays) {
  Write("dfrpd.lock", "");
  Write("dfrpd.json", R"({"pid": 1, "api_addr": "127.0.0.1:1", "url": "http://127.0.0.1:1"})");
  auto d = FindDaemon(dir_);
  ASSERT_TRUE(d.has_value());
  EXPECT_FALSE(d->has_value());
}

TEST_F(FindDaemonTest, AHeldLockFindsTheDaemonAndItsToken) {
  HoldLock();
  Write("dfrpd.json",
        R"({"pid": 42, "api_addr": "127.0.0.1:7480", "url": "http://127.0.0.1:7480"})");
  Write("api-token", std::string(64, 'a') + "\n");
  auto d = FindDaemon(dir_);
  ASSERT_TRUE(d.has_value()) << d.error().ToString();
  ASSERT_TRUE(d->has_value());
  EXPECT_EQ((*d)->pid, 42);
  EXPECT_EQ((*d)->api_addr, "127.0.0.1:7480");
  EXPECT_EQ((*d)->url, "http://127.0.0.1:7480");
  EXPECT_EQ((*d)->token, std::string(64, 'a'));
  EXPECT_TRUE((*d)->token_error.empty());
}

TEST_F(FindDaemonTest, AHeldLockWithoutDfrpdJsonIsAnErrorNotTheDirectPath) {
  HoldLock();
  auto d = FindDaemon(dir_);
  ASSERT_FALSE(d.has_value());
  EXPECT_NE(d.error().message().find("dfrpd.json"), std::string::npos);
}

TEST_F(FindDaemonTest, AnUnreadableTokenIsReportedNotFatal) {
  HoldLock();
  Write("dfrpd.json", R"({"pid": 42, "api_addr": "127.0.0.1:7480"})");
  auto d = FindDaemon(dir_);
  ASSERT_TRUE(d.has_value() && d->has_value());
  EXPECT_TRUE((*d)->token.empty());
  EXPECT_FALSE((*d)->token_error.empty());
  EXPECT_EQ((*d)->url, "http://127.0.0.1:7480");
}

TEST(ClientTest, ARefusedConnectionSaysTheDaemonIsNotAnswering) {
  // A port nobody listens on: bind one, then close it.
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const auto port = a.local_endpoint().port();
  a.close();
  DaemonInfo info;
  info.api_addr = "127.0.0.1:" + std::to_string(port);
  info.url = "http://" + info.api_addr;
  info.pid = 7;
  Client c(info);
  auto r = c.Request("GET", "/v1/volumes");
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().IsBusy());
  EXPECT_NE(r.error().message().find("is not answering"), std::string::npos);
  EXPECT_NE(r.error().message().find(info.url), std::string::npos);
}

TEST(ClientTest, ErrorAnswersBecomeTheStatusOfTheDirectPath) {
  DaemonInfo info;
  info.url = "http://127.0.0.1:1";
  info.state_dir = "/var/lib/dfrp";
  info.token_error = "cannot open /var/lib/dfrp/api-token: Permission denied";
  HttpResponse r;
  r.status = 404;
  r.body = R"({"error": {"code": "not_found", "exit_code": 4, "message": "shard x is not here"}})";
  core::Status s = StatusFromResponse(info, r);
  EXPECT_TRUE(s.IsNotFound());
  EXPECT_EQ(s.message(), "shard x is not here");
  r.status = 500;
  r.body = R"({"error": {"code": "integrity", "exit_code": 3, "message": "leaf 3"}})";
  EXPECT_TRUE(StatusFromResponse(info, r).IsCorruption());
  r.status = 401;
  r.body = R"({"error": {"code": "unauthorized", "exit_code": 2, "message": "no token"}})";
  s = StatusFromResponse(info, r);
  EXPECT_EQ(core::ExitCodeFor(s), core::kExitUsage);
  EXPECT_NE(s.message().find("dfrpd refused"), std::string::npos);
  EXPECT_NE(s.message().find("/var/lib/dfrp/api-token as the daemon's user"), std::string::npos);
  r.status = 502;
  r.body = "<html>bad gateway</html>";
  s = StatusFromResponse(info, r);
  EXPECT_EQ(s.code(), core::Status::Code::kIOError);
  EXPECT_NE(s.message().find("HTTP 502"), std::string::npos);
}

TEST(ClientTest, UrlEncodeKeepsUnreservedCharacters) {
  EXPECT_EQ(UrlEncode("a-b_c.d~e"), "a-b_c.d~e");
  EXPECT_EQ(UrlEncode("k=v w&x/y"), "k%3Dv%20w%26x%2Fy");
  EXPECT_EQ(UrlEncode("0.5,1,-2"), "0.5%2C1%2C-2");
}

}  // namespace
}  // namespace dfrp::node
