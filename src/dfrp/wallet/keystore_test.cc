#include "dfrp/wallet/keystore.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

namespace dfrp::wallet {
namespace {

using nlohmann::json;

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/dfrp_keystore_test_XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

crypto::bls::SecretKey Key(char seed) {
  std::string ikm(32, seed);
  return std::move(*crypto::bls::SecretKey::FromIkm(core::AsBytes(ikm)));
}

Keystore Sealed(const crypto::bls::SecretKey& key, std::string_view pass) {
  auto pub = MakeWalletPublic(key, {0.5f, -0.25f, 1.0f, 0.0f});
  EXPECT_TRUE(pub.has_value());
  auto ks = SealKeystore(key, *pub, pass, *KdfParamsForProfile("test", true));
  EXPECT_TRUE(ks.has_value());
  return *ks;
}

// Parses, checks the public part and unlocks: the full path a command takes.
core::Status OpenText(const std::string& text, std::string_view pass) {
  auto ks = ParseKeystore(text, "k.json");
  if (!ks) return ks.error();
  DFRP_RETURN_IF_ERROR(CheckWalletPublic(ks->pub, "k.json"));
  return UnlockKeystore(*ks, pass, "k.json").status();
}

TEST(Keystore, DefaultKdfIsStrong) {
  auto kdf = KdfParamsForProfile("", false);
  ASSERT_TRUE(kdf.has_value());
  EXPECT_GE(kdf->memlimit, 64ull << 20);
  EXPECT_GE(kdf->opslimit, 3u);
  EXPECT_FALSE(IsWeakKdf(*kdf));
  EXPECT_FALSE(KdfParamsForProfile("fast", true).has_value());
}

TEST(Keystore, TestProfileOnlyWhenAllowedAndAlwaysWeak) {
  auto refused = KdfParamsForProfile("test", false);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(core::ExitCodeFor(refused.error()), core::kExitUsage);
  EXPECT_NE(refused.error().message().find("unset DFRP_KDF_PROFILE, or add --insecure-test-kdf"),
            std::string::npos);
  auto allowed = KdfParamsForProfile("test", true);
  ASSERT_TRUE(allowed.has_value());
  EXPECT_TRUE(IsWeakKdf(*allowed));
  EXPECT_FALSE(IsWeakKdf(kMinStrongKdf));
  EXPECT_TRUE(IsWeakKdf({1, 1ull << 30}));   // one pass is weak whatever the memory
  EXPECT_TRUE(IsWeakKdf({8, 32ull << 20}));  // 32 MiB is weak whatever the passes
}

TEST(Keystore, SaveLoadUnlockWithMode0600) {
  TempDir dir;
  auto key = Key('a');
  std::string path = dir.path + "/sub/wallet.json";
  auto* fs = core::DefaultFileSystem();
  ASSERT_TRUE(SaveKeystore(fs, path, Sealed(key, "correct horse"), false).ok());
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  auto ks = LoadKeystore(fs, path);
  ASSERT_TRUE(ks.has_value()) << ks.error().message();
  auto sk = UnlockKeystore(*ks, "correct horse", path);
  ASSERT_TRUE(sk.has_value()) << sk.error().message();
  EXPECT_EQ(sk->GetPublicKey(), key.GetPublicKey());
  EXPECT_EQ(ks->pub.vector, (std::vector<float>{0.5f, -0.25f, 1.0f, 0.0f}));
}

TEST(Keystore, NeverOverwritten) {
  TempDir dir;
  std::string path = dir.path + "/w.json";
  auto* fs = core::DefaultFileSystem();
  ASSERT_TRUE(SaveKeystore(fs, path, Sealed(Key('a'), "p"), false).ok());
  std::string before = *core::ReadWholeFile(fs, path);
  core::Status s = SaveKeystore(fs, path, Sealed(Key('b'), "p"), false);
  EXPECT_EQ(core::ExitCodeFor(s), core::kExitUsage);
  EXPECT_NE(s.message().find("never overwritten"), std::string::npos);
  EXPECT_EQ(*core::ReadWholeFile(fs, path), before);
  EXPECT_TRUE(LoadKeystore(fs, dir.path + "/missing.json").error().IsNotFound());
}

// Forwards to the POSIX file system; another wallet appears at `path` just before a file is
// renamed onto it, after SaveKeystore found the name free.
class AppearsMeanwhileFs final : public core::FileSystem {
 public:
  AppearsMeanwhileFs(std::string path, std::string other)
      : path_(std::move(path)), other_(std::move(other)) {}
  core::Status Rename(const std::string& from, const std::string& to) override {
    Appear(to);
    return base_->Rename(from, to);
  }
  core::Status RenameNoReplace(const std::string& from, const std::string& to) override {
    Appear(to);
    return base_->RenameNoReplace(from, to);
  }
  // The rest is forwarded unchanged.
  core::Result<std::unique_ptr<core::RandomAccessFile>> OpenForRead(const std::string& p) override {
    return base_->OpenForRead(p);
  }
  core::Result<std::unique_ptr<core::SequentialFile>> OpenSequential(
      const std::string& p) override {
    return base_->OpenSequential(p);
  }
  core::Result<std::unique_ptr<core::WritableFile>> OpenForWrite(const std::string& p,
                                                                 bool private_mode) override {
    return base_->OpenForWrite(p, private_mode);
  }
  core::Result<std::unique_ptr<core::WritableFile>> CreateNew(const std::string& p,
                                                              bool private_mode) override {
    return base_->CreateNew(p, private_mode);
  }
  bool Exists(const std::string& p) override { return base_->Exists(p); }
  bool IsDirectory(const std::string& p) override { return base_->IsDirectory(p); }
  core::Result<uint64_t> FileSize(const std::string& p) override { return base_->FileSize(p); }
  core::Result<std::vector<std::string>> ListDir(const std::string& p) override {
    return base_->ListDir(p);
  }
  core::Status CreateDir(const std::string& p) override { return base_->CreateDir(p); }
  core::Status CreateDirRecursive(const std::string& p) override {
    return base_->CreateDirRecursive(p);
  }
  core::Status RemoveFile(const std::string& p) override { return base_->RemoveFile(p); }
  core::Status SyncDir(const std::string& p) override { return base_->SyncDir(p); }
  core::Result<std::unique_ptr<core::FileLock>> TryLock(const std::string& p) override {
    return base_->TryLock(p);
  }
  core::Result<core::FsSpace> Space(const std::string& p) override { return base_->Space(p); }
  core::Result<std::string> RealPath(const std::string& p) override { return base_->RealPath(p); }
  core::Result<std::pair<uint64_t, uint64_t>> FileIdentity(const std::string& p) override {
    return base_->FileIdentity(p);
  }
  bool IsWritable(const std::string& p) override { return base_->IsWritable(p); }
  core::Result<uint32_t> PermissionBits(const std::string& p) override {
    return base_->PermissionBits(p);
  }
  core::Status ReadFileUpTo(const std::string& p, size_t limit, std::string* out) override {
    return base_->ReadFileUpTo(p, limit, out);
  }

