#include "dfrp/node/router.h"

#include <gtest/gtest.h>

#include "dfrp/node/api.h"
#include "dfrp/node/routes.h"

namespace dfrp::node {
namespace {

constexpr const char* kId = "01932c07-a35c-7a9b-8f1e-5c1d2b3a4f60";

// The daemon's whole table, matched only (the handlers are never called: no node).
const RouteTable& Table() {
  static const RouteTable* table = [] {
    auto* t = new RouteTable();
    AddDaemonRoutes(t, nullptr, ServerView{});
    return t;
  }();
  return *table;
}

RouteMatch MatchRoute(std::string_view method, std::string_view target) {
  return Table().Match(method, target);
}

TEST(RouterTest, RoutesEachEndpoint) {
  const std::string shard = std::string("/v1/shards/") + kId;
  struct Case {
    const char* method;
    std::string target;
    const char* name;
    bool admin;
    Lane lane;
  } cases[] = {
      {"GET", "/", "GET /", false, Lane::kInline},
      {"GET", "/app.js", "GET /app.js", false, Lane::kInline},
      {"GET", "/healthz", "GET /healthz", false, Lane::kInline},
      {"GET", "/metrics", "GET /metrics", false, Lane::kInline},
      {"GET", "/v1/status", "GET /v1/status", false, Lane::kInline},
      {"PUT", "/v1/shards", "PUT /v1/shards", false, Lane::kInline},
      {"GET", shard, "GET /v1/shards/{id}", false, Lane::kRead},
      {"HEAD", shard, "GET /v1/shards/{id}", false, Lane::kRead},
      {"GET", shard + "/meta", "GET /v1/shards/{id}/meta", false, Lane::kRead},
      {"POST", shard + "/verify", "POST /v1/shards/{id}/verify", false, Lane::kVerify},
      {"GET", shard + "/proof?leaf=2", "GET /v1/shards/{id}/proof", false, Lane::kVerify},
      {"GET", shard + "/audit?seed=ab&challenges=3", "GET /v1/shards/{id}/audit", false,
       Lane::kVerify},
      {"GET", "/v1/volumes", "GET /v1/volumes", false, Lane::kInline},
      {"GET", "/v1/volumes/", "GET /v1/volumes", false, Lane::kInline},
      {"POST", "/v1/volumes/2/pause", "POST /v1/volumes/{n}/pause", true, Lane::kAdmin},
      {"POST", "/v1/volumes/2/resume", "POST /v1/volumes/{n}/resume", true, Lane::kAdmin},
      {"POST", "/v1/volumes/2/migrate", "POST /v1/volumes/{n}/migrate", true, Lane::kAdmin},
      {"POST", "/v1/volumes/2/retire-source", "POST /v1/volumes/{n}/retire-source", true,
       Lane::kAdmin},
      {"GET", "/v1/operations", "GET /v1/operations", false, Lane::kInline},
      {"GET", std::string("/v1/operations/") + kId, "GET /v1/operations/{id}", false,
       Lane::kInline},
      {"DELETE", std::string("/v1/operations/") + kId, "DELETE /v1/operations/{id}", true,
       Lane::kInline},
  };
  for (const auto& c : cases) {
    RouteMatch m = MatchRoute(c.method, c.target);
    ASSERT_NE(m.spec, nullptr) << c.method << " " << c.target << ": " << m.error;
    EXPECT_EQ(m.name, c.name) << c.target;
    EXPECT_EQ(m.spec->admin, c.admin) << c.target;
    EXPECT_EQ(m.spec->lane, c.lane) << c.target;
    EXPECT_EQ(m.error_status, 0) << c.target;
  }
  EXPECT_EQ(MatchRoute("POST", "/v1/volumes/2/pause").volume, 2u);
  EXPECT_EQ(MatchRoute("GET", shard).id.ToString(), kId);
  EXPECT_EQ(MatchRoute("GET", shard).params.at("shard"), kId);
  EXPECT_EQ(MatchRoute("PUT", "/v1/shards").spec->body, BodyKind::kStream);
  EXPECT_EQ(MatchRoute("POST", "/v1/volumes/1/migrate").spec->body, BodyKind::kJson);
  EXPECT_EQ(MatchRoute("GET", shard).spec->body, BodyKind::kNone);
}

TEST(RouterTest, DecodesTheQuery) {
  RouteMatch m = MatchRoute("PUT", "/v1/shards?name=a+b&meta=k%3Dv&meta=x%3Dy&vector=1,2");
  ASSERT_NE(m.spec, nullptr);
  std::string v, err;
  ASSERT_TRUE(QueryValue(m.query, "name", &v, &err));
  EXPECT_EQ(v, "a b");
  EXPECT_EQ(m.query.count("meta"), 2u);
  EXPECT_FALSE(QueryValue(m.query, "meta", &v, &err));
  EXPECT_NE(err.find("twice"), std::string::npos);
  EXPECT_FALSE(QueryValue(m.query, "owner", &v, &(err = "")));
  EXPECT_TRUE(err.empty());
}

TEST(RouterTest, RefusesWithTheRightStatus) {
  EXPECT_EQ(MatchRoute("GET", "/v1/shards/nope").error_status, 400);
  EXPECT_EQ(MatchRoute("GET", "/v1/volumes/x/pause").error_status, 400);
  EXPECT_EQ(MatchRoute("GET", "/nothing/here").error_status, 404);
  RouteMatch deep = MatchRoute("GET", "/v1/volumes/1/explode");
  EXPECT_EQ(deep.error_status, 404);
  EXPECT_EQ(deep.error,
            "no such route under /v1/volumes/{n}: use /migrate, /pause, /resume or "
            "/retire-source");
  RouteMatch m = MatchRoute("DELETE", "/v1/volumes");
  EXPECT_EQ(m.error_status, 405);
  EXPECT_EQ(m.allow, "GET");
  RouteMatch op = MatchRoute("PUT", std::string("/v1/operations/") + kId);
  EXPECT_EQ(op.error_status, 405);
  EXPECT_EQ(op.allow, "GET, DELETE");
  EXPECT_EQ(MatchRoute("GET", "/v1/volumes/1/pause").error_status, 405);
  for (const char* t :
       {"/v1/shards/../x", "/v1/%2e%2e/x", "/v1/shards/a%2Fb", "/a%5cb", "/v1/%00", "/v1/%zz",
        "/v1/%2", "//v1/volumes", "v1/volumes", "http://host/v1/volumes", "/v1/volumes?x=%"})
    EXPECT_EQ(MatchRoute("GET", t).error_status, 400) << t;
  EXPECT_FALSE(MatchRoute("GET", "/v1/shards/nope").error.empty());
  EXPECT_EQ(MatchRoute("GET", "/v1/shards/%ff").error_status, 400);
  EXPECT_EQ(MatchRoute("PUT", "/v1/shards?owner=%C3").error_status, 400);
  EXPECT_EQ(MatchRoute("GET", "/" + std::string(5000, 'a')).error_status, 414);
}

TEST(RouterTest, ANewFamilyIsOneTable) {
  // The market adds families like this one: a table and its handlers, nothing else.
  RouteTable t;
  t.Add(StorageRoutes(nullptr));
  t.Add({RouteSpec{.methods = "GET",
                   .pattern = "/v1/ledger/accounts/{address}",
                   .lane = Lane::kRead,
                   .handler = [](const ApiRequest& r) {
                     return ApiResponse::Json(200, {{"address", r.route.params.at("address")}});
                   }}});
  RouteMatch m = t.Match("GET", "/v1/ledger/accounts/dfrp1abc");
  ASSERT_NE(m.spec, nullptr) << m.error;
  EXPECT_EQ(m.name, "GET /v1/ledger/accounts/{address}");
  EXPECT_EQ(m.params.at("address"), "dfrp1abc");
  RequestHead head;
  ApiRequest req{m, head, [](std::string_view) { return std::string_view(); }};
  EXPECT_EQ(m.spec->handler(req).body, "{\"address\":\"dfrp1abc\"}\n");
  EXPECT_EQ(t.Match("GET", "/v1/ledger/accounts").error_status, 404);
  // The storage routes are unaffected.
  EXPECT_NE(t.Match("GET", "/v1/volumes").spec, nullptr);
}

TEST(RouterTest, ChecksUtf8) {
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  for (const char* bad :
       {"\xff", "\xc3", "\xc0\x80", "\xe0\x80\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82",
        "a\x80"
        "b"})
    EXPECT_FALSE(IsValidUtf8(bad)) << bad;
}

TEST(RouterTest, ParsesByteRanges) {
  std::string err;
  auto r = ParseByteRange("bytes=0-99", 1000, &err);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, (std::pair<uint64_t, uint64_t>{0, 100}));
  EXPECT_EQ(*ParseByteRange("bytes=990-", 1000, &err), (std::pair<uint64_t, uint64_t>{990, 10}));
  EXPECT_EQ(*ParseByteRange("bytes=-10", 1000, &err), (std::pair<uint64_t, uint64_t>{990, 10}));
  EXPECT_EQ(*ParseByteRange("bytes=-5000", 1000, &err), (std::pair<uint64_t, uint64_t>{0, 1000}));
  EXPECT_EQ(*ParseByteRange("bytes=900-5000", 1000, &err),
            (std::pair<uint64_t, uint64_t>{900, 100}));
  EXPECT_TRUE(err.empty());
  for (const char* outside : {"bytes=1000-", "bytes=-0", "bytes=99999999999999999999999-"}) {
    err.clear();
    EXPECT_FALSE(ParseByteRange(outside, 1000, &err)) << outside;
    EXPECT_FALSE(err.empty()) << outside;  // 416
  }
  for (const char* invalid : {"bytes=5-4", "bytes=-", "bytes=a-1", "lines=0-1", "bytes=0"}) {
    err.clear();
    EXPECT_FALSE(ParseByteRange(invalid, 1000, &err)) << invalid;
    EXPECT_TRUE(err.empty()) << invalid;  // ignored: the whole payload (RFC 9110)
  }
  EXPECT_EQ(*ParseByteRange("bytes=10-99999999999999999999999", 1000, &err),
            (std::pair<uint64_t, uint64_t>{10, 990}));
  err.clear();
  EXPECT_FALSE(ParseByteRange("bytes=0-1,5-6", 1000, &err));
  EXPECT_TRUE(err.empty());  // several ranges: the whole payload
  EXPECT_FALSE(ParseByteRange("bytes=0-", 0, &(err = "")));
  EXPECT_FALSE(err.empty());  // nothing to serve of an empty payload
}

}  // namespace
}  // namespace dfrp::node
