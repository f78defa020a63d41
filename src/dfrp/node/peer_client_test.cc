#include "dfrp/node/peer_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace dfrp::node {
namespace {

// A small HTTP/1.1 server on loopback for the client to talk to, with plain sockets (one
// thread per connection). Its paths:
//   /echo        200, the request's body back, kept alive
//   /close       200, "Connection: close", then closes
//   /drop-after  200, kept alive by its headers, but the server closes the connection after it
//   /hang        reads the request, never answers (until the server stops)
//   /slow        answers 200 after 300 ms
//   /503twice    503 for the first two requests of the server's life, then 200
//   /big         200 with a 64 KiB body
//   /garbage     bytes that are not HTTP
//   /take-close  reads the request, then closes without an answer
//   /truncate    200 announcing 100 bytes, sends 10, closes
class TestServer {
 public:
  TestServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 64), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }
  ~TestServer() {
    stopping_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    accept_thread_.join();
    std::vector<std::thread> conns;
    {
      std::lock_guard<std::mutex> l(mu_);
      for (int c : open_) ::shutdown(c, SHUT_RDWR);
      conns.swap(conns_);
    }
    for (auto& t : conns) t.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int accepted() const { return accepted_.load(); }
  int requests(const std::string& path) {
    std::lock_guard<std::mutex> l(mu_);
    return hits_[path];
  }

 private:
  void AcceptLoop() {
    for (;;) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      ++accepted_;
      std::lock_guard<std::mutex> l(mu_);
      open_.push_back(c);
      conns_.emplace_back([this, c] { Serve(c); });
    }
  }
  static bool SendAll(int c, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      const ssize_t n = ::send(c, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }
  static std::string Answer(int status, const std::string& body, bool close = false) {
    return "HTTP/1.1 " + std::to_string(status) +
           " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
           (close ? "Connection: close\r\n" : "") + "\r\n" + body;
  }
  void Serve(int c) {
    std::string in;
    char buf[4096];
    for (;;) {
      size_t head_end;
      while ((head_end = in.find("\r\n\r\n")) == std::string::npos) {
        const ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) return Done(c);
        in.append(buf, static_cast<size_t>(n));
      }
      const std::string head = in.substr(0, head_end);
      size_t length = 0;
      if (auto p = head.find("Content-Length: "); p != std::string::npos)
        length = std::stoul(head.substr(p + 16));
      while (in.size() < head_end + 4 + length) {
        const ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) return Done(c);
        in.append(buf, static_cast<size_t>(n));
      }
      const std::string body = in.substr(head_end + 4, length);
      in.erase(0, head_end + 4 + length);
      const std::string path =
          head.substr(head.find(' ') + 1, head.find(' ', head.find(' ') + 1) - head.find(' ') - 1);
      int hit;
      {
        std::lock_guard<std::mutex> l(mu_);
        hit = ++hits_[path];
      }
      if (path == "/echo") {
        if (!SendAll(c, Answer(200, body))) return Done(c);
      } else if (path == "/close") {
        SendAll(c, Answer(200, "bye", true));
        return Done(c);
      } else if (path == "/drop-after") {
        SendAll(c, Answer(200, "kept?"));
        return Done(c);
      } else if (path == "/hang") {
        while (!stopping_ && ::recv(c, buf, sizeof buf, 0) > 0) {
        }
        return Done(c);
      } else if (path == "/slow") {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        if (!SendAll(c, Answer(200, "slow"))) return Done(c);
      } else if (path == "/503twice") {
        if (!SendAll(c, Answer(hit <= 2 ? 503 : 200, hit <= 2 ? "busy" : "ok"))) return Done(c);
      } else if (path == "/big") {
        if (!SendAll(c, Answer(200, std::string(64 << 10, 'b')))) return Done(c);
      } else if (path == "/take-close") {
        return Done(c);
      } else if (path == "/truncate") {
        SendAll(c, "HTTP/1.1 200 X\r\nContent-Length: 100\r\n\r\n0123456789");
        return Done(c);
      } else if (path == "/garbage") {
        SendAll(c, "NOT HTTP AT ALL\r\n\r\n");
        return Done(c);
      } else {
        if (!SendAll(c, Answer(404, ""))) return Done(c);
      }
    }
  }
  void Done(int c) {
    std::lock_guard<std::mutex> l(mu_);
    ::shutdown(c, SHUT_RDWR);
    std::erase(open_, c);
    ::close(c);
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepted_{0};
  std::thread accept_thread_;
  std::mutex mu_;
  std::vector<std::thread> conns_;
  std::vector<int> open_;
  std::map<std::string, int> hits_;
};

