// The middleware of api.h: the Host check (DNS rebinding), the Origin check (cross-site
// writes), the admin token, and the body rules.
#include "dfrp/node/api.h"

#include <gtest/gtest.h>

namespace dfrp::node {
namespace {

RouteSpec Spec(const char* methods, bool admin, BodyKind body) {
  RouteSpec s;
  s.methods = methods;
  s.pattern = "/x";
  s.name = std::string(methods) + " /x";
  s.admin = admin;
  s.body = body;
  s.handler = [](const ApiRequest&) { return ApiResponse::Json(200, nullptr); };
  return s;
}

RouteMatch Matched(const RouteSpec& s) {
  RouteMatch m;
  m.spec = &s;
  m.name = s.name;
  return m;
}

TEST(ApiTest, HostNames) {
  EXPECT_EQ(HostName("127.0.0.1:7480"), "127.0.0.1");
  EXPECT_EQ(HostName("LocalHost"), "localhost");
  EXPECT_EQ(HostName("[::1]:7480"), "[::1]");
  EXPECT_EQ(HostName("[::1]"), "[::1]");
  EXPECT_EQ(HostName("node.example.net:80"), "node.example.net");
  for (const char* bad : {"", "[::1", "[::1]x", "a:b", "a:", "a b", "user@host", "a/b"})
    EXPECT_EQ(HostName(bad), "") << bad;
}

TEST(ApiTest, HostCheckRefusesRebindingNames) {
  const RouteSpec s = Spec("GET", false, BodyKind::kNone);
  const RouteMatch m = Matched(s);
  Middleware check = HostCheck("127.0.0.1:7480", {"node1.example.net"});
  auto with_host = [&](std::string_view host, int version = 11) {
    RequestHead h;
    h.method = "GET";
    h.host = host;
    h.version = version;
    return check(h, m);
  };
  for (const char* ok :
       {"127.0.0.1:7480", "127.0.0.1", "localhost:7480", "[::1]:7480", "NODE1.example.net:7480"})
    EXPECT_FALSE(with_host(ok)) << ok;
  for (const char* bad : {"evil.example.com:7480", "127.0.0.1.nip.io:7480", "10.0.0.5:7480",
                          "localhost.evil.com", "127.0.0.1:7480@evil"}) {
    auto r = with_host(bad);
    ASSERT_TRUE(r) << bad;
    EXPECT_EQ(r->status, 421) << bad;
    EXPECT_NE(r->body.find("API_HOSTS"), std::string::npos);
  }
  auto none = with_host("");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 400);
  EXPECT_FALSE(with_host("", 10));  // HTTP/1.0 may omit it
}

TEST(ApiTest, AWildcardListenerTakesIpLiteralsButNotNames) {
  const RouteSpec s = Spec("GET", false, BodyKind::kNone);
  Middleware check = HostCheck("0.0.0.0:7480", {});
  RequestHead h;
  h.method = "GET";
  h.host = "10.0.0.5:7480";
  EXPECT_FALSE(check(h, Matched(s)));
  h.host = "[fd00::5]:7480";
  EXPECT_FALSE(check(h, Matched(s)));
  h.host = "rebound.example.com:7480";
  auto r = check(h, Matched(s));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 421);
  h.host = "1.2.3:7480";  // not a dotted quad: a name
  EXPECT_TRUE(check(h, Matched(s)));
}

TEST(ApiTest, OriginCheckRefusesCrossSiteWrites) {
  const RouteSpec s = Spec("PUT", false, BodyKind::kStream);
  Middleware check = OriginCheck();
  RequestHead h;
  h.method = "PUT";
  h.host = "127.0.0.1:7480";
  EXPECT_FALSE(check(h, Matched(s)));  // no Origin: curl, the CLI
  h.origin = "http://127.0.0.1:7480";
  EXPECT_FALSE(check(h, Matched(s)));  // the dashboard
  h.origin = "HTTP://127.0.0.1:7480";
  EXPECT_TRUE(check(h, Matched(s)));  // a scheme is lowercase in an Origin
  for (const char* bad : {"http://evil.example.com", "null", "http://127.0.0.1:7481",
                          "https://127.0.0.1:7480", "http://127.0.0.1"}) {
    h.origin = bad;
    auto r = check(h, Matched(s));
    ASSERT_TRUE(r) << bad;
    EXPECT_EQ(r->status, 403) << bad;
  }
  h.origin = "";
  h.sec_fetch_site = "cross-site";
  EXPECT_TRUE(check(h, Matched(s)));
  // Reads are not refused (the Host check guards them).
  h.method = "GET";
  h.origin = "http://evil.example.com";
  EXPECT_FALSE(check(h, Matched(s)));
}

TEST(ApiTest, AdminRoutesNeedTheToken) {
  const RouteSpec admin = Spec("POST", true, BodyKind::kJson);
  const RouteSpec open = Spec("GET", false, BodyKind::kNone);
  const std::string token(64, 'a');
  Middleware check = AdminAuth(token, "/state/api-token");
  RequestHead h;
  EXPECT_FALSE(check(h, Matched(open)));
  auto r = check(h, Matched(admin));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  bool has_challenge = false;
  for (const auto& [k, v] : r->headers) has_challenge |= k == "WWW-Authenticate" && v == "Bearer";
  EXPECT_TRUE(has_challenge);
  const std::string good = "Bearer " + token, bad = "Bearer " + std::string(64, 'b'),
                    shorter = "Bearer " + token.substr(1);
  h.authorization = good;
  EXPECT_FALSE(check(h, Matched(admin)));
  h.authorization = bad;
  EXPECT_TRUE(check(h, Matched(admin)));
  h.authorization = shorter;
  EXPECT_TRUE(check(h, Matched(admin)));
}

TEST(ApiTest, BodyRules) {
  Middleware check = BodyRules();
  const RouteSpec none = Spec("GET", false, BodyKind::kNone);
  const RouteSpec json = Spec("POST", false, BodyKind::kJson);
  const RouteSpec stream = Spec("PUT", false, BodyKind::kStream);
  RequestHead h;
  h.content_length = 10;
  auto r = check(h, Matched(none));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_TRUE(r->close);
  EXPECT_FALSE(check(h, Matched(json)));
  h.content_length = kMaxJsonBody + 1;
  EXPECT_EQ(check(h, Matched(json))->status, 413);
  EXPECT_FALSE(check(h, Matched(stream)));
  h.content_length.reset();
  h.chunked = true;
  h.transfer_encoding = "chunked";
  EXPECT_EQ(check(h, Matched(stream))->status, 411);
  for (const char* te : {"gzip", "gzip, chunked", "identity", "chunked, gzip"}) {
    h.transfer_encoding = te;
    auto refused = check(h, Matched(json));
    ASSERT_TRUE(refused) << te;
    EXPECT_EQ(refused->status, 501) << te;
  }
  h.transfer_encoding = "Chunked";
  EXPECT_FALSE(check(h, Matched(json)));
}

}  // namespace
}  // namespace dfrp::node
