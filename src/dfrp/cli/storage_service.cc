#include "dfrp/cli/storage_service.h"

#include <utility>

#include "dfrp/cli/local_storage_service.h"
#include "dfrp/cli/remote_storage_service.h"
#include "dfrp/node/client.h"

namespace dfrp::cli {

core::Result<std::unique_ptr<StorageService>> MakeStorageService(const core::NodeConfig& config,
                                                                 core::FileSystem* fs,
                                                                 core::Clock* clock,
                                                                 NoticeFn notice) {
  DFRP_ASSIGN_OR_RETURN(std::optional<node::DaemonInfo> daemon,
                        node::FindDaemon(fs, config.state_dir));
  if (daemon)
    return std::unique_ptr<StorageService>(
        new RemoteStorageService(std::move(*daemon), config, fs, clock, std::move(notice)));
  return std::unique_ptr<StorageService>(
      new LocalStorageService(config, fs, clock, std::move(notice)));
}

std::vector<uint32_t> VolumesToPauseOrResume(const nlohmann::json& volumes, bool resuming) {
  std::vector<uint32_t> out;
  for (const auto& v : volumes) {
    const std::string state = v["state"].get<std::string>();
    if (!resuming ||
        ((state == "paused" || state == "full") && v.value("migrating_to", "").empty()))
      out.push_back(v["index"].get<uint32_t>());
  }
  return out;
}

}  // namespace dfrp::cli
