#include "dfrp/node/token.h"

#include <fmt/format.h>

#include <fstream>

#include "dfrp/core/bytes.h"
#include "dfrp/core/file_system.h"

namespace dfrp::node {

using core::Err;
using core::Result;
using core::Status;

Result<std::string> EnsureApiToken(const std::string& state_dir) {
  core::FileSystem* fs = core::DefaultFileSystem();
  const std::string path = core::JoinPath(state_dir, std::string(kTokenFileName));
  if (fs->Exists(path)) {
    DFRP_ASSIGN_OR_RETURN(std::string text, core::ReadWholeFile(fs, path));
    std::string token = text.substr(0, text.find('\n'));
    if (token.size() < 32)
      return Err(Status::Corruption(fmt::format(
          "{} holds no token (under 32 characters): delete it and start dfrpd again to make a "
          "new one",
          path)));
    return token;
  }
  std::string raw(32, '\0');
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  if (!urandom.read(raw.data(), static_cast<std::streamsize>(raw.size())))
    return Err(Status::IOError("cannot read /dev/urandom to make the API token"));
  std::string token = core::ToHex(raw);
  DFRP_RETURN_IF_ERROR(fs->CreateDirRecursive(state_dir));
  DFRP_RETURN_IF_ERROR(core::WriteFileAtomic(fs, path, token + "\n", /*private_mode=*/true));
  return token;
}

}  // namespace dfrp::node