PeerRequest Post(const std::string& url, const std::string& target, std::string body = "") {
  PeerRequest r;
  r.url = url;
  r.method = "POST";
  r.target = target;
  r.body = std::move(body);
  return r;
}

// A port with nothing listening on it (bound, then closed).
std::string DeadUrl() {
  TestServer s;
  return s.url();
}

TEST(SplitPeerUrl, TakesHostAndPortAndRefusesTheRest) {
  auto a = SplitPeerUrl("http://127.0.0.1:7480");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->first, "127.0.0.1");
  EXPECT_EQ(a->second, "7480");
  auto b = SplitPeerUrl("http://[::1]:81/");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->first, "::1");
  EXPECT_EQ(b->second, "81");
  auto c = SplitPeerUrl("http://node.example");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->second, "80");
  for (const char* bad : {"https://a:1", "a:1", "http://", "http://a:0", "http://a:65536",
                          "http://a:x", "http://a:1/v1", "http://[::1", "http://[::1]x"}) {
    auto r = SplitPeerUrl(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code(), core::Status::Code::kInvalidArgument) << bad;
    EXPECT_NE(r.error().message().find("http://host:port"), std::string::npos) << bad;
  }
}

TEST(PeerClient, KeepsOneConnectionAliveForSequentialCalls) {
  TestServer server;
  PeerClient client;
  for (int i = 0; i < 20; ++i) {
    auto r = client.Call(Post(server.url(), "/echo", "hello " + std::to_string(i)));
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "hello " + std::to_string(i));
  }
  EXPECT_EQ(server.accepted(), 1);
  const auto s = client.stats();
  EXPECT_EQ(s.requests, 20u);
  EXPECT_EQ(s.answered, 20u);
  EXPECT_EQ(s.connects, 1u);
  EXPECT_EQ(s.reused, 19u);
}

TEST(PeerClient, ConcurrentCallsUseAtMostTheConnectionCap) {
  TestServer server;
  PeerClient client({.max_connections_per_peer = 2});
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) {
        auto r = client.Call(Post(server.url(), "/echo", std::to_string(t * 100 + i)));
        if (r && r->status == 200 && r->body == std::to_string(t * 100 + i)) ++ok;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 40);
  EXPECT_LE(server.accepted(), 2);
  EXPECT_EQ(client.stats().connects, static_cast<uint64_t>(server.accepted()));
}

TEST(PeerClient, ABoundedQueueRefusesAtOnceWhatDoesNotFit) {
  // One connection, busy for 300 ms; four may wait; the other five of ten fail at once.
  TestServer server;
  PeerClient client({.max_connections_per_peer = 1, .max_queue_per_peer = 4});
  std::mutex mu;
  std::vector<core::Result<HttpResponse>> results;
  std::atomic<int> done{0};
  for (int i = 0; i < 10; ++i)
    client.Send(Post(server.url(), "/slow"), [&](core::Result<HttpResponse> r) {
      std::lock_guard<std::mutex> l(mu);
      results.push_back(std::move(r));
      ++done;
    });
  while (done.load() < 10) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  int answered = 0, full = 0;
  for (const auto& r : results) {
    if (r) {
      ++answered;
    } else {
      EXPECT_TRUE(r.error().IsUnavailable()) << r.error().ToString();
      EXPECT_TRUE(r.error().IsRetryable());
      EXPECT_NE(r.error().message().find("queue is full"), std::string::npos);
      ++full;
    }
  }
  EXPECT_EQ(answered, 5);
  EXPECT_EQ(full, 5);
  EXPECT_EQ(client.stats().queue_full, 5u);
}

