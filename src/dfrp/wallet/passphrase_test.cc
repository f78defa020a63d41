#include "dfrp/wallet/passphrase.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <type_traits>

#include "dfrp/wallet/secret_string.h"

namespace dfrp::wallet {
namespace {

// A passphrase leaves ReadPassphrase, and a prompt, only in wiped memory.
static_assert(
    std::is_same_v<decltype(ReadPassphrase(nullptr, {}, "", false)), core::Result<SecretString>>);
static_assert(std::is_same_v<PromptFn::result_type, core::Result<SecretString>>);
static_assert(!std::is_copy_constructible_v<SecretString>);

TEST(SecretString, GrowsMovesWithoutCopyAndWipesWhatItGivesUp) {
  SecretString s("correct horse");
  for (int i = 0; i < 20; ++i) s.append(" battery staple");  // grows past its first buffer
  EXPECT_EQ(s.size(), 13u + 20 * 15);
  EXPECT_TRUE(s.view().starts_with("correct horse battery"));
  const char* buffer = s.data();
  SecretString moved = std::move(s);
  EXPECT_EQ(moved.data(), buffer);  // handed over, not copied
  EXPECT_TRUE(s.empty());           // NOLINT(bugprone-use-after-move): checks the moved-from state
  moved.resize(7);
  EXPECT_EQ(moved.view(), "correct");
  EXPECT_EQ(std::string_view(buffer + 7, 6), std::string_view("\0\0\0\0\0\0", 6));
  moved.Clear();
  EXPECT_TRUE(moved.empty());
  EXPECT_EQ(std::string_view(buffer, 7), std::string_view("\0\0\0\0\0\0\0", 7));
}

TEST(SecretString, TakeSecretWipesTheStringItCopies) {
  std::string env_value(40, 'p');  // long enough to live on the heap
  const char* bytes = env_value.data();
  SecretString secret = TakeSecret(&env_value);
  EXPECT_EQ(secret.view(), std::string(40, 'p'));
  EXPECT_TRUE(env_value.empty());
  EXPECT_EQ(std::string_view(bytes, 40).find('p'), std::string_view::npos);
  EXPECT_TRUE(SecretString("a") == SecretString("a"));
  EXPECT_FALSE(SecretString("a") == SecretString("ab"));
}

class Passphrase : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dfrp_passphrase_test_XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  core::FileSystem* fs_ = core::DefaultFileSystem();
  std::string dir_;
};

TEST_F(Passphrase, FileThenEnvironmentThenPrompt) {
  std::string file = dir_ + "/pass.txt";
  ASSERT_TRUE(core::WriteFileAtomic(fs_, file, "from file\r\nsecond line\n").ok());
  std::vector<std::string> asked;
  PassphraseSource src{file, "DFRP_PASSPHRASE",
                       [](const std::string& k) -> std::optional<std::string> {
                         return k == "DFRP_PASSPHRASE" ? std::optional("from env") : std::nullopt;
                       },
                       [&](std::string_view prompt) -> core::Result<SecretString> {
                         asked.emplace_back(prompt);
                         return SecretString("typed");
                       }};
  EXPECT_EQ(ReadPassphrase(fs_, src, "passphrase", false)->view(), "from file");
  src.file.clear();
  EXPECT_EQ(ReadPassphrase(fs_, src, "passphrase", false)->view(), "from env");
  src.env_name = "DFRP_NEW_PASSPHRASE";
  EXPECT_EQ(ReadPassphrase(fs_, src, "new passphrase", true)->view(), "typed");
  EXPECT_EQ(asked, (std::vector<std::string>{"new passphrase: ", "repeat new passphrase: "}));
}

TEST_F(Passphrase, RefusesMismatchEmptyNoneAndHugeFiles) {
  int calls = 0;
  PassphraseSource src{"", "DFRP_NEW_PASSPHRASE", nullptr,
                       [&](std::string_view) -> core::Result<SecretString> {
                         return SecretString(++calls == 1 ? "one" : "two");
                       }};
  auto differ = ReadPassphrase(fs_, src, "new passphrase", true);
  ASSERT_FALSE(differ.has_value());
  EXPECT_NE(differ.error().message().find("differ"), std::string::npos);
  src.prompt = [](std::string_view) -> core::Result<SecretString> { return SecretString(); };
  EXPECT_NE(ReadPassphrase(fs_, src, "new passphrase", false).error().message().find("empty"),
            std::string::npos);
  src.prompt = nullptr;
  auto none = ReadPassphrase(fs_, src, "new passphrase", false);
  EXPECT_NE(none.error().message().find("set DFRP_NEW_PASSPHRASE, pass --new-passphrase-file"),
            std::string::npos);
  src.file = dir_ + "/huge";
  ASSERT_TRUE(core::WriteFileAtomic(fs_, src.file, std::string(65 << 10, 'x')).ok());
  auto huge = ReadPassphrase(fs_, src, "passphrase", false);
  EXPECT_EQ(core::ExitCodeFor(huge.status()), core::kExitUsage);
  EXPECT_NE(huge.error().message().find("64 KiB at most"), std::string::npos);
}

}  // namespace
}  // namespace dfrp::wallet
