#include "dfrp/core/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include "dfrp/core/file_system.h"

namespace dfrp::core {
namespace {

std::map<std::string, std::string> TwoDrives() {
  return {{"DRIVE_0", "/mnt/d0"}, {"QUOTA_0", "500G"}, {"DRIVE_1", "d1"}, {"QUOTA_1", "1024"}};
}

TEST(ConfigTest, ParsesDrivesAndResolvesRelativePaths) {
  auto cfg = ConfigFromValues(TwoDrives(), "/etc/dfrp", "test");
  ASSERT_TRUE(cfg.has_value()) << cfg.error().ToString();
  ASSERT_EQ(cfg->drives.size(), 2u);
  EXPECT_EQ(cfg->drives[0].path, "/mnt/d0");
  EXPECT_EQ(cfg->drives[0].quota, 500ull << 30);
  EXPECT_EQ(cfg->drives[1].path, "/etc/dfrp/d1");
  EXPECT_EQ(cfg->drives[1].quota, 1024u);
  EXPECT_EQ(cfg->leaf_size, 4096u);
  EXPECT_EQ(cfg->vector_dim, 16u);
  EXPECT_EQ(cfg->state_dir, "/etc/dfrp/dfrp-data/state");
}

TEST(ConfigTest, ByteSizes) {
  EXPECT_EQ(*ParseByteSize("64M"), 64ull << 20);
  EXPECT_EQ(*ParseByteSize("2TiB"), 2ull << 40);
  EXPECT_EQ(*ParseByteSize("7 GB"), 7ull << 30);
  EXPECT_EQ(*ParseByteSize("12"), 12u);
  EXPECT_FALSE(ParseByteSize("12X").has_value());
  EXPECT_FALSE(ParseByteSize("1.5G").has_value());
  EXPECT_FALSE(ParseByteSize("").has_value());
  EXPECT_FALSE(ParseByteSize("99999999999T").has_value());
  EXPECT_EQ(FormatBytes(64ull << 20), "64 MiB");
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
}

void ExpectError(std::map<std::string, std::string> v, const std::string& fragment) {
  auto cfg = ConfigFromValues(v, "/base", "cfg");
  ASSERT_FALSE(cfg.has_value()) << "expected an error naming " << fragment;
  EXPECT_EQ(cfg.error().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(cfg.error().message().find(fragment), std::string::npos) << cfg.error().message();
}

TEST(ConfigTest, BadValuesNameTheKey) {
  auto v = TwoDrives();
  v["COLOUR"] = "blue";
  ExpectError(v, "unknown key COLOUR");
  v = TwoDrives();
  v["QUOTA_1"] = "lots";
  ExpectError(v, "QUOTA_1 = 'lots'");
  v = TwoDrives();
  v.erase("QUOTA_1");
  ExpectError(v, "DRIVE_1 has no QUOTA_1");
  v = TwoDrives();
  v["DRIVE_1"] = "/mnt/d0";
  ExpectError(v, "repeats the path");
  v = TwoDrives();
  v["DRIVE_3"] = "/x";
  v["QUOTA_3"] = "1G";
  ExpectError(v, "DRIVE_2 is not");
  v = TwoDrives();
  v["LEAF_SIZE"] = "1000";
  ExpectError(v, "LEAF_SIZE = 1000");
  v = TwoDrives();
  v["LEAF_SIZE"] = "256";
  ExpectError(v, "power of two");
  v = TwoDrives();
  v["VECTOR_DIM"] = "0";
  ExpectError(v, "VECTOR_DIM");
  v = TwoDrives();
  v["QUOTA_-0"] = "1G";  // found by fuzz_config: from_chars reads "-0" as 0
  ExpectError(v, "unknown key QUOTA_-0");
}

TEST(ConfigTest, ComputeKeys) {
  auto v = TwoDrives();
  v["ROLES"] = "storage,compute";
  v["WALLET"] = "w.json";
  v["COMPUTE_APPS"] = "apps.toml";
  v["COMPUTE_JOB_USER"] = "jobs";
  v["COMPUTE_SLOTS"] = "6";
  v["COMPUTE_HOSTFILE"] = "/etc/dfrp/hosts";
  v["COMPUTE_CLIENT_BINARIES"] = "true";
  auto cfg = ConfigFromValues(v, "/etc/dfrp", "test");
  ASSERT_TRUE(cfg.has_value()) << cfg.error().ToString();
  EXPECT_TRUE(cfg->HasRole("compute"));
  EXPECT_EQ(cfg->compute_apps, "/etc/dfrp/apps.toml");
  EXPECT_EQ(cfg->compute_job_user, "jobs");
  EXPECT_EQ(cfg->compute_slots, 6u);
  EXPECT_EQ(cfg->compute_hostfile, "/etc/dfrp/hosts");
  EXPECT_TRUE(cfg->compute_client_binaries);
  auto d = ConfigFromValues(TwoDrives(), "/etc/dfrp", "test");
  ASSERT_TRUE(d.has_value());
  EXPECT_FALSE(d->compute_client_binaries);
  EXPECT_EQ(d->compute_job_user, "dfrp-job");
  EXPECT_GE(d->compute_slots, 1u);
  v.erase("WALLET");
  ExpectError(v, "ROLES names compute");
  v = TwoDrives();
  v["COMPUTE_JOB_USER"] = "root";
  ExpectError(v, "never run as root");
  v = TwoDrives();
  v["COMPUTE_SLOTS"] = "0";
  ExpectError(v, "COMPUTE_SLOTS = '0'");
  v = TwoDrives();
  v["COMPUTE_CLIENT_BINARIES"] = "yes";
  ExpectError(v, "must be true or false");
  v = TwoDrives();
  v["ROLES"] = "miner";
  ExpectError(v, "(storage, authority, compute)");
}

TEST(ConfigTest, DotEnv) {
  auto m = ParseDotEnv("# comment\nexport DRIVE_0=/d0\nQUOTA_0 = \"5G\"\n\nLEAF_SIZE=1024 # note\n",
                       ".env");
  ASSERT_TRUE(m.has_value()) << m.error().ToString();
  EXPECT_EQ((*m)["DRIVE_0"], "/d0");
  EXPECT_EQ((*m)["QUOTA_0"], "5G");
  EXPECT_EQ((*m)["LEAF_SIZE"], "1024");
  EXPECT_FALSE(ParseDotEnv("JUSTAWORD\n", ".env").has_value());
  EXPECT_FALSE(ParseDotEnv("A=1\nA=2\n", ".env").has_value());
}

TEST(ConfigTest, TomlFlatAcceptsStringsAndIntegers) {
  auto m = ParseTomlFlat("DRIVE_0 = \"/d0\"\nQUOTA_0 = 1048576\nLEAF_SIZE = 4096\n", "x.toml");
  ASSERT_TRUE(m.has_value()) << m.error().ToString();
  EXPECT_EQ((*m)["QUOTA_0"], "1048576");
  auto bad = ParseTomlFlat("DRIVE_0 = [1, 2]\n", "x.toml");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message().find("DRIVE_0"), std::string::npos);
  EXPECT_FALSE(ParseTomlFlat("DRIVE_0 = \n", "x.toml").has_value());
}

TEST(ConfigTest, EnvironmentOverridesFileAndEmbeddedDefault) {
  ConfigOptions opt;
  opt.cwd = "/work/here";
  std::map<std::string, std::string> env = {{"QUOTA_1", "1G"}};
  opt.getenv = [&](const std::string& k) -> std::optional<std::string> {
    auto it = env.find(k);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  opt.env_names = [&] {
    std::vector<std::string> n;
    for (auto& [k, v] : env) n.push_back(k);
    return n;
  };
  auto cfg = LoadConfig(opt);  // no file in /work/here: the embedded default
  ASSERT_TRUE(cfg.has_value()) << cfg.error().ToString();
  EXPECT_TRUE(cfg->is_embedded_default);
  ASSERT_EQ(cfg->drives.size(), 2u);
  EXPECT_EQ(cfg->drives[0].path, "/work/here/dfrp-data/drive0");
  EXPECT_EQ(cfg->drives[1].quota, 1ull << 30);

  env = {{"DRIVE_0", "/only"}, {"QUOTA_0", "1M"}};
  cfg = LoadConfig(opt);
  ASSERT_TRUE(cfg.has_value()) << cfg.error().ToString();
  ASSERT_EQ(cfg->drives.size(), 1u);
  EXPECT_EQ(cfg->drives[0].path, "/only");
  EXPECT_FALSE(cfg->is_embedded_default);
}

TEST(ConfigTest, ANoDriveConfigServesOnlyToolsThatStoreNothing) {
  char tmpl[] = "/tmp/dfrp-config-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const std::string path = JoinPath(dir, "client.toml");
  ASSERT_TRUE(WriteFileAtomic(DefaultFileSystem(), path, "STATE_DIR = \"st\"\n").ok());
  ConfigOptions opt;
  opt.explicit_path = path;
  opt.getenv = [](const std::string&) { return std::optional<std::string>(); };
  opt.env_names = [] { return std::vector<std::string>(); };
  auto refused = LoadConfig(opt);
  ASSERT_FALSE(refused.has_value());
  EXPECT_NE(refused.error().message().find("names no drives; add DRIVE_0"), std::string::npos);
  opt.require_drives = false;
  auto cfg = LoadConfig(opt);
  ASSERT_TRUE(cfg.has_value()) << cfg.error().ToString();
  EXPECT_TRUE(cfg->drives.empty());
  EXPECT_EQ(cfg->state_dir, dir + "/st");
  ASSERT_TRUE(DefaultFileSystem()->RemoveFile(path).ok());
  ASSERT_EQ(rmdir(dir.c_str()), 0);
}

}  // namespace
}  // namespace dfrp::core
