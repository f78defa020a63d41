#include "dfrp/node/token.h"

#include <fmt/format.h>
#include <sys/random.h>

#include "dfrp/core/bytes.h"

namespace dfrp::node {

using core::Err;
using core::Result;
using core::Status;

namespace {

Result<std::string> NewToken() {
  std::string raw(32, '\0');
  size_t got = 0;
  while (got < raw.size()) {
    const ssize_t n = ::getrandom(raw.data() + got, raw.size() - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      return Err(Status::IOError("cannot read random bytes (getrandom) for the API token"));
    got += static_cast<size_t>(n);
  }
  return core::ToHex(raw);
}

}  // namespace

Result<std::string> EnsureApiToken(core::FileSystem* fs, const std::string& state_dir,
                                   std::string* warning) {
  const std::string path = core::JoinPath(state_dir, std::string(kTokenFileName));
  if (!fs->Exists(path)) {
    DFRP_ASSIGN_OR_RETURN(std::string token, NewToken());
    DFRP_RETURN_IF_ERROR(fs->CreateDirRecursive(state_dir));
    DFRP_RETURN_IF_ERROR(core::WriteFileAtomic(fs, path, token + "\n", /*private_mode=*/true));
    return token;
  }
  DFRP_ASSIGN_OR_RETURN(std::string text, core::ReadWholeFile(fs, path));
  std::string token = text.substr(0, text.find('\n'));
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ' || token.back() == '\t'))
    token.pop_back();
  const bool hex = token.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
  if (!hex || token.size() < 32 || token.size() > 256)
    return Err(Status::Corruption(fmt::format(
        "{} does not hold a token ({}): it must be one line of 32 to 256 hex digits; delete the "
        "file and start dfrpd again to make a new one",
        path,
        token.size() < 32 ? "under 32 characters"
        : !hex            ? "a character that is not hex"
                          : "too long")));
  if (warning) {
    auto mode = fs->PermissionBits(path);
    if (mode && (*mode & 077) != 0)
      *warning = fmt::format(
          "{} can be read by other users (mode {:o}): anyone who reads it can pause, resume and "
          "migrate volumes; run chmod 600 {}",
          path, *mode, path);
  }
  return token;
}

}  // namespace dfrp::node
