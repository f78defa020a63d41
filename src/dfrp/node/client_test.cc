#include "dfrp/node/client.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

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
  auto d = FindDaemon(core::DefaultFileSystem(), dir_);
  ASSERT_TRUE(d.has_value());
  EXPECT_FALSE(d->has_value());
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/dfrpd.lock")) << "a client never creates it";
}

TEST_F(FindDaemonTest, AFreeLockMeansNoDaemonWhateverDfrpdJsonSays) {
  Write("dfrpd.lock", "");
  Write("dfrpd.json", R"({"pid": 1, "api_addr": "127.0.0.1:1", "url": "http://127.0.0.1:1"})");
  auto d = FindDaemon(core::DefaultFileSystem(), dir_);
  ASSERT_TRUE(d.has_value());
  EXPECT_FALSE(d->has_value());
}

TEST_F(FindDaemonTest, AHeldLockFindsTheDaemonAndItsToken) {
  HoldLock();
  Write("dfrpd.json",
        R"({"pid": 42, "api_addr": "127.0.0.1:7480", "url": "http://127.0.0.1:7480"})");
  Write("api-token", std::string(64, 'a') + "\n");
  auto d = FindDaemon(core::DefaultFileSystem(), dir_);
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
  auto d = FindDaemon(core::DefaultFileSystem(), dir_);
  ASSERT_FALSE(d.has_value());
  EXPECT_NE(d.error().message().find("dfrpd.json"), std::string::npos);
}

TEST_F(FindDaemonTest, AnUnreadableTokenIsReportedNotFatal) {
  HoldLock();
  Write("dfrpd.json", R"({"pid": 42, "api_addr": "127.0.0.1:7480"})");
  auto d = FindDaemon(core::DefaultFileSystem(), dir_);
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

// A one-request HTTP server on loopback: reads one request (its header and Content-Length
// bytes of body, or until the client closes), keeps it, and answers `answer` (201 with "{}"
// by default); with `stall`, it then sends nothing more and waits for the client to close.
class OneRequestServer {
 public:
  explicit OneRequestServer(
      std::string answer = "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}",
      bool stall = false)
      : answer_(std::move(answer)),
        stall_(stall),
        acceptor_(ioc_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this] { Serve(); });
  }
  ~OneRequestServer() { Join(); }
  // Waits until the request was served (or the client went away).
  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  DaemonInfo info() const {
    DaemonInfo d;
    d.api_addr = "127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
    d.url = "http://" + d.api_addr;
    return d;
  }
  // What was received; read them after Join().
  std::string header, body;

 private:
  void Serve() {
    boost::asio::ip::tcp::socket s(ioc_);
    acceptor_.accept(s);
    boost::system::error_code ec;
    std::string buf;
    const size_t end = boost::asio::read_until(s, boost::asio::dynamic_buffer(buf), "\r\n\r\n", ec);
    if (ec) return;
    header = buf.substr(0, end);
    body = buf.substr(end);
    const size_t at = header.find("Content-Length: ");
    const size_t length = at == std::string::npos ? 0 : std::stoul(header.substr(at + 16));
    if (body.size() < length) {
      std::string rest(length - body.size(), '\0');
      const size_t n = boost::asio::read(s, boost::asio::buffer(rest), ec);
      body += rest.substr(0, n);
      if (ec) return;  // the client gave up mid-body
    }
    boost::asio::write(s, boost::asio::buffer(answer_), ec);
    if (stall_) {
      char c;
      while (!ec) s.read_some(boost::asio::buffer(&c, 1), ec);  // until the client closes
    }
  }
  std::string answer_;
  bool stall_;
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::thread thread_;
};

TEST(ClientTest, UploadSendsTheBodyOfASequentialFileWithItsLength) {
  OneRequestServer server;
  Client c(server.info());
  const std::string data = std::string(3 << 20, 'x') + "end";  // several pieces
  auto body = core::SequentialFileFromString(data, "input");
  uint64_t last_done = 0, last_total = 0;
  auto r = c.Upload("/v1/shards?name=a", {}, *body, data.size(), [&](uint64_t d, uint64_t t) {
    last_done = d;
    last_total = t;
  });
  server.Join();
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->body, "{}");
  EXPECT_EQ(server.header.rfind("PUT /v1/shards?name=a HTTP/1.1\r\n", 0), 0u) << server.header;
  EXPECT_EQ(server.body, data);
  EXPECT_EQ(last_done, data.size());
  EXPECT_EQ(last_total, data.size());
}

TEST(ClientTest, AnUploadWhoseInputShrankIsRefusedNotSentShort) {
  OneRequestServer server;
  Client c(server.info());
  auto body = core::SequentialFileFromString("only eleven", "input");
  auto r = c.Upload("/v1/shards", {}, *body, 20);
  server.Join();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), core::Status::Code::kInvalidArgument);
  EXPECT_NE(r.error().message().find("shrank"), std::string::npos) << r.error().ToString();
}

// A peer that stops sending mid-body (or before its header) cannot hold a Download that has
// an idle limit: it fails as not answering, with what came before handed to the sink.
TEST(ClientTest, ADownloadFromAStalledPeerEndsAtItsIdleLimit) {
  for (const bool header_too : {false, true}) {
    OneRequestServer server(header_too ? "" : "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc",
                            true);
    ClientOptions o;
    o.idle_timeout_ms = 300;
    Client c(server.info(), o);
    std::string got;
    auto r = c.Download("/v1/shards/x", {}, [&](std::string_view piece) {
      got.append(piece);
      return core::Status::OK();
    });
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), core::Status::Code::kBusy) << r.error().ToString();
    EXPECT_NE(r.error().message().find("no bytes within 300 ms"), std::string::npos)
        << r.error().ToString();
    EXPECT_EQ(got, header_too ? "" : "abc");
  }
}

TEST(ClientTest, UrlEncodeKeepsUnreservedCharacters) {
  EXPECT_EQ(UrlEncode("a-b_c.d~e"), "a-b_c.d~e");
  EXPECT_EQ(UrlEncode("k=v w&x/y"), "k%3Dv%20w%26x%2Fy");
  EXPECT_EQ(UrlEncode("0.5,1,-2"), "0.5%2C1%2C-2");
}

}  // namespace
}  // namespace dfrp::node
