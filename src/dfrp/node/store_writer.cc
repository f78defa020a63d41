#include "dfrp/node/store_writer.h"

namespace dfrp::node {

StoreWriter::StoreWriter(std::unique_ptr<storage::Store> store)
    : store_id_(store->store_id()), store_(std::move(store)) {
  core::MutexLock lock(&mu_);
  Refresh();
}

core::Status StoreWriter::Run(const std::function<core::Status(storage::Store&)>& f) {
  core::MutexLock lock(&mu_);
  core::Status s = f(*store_);
  Refresh();
  return s;
}

std::vector<std::string> StoreWriter::notices() const {
  core::MutexLock lock(&mu_);
  return store_->notices();
}

void StoreWriter::Refresh() {
  auto vols = store_->ListVolumes();
  core::MutexLock lock(&snapshot_mu_);
  volumes_ = std::move(vols);
}

std::vector<storage::VolumeInfo> StoreWriter::Volumes() {
  if (mu_.TryLock()) {
    Refresh();
    mu_.Unlock();
  }
  return Snapshot();
}

std::vector<storage::VolumeInfo> StoreWriter::Snapshot() const {
  core::MutexLock lock(&snapshot_mu_);
  return volumes_;
}

uint64_t StoreWriter::WritableBytes() const {
  core::MutexLock lock(&snapshot_mu_);
  uint64_t best = 0;
  for (const auto& v : volumes_)
    if (v.state == storage::VolumeState::kActive) best = std::max(best, v.free);
  return best;
}

}  // namespace dfrp::node
