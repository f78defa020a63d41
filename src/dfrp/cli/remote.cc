#include "dfrp/cli/remote.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <thread>

#include "dfrp/node/views.h"

namespace dfrp::cli {

using core::Err;
using core::Result;
using core::Status;
using nlohmann::json;

namespace {

volatile std::sig_atomic_t g_interrupt = 0;
void OnInterrupt(int sig) { g_interrupt = sig; }

Result<json> ParseBody(const node::DaemonInfo& info, const node::HttpResponse& r) {
  if (r.body.empty()) return json();
  json j = json::parse(r.body, nullptr, false);
  if (j.is_discarded())
    return Err(
        Status::IOError(fmt::format("dfrpd at {} answered HTTP {} with a body that is not "
                                    "JSON: {}",
                                    info.url, r.status, r.body.substr(0, 200))));
  return j;
}

bool Success(const node::HttpResponse& r) { return r.status >= 200 && r.status < 300; }

}  // namespace

Remote::Remote(node::DaemonInfo info) : client_(std::move(info)) {}

Result<json> Remote::Call(std::string_view method, const std::string& target, const json* body) {
  DFRP_ASSIGN_OR_RETURN(node::HttpResponse r,
                        client_.Request(method, target, {}, body ? body->dump() : ""));
  if (!Success(r)) return Err(node::StatusFromResponse(info(), r));
  return ParseBody(info(), r);
}

Result<node::HttpResponse> Remote::Exchange(std::string_view method, const std::string& target) {
  return client_.Request(method, target);
}

Status Remote::StatusOf(const node::HttpResponse& r) const {
  return node::StatusFromResponse(info(), r);
}

Result<std::string> Remote::GetText(const std::string& target) {
  DFRP_ASSIGN_OR_RETURN(node::HttpResponse r, client_.Request("GET", target));
  if (!Success(r)) return Err(node::StatusFromResponse(info(), r));
  return std::move(r.body);
}

Result<json> Remote::Upload(const std::string& target, core::SequentialFile& body, uint64_t size,
                            const node::UploadProgress& progress) {
  DFRP_ASSIGN_OR_RETURN(node::HttpResponse r, client_.Upload(target, {}, body, size, progress));
  if (!Success(r)) return Err(node::StatusFromResponse(info(), r));
  return ParseBody(info(), r);
}

Status Remote::Download(const std::string& target, const node::HttpHeaders& headers,
                        const node::BodySink& sink) {
  DFRP_ASSIGN_OR_RETURN(node::HttpResponse r, client_.Download(target, headers, sink));
  if (!Success(r)) return node::StatusFromResponse(info(), r);
  return Status::OK();
}

Result<json> Remote::Follow(json op, const PhaseProgress& progress) {
  const std::string id = op.value("id", "");
  if (id.empty())
    return Err(Status::IOError(
        fmt::format("dfrpd at {} started an operation without an id: {}", info().url, op.dump())));
  g_interrupt = 0;
  auto old_int = std::signal(SIGINT, OnInterrupt);
  auto old_term = std::signal(SIGTERM, OnInterrupt);
  Status failed;
  while (op.value("state", "running") == "running") {
    const bool counted = op["done"].is_number() && op["total"].is_number();
    progress(op.value("phase", ""), counted ? op["done"].get<uint64_t>() : 0,
             counted ? op["total"].get<uint64_t>() : 0);
    for (int i = 0; i < 20 && g_interrupt == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (g_interrupt != 0) break;
    auto next = Call("GET", "/v1/operations/" + id);
    if (!next) {
      failed = next.error();
      break;
    }
    op = std::move(*next);
  }
  progress("", 0, 0);  // ends the last phase's bar
  std::signal(SIGINT, old_int);
  std::signal(SIGTERM, old_term);
  if (g_interrupt != 0) {
    const int sig = g_interrupt;
    auto cancelled = Call("DELETE", "/v1/operations/" + id);
    std::fprintf(stderr, "dfrp-storage: %s\n",
                 cancelled ? fmt::format("interrupted: dfrpd cancels operation {} (volume {} stays "
                                         "at its old path)",
                                         id, op.value("volume", -1))
                                 .c_str()
                           : fmt::format("interrupted; dfrpd did not cancel operation {}: {}", id,
                                         cancelled.error().message())
                                 .c_str());
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
  if (!failed.ok()) return Err(failed);
  const std::string state = op.value("state", "");
  if (state == "succeeded") return op.contains("result") ? op["result"] : json::object();
  if (state == "failed" && op.contains("error") && op["error"].is_object())
    return Err(node::StatusFromErrorJson({{"error", op["error"]}},
                                         fmt::format("operation {} failed", id)));
  if (state == "cancelled")
    return Err(Status::Busy(fmt::format(
        "operation {} was cancelled (DELETE /v1/operations/{}): volume {} stays at its old path",
        id, id, op.value("volume", -1))));
  return Err(Status::IOError(
      fmt::format("operation {} ended as '{}' without a result: {}", id, state, op.dump())));
}

Status Remote::Refuse(std::string_view command, std::string_view way_out) const {
  const auto& d = info();
  return Status::Busy(fmt::format(
      "{} cannot run while dfrpd (pid {}, {}) serves this store: {}stop dfrpd (systemctl stop "
      "dfrpd, or kill {}) and run it again",
      command, d.pid, d.url, way_out.empty() ? "" : std::string(way_out) + ", or ", d.pid));
}

}  // namespace dfrp::cli
