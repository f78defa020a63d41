// The storage service's two implementations, below the command line: the local one over a
// real store in a temporary folder (with a fault-injecting file system and a manual clock, to
// show both reach the store from the edge), the remote one where it refuses without a daemon
// to ask, and the edge's choice between them. The remote one talking to a real dfrpd is
// tested end to end by tests/cli/daemon_cli_test.sh.
#include "dfrp/cli/storage_service.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "dfrp/cli/local_storage_service.h"
#include "dfrp/cli/remote_storage_service.h"
#include "dfrp/core/fault_injection_fs.h"
#include "dfrp/storage/store_test_util.h"

namespace dfrp::cli {
namespace {

using nlohmann::json;
using storage::testing::Pattern;

class LocalServiceTest : public storage::testing::StoreFixture {
 protected:
  void SetUp() override {
    StoreFixture::SetUp();
    config_ = Config({1 << 20, 4 << 20});
  }
  std::unique_ptr<LocalStorageService> Service() {
    return std::make_unique<LocalStorageService>(
        config_, &fs_, &clock_, [this](const std::string& n) { notices_.push_back(n); });
  }
  WriteInput Input(const std::string& content) {
    const std::string path = FileWith(content);
    return {path, WriteInput::Kind::kFile, static_cast<int64_t>(content.size())};
  }
  static std::string ReadAll(PayloadSource& p, core::Status* status) {
    std::string got;
    *status = p.ReadTo([&](std::string_view c) {
      got.append(c);
      return core::Status::OK();
    });
    return got;
  }