TEST(PeerClient, ARefusedConnectionIsRetriedWithBackoffThenUnavailable) {
  const std::string dead = DeadUrl();
  PeerClient client({.retries = 2, .backoff_ms = 10});
  auto r = client.Call(Post(dead, "/echo", "x"));  // never sent: retried though a POST
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().IsUnavailable()) << r.error().ToString();
  EXPECT_NE(r.error().message().find(dead), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find("3 tries"), std::string::npos) << r.error().message();
  EXPECT_EQ(client.stats().retries, 2u);
  EXPECT_EQ(client.stats().connects, 3u);
}

TEST(PeerClient, ATimeoutRetriesOnlyAnIdempotentRequest) {
  TestServer server;
  PeerClient client({.request_timeout_ms = 200, .retries = 2, .backoff_ms = 10});
  auto once = client.Call(Post(server.url(), "/hang"));
  ASSERT_FALSE(once.has_value());
  EXPECT_TRUE(once.error().IsUnavailable());
  EXPECT_NE(once.error().message().find("no answer within 200 ms"), std::string::npos)
      << once.error().message();
  EXPECT_NE(once.error().message().find("1 try"), std::string::npos) << once.error().message();
  EXPECT_EQ(server.requests("/hang"), 1);

  PeerRequest again = Post(server.url(), "/hang");
  again.idempotent = true;
  auto thrice = client.Call(again);
  ASSERT_FALSE(thrice.has_value());
  EXPECT_NE(thrice.error().message().find("3 tries"), std::string::npos)
      << thrice.error().message();
  // The server saw the retries (each on a new connection: a timed-out one is closed).
  for (int i = 0; i < 100 && server.requests("/hang") < 4; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(server.requests("/hang"), 4);
}

TEST(PeerClient, A503IsRetriedForAnIdempotentRequestAndReturnedOtherwise) {
  {
    TestServer server;
    PeerClient client({.retries = 2, .backoff_ms = 10});
    PeerRequest r = Post(server.url(), "/503twice");
    r.idempotent = true;
    auto got = client.Call(r);
    ASSERT_TRUE(got.has_value()) << got.error().ToString();
    EXPECT_EQ(got->status, 200);
    EXPECT_EQ(server.requests("/503twice"), 3);
  }
  {
    TestServer server;
    PeerClient client({.retries = 2, .backoff_ms = 10});
    auto got = client.Call(Post(server.url(), "/503twice"));
    ASSERT_TRUE(got.has_value()) << got.error().ToString();
    EXPECT_EQ(got->status, 503);  // the caller decides what a POST's 503 means
    EXPECT_EQ(server.requests("/503twice"), 1);
  }
}

TEST(PeerClient, OversizedAndMalformedAnswersAreIOErrorsNotRetried) {
  TestServer server;
  PeerClient client({.retries = 2, .backoff_ms = 10, .max_body_bytes = 1024});
  PeerRequest big;
  big.url = server.url();
  big.target = "/big";
  auto r = client.Call(big);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), core::Status::Code::kIOError) << r.error().ToString();
  EXPECT_NE(r.error().message().find("over 1024 bytes"), std::string::npos);
  EXPECT_EQ(server.requests("/big"), 1);
  PeerRequest garbage = big;
  garbage.target = "/garbage";
  auto g = client.Call(garbage);
  ASSERT_FALSE(g.has_value());
  EXPECT_EQ(g.error().code(), core::Status::Code::kIOError) << g.error().ToString();
  EXPECT_EQ(server.requests("/garbage"), 1);
}

