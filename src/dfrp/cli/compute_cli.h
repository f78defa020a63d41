// dfrp-compute (issue 16): the node's compute apps, run here under Open MPI through
// dfrp-jobrun, their result sets, and checks of those results (docs/COMPUTE.md).
#pragma once

#include "dfrp/core/clock.h"
#include "dfrp/core/file_system.h"

namespace dfrp::cli {

int RunComputeCli(int argc, char** argv, core::FileSystem* fs, core::Clock* clock);

}  // namespace dfrp::cli
