#include "dfrp/economy/measure.h"

#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>

namespace dfrp::economy {
namespace {

namespace fs = std::filesystem;

class MeasureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dfrp_measure_test_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(dir_, ec);
  }
  // Small and short enough for a unit test; the figures are still real measurements.
  MeasureOptions Fast() {
    MeasureOptions opt;
    opt.quick = true;
    opt.clock = &clock_;
    opt.file_bytes = 4 << 20;
    opt.random_read_seconds = 0.1;
    opt.hash_seconds = 0.05;
    opt.gpu_seconds = 0.1;
    opt.progress = [this](const std::string& line) { lines_.push_back(line); };
    return opt;
  }
  static bool Positive(const std::optional<double>& v) {
    return v.has_value() && std::isfinite(*v) && *v > 0;
  }
  static int LeftoverFiles(const std::string& dir) {
    int n = 0;
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.path().filename().string().starts_with(".dfrp-measure-")) ++n;
    }
    return n;
  }

  std::string dir_;
  core::ManualClock clock_{1'234'567};
  std::vector<std::string> lines_;
};

TEST_F(MeasureTest, MeasuresAFolderAndRemovesItsFile) {
  auto c = MeasureCapacity({{1, dir_}}, Fast());
  ASSERT_TRUE(c.has_value()) << c.error().ToString();
  EXPECT_GE(c->cores, 1u);
  EXPECT_TRUE(std::isfinite(c->sha256_per_sec_one_core));
  EXPECT_GT(c->sha256_per_sec_one_core, 0);
  EXPECT_GT(c->sha256_per_sec_all_cores, 0);
  EXPECT_TRUE(std::isfinite(c->sha256_per_sec_all_cores));
  EXPECT_EQ(c->measured_unix_ms, 1'234'567);
  EXPECT_GT(c->seconds, 0);
  EXPECT_TRUE(c->quick);
  // Either a figure or a reason, never both and never neither.
  EXPECT_NE(c->gpu_tflops.has_value(), !c->gpu_reason.empty());
  ASSERT_EQ(c->volumes.size(), 1u);
  const VolumeCapacity& v = c->volumes[0];
  EXPECT_EQ(v.index, 1u);
  EXPECT_EQ(v.path, dir_);
  EXPECT_EQ(v.error, "");
  EXPECT_TRUE(Positive(v.read_iops_4k));
  EXPECT_TRUE(Positive(v.read_mb_per_sec));
  EXPECT_TRUE(Positive(v.write_mb_per_sec));
  EXPECT_EQ(LeftoverFiles(dir_), 0);
  EXPECT_FALSE(lines_.empty());
}

TEST_F(MeasureTest, WithoutAGpuSaysWhy) {
  GpuMeasurement g = MeasureGpuFp32(0.1);
  if (g.tflops) {
    EXPECT_TRUE(std::isfinite(*g.tflops) && *g.tflops > 0);
    GTEST_SKIP() << "a GPU is present: measured " << *g.tflops << " TFLOPS";
  }
  EXPECT_FALSE(g.reason.empty());
  EXPECT_EQ(g.reason.find("not implemented"), std::string::npos);
}

TEST_F(MeasureTest, TmpfsIsMeasuredAndSaysWhetherDirect) {
  struct statfs sfs;
  if (statfs("/dev/shm", &sfs) != 0 || sfs.f_type != TMPFS_MAGIC) {
    GTEST_SKIP() << "no tmpfs at /dev/shm";
  }
  auto c = MeasureCapacity({{2, "/dev/shm"}}, Fast());
  ASSERT_TRUE(c.has_value()) << c.error().ToString();
  const VolumeCapacity& v = c->volumes[0];
  EXPECT_EQ(v.error, "");
  // Linux 6.6 and later take O_DIRECT on tmpfs; older kernels refuse it.
  EXPECT_TRUE(Positive(v.read_iops_4k));
  EXPECT_TRUE(Positive(v.write_mb_per_sec));
  EXPECT_EQ(LeftoverFiles("/dev/shm"), 0);
  bool said = false;
  for (const auto& line : lines_) said = said || line.find("refuses O_DIRECT") != std::string::npos;
  EXPECT_EQ(said, !v.direct_io);
}

