// The dashboard's files (node/dashboard/), embedded in the binary at build time so that the
// daemon serves them without reading anything from disk (cmake/EmbedFiles.cmake).
#pragma once

#include <optional>
#include <string_view>

namespace dfrp::node {

// The file named `name` ("index.html", "app.js", ...) and its content type; nullopt when
// there is no such file.
std::optional<std::string_view> DashboardAsset(std::string_view name, std::string_view* type);

}  // namespace dfrp::node
