// Operations: the daemon's long volume jobs (a migration, a resume at a new path), each on a
// thread of its own, one at a time, with progress that GET /v1/operations shows and a cancel
// that DELETE asks for. The node keeps the last kKept operations; a finished operation's
// thread is joined when the next one starts, or at Stop().
//
// Thread-safety: every member may be called from any thread. Lock order: mu_ before an
// Op's own mu; neither is held while the writer or the reader cache is used.
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "dfrp/core/config.h"
#include "dfrp/core/thread_annotations.h"
#include "dfrp/core/uuid.h"
#include "dfrp/node/metrics.h"
#include "dfrp/node/reader_cache.h"
#include "dfrp/node/store_writer.h"
#include "dfrp/storage/store.h"

namespace dfrp::node {

class Operations {
 public:
  static constexpr size_t kKept = 50;

  Operations(const core::NodeConfig& config, const storage::StoreOptions& opt, StoreWriter& writer,
             ReaderCache& readers, Metrics& metrics)
      : config_(config), opt_(opt), writer_(writer), readers_(readers), metrics_(metrics) {}
  ~Operations() { Stop(); }

  // Starts a migration of `volume` to the folder `to` (storage::RunMigration); its JSON as
  // GET /v1/operations/{id} shows it. Busy while another migration or operation runs.
  core::Result<nlohmann::json> StartMigrate(uint32_t volume, const std::string& to, bool resume,
                                            bool delete_source) EXCLUDES(mu_);
  // Starts Store::Resume with a path: the copy there is verified, then the volume moves.
  core::Result<nlohmann::json> StartResumeAt(uint32_t volume, const std::string& path)
      EXCLUDES(mu_);
  core::Result<nlohmann::json> Get(const core::Uuid& id) const EXCLUDES(mu_);
  nlohmann::json List() const EXCLUDES(mu_);
  // Asks a running migration to stop; Busy when it already ended or cannot be cancelled.
  core::Result<nlohmann::json> Cancel(const core::Uuid& id) EXCLUDES(mu_);
  // Busy when an operation on `volume` runs (resume would undercut it).
  core::Status CheckIdle(uint32_t volume) const EXCLUDES(mu_);
  // Asks what runs to stop (as DELETE would) and refuses new operations.
  void CancelAll() EXCLUDES(mu_);
  // CancelAll, then joins every thread.
  void Stop() EXCLUDES(mu_);

  struct Op;  // operations.cc

 private:
  core::Result<std::shared_ptr<Op>> NewOp(const std::string& kind, uint32_t volume,
                                          nlohmann::json params) EXCLUDES(mu_);
  void Launch(const std::shared_ptr<Op>& op, std::function<void()> body) EXCLUDES(mu_);
  void RunMigrate(const std::shared_ptr<Op>& op, std::string to, bool resume, bool delete_source);
  void RunResumeAt(const std::shared_ptr<Op>& op, std::string path);
  void Finish(Op& op, const core::Status& s, nlohmann::json result);

  const core::NodeConfig config_;
  const storage::StoreOptions opt_;
  StoreWriter& writer_;
  ReaderCache& readers_;
  Metrics& metrics_;

  mutable core::Mutex mu_;
  std::list<std::shared_ptr<Op>> ops_ GUARDED_BY(mu_);  // newest first
  struct Running {
    std::shared_ptr<Op> op;
    std::thread thread;
  };
  // Threads of operations, joined (by NewOp and Stop) once their op ended.
  std::list<Running> running_ GUARDED_BY(mu_);
  bool stopped_ GUARDED_BY(mu_) = false;
};

}  // namespace dfrp::node
