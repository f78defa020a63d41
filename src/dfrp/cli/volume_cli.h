// dfrp-storage's volume commands: pause, resume, migrate, pause-migrate, retire-source,
// add-drive and rebuild-index (storage_cli.cc registers them and hands over when one of them
// was chosen).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "dfrp/core/config.h"
#include "dfrp/core/status.h"
#include "dfrp/storage/store.h"

namespace CLI {
class App;
}

namespace dfrp::cli {

class Remote;

struct VolumeCliContext {
  const core::NodeConfig* config = nullptr;
  bool json = false;
  bool quiet = false;
  bool progress = false;     // draw progress bars (stderr is a terminal)
  Remote* remote = nullptr;  // the dfrpd serving the store, if one runs (remote.h)
};

// The volumes as list-volumes --json and GET /v1/volumes show them (node::VolumeJson each).
nlohmann::json VolumesJson(const std::vector<storage::VolumeInfo>& vols);
// The list-volumes table (or JSON array) on stdout, from that JSON array: one printer for
// the direct path and the daemon's answers.
void PrintVolumes(bool as_json, const nlohmann::json& vols);

class VolumeCommands {
 public:
  explicit VolumeCommands(CLI::App& app);
  ~VolumeCommands();
  // True when the parsed command line chose one of these commands.
  bool chosen() const;
  core::Status Run(const VolumeCliContext& ctx);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dfrp::cli
