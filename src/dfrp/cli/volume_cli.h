// dfrp-storage's volume commands: pause, resume, migrate, pause-migrate, retire-source,
// add-drive and rebuild-index (storage_cli.cc registers them and hands over when one of them
// was chosen).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>

#include "dfrp/core/status.h"

namespace CLI {
class App;
}

namespace dfrp::cli {

struct Context;

// The list-volumes table (or JSON array) on stdout, from the JSON array of
// StorageService::ListVolumes (node::VolumeJson elements).
void PrintVolumes(bool as_json, const nlohmann::json& vols);

class VolumeCommands {
 public:
  explicit VolumeCommands(CLI::App& app);
  ~VolumeCommands();
  // True when the parsed command line chose one of these commands.
  bool chosen() const;
  core::Status Run(Context& ctx);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dfrp::cli
