#include "dfrp/wallet/keystore.h"

#include <fmt/format.h>
#include <sodium.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "dfrp/core/bytes.h"
#include "dfrp/core/config.h"

namespace dfrp::wallet {
namespace {

using core::Err;
using core::Status;
using nlohmann::json;

constexpr size_t kSaltSize = crypto_pwhash_SALTBYTES;
constexpr size_t kNonceSize = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr size_t kKeySize = crypto_aead_xchacha20poly1305_ietf_KEYBYTES;
constexpr size_t kCipherSize =
    crypto::bls::kSecretKeySize + crypto_aead_xchacha20poly1305_ietf_ABYTES;
constexpr uint64_t kMaxOps = 64;
constexpr uint64_t kMaxMem = 4ull << 30;

Status Corrupt(std::string_view name, std::string_view why) {
  return Status::Corruption(
      fmt::format("keystore {} is damaged: {}; restore it from a backup", name, why));
}

// Wipes a fixed buffer on scope exit.
template <size_t N>
struct WipedBuffer {
  unsigned char b[N];
  ~WipedBuffer() { sodium_memzero(b, N); }
};

const unsigned char* U(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// The associated data: every clear field, in a fixed binary form.
std::string AssociatedData(const Keystore& ks) {
  std::string ad = "dfrp-keystore-v1";
  core::PutU32(&ad, ks.version);
  const WalletPublic& p = ks.pub;
  ad.append(reinterpret_cast<const char*>(p.public_key.bytes().data()), 48);
  ad.append(reinterpret_cast<const char*>(p.proof_of_possession.bytes().data()), 96);
  core::PutU32(&ad, static_cast<uint32_t>(p.address.size()));
  ad += p.address;
  ad += IdentityVectorMessage(p.vector);
  ad.append(reinterpret_cast<const char*>(p.vector_signature.bytes().data()), 96);
  core::PutU64(&ad, ks.kdf.opslimit);
  core::PutU64(&ad, ks.kdf.memlimit);
  ad += ks.salt;
  return ad;
}

Status DeriveKey(const Keystore& ks, std::string_view passphrase, unsigned char* key) {
  if (crypto_pwhash(key, kKeySize, passphrase.data(), passphrase.size(), U(ks.salt),
                    ks.kdf.opslimit, static_cast<size_t>(ks.kdf.memlimit),
                    crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return Status::NoSpace(
        fmt::format("Argon2id could not get {} of memory: free memory or use a machine with more",
                    core::FormatBytes(ks.kdf.memlimit)));
  }
  return Status::OK();
}

Status CheckKdf(const KdfParams& k, std::string_view name) {
  if (k.opslimit < crypto_pwhash_OPSLIMIT_MIN || k.opslimit > kMaxOps ||
      k.memlimit < crypto_pwhash_MEMLIMIT_MIN || k.memlimit > kMaxMem) {
    return Corrupt(name, fmt::format("kdf parameters out of range (opslimit {}, memlimit {})",
                                     k.opslimit, k.memlimit));
  }
  return Status::OK();
}

// ---- JSON field readers: never throw, name the field on failure ----

core::Result<const json*> Field(const json& obj, std::string_view key, std::string_view name) {
  auto it = obj.find(key);
  if (it == obj.end()) return Err(Corrupt(name, fmt::format("field '{}' is missing", key)));
  return &*it;
}

core::Result<std::string> HexField(const json& obj, std::string_view key, size_t size,
                                   std::string_view name) {
  DFRP_ASSIGN_OR_RETURN(const json* v, Field(obj, key, name));
  if (!v->is_string()) return Err(Corrupt(name, fmt::format("field '{}' is not a string", key)));
  auto raw = core::FromHex(v->get_ref<const std::string&>());
  if (!raw || raw->size() != size) {
    return Err(Corrupt(name, fmt::format("field '{}' is not {} bytes of hex", key, size)));
  }
  return *raw;
}

core::Result<uint64_t> UintField(const json& obj, std::string_view key, std::string_view name) {
  DFRP_ASSIGN_OR_RETURN(const json* v, Field(obj, key, name));
  if (!v->is_number_unsigned()) {
    return Err(Corrupt(name, fmt::format("field '{}' is not a whole number", key)));
  }
  return v->get<uint64_t>();
}

core::Result<std::string> StringField(const json& obj, std::string_view key,
                                      std::string_view name) {
  DFRP_ASSIGN_OR_RETURN(const json* v, Field(obj, key, name));
  if (!v->is_string()) return Err(Corrupt(name, fmt::format("field '{}' is not a string", key)));
  return v->get<std::string>();
}

Status CheckKeys(const json& obj, std::initializer_list<std::string_view> allowed,
                 std::string_view where, std::string_view name) {
  if (!obj.is_object()) return Corrupt(name, fmt::format("'{}' is not a JSON object", where));
  for (const auto& item : obj.items()) {
    if (std::find(allowed.begin(), allowed.end(), item.key()) == allowed.end()) {
      return Corrupt(name, fmt::format("unknown field '{}' in {}", item.key(), where));
    }
  }
  return Status::OK();
}

template <typename T>
core::Result<T> PointField(const json& obj, std::string_view key, size_t size,
                           std::string_view name) {
  DFRP_ASSIGN_OR_RETURN(std::string raw, HexField(obj, key, size, name));
  auto point = T::FromBytes(core::AsBytes(raw));
  if (!point) return Err(Corrupt(name, fmt::format("field '{}' is not a valid point", key)));
  return *point;
}

core::Result<std::vector<float>> VectorField(const json& obj, std::string_view name) {
  DFRP_ASSIGN_OR_RETURN(const json* v, Field(obj, "vector", name));
  if (!v->is_array() || v->empty()) {
    return Err(Corrupt(name, "field 'vector' is not a non-empty array"));
  }
  std::vector<float> out;
  for (const json& e : *v) {
    if (!e.is_number()) return Err(Corrupt(name, "field 'vector' holds a non-number"));
    double d = e.get<double>();
    if (!std::isfinite(d) || std::fabs(d) > 3.4e38) {
      return Err(Corrupt(name, "field 'vector' holds a value outside float32"));
    }
    out.push_back(static_cast<float>(d));
  }
  return out;
}

core::Result<WalletPublic> ParsePublic(const json& doc, std::string_view name) {
  using crypto::bls::PublicKey;
  using crypto::bls::Signature;
  DFRP_ASSIGN_OR_RETURN(PublicKey pk, PointField<PublicKey>(doc, "public_key", 48, name));
  DFRP_ASSIGN_OR_RETURN(Signature pop, PointField<Signature>(doc, "proof_of_possession", 96, name));
  DFRP_ASSIGN_OR_RETURN(std::string address, StringField(doc, "address", name));
  DFRP_ASSIGN_OR_RETURN(std::vector<float> vec, VectorField(doc, name));
  DFRP_ASSIGN_OR_RETURN(Signature vsig, PointField<Signature>(doc, "vector_signature", 96, name));
  return WalletPublic{pk, pop, std::move(address), std::move(vec), vsig};
}

struct CryptoFields {
  KdfParams kdf;
  std::string salt, nonce, ciphertext;
};

Status ParseCrypto(const json& doc, CryptoFields* ks, std::string_view name) {
  DFRP_ASSIGN_OR_RETURN(const json* kdf, Field(doc, "kdf", name));
  DFRP_RETURN_IF_ERROR(CheckKeys(*kdf, {"name", "opslimit", "memlimit", "salt"}, "kdf", name));
  DFRP_ASSIGN_OR_RETURN(std::string kdf_name, StringField(*kdf, "name", name));
  if (kdf_name != "argon2id") return Corrupt(name, "kdf.name is not 'argon2id'");
  DFRP_ASSIGN_OR_RETURN(ks->kdf.opslimit, UintField(*kdf, "opslimit", name));
  DFRP_ASSIGN_OR_RETURN(ks->kdf.memlimit, UintField(*kdf, "memlimit", name));
  DFRP_RETURN_IF_ERROR(CheckKdf(ks->kdf, name));
  DFRP_ASSIGN_OR_RETURN(ks->salt, HexField(*kdf, "salt", kSaltSize, name));
  DFRP_ASSIGN_OR_RETURN(const json* cipher, Field(doc, "cipher", name));
  DFRP_RETURN_IF_ERROR(CheckKeys(*cipher, {"name", "nonce", "ciphertext"}, "cipher", name));
  DFRP_ASSIGN_OR_RETURN(std::string cipher_name, StringField(*cipher, "name", name));
  if (cipher_name != "xchacha20-poly1305") {
    return Corrupt(name, "cipher.name is not 'xchacha20-poly1305'");
  }
  DFRP_ASSIGN_OR_RETURN(ks->nonce, HexField(*cipher, "nonce", kNonceSize, name));
  DFRP_ASSIGN_OR_RETURN(ks->ciphertext, HexField(*cipher, "ciphertext", kCipherSize, name));
  return Status::OK();
}

}  // namespace

bool IsWeakKdf(const KdfParams& kdf) {
  return kdf.opslimit < kMinStrongKdf.opslimit || kdf.memlimit < kMinStrongKdf.memlimit;
}

core::Result<KdfParams> KdfParamsForProfile(std::string_view profile, bool allow_test_profile) {
  if (profile.empty() || profile == "default") return KdfParams{};
  if (profile == "test" && allow_test_profile) return KdfParams{1, 8192};
  if (profile == "test") {
    return Err(Status::InvalidArgument(
        "DFRP_KDF_PROFILE=test makes weak keystores (Argon2id with 1 pass and 8 KiB) and is "
        "for tests only: unset DFRP_KDF_PROFILE, or add --insecure-test-kdf if this is a test"));
  }
  return Err(Status::InvalidArgument(fmt::format(
      "unknown KDF profile '{}': use 'default' (or leave DFRP_KDF_PROFILE unset)", profile)));
}

core::Result<Keystore> SealKeystore(const crypto::bls::SecretKey& key, WalletPublic pub,
                                    std::string_view passphrase, const KdfParams& kdf) {
  if (sodium_init() < 0) return Err(Status::Internal("libsodium failed to initialise"));
  Keystore ks{kKeystoreVersion,
              std::move(pub),
              kdf,
              std::string(kSaltSize, '\0'),
              std::string(kNonceSize, '\0'),
              std::string(kCipherSize, '\0')};
  DFRP_RETURN_IF_ERROR(CheckKdf(kdf, "(new)"));
  randombytes_buf(ks.salt.data(), ks.salt.size());
  randombytes_buf(ks.nonce.data(), ks.nonce.size());
  WipedBuffer<kKeySize> aead_key;
  WipedBuffer<crypto::bls::kSecretKeySize> plain;
  DFRP_RETURN_IF_ERROR(DeriveKey(ks, passphrase, aead_key.b));
  key.ExportTo(std::span<uint8_t, 32>(plain.b, 32));
  std::string ad = AssociatedData(ks);
  crypto_aead_xchacha20poly1305_ietf_encrypt(reinterpret_cast<unsigned char*>(ks.ciphertext.data()),
                                             nullptr, plain.b, sizeof plain.b, U(ad), ad.size(),
                                             nullptr, U(ks.nonce), aead_key.b);
  return ks;
}

core::Result<crypto::bls::SecretKey> UnlockKeystore(const Keystore& ks, std::string_view passphrase,
                                                    std::string_view name) {
  if (sodium_init() < 0) return Err(Status::Internal("libsodium failed to initialise"));
  DFRP_RETURN_IF_ERROR(CheckKdf(ks.kdf, name));
  if (ks.ciphertext.size() != kCipherSize || ks.nonce.size() != kNonceSize ||
      ks.salt.size() != kSaltSize) {
    return Err(Corrupt(name, "wrong field sizes"));
  }
  WipedBuffer<kKeySize> aead_key;
  WipedBuffer<crypto::bls::kSecretKeySize> plain;
  DFRP_RETURN_IF_ERROR(DeriveKey(ks, passphrase, aead_key.b));
  std::string ad = AssociatedData(ks);
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain.b, nullptr, nullptr, U(ks.ciphertext),
                                                 ks.ciphertext.size(), U(ad), ad.size(),
                                                 U(ks.nonce), aead_key.b) != 0) {
    return Err(Status::Corruption(fmt::format(
        "wrong passphrase for keystore {} (or its fields were altered): try the passphrase "
        "again; nothing was changed",
        name)));
  }
  auto sk = crypto::bls::SecretKey::FromBytes(
      core::AsBytes(std::string_view(reinterpret_cast<const char*>(plain.b), sizeof plain.b)));
  if (!sk || sk->GetPublicKey() != ks.pub.public_key) {
    return Err(Corrupt(name, "the encrypted secret key does not match public_key"));
  }
  return std::move(*sk);
}

core::Result<Keystore> ParseKeystore(std::string_view json_text, std::string_view name) {
  json doc = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Err(Corrupt(name, "it is not valid JSON (truncated?)"));
  DFRP_RETURN_IF_ERROR(
      CheckKeys(doc,
                {"format", "version", "address", "public_key", "proof_of_possession", "vector",
                 "vector_signature", "kdf", "cipher"},
                "the top level", name));
  DFRP_ASSIGN_OR_RETURN(std::string format, StringField(doc, "format", name));
  if (format != kKeystoreFormat) return Err(Corrupt(name, "format is not 'dfrp-keystore'"));
  DFRP_ASSIGN_OR_RETURN(uint64_t version, UintField(doc, "version", name));
  if (version != kKeystoreVersion) {
    return Err(Status::InvalidArgument(
        fmt::format("keystore {} has version {}; this dfrp-wallet reads version {}: upgrade dfrp",
                    name, version, kKeystoreVersion)));
  }
  DFRP_ASSIGN_OR_RETURN(WalletPublic pub, ParsePublic(doc, name));
  CryptoFields cf;
  DFRP_RETURN_IF_ERROR(ParseCrypto(doc, &cf, name));
  return Keystore{static_cast<uint32_t>(version),
                  std::move(pub),
                  cf.kdf,
                  std::move(cf.salt),
                  std::move(cf.nonce),
                  std::move(cf.ciphertext)};
}

std::string SerializeKeystore(const Keystore& ks) {
  const WalletPublic& p = ks.pub;
  json doc = {
      {"format", std::string(kKeystoreFormat)},
      {"version", ks.version},
      {"address", p.address},
      {"public_key", p.public_key.ToHex()},
      {"proof_of_possession", p.proof_of_possession.ToHex()},
      {"vector", p.vector},
      {"vector_signature", p.vector_signature.ToHex()},
      {"kdf",
       {{"name", "argon2id"},
        {"opslimit", ks.kdf.opslimit},
        {"memlimit", ks.kdf.memlimit},
        {"salt", core::ToHex(ks.salt)}}},
      {"cipher",
       {{"name", "xchacha20-poly1305"},
        {"nonce", core::ToHex(ks.nonce)},
        {"ciphertext", core::ToHex(ks.ciphertext)}}},
  };
  return doc.dump(2) + "\n";
}

core::Result<Keystore> LoadKeystore(core::FileSystem* fs, const std::string& path) {
  if (!fs->Exists(path)) {
    return Err(Status::NotFound(fmt::format(
        "wallet {} does not exist: create it with `dfrp-wallet new` or name another with "
        "--wallet",
        path)));
  }
  DFRP_ASSIGN_OR_RETURN(std::string text, core::ReadWholeFile(fs, path));
  DFRP_ASSIGN_OR_RETURN(Keystore ks, ParseKeystore(text, path));
  DFRP_RETURN_IF_ERROR(CheckWalletPublic(ks.pub, "keystore " + path));
  return ks;
}

Status RefuseExisting(core::FileSystem* fs, const std::string& path) {
  if (!fs->Exists(path)) return Status::OK();
  return Status::InvalidArgument(fmt::format(
      "wallet {} already exists and is never overwritten: name another file with --wallet, "
      "or move the existing one away first",
      path));
}

Status SaveKeystore(core::FileSystem* fs, const std::string& path, const Keystore& ks,
                    bool overwrite) {
  DFRP_RETURN_IF_ERROR(fs->CreateDirRecursive(core::DirName(path)));
  const std::string text = SerializeKeystore(ks);
  if (overwrite) return core::WriteFileAtomic(fs, path, text, /*private_mode=*/true);
  DFRP_RETURN_IF_ERROR(RefuseExisting(fs, path));
  Status s = core::WriteNewFileAtomic(fs, path, text, /*private_mode=*/true);
  if (s.ok() || !fs->Exists(path)) return s;
  auto now = core::ReadWholeFile(fs, path);
  if (now && *now == text) return s;  // ours is in place; the folder sync failed
  return RefuseExisting(fs, path);    // another wallet appeared while this one was written
}

}  // namespace dfrp::wallet
