// The apps a compute node runs (issue 16): the project's reference apps, built into every node,
// and the operator's own, listed in a catalog file (COMPUTE_APPS, docs/COMPUTE.md):
//
//   [[app]]
//   name = "blur"                      # what jobs name: [a-z0-9._-], 1..64 bytes
//   path = "/opt/apps/blur"            # absolute
//   description = "a 2-D blur"
//   deterministic = true               # same inputs and ranks -> the same bytes
//   rank_independent = false           # each rank's output depends on nothing but its rank
//   args = [ { name = "N", type = "uint", min = 1, max = 4096 },
//            { name = "MODE", type = "enum", values = ["fast", "exact"] },
//            { name = "DATA", type = "input", optional = true } ]
//
// An argument of type "input" names one of the job's inputs by its index; the node passes
// the path of that input, fetched and verified, in its place. Optional arguments come last.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dfrp/core/file_system.h"
#include "dfrp/core/status.h"

namespace dfrp::compute {

struct ArgSpec {
  std::string name;
  std::string type;  // "uint", "enum" or "input"
  uint64_t min = 0;
  uint64_t max = UINT64_MAX;
  std::vector<std::string> values;  // enum
  bool optional = false;
};

struct AppSpec {
  std::string name;
  std::string path;
  std::string description;
  bool deterministic = false;
  bool rank_independent = false;
  bool reference = false;      // one of the project's own
  bool client_binary = false;  // "client": input BINARY is the program (ClientBinaryApp)
  std::vector<ArgSpec> args;
};

// The reference apps (matmul, montecarlo, knn) in `libexec_dir`, then the catalog file's apps
// when `catalog_path` is not empty. InvalidArgument naming the file, the app and the field for
// a bad entry, a name given twice or a reference app's name taken.
core::Result<std::vector<AppSpec>> LoadCatalog(core::FileSystem& fs,
                                               const std::string& catalog_path,
                                               const std::string& libexec_dir);
// The catalog file's contents alone (for the fuzz target): `source` names it in errors.
core::Result<std::vector<AppSpec>> ParseCatalog(std::string_view toml, std::string_view source);

// The app "client" of a node whose operator opted in (COMPUTE_CLIENT_BINARIES): its first
// argument BINARY (an input) is the client's own program, run in bubblewrap with no network
// (docs/COMPUTE.md, "Client binaries"); then up to four whole numbers A..D for it. Not
// deterministic as far as the node knows, so verify-job does not check it.
AppSpec ClientBinaryApp();

const AppSpec* FindApp(const std::vector<AppSpec>& apps, std::string_view name);

// InvalidArgument naming the app and the argument when `args` do not fit the schema;
// `inputs` is how many inputs the job has (an "input" argument indexes them).
core::Status CheckArgs(const AppSpec& app, const std::vector<std::string>& args, size_t inputs);

// "N:uint[1..8192] SEED:uint" and so on, for listings.
std::string ArgsSynopsis(const AppSpec& app);

}  // namespace dfrp::compute
