// The compute listener's routes (issue 16; docs/API.md, "Compute"), served by a node with
// ROLES compute and a WALLET (node/compute_service.h):
//
//   POST /v1/compute/jobs             {"job": HEX[, "escrow": ID]}: a signed job (docs/PROTOCOL.md,
//                                     "The job"), paid through the compute escrow ID when
//                                     given; 202 with its state when accepted or already
//                                     known; 400 for bytes that do not decode, 422 for a
//                                     forged signature, the refusal's reason otherwise (exit 7)
//   POST /v1/compute/quote            {"job": HEX}: the price this node asks for it now, with
//                                     every check of a submission; nothing is queued
//   GET  /v1/compute/jobs             ?state=S&limit=N: the jobs held here, newest first
//   GET  /v1/compute/jobs/{id}        its state; a done job's result root and signed claim
//   GET  /v1/compute/jobs/{id}/ranks/{rank}   a done job's output of that rank
//   GET  /v1/compute/node             slots, queue, jobs by state, apps
//   POST /v1/compute/fraud            {"certificate": HEX}: a certified fraud record
//                                     (node/fraud_book.h): kept and spread when new; 400 for
//                                     one that is not a fraud refund, 422 for a forged one
//   GET  /v1/compute/fraud            ?provider=ADDRESS&limit=N: the records kept here
//
// A job's signature, and a fraud record's, is checked on the verify lane. The fraud routes
// are served by every node whose policy has a committee, compute role or not.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "dfrp/node/compute_service.h"
#include "dfrp/node/fraud_book.h"
#include "dfrp/node/router.h"
#include "dfrp/node/routes.h"
#include "dfrp/node/views.h"