  core::FaultInjectingFileSystem fs_{core::DefaultFileSystem()};
  core::ManualClock clock_{1'800'000'000'000};
  core::NodeConfig config_;
  std::vector<std::string> notices_;
};

TEST_F(LocalServiceTest, WritesReadsStatsAndVerifiesThroughOneInterface) {
  auto svc = Service();
  auto init = svc->Init(false);
  ASSERT_TRUE(init.has_value()) << init.error().ToString();
  EXPECT_TRUE(init->report.new_store);
  ASSERT_EQ(init->volumes.size(), 2u);
  EXPECT_EQ(init->volumes[0]["state"], "active");

  const std::string a = Pattern(10000, 1), b = Pattern(3, 2);
  uint64_t last_done = 0, last_total = 0;
  WriteOutcome w = svc->Write({Input(a), Input(b)}, {}, [&](uint64_t d, uint64_t t) {
    last_done = d;
    last_total = t;
  });
  ASSERT_TRUE(w.status.ok()) << w.status.ToString();
  ASSERT_EQ(w.written.size(), 2u);
  EXPECT_EQ(w.written[0]["size"], 10000);
  EXPECT_EQ(last_done, last_total);
  const auto id = *core::Uuid::Parse(w.written[0]["shard_id"].get<std::string>());

  core::Status s;
  auto whole = svc->OpenPayload(id, std::nullopt);
  ASSERT_TRUE(whole.has_value());
  EXPECT_EQ(ReadAll(**whole, &s), a);
  EXPECT_TRUE(s.ok()) << s.ToString();
  auto range = svc->OpenPayload(id, ByteRange{4000, 5000});
  ASSERT_TRUE(range.has_value());
  EXPECT_EQ(ReadAll(**range, &s), a.substr(4000, 5000));
  EXPECT_TRUE(s.ok()) << s.ToString();

  auto stat = svc->Stat(id);
  ASSERT_TRUE(stat.has_value());
  EXPECT_EQ((*stat)["size"], 10000);
  // The shard's creation time is the clock the service was given, not the system's.
  EXPECT_EQ((*stat)["created_unix_ms"], clock_.NowUnixMillis());

  std::vector<json> results;
  ASSERT_TRUE(svc->Verify(
                     {id}, [&](json r) { results.push_back(r); }, nullptr)
                  .ok());
  ASSERT_EQ(results.size(), 1u);
  EXPECT_TRUE(results[0]["ok"].get<bool>());
  results.clear();
  ASSERT_TRUE(svc->VerifyAll([&](json r) { results.push_back(r); }, nullptr).ok());
  EXPECT_EQ(results.size(), 2u);

  auto proof = svc->Prove(id, 1);
  ASSERT_TRUE(proof.has_value()) << proof.error().ToString();
  EXPECT_EQ(proof->proofs.at(0).leaf_index, 1u);
  auto audit = svc->Audit(id, "seed", 2);
  ASSERT_TRUE(audit.has_value()) << audit.error().ToString();
  EXPECT_EQ(audit->proofs.size(), 2u);
}

TEST_F(LocalServiceTest, ACorruptLeafStopsTheReadAfterTheVerifiedPrefix) {
  config_ = Config({32 << 20});
  auto svc = Service();
  ASSERT_TRUE(svc->Init(false).has_value());
  const std::string a = Pattern(9 << 20, 3);
  WriteOutcome w = svc->Write({Input(a)}, {}, nullptr);
  ASSERT_TRUE(w.status.ok()) << w.status.ToString();
  const auto id = *core::Uuid::Parse(w.written[0]["shard_id"].get<std::string>());
  auto stat = svc->Stat(id);
  ASSERT_TRUE(stat.has_value());
  // A byte past the first 8 MiB (the unit a whole read verifies before it hands bytes over).
  const std::string seg = (*stat)["segment"].get<std::string>();
  std::string bytes = storage::testing::Slurp(seg);
  const uint64_t offset = (*stat)["offset"].get<uint64_t>();
  uint32_t mlen;
  std::memcpy(&mlen, bytes.data() + offset + 12, 4);
  bytes[offset + 96 + mlen + 9'000'000] ^= 0x5a;
  storage::testing::Spit(seg, bytes);

  auto reader = Service();  // a fresh open: nothing cached of the record
  auto payload = reader->OpenPayload(id, std::nullopt);
  ASSERT_TRUE(payload.has_value());
  core::Status s;
  const std::string got = ReadAll(**payload, &s);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_EQ(got.size(), 8u << 20);
  EXPECT_TRUE(got == a.substr(0, got.size())) << "only verified bytes reach the sink";
  // A range inside the verified part still reads; one over the bad leaf does not.
  auto before = reader->OpenPayload(id, ByteRange{1000, 5000});
  ASSERT_TRUE(before.has_value());
  EXPECT_TRUE(ReadAll(**before, &s) == a.substr(1000, 5000));
  EXPECT_TRUE(s.ok()) << s.ToString();
  auto over = reader->OpenPayload(id, ByteRange{8'999'000, 2000});
  ASSERT_TRUE(over.has_value());
  EXPECT_TRUE(ReadAll(**over, &s).empty());
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
}

TEST_F(LocalServiceTest, PausesAndResumesAllOrOneAndMigrates) {
  auto svc = Service();
  ASSERT_TRUE(svc->Init(false).has_value());
  auto paused = svc->Pause(std::nullopt, "maintenance");
  ASSERT_TRUE(paused.has_value()) << paused.error().ToString();
  EXPECT_EQ(*paused, (std::vector<uint32_t>{0, 1}));
  auto vols = svc->ListVolumes();
  ASSERT_TRUE(vols.has_value());
  EXPECT_EQ((*vols)[1]["state"], "paused");
  auto resumed = svc->Resume(1u);
  ASSERT_TRUE(resumed.has_value());
  EXPECT_EQ(*resumed, (std::vector<uint32_t>{1}));
  resumed = svc->Resume(std::nullopt);  // the rest: volume 0
  ASSERT_TRUE(resumed.has_value());
  EXPECT_EQ(*resumed, (std::vector<uint32_t>{0}));

  ASSERT_TRUE(svc->Write({Input(Pattern(2000, 4))}, {}, nullptr).status.ok());
  std::vector<std::string> phases;
  auto report = svc->Migrate(0, dir_ + "/new0", /*resume=*/true, /*delete_source=*/false,
                             [&](std::string_view phase, uint64_t, uint64_t) {
                               if (phases.empty() || phases.back() != phase)
                                 phases.emplace_back(phase);
                             });
  ASSERT_TRUE(report.has_value()) << report.error().ToString();
  EXPECT_EQ((*report)["to"], dir_ + "/new0");
  EXPECT_EQ((*report)["shards_verified"], 1);
  EXPECT_EQ(phases, (std::vector<std::string>{"copy", "verify", "switch"}));
  auto freed = svc->RetireSource(0);
  ASSERT_TRUE(freed.has_value()) << freed.error().ToString();
  EXPECT_GT(*freed, 0u);
}

TEST_F(LocalServiceTest, AFailingFileSystemFailsTheWriteWithNothingStored) {
  auto svc = Service();
  ASSERT_TRUE(svc->Init(false).has_value());
  fs_.FailNth(core::FaultInjectingFileSystem::Op::kSync, 1, core::Status::IOError("simulated EIO"));
  WriteOutcome w = svc->Write({Input(Pattern(5000, 5))}, {}, nullptr);
  EXPECT_EQ(w.status.code(), core::Status::Code::kIOError) << w.status.ToString();
  EXPECT_TRUE(w.written.empty());
  auto vols = svc->ListVolumes();
  ASSERT_TRUE(vols.has_value());
  EXPECT_EQ((*vols)[0]["shards"], 0);
}

// A daemon that does not answer (nothing listens on its port): what cannot run beside a
// daemon is refused before anything is asked of it, naming it and the way out.
TEST_F(LocalServiceTest, TheRemoteServiceRefusesWhatOnlyTheStoresOwnerMayDo) {
  ASSERT_TRUE(Service()->Init(false).has_value());
  node::DaemonInfo d;
  d.state_dir = config_.state_dir;
  d.api_addr = "127.0.0.1:1";
  d.url = "http://127.0.0.1:1";
  d.pid = 4242;
  RemoteStorageService svc(d, config_, &fs_, &clock_, [](const std::string&) {});
  auto expect_refused = [&](const core::Status& s, const std::string& what) {
    EXPECT_TRUE(s.IsBusy()) << what << ": " << s.ToString();
    EXPECT_NE(s.message().find(what + " cannot run while dfrpd (pid 4242, http://127.0.0.1:1)"),
              std::string::npos)
        << s.message();
    EXPECT_NE(s.message().find("stop dfrpd"), std::string::npos) << s.message();
  };
  expect_refused(svc.RebuildIndex(nullptr).error(), "rebuild-index");
  expect_refused(svc.AddDrive({dir_ + "/d9", "1M", true}).error(), "add-drive");
  EXPECT_FALSE(fs_.Exists(dir_ + "/d9"));
  expect_refused(svc.Scrub({}).error(), "scrub");
  expect_refused(svc.Mount({}), "mount");
  // Every drive is a volume: init-storage only reports the store (read directly).
  auto init = svc.Init(false);
  ASSERT_TRUE(init.has_value()) << init.error().ToString();
  EXPECT_EQ(init->report.already, (std::vector<uint32_t>{0, 1}));
  // A new drive would be laid out: refused.
  core::NodeConfig more = config_;
  more.drives.push_back({2, dir_ + "/d2", 1 << 20});
  RemoteStorageService svc2(d, more, &fs_, &clock_, [](const std::string&) {});
  expect_refused(svc2.Init(true).error(), "init-storage");
  // What needs the daemon says it is not answering.
  auto vols = svc.ListVolumes();
  ASSERT_FALSE(vols.has_value());
  EXPECT_NE(vols.error().message().find("is not answering"), std::string::npos);
}

TEST_F(LocalServiceTest, TheEdgePicksTheRemoteServiceExactlyWhileADaemonHoldsTheLock) {
  ASSERT_TRUE(Service()->Init(false).has_value());
  auto quiet = [](const std::string&) {};
  auto local = MakeStorageService(config_, &fs_, &clock_, quiet);
  ASSERT_TRUE(local.has_value()) << local.error().ToString();
  EXPECT_NE(dynamic_cast<LocalStorageService*>(local->get()), nullptr);

  const std::string lock = config_.state_dir + "/dfrpd.lock";
  const int fd = ::open(lock.c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  storage::testing::Spit(config_.state_dir + "/dfrpd.json",
                         json{{"pid", ::getpid()}, {"api_addr", "127.0.0.1:1"}}.dump());
  auto remote = MakeStorageService(config_, &fs_, &clock_, quiet);
  ::close(fd);
  ASSERT_TRUE(remote.has_value()) << remote.error().ToString();
  EXPECT_NE(dynamic_cast<RemoteStorageService*>(remote->get()), nullptr);
}

TEST(VolumesToPauseOrResumeTest, ResumeAllSkipsActiveVolumesAndMigrations) {
  const json vols = json::array({{{"index", 0}, {"state", "active"}},
                                 {{"index", 1}, {"state", "paused"}},
                                 {{"index", 2}, {"state", "full"}},
                                 {{"index", 3}, {"state", "paused"}, {"migrating_to", "/x"}}});
  EXPECT_EQ(VolumesToPauseOrResume(vols, false), (std::vector<uint32_t>{0, 1, 2, 3}));
  EXPECT_EQ(VolumesToPauseOrResume(vols, true), (std::vector<uint32_t>{1, 2}));
}

}  // namespace
}  // namespace dfrp::cli
