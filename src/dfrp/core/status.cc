#include "dfrp/core/status.h"

#include <fmt/format.h>

#include <cstring>

namespace dfrp::core {

namespace {
const std::string& EmptyString() {
  static const std::string kEmpty;
  return kEmpty;
}
}  // namespace

Status Status::FromErrno(int err, std::string_view what, std::string_view path) {
  std::string msg = fmt::format("{} {}: {}", what, path, std::strerror(err));
  if (err == ENOSPC || err == EDQUOT) return NoSpace(std::move(msg));
  if (err == ENOENT) return NotFound(std::move(msg));
  return IOError(std::move(msg));
}

const std::string& Status::message() const { return msg_ ? *msg_ : EmptyString(); }

const char* CodeName(Status::Code code) {
  switch (code) {
    case Status::Code::kOk:
      return "OK";
    case Status::Code::kInvalidArgument:
      return "Invalid argument";
    case Status::Code::kCorruption:
      return "Corruption";
    case Status::Code::kNotFound:
      return "Not found";
    case Status::Code::kNoSpace:
      return "No space";
    case Status::Code::kBusy:
      return "Busy";
    case Status::Code::kIOError:
      return "I/O error";
    case Status::Code::kInternal:
      return "Internal error";
    case Status::Code::kRefused:
      return "Refused";
    case Status::Code::kUnavailable:
      return "Unavailable";
  }
  return "Unknown";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return fmt::format("{}: {}", CodeName(code_), message());
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  return Status(code_, fmt::format("{}: {}", context, message()));
}

int ExitCodeFor(const Status& s) {
  switch (s.code()) {
    case Status::Code::kOk:
      return kExitOk;
    case Status::Code::kInvalidArgument:
      return kExitUsage;
    case Status::Code::kCorruption:
      return kExitIntegrity;
    case Status::Code::kNotFound:
      return kExitNotFound;
    case Status::Code::kNoSpace:
      return kExitCapacity;
    case Status::Code::kBusy:
    case Status::Code::kUnavailable:  // as Busy: try again later
      return kExitBusy;
    case Status::Code::kRefused:
      return kExitRefused;
    case Status::Code::kIOError:
    case Status::Code::kInternal:
      return kExitFailure;
  }
  return kExitFailure;
}

}  // namespace dfrp::core