namespace dfrp::node {

using core::Status;
using nlohmann::json;

namespace {

// Rank outputs are answered whole from memory; larger ones wait for a streamed download.
constexpr uint64_t kMaxOutputAnswer = 256ull << 20;
// GET /v1/compute/jobs: how many jobs one answer lists unless asked, and at most.
constexpr uint64_t kDefaultJobsAnswer = 50;
constexpr uint64_t kMaxJobsAnswer = 1000;

core::Result<ComputeService*> Compute(Node* node) {
  if (!node->compute())
    return core::Err(Status::NotFound(
        "this node takes no compute jobs: it needs ROLES with compute and a WALLET (its claims "
        "are signed by it)"));
  return node->compute();
}

core::Result<FraudBook*> Fraud(Node* node) {
  if (!node->fraud())
    return core::Err(Status::NotFound(
        "this node keeps no fraud records: its economic.toml names no committee to check "
        "them against"));
  return node->fraud();
}

// A submission's or a quote's answer: a forged signature is 422, not the 500 of Corruption.
ApiResponse JobAnswer(const core::Result<json>& j, int ok_status) {
  if (j) return ApiResponse::Json(ok_status, *j);
  if (j.error().IsCorruption()) return ApiResponse::Json(422, ErrorJson(j.error()));
  return ApiResponse::Error(j.error());
}

std::string QueryValue(const ApiRequest& r, const std::string& name) {
  auto it = r.route.query.find(name);
  return it == r.route.query.end() ? std::string() : it->second;
}

// A list's ?limit=N: kDefaultJobsAnswer when not given, at most kMaxJobsAnswer.
core::Result<uint64_t> LimitParam(const ApiRequest& r) {
  const std::string l = QueryValue(r, "limit");
  if (l.empty()) return kDefaultJobsAnswer;
  DFRP_ASSIGN_OR_RETURN(uint64_t n, DecimalParam(l, "limit"));
  return std::min<uint64_t>(n, kMaxJobsAnswer);
}

bool IsJobState(std::string_view s) {
  for (std::string_view known : {"queued", "running", "done", "failed", "expired", "interrupted"})
    if (s == known) return true;
  return false;
}

}  // namespace

std::vector<RouteSpec> ComputeRoutes(Node* node) {
  std::vector<RouteSpec> t;
  t.push_back({.methods = "POST",
               .pattern = "/v1/compute/jobs",
               .body = BodyKind::kJson,
               .lane = Lane::kVerify,
               .handler = [node](const ApiRequest& r) {
                 auto c = Compute(node);
                 if (!c) return ApiResponse::Error(c.error());
                 auto wire = HexField(r.body, "job");
                 if (!wire) return ApiResponse::Error(wire.error());
                 std::optional<crypto::Hash> escrow;
                 const json body = json::parse(r.body, nullptr, false);
                 if (body.is_object() && body.contains("escrow")) {
                   auto id = HexField(r.body, "escrow");
                   if (!id || id->size() != 32)
                     return ApiResponse::Error(Status::InvalidArgument(
                         "\"escrow\" must be a compute escrow's id (64 hex digits)"));
                   escrow.emplace();
                   std::memcpy(escrow->data(), id->data(), 32);
                 }
                 std::vector<std::string> input_from;
                 if (body.is_object() && body.contains("input_from")) {
                   const json& f = body["input_from"];
                   if (!f.is_array() || !std::all_of(f.begin(), f.end(),
                                                     [](const json& u) { return u.is_string(); }))
                     return ApiResponse::Error(
                         Status::InvalidArgument("\"input_from\" must be an array of node URLs"));
                   input_from = f.get<std::vector<std::string>>();
                 }
                 return JobAnswer((*c)->Submit(*wire, escrow, std::move(input_from)), 202);
               }});
  t.push_back({.methods = "POST",
               .pattern = "/v1/compute/quote",
               .body = BodyKind::kJson,
               .lane = Lane::kVerify,
               .handler = [node](const ApiRequest& r) {
                 auto c = Compute(node);
                 if (!c) return ApiResponse::Error(c.error());
                 auto wire = HexField(r.body, "job");
                 if (!wire) return ApiResponse::Error(wire.error());
                 return JobAnswer((*c)->Quote(*wire), 200);
               }});
  t.push_back({.methods = "GET",
               .pattern = "/v1/compute/jobs",
               .lane = Lane::kRead,
               .handler = [node](const ApiRequest& r) {
                 auto c = Compute(node);
                 if (!c) return ApiResponse::Error(c.error());
                 const std::string state = QueryValue(r, "state");
                 if (!state.empty() && !IsJobState(state))
                   return ApiResponse::Error(Status::InvalidArgument(fmt::format(
                       "state {:?} is not a job state (queued, running, done, failed, expired, "
                       "interrupted)",
                       state.substr(0, 32))));
                 auto limit = LimitParam(r);
                 if (!limit) return ApiResponse::Error(limit.error());
                 return ApiResponse::Json(200, (*c)->JobsJson(state, *limit));
               }});
  t.push_back({.methods = "GET",
               .pattern = "/v1/compute/jobs/{id}",
               .lane = Lane::kRead,
               .handler = [node](const ApiRequest& r) {
                 auto c = Compute(node);
                 if (!c) return ApiResponse::Error(c.error());
                 auto j = (*c)->JobJson(r.route.params.at("id"));
                 if (!j) return ApiResponse::Error(j.error());
                 return ApiResponse::Json(200, *j);
               }});
  t.push_back({.methods = "GET",
               .pattern = "/v1/compute/jobs/{id}/ranks/{rank}",
               .lane = Lane::kRead,
               .handler = [node](const ApiRequest& r) {
                 auto c = Compute(node);
                 if (!c) return ApiResponse::Error(c.error());
                 auto rank = DecimalParam(r.route.params.at("rank"), "rank");
                 if (!rank) return ApiResponse::Error(rank.error());
                 if (*rank > compute::kMaxRanks)
                   return ApiResponse::Error(Status::NotFound("no such rank"));
                 auto path =
                     (*c)->OutputPath(r.route.params.at("id"), static_cast<uint32_t>(*rank));
                 if (!path) return ApiResponse::Error(path.error());
                 auto size = node->fs()->FileSize(*path);
                 if (!size) return ApiResponse::Error(size.error());
                 if (*size > kMaxOutputAnswer)
                   return ApiResponse::Error(Status::InvalidArgument(fmt::format(
                       "this output is {} bytes; outputs over {} bytes are not served yet", *size,
                       kMaxOutputAnswer)));
                 auto bytes = core::ReadWholeFile(node->fs(), *path);
                 if (!bytes) return ApiResponse::Error(bytes.error());
                 ApiResponse res;
                 res.status = 200;
                 res.content_type = "application/octet-stream";
                 res.body = std::move(*bytes);
                 return res;
               }});
  t.push_back({.methods = "POST",
               .pattern = "/v1/compute/fraud",
               .body = BodyKind::kJson,
               .lane = Lane::kVerify,
               .handler = [node](const ApiRequest& r) {
                 auto f = Fraud(node);
                 if (!f) return ApiResponse::Error(f.error());
                 auto wire = HexField(r.body, "certificate");
                 if (!wire) return ApiResponse::Error(wire.error());
                 auto added = (*f)->Add(*wire);
                 if (!added) {
                   if (added.error().IsCorruption())
                     return ApiResponse::Json(422, ErrorJson(added.error()));
                   return ApiResponse::Error(added.error());
                 }
                 json out = compute::FraudRecordJson(added->record);
                 out.erase("certificate");
                 return ApiResponse::Json(
                     200,
                     {{"record", out}, {"added", added->added}, {"spread_to", added->spread_to}});
               }});
  t.push_back({.methods = "GET",
               .pattern = "/v1/compute/fraud",
               .lane = Lane::kRead,
               .handler = [node](const ApiRequest& r) {
                 auto f = Fraud(node);
                 if (!f) return ApiResponse::Error(f.error());
                 auto limit = LimitParam(r);
                 if (!limit) return ApiResponse::Error(limit.error());
                 return ApiResponse::Json(200, (*f)->Json(QueryValue(r, "provider"), *limit));
               }});
  t.push_back({.methods = "GET",
               .pattern = "/v1/compute/node",
               .lane = Lane::kRead,
               .handler = [node](const ApiRequest&) {
                 auto c = Compute(node);
                 if (!c) return ApiResponse::Error(c.error());
                 return ApiResponse::Json(200, (*c)->Json());
               }});
  return t;
}

}  // namespace dfrp::node
