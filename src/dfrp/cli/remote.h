// dfrp-storage beside a running dfrpd: while a daemon serves the store (found through
// STATE_DIR, node/client.h), the commands go through its HTTP API (docs/API.md) so two
// processes never write one store, and print exactly what they print when they open the store
// themselves. This is the CLI's side of that: JSON calls, uploads, downloads, following a
// long operation, and the refusal of commands that cannot run beside a daemon.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "dfrp/core/config.h"
#include "dfrp/core/status.h"
#include "dfrp/node/client.h"

namespace dfrp::cli {

class Remote {
 public:
  // The daemon serving config.state_dir, or null when none runs (the command opens the store
  // itself). Fails when a daemon holds the lock but cannot be found (node::FindDaemon).
  static core::Result<std::unique_ptr<Remote>> Find(const core::NodeConfig& config);

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
  // PUT of `size` bytes from `fd`; the answer's JSON.
  core::Result<nlohmann::json> Upload(const std::string& target, int fd, uint64_t size,
                                      const node::UploadProgress& progress);
  // GET whose payload goes to `sink`.
  core::Status Download(const std::string& target, const node::HttpHeaders& headers,
                        const node::BodySink& sink);

  // Follows an operation (the 202 answer of a migrate or resume --path) until it ends, polling
  // every 200 ms; `label` names the progress bar of a phase ("" for none). Ctrl-C (or
  // SIGTERM) asks the daemon to cancel it (DELETE /v1/operations/{id}: the volume stays at its
  // old path), then ends the process by that signal, as it ends the direct path. Returns the
  // operation's result, or its error.
  core::Result<nlohmann::json> Follow(nlohmann::json op, bool progress,
                                      const std::function<std::string(std::string_view)>& label);

  // Busy (exit 6) naming the daemon and the way out, for a command that cannot run beside it.
  core::Status Refuse(std::string_view command, std::string_view way_out = "") const;

 private:
  node::Client client_;
};

// The Status of an error element {"error_code", "error"} as verify-shard --json shows it.
core::Status StatusFromCodeName(const std::string& code, const std::string& message);

}  // namespace dfrp::cli
