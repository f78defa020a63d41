#include "dfrp/cli/storage_cli.h"

// The edge: the real file system and clock.
int main(int argc, char** argv) {
  return dfrp::cli::RunStorageCli(argc, argv, dfrp::core::DefaultFileSystem(),
                                  dfrp::core::SystemClock());
}
