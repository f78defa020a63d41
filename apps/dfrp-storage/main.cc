#include "dfrp/cli/storage_cli.h"

int main(int argc, char** argv) { return dfrp::cli::RunStorageCli(argc, argv); }
