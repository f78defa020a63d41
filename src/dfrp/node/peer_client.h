// PeerClient: the asynchronous HTTP/1.1 client of node-to-node calls (the mesh, docs/PROTOCOL.md
// "Mesh"; a wallet's or a node's calls of the committee's authorities).
//
// Per peer (scheme://host:port) it keeps a pool of kept-alive connections, at most
// `max_connections_per_peer` of them busy at once, and a bounded queue of the requests that
// wait for one; a request beyond the queue fails at once (Unavailable, "queue full"), so a
// slow peer costs memory bounded by its queue, never more. Every connect and every exchange
// has a timeout. Failures are retried with exponential backoff (with jitter) when retrying is
// safe:
//   - the request never left (the connection was refused, the connect timed out): always;
//   - it could not be written whole on a kept-alive connection (the peer had closed it): once
//     at once, on a new connection, not counted as a try (a kept-alive connection is also
//     checked, without waiting, for a close or stray bytes before it is reused);
//   - it left but no answer came (a timeout, a connection closed before or in the middle of
//     the answer) or the peer answered 503: only for a request marked `idempotent` (a GET, or
//     a ledger order or certificate, which the authority answers the same way twice).
// A malformed or oversized answer is not retried (IOError: the peer answered garbage).
//
// An answer of any other HTTP status is a success here: what it means is the caller's.
// A failure to reach the peer or to get its answer in time is Status::Unavailable (retryable:
// Status::IsRetryable), naming the peer, the request, what failed and the tries.
//
// Beast stays inside peer_client.cc: this header shows only std types.
//
// Thread-safety: Send and Call may be called from any thread. Callbacks run on the client's
// own threads and must not block (a request refused before it is queued, for a bad URL,
// method or target or a stopping client, is answered at once on the caller's thread); Call must not
// be called from a callback (with one thread it would wait on itself). The destructor fails what is
// queued or in flight (Unavailable) and waits for every callback to return.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "dfrp/core/status.h"
#include "dfrp/node/client.h"

namespace dfrp::node {

struct PeerRequest {
  std::string url;  // the peer's base URL: "http://host:port" ("[v6]:port"); no path
  std::string method = "GET";
  std::string target = "/";  // "/v1/mesh/ping"
  HttpHeaders headers;
  std::string body;
  // Safe to send twice (see the file comment); GET and HEAD always are.
  bool idempotent = false;
  // The host must be an IP address (no name lookup; a name fails at once, Unavailable).
  bool numeric_host = false;
};

struct PeerClientOptions {
  unsigned threads = 1;  // the client's own I/O threads
  size_t max_connections_per_peer = 4;
  size_t max_queue_per_peer = 256;  // requests waiting for a connection, per peer
  int connect_timeout_ms = 2000;
  int request_timeout_ms = 5000;  // from the first byte sent to the last byte of the answer
  int retries = 2;                // tries after the first, for failures that may be retried
  int backoff_ms = 100;           // before the first retry; doubles each time, jittered ±50%
  int backoff_max_ms = 2000;
  int idle_ms = 30000;                 // a kept-alive connection idle this long is closed
  uint64_t max_body_bytes = 4u << 20;  // an answer's body; more is an IOError
  uint64_t max_header_bytes = 16u << 10;
};

struct PeerClientStats {
  uint64_t requests = 0;    // accepted by Send
  uint64_t answered = 0;    // completed with an HTTP answer
  uint64_t failed = 0;      // completed with an error (queue full included)
  uint64_t retries = 0;     // tries after a first (the stale-connection retry included)
  uint64_t connects = 0;    // connections opened
  uint64_t reused = 0;      // exchanges on a kept-alive connection
  uint64_t queue_full = 0;  // refused at once: the peer's queue was full
};

class PeerClient {
 public:
  using Callback = std::function<void(core::Result<HttpResponse>)>;

  explicit PeerClient(PeerClientOptions options = {});
  ~PeerClient();
  PeerClient(const PeerClient&) = delete;
  PeerClient& operator=(const PeerClient&) = delete;

  // Queues `request` and returns; `done` is called exactly once, on a client thread, with
  // the answer or the failure (InvalidArgument for a URL this client cannot use).
  void Send(PeerRequest request, Callback done);
  // Send and wait for the outcome.
  core::Result<HttpResponse> Call(PeerRequest request);

  PeerClientStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "http://host:port" → host and port ("[::1]:80" → "::1", "80"); the port defaults to 80.
// InvalidArgument for another scheme, a path, a missing host or a bad port.
core::Result<std::pair<std::string, std::string>> SplitPeerUrl(std::string_view url);

}  // namespace dfrp::node
