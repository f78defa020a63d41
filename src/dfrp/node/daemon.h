// dfrpd's whole program as a library call, so that apps/dfrpd/main.cc is a line long and
// the daemon's start and stop are code with tests like any other.
//
// RunDaemon parses the command line, loads the config, takes STATE_DIR/dfrpd.lock, lays out
// drives not laid out yet, opens the Node, serves it (Server) until SIGTERM or SIGINT, then
// stops: new connections are refused, requests in flight finish, long jobs are cancelled,
// queued writes are answered, and the process exits 0 within --grace-ms (past it, what is
// left is cut off: acknowledged writes are durable, the rest was never acknowledged).
#pragma once

namespace dfrp::node {

// Returns the process exit code (core::ExitCodeFor of what failed).
int RunDaemon(int argc, char** argv);

}  // namespace dfrp::node