 private:
  void Appear(const std::string& to) {
    if (to != path_) return;
    ASSERT_TRUE(core::WriteFileAtomic(base_, path_, other_, true).ok());
  }
  core::FileSystem* base_ = core::DefaultFileSystem();
  std::string path_, other_;
};

TEST(Keystore, NeverOverwritesOneThatAppearedMeanwhile) {
  TempDir dir;
  std::string path = dir.path + "/w.json";
  std::string other = SerializeKeystore(Sealed(Key('b'), "theirs"));
  AppearsMeanwhileFs fs(path, other);
  core::Status s = SaveKeystore(&fs, path, Sealed(Key('a'), "mine"), false);
  EXPECT_EQ(core::ExitCodeFor(s), core::kExitUsage) << s.ToString();
  EXPECT_NE(s.message().find("already exists and is never overwritten"), std::string::npos);
  EXPECT_EQ(*core::ReadWholeFile(&fs, path), other);
  EXPECT_EQ(fs.ListDir(dir.path)->size(), 1u);  // no temporary file left behind
}

TEST(Keystore, WrongPassphraseSaysSo) {
  std::string text = SerializeKeystore(Sealed(Key('a'), "right"));
  core::Status s = OpenText(text, "wrong");
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_NE(s.message().find("wrong passphrase for keystore k.json"), std::string::npos);
  EXPECT_TRUE(OpenText(text, "right").ok());
}

// Changes one leaf of the JSON document in a way that keeps it well-formed.
std::string Tampered(const std::string& text, const json::json_pointer& ptr) {
  json doc = json::parse(text);
  json& v = doc[ptr];
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    s[s.size() / 2] = s[s.size() / 2] == '0' ? '1' : '0';
    v = s;
  } else if (v.is_number_unsigned()) {
    v = v.get<uint64_t>() * 2;
  } else if (v.is_number()) {
    v = v.get<double>() + 0.125;
  }
  return doc.dump();
}

TEST(Keystore, TamperingAnyFieldIsDetected) {
  std::string text = SerializeKeystore(Sealed(Key('a'), "pw"));
  ASSERT_TRUE(OpenText(text, "pw").ok());
  for (const char* field :
       {"/address", "/public_key", "/proof_of_possession", "/vector/1", "/vector_signature",
        "/kdf/opslimit", "/kdf/memlimit", "/kdf/salt", "/cipher/nonce", "/cipher/ciphertext",
        "/format", "/kdf/name", "/cipher/name"}) {
    core::Status s = OpenText(Tampered(text, json::json_pointer(field)), "pw");
    EXPECT_TRUE(s.IsCorruption()) << field << ": " << s.ToString();
  }
  core::Status v = OpenText(Tampered(text, json::json_pointer("/version")), "pw");
  EXPECT_EQ(core::ExitCodeFor(v), core::kExitUsage) << v.ToString();
  EXPECT_NE(v.message().find("version"), std::string::npos);
}

// Another wallet's whole (self-consistent) public part spliced in: only the associated data
// binding catches it.
TEST(Keystore, SplicedPublicPartIsDetected) {
  json a = json::parse(SerializeKeystore(Sealed(Key('a'), "pw")));
  json b = json::parse(SerializeKeystore(Sealed(Key('b'), "pw")));
  for (const char* f :
       {"address", "public_key", "proof_of_possession", "vector", "vector_signature"}) {
    a[f] = b[f];
  }
  core::Status s = OpenText(a.dump(), "pw");
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
}

TEST(Keystore, TruncatedOrMalformedIsRefused) {
  std::string text = SerializeKeystore(Sealed(Key('a'), "pw"));
  for (size_t n = 0; n + 1 < text.size(); ++n) {
    auto ks = ParseKeystore(text.substr(0, n), "k.json");
    ASSERT_FALSE(ks.has_value() && CheckWalletPublic(ks->pub, "k").ok()) << n;
  }
  json doc = json::parse(text);
  doc["extra"] = 1;
  EXPECT_TRUE(ParseKeystore(doc.dump(), "k").error().IsCorruption());
  doc = json::parse(text);
  doc.erase("cipher");
  EXPECT_NE(ParseKeystore(doc.dump(), "k").error().message().find("'cipher' is missing"),
            std::string::npos);
  doc = json::parse(text);
  doc["kdf"]["memlimit"] = 1ull << 40;
  EXPECT_TRUE(ParseKeystore(doc.dump(), "k").error().IsCorruption());
  doc = json::parse(text);
  doc["vector"] = json::array();
  EXPECT_TRUE(ParseKeystore(doc.dump(), "k").error().IsCorruption());
  EXPECT_TRUE(ParseKeystore("[1,2]", "k").error().IsCorruption());
}

}  // namespace
}  // namespace dfrp::wallet
