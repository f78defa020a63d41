// dfrpd's HTTP/1.1 server: Boost.Beast on Boost.Asio with C++20 coroutines, one coroutine per
// connection on its own strand, serving the route families of routes.h (docs/API.md).
//
// Each request: the head is read under a deadline (408); its route is matched (api.h); the
// middleware runs (Host check 421, Transfer-Encoding 501, cross-site Origin 403, admin token
// 401, body rules 411/413); then the handler runs on its route's lane. The HTTP threads never
// touch the disk or hash: reads, verification, admin calls and spooling run on bounded
// pools that answer 503 with Retry-After when full.
//
// Memory stays bounded whatever clients do: a PUT body is held in pieces allocated as its
// bytes arrive, and reserves its size (or one spool piece) from one budget for all bodies
// (MAX_BODY_MEMORY) before a byte is read, else 503; a body must arrive within body_timeout
// of each piece and at least at min_body_rate on average (else 408 and close); bodies over
// memory_body_limit are spooled to STATE_DIR/tmp, whose file system is checked and the file
// preallocated before the body is read (507). Large downloads go out in verified pieces,
// each reserved from the same budget.
//
// Stop() stops accepting, lets the requests in flight finish (their answers say
// Connection: close), closes idle connections, and Run() returns once all are gone or the
// grace period ran out.
//
// The only file besides client.cc that includes Beast (DESIGN.md: Beast stays in node/).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dfrp/core/status.h"
#include "dfrp/node/node.h"

namespace dfrp::node {

struct ServerOptions {
  std::string addr = "127.0.0.1:7480";  // HOST:PORT; port 0 picks one
  std::vector<std::string> api_hosts;   // further names a Host header may carry (API_HOSTS)
  uint32_t max_connections = 256;
  uint32_t max_header_bytes = 16384;
  std::chrono::milliseconds header_timeout{10'000};  // the whole request line and headers
  std::chrono::milliseconds body_timeout{30'000};    // each piece of a body, and each write
  std::chrono::milliseconds idle_timeout{60'000};    // between two requests on a connection
  std::chrono::milliseconds grace{20'000};           // Stop(): time for requests in flight
  int threads = 0;                                   // HTTP threads; 0: one per CPU, at least 2
  uint64_t memory_body_limit = 8ull << 20;           // larger PUT bodies are spooled to disk
  uint64_t body_memory_budget = 256ull << 20;        // all bodies in flight (MAX_BODY_MEMORY)
  uint64_t min_body_rate = 256ull << 10;             // bytes/s a body must average, past
                                                     // its first body_timeout
  // Lanes (api.h): threads and queue bound of each pool; read 0: one per CPU, at least 2.
  int read_threads = 0, verify_threads = 2, admin_threads = 1, spool_threads = 2;
  size_t lane_queue = 512;
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
