#include "dfrp/storage/input_reader.h"

#include <fmt/format.h>

namespace dfrp::storage {

using core::Status;

Status ChangedWhileReading(const std::string& name, uint64_t expected, uint64_t got) {
  return Status::InvalidArgument(fmt::format(
      "{} {} while it was read ({} bytes expected, {} found): store it again once nothing "
      "is writing to it; nothing was written",
      name, got < expected ? "shrank" : "grew", expected, got));
}

Status ReadInputExact(core::SequentialFile& in, const std::string& name, uint64_t expected,
                      uint64_t done, size_t n, char* dst) {
  DFRP_ASSIGN_OR_RETURN(size_t got, in.Read(n, dst));
  if (got != n) return ChangedWhileReading(name, expected, done + got);
  return Status::OK();
}

Status CheckAtEnd(core::SequentialFile& in, const std::string& name, uint64_t expected) {
  char extra;
  DFRP_ASSIGN_OR_RETURN(size_t got, in.Read(1, &extra));
  if (got != 0) return ChangedWhileReading(name, expected, expected + got);
  return Status::OK();
}

}  // namespace dfrp::storage