TEST_F(MeasureTest, MissingFolderIsAnErrorOfThatVolumeOnly) {
  const std::string missing = dir_ + "/no-such-folder";
  auto c = MeasureCapacity({{0, missing}, {1, dir_}}, Fast());
  ASSERT_TRUE(c.has_value()) << c.error().ToString();
  ASSERT_EQ(c->volumes.size(), 2u);
  EXPECT_NE(c->volumes[0].error.find(missing), std::string::npos) << c->volumes[0].error;
  EXPECT_NE(c->volumes[0].error.find("does not exist"), std::string::npos);
  EXPECT_FALSE(c->volumes[0].read_iops_4k.has_value());
  EXPECT_FALSE(c->volumes[0].write_mb_per_sec.has_value());
  EXPECT_EQ(c->volumes[1].error, "");
  EXPECT_TRUE(Positive(c->volumes[1].read_iops_4k));
}

TEST_F(MeasureTest, ReadOnlyFolderIsAnErrorOfThatVolumeOnly) {
  // Root ignores file modes, so as root a folder under /proc (read-only, no free space) stands in.
  std::string ro = dir_ + "/ro";
  if (geteuid() == 0) {
    ro = "/proc/self";
  } else {
    ASSERT_EQ(mkdir(ro.c_str(), 0755), 0);
    ASSERT_EQ(chmod(ro.c_str(), 0555), 0);
  }
  auto c = MeasureCapacity({{3, dir_}, {4, ro}}, Fast());
  ASSERT_TRUE(c.has_value()) << c.error().ToString();
  ASSERT_EQ(c->volumes.size(), 2u);
  EXPECT_EQ(c->volumes[0].error, "");
  EXPECT_TRUE(Positive(c->volumes[0].write_mb_per_sec));
  const std::string& err = c->volumes[1].error;
  EXPECT_NE(err.find(ro), std::string::npos) << err;
  EXPECT_FALSE(c->volumes[1].read_mb_per_sec.has_value());
  if (geteuid() != 0) {
    EXPECT_NE(err.find("read-only"), std::string::npos) << err;
    EXPECT_EQ(LeftoverFiles(ro), 0);
  }
}

TEST_F(MeasureTest, NoClockIsRefused) {
  MeasureOptions opt = Fast();
  opt.clock = nullptr;
  auto c = MeasureCapacity({}, opt);
  ASSERT_FALSE(c.has_value());
  EXPECT_NE(c.error().message().find("clock"), std::string::npos);
}

Capacity Sample() {
  Capacity c;
  c.cores = 2;
  c.sha256_per_sec_one_core = 4.5e6;
  c.sha256_per_sec_all_cores = 8.75e6;
  c.gpu_reason = "no NVIDIA driver: libcuda.so.1 not found";
  VolumeCapacity a;
  a.index = 1;
  a.path = "/mnt/d1";
  a.read_iops_4k = 12000.5;
  a.read_mb_per_sec = 900;
  a.write_mb_per_sec = 450.25;
  VolumeCapacity b;
  b.index = 2;
  b.path = "/mnt/d2";
  b.direct_io = false;
  b.error = "volume folder /mnt/d2 does not exist";
  c.volumes = {a, b};
  c.measured_unix_ms = 1'700'000'000'000;
  c.seconds = 12.5;
  c.quick = true;
  return c;
}

