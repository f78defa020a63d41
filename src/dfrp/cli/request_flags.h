// The options of a market request (the quantities, max_fee, caps, wallet, vector, or a whole
// context JSON), shared by `dfrp-market quote` and `dfrp-mesh offers`: both send the JSON a
// client sends (economy/fee_match.h), so there is one parser, the node's.
//
// Thread-safety: values and pure functions (RequestText reads a file or standard input).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "dfrp/core/file_system.h"
#include "dfrp/core/status.h"

namespace dfrp::cli {

struct RequestFlags {
  std::string cpu_sec, gpu_sec, storage_mb, months, read_mb, write_mb, proofs, max_fee, wallet;
  std::string vector;  // comma-separated floats
  std::vector<std::string> max_price;
  std::string context;
};

// Adds --cpu-sec ... --context to `cmd`.
void AddRequestOptions(CLI::App* cmd, RequestFlags* f);

// The request's JSON: --context as given (a FILE, or - for standard input, at most 1 MiB), or
// the options made into the same JSON. InvalidArgument for both or neither, a --max-price
// without '=', a --vector that is not numbers.
core::Result<std::string> RequestText(core::FileSystem* fs, const RequestFlags& f,
                                      const char* verb);

}  // namespace dfrp::cli
