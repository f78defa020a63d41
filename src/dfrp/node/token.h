// The files through which dfrpd and its clients find each other in STATE_DIR, and the admin
// token (docs/API.md). No HTTP library here: init-storage uses it too.
#pragma once

#include <string>
#include <string_view>

#include "dfrp/core/file_system.h"
#include "dfrp/core/status.h"
#include "dfrp/core/version.h"

namespace dfrp::node {

using core::kVersion;  // one version for all binaries (core/version.h)
inline constexpr std::string_view kTokenFileName = "api-token";
inline constexpr std::string_view kDaemonInfoFileName = "dfrpd.json";
inline constexpr std::string_view kDaemonLockFileName = "dfrpd.lock";

// Reads STATE_DIR/api-token, creating it (mode 0600, 64 hex digits and a newline, written
// atomically) when absent. The token is the file's first line without trailing whitespace
// (a CRLF from an editor is fine); Corruption when that is not 32 to 256 hex digits. When
// the file can be read by other users, *warning says so (the token still works).
core::Result<std::string> EnsureApiToken(core::FileSystem* fs, const std::string& state_dir,
                                         std::string* warning = nullptr);

}  // namespace dfrp::node