TEST(PeerClient, AKeptConnectionThePeerClosedIsReplacedWithoutAFailure) {
  TestServer server;
  PeerClient client({.retries = 0});
  auto first = client.Call(Post(server.url(), "/drop-after"));
  ASSERT_TRUE(first.has_value()) << first.error().ToString();
  // The server closed it after answering; the client kept it. The next call finds it dead
  // and goes again on a new connection, though retries are 0 and the request is a POST.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto second = client.Call(Post(server.url(), "/echo", "again"));
  ASSERT_TRUE(second.has_value()) << second.error().ToString();
  EXPECT_EQ(second->body, "again");
  EXPECT_EQ(server.accepted(), 2);
  auto closed = client.Call(Post(server.url(), "/close"));
  ASSERT_TRUE(closed.has_value());
  auto third = client.Call(Post(server.url(), "/echo", "3"));
  ASSERT_TRUE(third.has_value()) << third.error().ToString();
  EXPECT_EQ(server.accepted(), 3);  // "Connection: close" is not kept
}

TEST(PeerClient, ARequestThePeerTookIsNotSentAgainUnlessIdempotent) {
  TestServer server;
  PeerClient client({.retries = 2, .backoff_ms = 10});
  // Keep a connection alive first, so the next POST goes on a reused one.
  ASSERT_TRUE(client.Call(Post(server.url(), "/echo", "warm")).has_value());
  auto r = client.Call(Post(server.url(), "/take-close"));
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().IsUnavailable()) << r.error().ToString();
  EXPECT_EQ(server.requests("/take-close"), 1);  // the peer may have acted on it: once only
  PeerRequest again = Post(server.url(), "/take-close");
  again.idempotent = true;
  EXPECT_FALSE(client.Call(again).has_value());
  EXPECT_EQ(server.requests("/take-close"), 4);  // 1 + 3 tries
}

TEST(PeerClient, AnAnswerCutShortIsUnavailableAndRetriedWhenIdempotent) {
  TestServer server;
  PeerClient client({.retries = 2, .backoff_ms = 10});
  PeerRequest get;
  get.url = server.url();
  get.target = "/truncate";
  auto r = client.Call(get);
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().IsUnavailable()) << r.error().ToString();
  EXPECT_NE(r.error().message().find("in the middle of the answer"), std::string::npos)
      << r.error().message();
  EXPECT_EQ(server.requests("/truncate"), 3);
  PeerRequest head = get;
  head.method = "HEAD";
  head.target = "/echo";
  auto h = client.Call(head);
  ASSERT_TRUE(h.has_value()) << h.error().ToString();
  EXPECT_EQ(h->status, 200);
}

TEST(PeerClient, BadRequestsFailAtOnceAndStoppingFailsWhatIsInFlight) {
  TestServer server;
  std::atomic<int> failed{0};
  {
    PeerClient client;
    auto bad = client.Call(Post("ftp://x", "/"));
    ASSERT_FALSE(bad.has_value());
    EXPECT_EQ(bad.error().code(), core::Status::Code::kInvalidArgument);
    PeerRequest no_slash = Post(server.url(), "v1");
    EXPECT_FALSE(client.Call(no_slash).has_value());
    PeerRequest method = Post(server.url(), "/echo");
    method.method = "FETCH ME";
    EXPECT_FALSE(client.Call(method).has_value());
    for (int i = 0; i < 3; ++i)
      client.Send(Post(server.url(), "/hang"), [&](core::Result<HttpResponse> r) {
        if (!r && r.error().IsUnavailable()) ++failed;
      });
    for (int i = 0; i < 100 && server.requests("/hang") < 3; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }  // the destructor fails the three hanging calls and waits for their callbacks
  EXPECT_EQ(failed.load(), 3);
}

}  // namespace
}  // namespace dfrp::node