TEST(CapacityJsonTest, RoundTrips) {
  const Capacity c = Sample();
  const nlohmann::json j = CapacityToJson(c);
  EXPECT_TRUE(j["gpu_tflops"].is_null());
  EXPECT_TRUE(j["volumes"][1]["read_iops_4k"].is_null());
  EXPECT_EQ(j["volumes"][0]["write_mb_per_sec"], 450.25);
  auto back = CapacityFromJson(nlohmann::json::parse(j.dump()));
  ASSERT_TRUE(back.has_value()) << back.error().ToString();
  EXPECT_EQ(CapacityToJson(*back), j);
  EXPECT_EQ(back->volumes[1].error, c.volumes[1].error);
  EXPECT_FALSE(back->volumes[1].direct_io);
  Capacity with_gpu = c;
  with_gpu.gpu_tflops = 51.2;
  with_gpu.gpu_reason.clear();
  auto back2 = CapacityFromJson(CapacityToJson(with_gpu));
  ASSERT_TRUE(back2.has_value());
  EXPECT_EQ(back2->gpu_tflops, 51.2);
}

// Applies `edit` to a good document and expects an InvalidArgument naming `field`.
void ExpectRejected(const std::function<void(nlohmann::json&)>& edit, const std::string& field) {
  nlohmann::json j = CapacityToJson(Sample());
  edit(j);
  auto r = CapacityFromJson(j);
  ASSERT_FALSE(r.has_value()) << "accepted " << j.dump();
  EXPECT_EQ(r.error().code(), core::Status::Code::kInvalidArgument);
  EXPECT_NE(r.error().message().find(field), std::string::npos) << r.error().message();
}

TEST(CapacityJsonTest, RejectsBadFieldsNamingThem) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  ExpectRejected([](auto& j) { j["cores"] = "two"; }, "cores");
  ExpectRejected([](auto& j) { j["cores"] = -1; }, "cores");
  ExpectRejected([](auto& j) { j["sha256_per_sec_one_core"] = -5.0; }, "sha256_per_sec_one_core");
  ExpectRejected([=](auto& j) { j["sha256_per_sec_all_cores"] = nan; }, "sha256_per_sec_all_cores");
  ExpectRejected([=](auto& j) { j["gpu_tflops"] = inf; }, "gpu_tflops");
  ExpectRejected([](auto& j) { j["gpu_tflops"] = "fast"; }, "gpu_tflops");
  ExpectRejected([](auto& j) { j["gpu_reason"] = 3; }, "gpu_reason");
  ExpectRejected([](auto& j) { j["volumes"] = nlohmann::json::object(); }, "volumes");
  ExpectRejected([](auto& j) { j["volumes"][0]["read_iops_4k"] = -1.0; },
                 "volumes[0].read_iops_4k");
  ExpectRejected([=](auto& j) { j["volumes"][1]["read_mb_per_sec"] = nan; },
                 "volumes[1].read_mb_per_sec");
  ExpectRejected([](auto& j) { j["volumes"][0]["write_mb_per_sec"] = true; },
                 "volumes[0].write_mb_per_sec");
  ExpectRejected([](auto& j) { j["volumes"][0]["index"] = 1.5; }, "volumes[0].index");
  ExpectRejected([](auto& j) { j["volumes"][0]["direct_io"] = 1; }, "volumes[0].direct_io");
  ExpectRejected([](auto& j) { j["volumes"][0].erase("path"); }, "volumes[0].path");
  ExpectRejected([](auto& j) { j["volumes"][1] = 7; }, "volumes[1]");
  ExpectRejected([](auto& j) { j["seconds"] = -0.5; }, "seconds");
  ExpectRejected([](auto& j) { j["measured_unix_ms"] = "now"; }, "measured_unix_ms");
  ExpectRejected([](auto& j) { j["quick"] = "yes"; }, "quick");
  ExpectRejected([](auto& j) { j.erase("cores"); }, "cores");
  ExpectRejected([](auto& j) { j["extra"] = 1; }, "extra");
  ExpectRejected([](auto& j) { j = nlohmann::json::array(); }, "top level");
}

}  // namespace
}  // namespace dfrp::economy
