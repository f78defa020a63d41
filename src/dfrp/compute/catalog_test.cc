#include "dfrp/compute/catalog.h"

#include <gtest/gtest.h>

#include <string>

namespace dfrp::compute {
namespace {

constexpr std::string_view kGood = R"(
[[app]]
name = "blur"
path = "/opt/apps/blur"
description = "a 2-D blur"
deterministic = true
args = [ { name = "N", type = "uint", min = 1, max = 4096 },
         { name = "MODE", type = "enum", values = ["fast", "exact"] },
         { name = "DATA", type = "input", optional = true } ]

[[app]]
name = "sampler"
path = "/opt/apps/sampler"
rank_independent = true
)";

std::string ErrorOf(std::string_view toml) {
  auto r = ParseCatalog(toml, "apps.toml");
  EXPECT_FALSE(r.has_value()) << toml;
  if (r.has_value()) return "";
  EXPECT_EQ(r.error().code(), core::Status::Code::kInvalidArgument);
  return r.error().message();
}

TEST(CatalogTest, ParsesAppsAndTheirArgumentSchemas) {
  auto apps = ParseCatalog(kGood, "apps.toml");
  ASSERT_TRUE(apps.has_value()) << apps.error().ToString();
  ASSERT_EQ(apps->size(), 2u);
  const AppSpec& b = (*apps)[0];
  EXPECT_EQ(b.name, "blur");
  EXPECT_TRUE(b.deterministic);
  EXPECT_FALSE(b.rank_independent);
  ASSERT_EQ(b.args.size(), 3u);
  EXPECT_EQ(b.args[1].values, (std::vector<std::string>{"fast", "exact"}));
  EXPECT_TRUE(b.args[2].optional);
  EXPECT_EQ(ArgsSynopsis(b), "N:uint[1..4096] MODE:enum{fast,exact} [DATA:input]");
  EXPECT_FALSE((*apps)[1].deterministic);
  EXPECT_TRUE((*apps)[1].rank_independent);

  EXPECT_TRUE(CheckArgs(b, {"64", "fast"}, 0).ok());
  EXPECT_TRUE(CheckArgs(b, {"64", "exact", "0"}, 1).ok());
  EXPECT_NE(CheckArgs(b, {"64"}, 0).message().find("takes 2 to 3 arguments"), std::string::npos);
  EXPECT_NE(CheckArgs(b, {"0", "fast"}, 0).message().find("N = 0 is outside 1..4096"),
            std::string::npos);
  EXPECT_NE(CheckArgs(b, {"-1", "fast"}, 0).message().find("not a whole number"),
            std::string::npos);
  EXPECT_NE(CheckArgs(b, {"8", "slow"}, 0).message().find("not one of fast, exact"),
            std::string::npos);
  EXPECT_NE(CheckArgs(b, {"8", "fast", "1"}, 1).message().find("the job has 1 inputs"),
            std::string::npos);
}

TEST(CatalogTest, BadEntriesNameTheFileTheAppAndTheField) {
  EXPECT_NE(ErrorOf("[[app]]\nname = \"x\"\npath = \"rel/x\"\n")
                .find("apps.toml: app 'x': 'path' is not absolute"),
            std::string::npos);
  EXPECT_NE(ErrorOf("[[app]]\nname = \"X Y\"\npath = \"/x\"\n").find("[a-z0-9._-]"),
            std::string::npos);
  EXPECT_NE(
      ErrorOf("[[app]]\nname = \"x\"\npath = \"/x\"\ncolour = 1\n").find("unknown key 'colour'"),
      std::string::npos);
  EXPECT_NE(ErrorOf("[[app]]\nname = \"x\"\npath = \"/x\"\n[[app]]\nname = \"x\"\npath = \"/y\"\n")
                .find("listed twice"),
            std::string::npos);
  EXPECT_NE(
      ErrorOf("[[app]]\nname = \"x\"\npath = \"/x\"\nargs = [{name = \"A\", type = \"float\"}]\n")
          .find("not uint, enum or input"),
      std::string::npos);
  EXPECT_NE(ErrorOf("[[app]]\nname = \"x\"\npath = \"/x\"\nargs = [{name = \"A\", type = \"uint\", "
                    "optional = true}, {name = \"B\", type = \"uint\"}]\n")
                .find("follows an optional one"),
            std::string::npos);
  EXPECT_NE(ErrorOf("[[app]]\nname = \"x\"\n").find("'path' is missing"), std::string::npos);
  EXPECT_NE(ErrorOf("apps = 3\n").find("unknown key 'apps'"), std::string::npos);
  EXPECT_NE(ErrorOf("[[app]\n").find("apps.toml:1"), std::string::npos);
}

TEST(CatalogTest, ReferenceAppsComeFirstAndTheirNamesAreTaken) {
  auto apps = LoadCatalog(*core::DefaultFileSystem(), "", "/libexec");
  ASSERT_TRUE(apps.has_value());
  ASSERT_EQ(apps->size(), 3u);
  for (const auto& a : *apps) {
    EXPECT_TRUE(a.reference);
    EXPECT_TRUE(a.deterministic);
    EXPECT_EQ(a.path, "/libexec/dfrp-app-" + a.name);
  }
  char tmpl[] = "/tmp/dfrp-catalog-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/apps.toml";
  ASSERT_TRUE(core::WriteFileAtomic(core::DefaultFileSystem(), path,
                                    "[[app]]\nname = \"matmul\"\npath = \"/x\"\n")
                  .ok());
  auto taken = LoadCatalog(*core::DefaultFileSystem(), path, "/libexec");
  ASSERT_FALSE(taken.has_value());
  EXPECT_NE(taken.error().message().find("reference app"), std::string::npos);
  ASSERT_TRUE(core::WriteFileAtomic(core::DefaultFileSystem(), path, std::string(kGood)).ok());
  auto both = LoadCatalog(*core::DefaultFileSystem(), path, "/libexec");
  ASSERT_TRUE(both.has_value());
  EXPECT_EQ(both->size(), 5u);
  EXPECT_NE(FindApp(*both, "blur"), nullptr);
  EXPECT_EQ(FindApp(*both, "nope"), nullptr);
  std::system((std::string("rm -rf ") + tmpl).c_str());
}

}  // namespace
}  // namespace dfrp::compute
