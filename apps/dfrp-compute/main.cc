#include "dfrp/cli/compute_cli.h"

// The edge: the real file system and clock.
int main(int argc, char** argv) {
  return dfrp::cli::RunComputeCli(argc, argv, dfrp::core::DefaultFileSystem(),
                                  dfrp::core::SystemClock());
}
