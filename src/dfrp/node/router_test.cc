#include "dfrp/node/router.h"

#include <gtest/gtest.h>

namespace dfrp::node {
namespace {

constexpr const char* kId = "01932c07-a35c-7a9b-8f1e-5c1d2b3a4f60";

TEST(RouterTest, RoutesEachEndpoint) {
  const std::string shard = std::string("/v1/shards/") + kId;
  struct Case {
    const char* method;
    std::string target;
    Route route;
    bool admin;
  } cases[] = {
      {"GET", "/", Route::kAsset, false},
      {"GET", "/app.js", Route::kAsset, false},
      {"GET", "/healthz", Route::kHealth, false},
      {"GET", "/metrics", Route::kMetrics, false},
      {"GET", "/v1/status", Route::kStatus, false},
      {"PUT", "/v1/shards", Route::kPutShard, false},
      {"GET", shard, Route::kGetShard, false},
      {"HEAD", shard, Route::kGetShard, false},
      {"GET", shard + "/meta", Route::kShardMeta, false},
      {"POST", shard + "/verify", Route::kVerifyShard, false},
      {"GET", shard + "/proof?leaf=2", Route::kProveShard, false},
      {"GET", shard + "/audit?seed=ab&challenges=3", Route::kAuditShard, false},
      {"GET", "/v1/volumes", Route::kListVolumes, false},
      {"GET", "/v1/volumes/", Route::kListVolumes, false},
      {"POST", "/v1/volumes/2/pause", Route::kPauseVolume, true},
      {"POST", "/v1/volumes/2/resume", Route::kResumeVolume, true},
      {"POST", "/v1/volumes/2/migrate", Route::kMigrateVolume, true},
      {"POST", "/v1/volumes/2/retire-source", Route::kRetireSource, true},
      {"GET", "/v1/operations", Route::kListOperations, false},
      {"GET", std::string("/v1/operations/") + kId, Route::kGetOperation, false},
      {"DELETE", std::string("/v1/operations/") + kId, Route::kCancelOperation, true},
  };
  for (const auto& c : cases) {
    RouteMatch m = MatchRoute(c.method, c.target);
    EXPECT_EQ(m.route, c.route) << c.method << " " << c.target << ": " << m.error;
    EXPECT_EQ(m.admin, c.admin) << c.target;
    EXPECT_EQ(m.error_status, 0) << c.target;
  }
  EXPECT_EQ(MatchRoute("POST", "/v1/volumes/2/pause").volume, 2u);
  EXPECT_EQ(MatchRoute("GET", shard).id.ToString(), kId);
}

TEST(RouterTest, DecodesTheQuery) {
  RouteMatch m = MatchRoute("PUT", "/v1/shards?name=a+b&meta=k%3Dv&meta=x%3Dy&vector=1,2");
  ASSERT_EQ(m.route, Route::kPutShard);
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
  EXPECT_EQ(MatchRoute("GET", "/v1/volumes/1/explode").error_status, 404);
  RouteMatch m = MatchRoute("DELETE", "/v1/volumes");
  EXPECT_EQ(m.error_status, 405);
  EXPECT_EQ(m.allow, "GET");
  EXPECT_EQ(MatchRoute("GET", "/v1/volumes/1/pause").error_status, 405);
  for (const char* t :
       {"/v1/shards/../x", "/v1/%2e%2e/x", "/v1/shards/a%2Fb", "/a%5cb", "/v1/%00", "/v1/%zz",
        "/v1/%2", "//v1/volumes", "v1/volumes", "http://host/v1/volumes", "/v1/volumes?x=%"})
    EXPECT_EQ(MatchRoute("GET", t).error_status, 400) << t;
  EXPECT_FALSE(MatchRoute("GET", "/v1/shards/nope").error.empty());
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
  for (const char* bad :
       {"bytes=1000-", "bytes=5-4", "bytes=-0", "bytes=-", "bytes=a-1", "lines=0-1", "bytes=0"}) {
    err.clear();
    EXPECT_FALSE(ParseByteRange(bad, 1000, &err)) << bad;
    EXPECT_FALSE(err.empty()) << bad;
  }
  err.clear();
  EXPECT_FALSE(ParseByteRange("bytes=0-1,5-6", 1000, &err));
  EXPECT_TRUE(err.empty());  // several ranges: the whole payload
  EXPECT_FALSE(ParseByteRange("bytes=0-", 0, &(err = "")));
  EXPECT_FALSE(err.empty());  // nothing to serve of an empty payload
}

}  // namespace
}  // namespace dfrp::node
