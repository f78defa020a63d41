#include "dfrp/cli/mesh_cli.h"

// The edge: the real file system and clock.
int main(int argc, char** argv) {
  return dfrp::cli::RunMeshCli(argc, argv, dfrp::core::DefaultFileSystem(),
                               dfrp::core::SystemClock());
}
