// The calls RemoteStorageService makes to a running dfrpd (node/client.h, docs/API.md): JSON
// calls, uploads, downloads, following a long operation, and the refusal of what cannot run
// beside a daemon. Not for use outside cli/.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "dfrp/cli/storage_service.h"
#include "dfrp/core/status.h"
#include "dfrp/node/client.h"

namespace dfrp::cli {

class Remote {
 public:
  explicit Remote(node::DaemonInfo info);
  const node::DaemonInfo& info() const { return client_.info(); }

  // One request; a 2xx answer's JSON (null for an empty body), else the error it stands for.
  core::Result<nlohmann::json> Call(std::string_view method, const std::string& target,
                                    const nlohmann::json* body = nullptr);
  // One request and the daemon's answer, whatever its status (errors only for no answer).
  core::Result<node::HttpResponse> Exchange(std::string_view method, const std::string& target);
  // The Status an error answer stands for (node::StatusFromResponse).
  core::Status StatusOf(const node::HttpResponse& r) const;
  // GET of a JSON document returned as its text (proofs are decoded by storage/proof.h).
  core::Result<std::string> GetText(const std::string& target);
  // PUT of `size` bytes from `body`; the answer's JSON.
  core::Result<nlohmann::json> Upload(const std::string& target, core::SequentialFile& body,
                                      uint64_t size, const node::UploadProgress& progress);
  // GET whose payload goes to `sink`.
  core::Status Download(const std::string& target, const node::HttpHeaders& headers,
                        const node::BodySink& sink);

  // Follows an operation (the 202 answer of a migrate or resume --path) until it ends, polling
  // every 200 ms and reporting (phase, done, total) to `progress` each time (and ("", 0, 0)
  // before it prints anything itself). Ctrl-C (or SIGTERM) asks the daemon to cancel it
  // (DELETE /v1/operations/{id}: the volume stays at its old path), then ends the process by
  // that signal, as it ends the direct path. Returns the operation's result, or its error.
  core::Result<nlohmann::json> Follow(nlohmann::json op, const PhaseProgress& progress);

  // Busy (exit 6) naming the daemon and the way out, for a command that cannot run beside it.
  core::Status Refuse(std::string_view command, std::string_view way_out = "") const;

 private:
  node::Client client_;
};

}  // namespace dfrp::cli
