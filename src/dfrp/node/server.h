// dfrpd's HTTP/1.1 server: Boost.Beast on Boost.Asio with C++20 coroutines, one coroutine per
// connection on its own strand, serving the routes of router.h from a Node (docs/API.md).
//
// Limits that keep one client from hurting the others: a connection cap (then 503 and
// close), a request-header size cap (431), a deadline for a request's header (408) and for
// each piece of a body, an idle deadline between requests, bodies refused before they are
// read when no volume could hold them (507). Stop() stops accepting, lets the requests in
// flight finish (their answers say Connection: close), closes idle connections, and returns
// once all are gone or the grace period ran out.
//
// The only file besides client.cc that includes Beast (DESIGN.md: Beast stays in node/).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "dfrp/core/status.h"
#include "dfrp/node/node.h"

namespace dfrp::node {

struct ServerOptions {
  std::string addr = "127.0.0.1:7480";  // HOST:PORT; port 0 picks one
  uint32_t max_connections = 256;
  uint32_t max_header_bytes = 16384;
  std::chrono::milliseconds header_timeout{10'000};  // the whole request line and headers
  std::chrono::milliseconds body_timeout{30'000};    // each piece of a body, and each write
  std::chrono::milliseconds idle_timeout{60'000};    // between two requests on a connection
  std::chrono::milliseconds grace{20'000};           // Stop(): time for requests in flight
  int threads = 0;                                   // 0: one per CPU, at least 2
  uint64_t memory_body_limit = 8ull << 20;           // larger PUT bodies are spooled to disk
};

class Server {
 public:
  Server(Node& node, ServerOptions opt);
  ~Server();
  // Binds and listens; returns the address it listens on (HOST:PORT, the real port).
  core::Result<std::string> Listen();
  // Serves until Stop() (from any thread, or a signal handler's thread) and the grace ends.
  void Run();
  void Stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace dfrp::node
