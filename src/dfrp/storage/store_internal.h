// Internals shared by the store's source files; not part of the storage API.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "dfrp/core/config.h"
#include "dfrp/core/file_system.h"
#include "dfrp/core/uuid.h"
#include "dfrp/storage/store.h"

namespace dfrp::storage {

struct Store::Volume {
  core::DriveConfig drive;
  bool configured = true;    // has a DRIVE_n in the config
  bool in_manifest = false;  // was laid out by init-storage
  VolumeState state = VolumeState::kActive;
  std::string problem;
  std::map<uint64_t, uint64_t> segments;  // segment number -> file size

  uint64_t used() const {
    uint64_t u = 0;
    for (const auto& [n, size] : segments) u += size;
    return u;
  }
  bool available() const {
    return state == VolumeState::kActive || state == VolumeState::kFull ||
           state == VolumeState::kPaused;
  }
};

// STATE_DIR/STORE: {"format": 1, "store_id": "...", "volumes": [0, 1, ...]}
struct Manifest {
  core::Uuid store_id;
  std::vector<uint32_t> volumes;
};
core::Result<std::optional<Manifest>> ReadManifest(core::FileSystem* fs,
                                                   const std::string& state_dir);
core::Status WriteManifest(core::FileSystem* fs, const std::string& state_dir, const Manifest& m);

// Reads DRIVE/DFRP-VOLUME. NotFound when absent.
core::Result<VolumeHeader> ReadVolumeHeader(core::FileSystem* fs, const std::string& drive);

}  // namespace dfrp::storage
