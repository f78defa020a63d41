// Internals shared by the store's source files; not part of the storage API.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "dfrp/core/config.h"
#include "dfrp/core/file_system.h"
#include "dfrp/core/uuid.h"
#include "dfrp/storage/index.h"
#include "dfrp/storage/store.h"

namespace dfrp::storage {

struct Store::Volume {
  core::DriveConfig drive;
  bool configured = true;    // has a DRIVE_n in the config
  bool in_manifest = false;  // was laid out by init-storage
  VolumeState state = VolumeState::kActive;
  std::string problem;
  std::map<uint64_t, uint64_t> segments;  // segment number -> file size
  std::string moved_from;                 // DRIVE_n's path when the volume was moved away
  std::string config_path;                // DRIVE_n's path as configured

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

// STATE_DIR/STORE: {"format": 1, "store_id": "...", "volumes": [0, 1, ...], "vector_dim",
// and, when set, "paused", "full", "moved", "migrating" (see docs/FORMAT.md)}. Written atomically,
// so every change of a volume's state or place is one rename.
struct VolumeMove {
  std::string from;  // the path DRIVE_n named when the volume moved
  std::string to;    // where it lives now
  std::string old;   // the folder it was copied from, until retire-source deletes that copy
};
struct Manifest {
  core::Uuid store_id;
  std::vector<uint32_t> volumes;
  std::map<uint32_t, std::string> paused;     // volume -> why
  std::map<uint32_t, std::string> full;       // volume -> what the file system said
  std::map<uint32_t, VolumeMove> moved;       // volume -> its move
  std::map<uint32_t, std::string> migrating;  // volume -> destination of an unfinished copy
  uint32_t vector_dim = 0;  // VECTOR_DIM, fixed at init; 0: a store from before it was kept
};
core::Result<std::optional<Manifest>> ReadManifest(core::FileSystem* fs,
                                                   const std::string& state_dir);
core::Status WriteManifest(core::FileSystem* fs, const std::string& state_dir, const Manifest& m);

// Where volume d.index lives: DRIVE_n's path, unless a migration moved the volume away from
// it (or to it). A DRIVE_n that names a third path wins.
std::string ResolveDrivePath(const Manifest& m, const core::DriveConfig& d);

// The source folder of a finished move loses its header and gets this marker instead, a JSON
// object naming the store, the volume and where it went ("moved_to"), so that the stale copy
// is never taken for the volume and init-storage can say where to look. retire-source keeps
// it.
inline constexpr std::string_view kMovedVolumeFileName = "DFRP-VOLUME.moved";
// ... and the copy of a cancelled migration keeps its header under this one.
inline constexpr std::string_view kAbandonedVolumeFileName = "DFRP-VOLUME.abandoned";

// A full walk of one segment's record chain from `start`, reading record prefixes and commit
// records only. Unlike the recovery tail scan, it does not stop at damage: when the chain
// breaks and a valid commit record lies further on, it searches for the next valid record
// or commit record and goes on from there (the records a later commit closes were synced
// before it, whatever lies between).
struct SegmentWalk {
  std::vector<ShardLocation> committed;    // records closed by a valid commit record
  std::vector<ShardLocation> uncommitted;  // whole records after the last commit
  uint64_t committed_end = 0;              // end of the last valid commit record (or start)
  std::vector<uint64_t> damage;            // offsets where the chain broke
  std::set<core::Uuid> after_damage;       // committed records found by searching past damage
  uint64_t bytes_read = 0;
  bool read_error = false;  // the walk stopped because the file could not be read
};
// With resync false it stops at the first break instead (the recovery scan).
SegmentWalk WalkSegment(const core::RandomAccessFile& file, uint32_t volume, uint64_t segment,
                        uint64_t start, uint64_t end, bool resync = true);

// Where the volume that lived in `drive` went, from its DFRP-VOLUME.moved marker; nullopt
// when there is none.
std::optional<std::string> MovedTo(core::FileSystem* fs, const std::string& drive);

// Reads DRIVE/DFRP-VOLUME. NotFound when absent.
core::Result<VolumeHeader> ReadVolumeHeader(core::FileSystem* fs, const std::string& drive);

}  // namespace dfrp::storage
