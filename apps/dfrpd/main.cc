// dfrpd: the storage node as a daemon (node/daemon.h).
#include "dfrp/node/daemon.h"

int main(int argc, char** argv) { return dfrp::node::RunDaemon(argc, argv); }
