#include "dfrp/cli/request_flags.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

namespace dfrp::cli {

using core::Err;
using core::Result;
using core::Status;
using json = nlohmann::json;

namespace {

Result<std::string> ReadContext(core::FileSystem* fs, const std::string& path) {
  if (path != "-") return core::ReadWholeFile(fs, path);
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), stdin)) > 0) {
    text.append(buf, n);
    if (text.size() > (1 << 20))
      return Err(Status::InvalidArgument("the context on standard input is over 1 MiB"));
  }
  return text;
}

}  // namespace

void AddRequestOptions(CLI::App* cmd, RequestFlags* f) {
  cmd->add_option("--cpu-sec", f->cpu_sec, "CPU-seconds");
  cmd->add_option("--gpu-sec", f->gpu_sec, "GPU-seconds");
  cmd->add_option("--storage-mb", f->storage_mb, "MB (10^6 bytes) to store");
  cmd->add_option("--months", f->months, "for how many months (default 1)");
  cmd->add_option("--read-mb", f->read_mb, "MB to read");
  cmd->add_option("--write-mb", f->write_mb, "MB to write");
  cmd->add_option("--proofs", f->proofs, "proofs of storage to answer");
  cmd->add_option("--max-fee", f->max_fee, "the most the request pays, in the currency");
  cmd->add_option("--max-price", f->max_price,
                  "a cap on one resource's price, RESOURCE=AMOUNT (repeatable)");
  cmd->add_option("--wallet", f->wallet, "the paying wallet's address");
  cmd->add_option("--vector", f->vector,
                  "the request's place in the vector space: VECTOR_DIM comma-separated numbers");
  cmd->add_option("--context", f->context,
                  "a request's JSON ({\"cpu_sec\": 1.2, \"max_fee\": 0.0042, ...}) from FILE, "
                  "or - for standard input");
}

Result<std::string> RequestText(core::FileSystem* fs, const RequestFlags& f, const char* verb) {
  const bool any_flag = !f.cpu_sec.empty() || !f.gpu_sec.empty() || !f.storage_mb.empty() ||
                        !f.months.empty() || !f.read_mb.empty() || !f.write_mb.empty() ||
                        !f.proofs.empty() || !f.max_fee.empty() || !f.max_price.empty() ||
                        !f.wallet.empty() || !f.vector.empty();
  if (!f.context.empty()) {
    if (any_flag)
      return Err(Status::InvalidArgument(
          "give either --context or the quantity options (--cpu-sec, ...), not both"));
    return ReadContext(fs, f.context);
  }
  if (!any_flag)
    return Err(Status::InvalidArgument(
        fmt::format("{} what? give --cpu-sec, --gpu-sec, --storage-mb, --read-mb, --write-mb or "
                    "--proofs (with --max-fee), or --context FILE",
                    verb)));
  json j = json::object();
  auto put = [&](const char* key, const std::string& v) {
    if (!v.empty()) j[key] = v;
  };
  put("cpu_sec", f.cpu_sec);
  put("gpu_sec", f.gpu_sec);
  put("storage_mb", f.storage_mb);
  put("months", f.months);
  put("read_mb", f.read_mb);
  put("write_mb", f.write_mb);
  put("proofs", f.proofs);
  put("max_fee", f.max_fee);
  put("wallet", f.wallet);
  for (const std::string& mp : f.max_price) {
    const size_t eq = mp.find('=');
    if (eq == std::string::npos || eq == 0)
      return Err(Status::InvalidArgument(fmt::format(
          "--max-price '{}': give RESOURCE=AMOUNT, such as --max-price cpu_sec=0.002", mp)));
    j["max_price"][mp.substr(0, eq)] = mp.substr(eq + 1);
  }
  if (!f.vector.empty()) {
    json v = json::array();
    for (size_t pos = 0; pos <= f.vector.size();) {
      const size_t comma = std::min(f.vector.find(',', pos), f.vector.size());
      const std::string part = f.vector.substr(pos, comma - pos);
      char* end = nullptr;
      const double x = std::strtod(part.c_str(), &end);
      if (part.empty() || *end != '\0' || !std::isfinite(x))
        return Err(Status::InvalidArgument(fmt::format(
            "--vector: '{}' is not a number (give comma-separated numbers, such as 0.5,0.1,...)",
            part.substr(0, 32))));
      v.push_back(x);
      pos = comma + 1;
    }
    j["vector"] = v;
  }
  return j.dump();
}

}  // namespace dfrp::cli
