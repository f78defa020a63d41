// Encrypted keystore files: one BLS secret key plus the wallet's public identity, as
// versioned JSON (docs/FORMAT-wallet.md specifies every field).
//
// The 32-byte secret scalar is encrypted with XChaCha20-Poly1305 under a key derived from the
// passphrase with Argon2id (libsodium crypto_pwhash; opslimit, memlimit and salt stored in the
// file). Every clear field (version, public key, proof of possession, address, vector, vector
// signature, KDF parameters) is bound to the ciphertext as associated data, so altering any of
// them makes unlocking fail; without the passphrase, CheckWalletPublic still detects an
// altered public part.
//
// Files are written atomically with mode 0600 through core::FileSystem.
//
// Thread-safety: values and free functions; no shared state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "dfrp/core/file_system.h"
#include "dfrp/core/status.h"
#include "dfrp/crypto/bls.h"
#include "dfrp/wallet/wallet.h"

namespace dfrp::wallet {

inline constexpr uint32_t kKeystoreVersion = 1;
inline constexpr std::string_view kKeystoreFormat = "dfrp-keystore";

struct KdfParams {
  uint64_t opslimit = 3;            // Argon2id passes
  uint64_t memlimit = 64ull << 20;  // bytes
};

// Libsodium's "interactive" Argon2id limits (2 passes, 64 MiB): a keystore sealed with less
// is weak, as one made with the test profile (1 pass, 8 KiB) is.
inline constexpr KdfParams kMinStrongKdf{2, 64ull << 20};
bool IsWeakKdf(const KdfParams& kdf);

// The parameters a profile names (DFRP_KDF_PROFILE): the default (3 passes, 64 MiB) for "" or
// "default"; tiny ones (1 pass, 8 KiB) for "test", only when `allow_test_profile` (a test, or
// dfrp-wallet --insecure-test-kdf), else InvalidArgument naming the variable and the ways out.
// InvalidArgument for any other name.
core::Result<KdfParams> KdfParamsForProfile(std::string_view profile, bool allow_test_profile);

struct Keystore {
  uint32_t version = kKeystoreVersion;
  WalletPublic pub;
  KdfParams kdf;
  std::string salt;        // 16 bytes
  std::string nonce;       // 24 bytes
  std::string ciphertext;  // 32-byte scalar + 16-byte tag
};

// Encrypts `key` under `passphrase`; `pub` must be the key's public identity.
core::Result<Keystore> SealKeystore(const crypto::bls::SecretKey& key, WalletPublic pub,
                                    std::string_view passphrase, const KdfParams& kdf);

// Decrypts the secret key. Corruption "wrong passphrase for keystore <name> ..." when the
// authentication tag does not verify (a wrong passphrase, or altered fields: the two cannot be
// told apart); Corruption if the decrypted key does not match the public key.
core::Result<crypto::bls::SecretKey> UnlockKeystore(const Keystore& ks, std::string_view passphrase,
                                                    std::string_view name);

// Parses and structurally validates a keystore (types, lengths, version, KDF bounds, valid
// points). Does not check signatures (see CheckWalletPublic). Corruption naming the field.
core::Result<Keystore> ParseKeystore(std::string_view json_text, std::string_view name);
std::string SerializeKeystore(const Keystore& ks);

// Reads, parses and checks the public part of the keystore at `path`. NotFound if absent.
core::Result<Keystore> LoadKeystore(core::FileSystem* fs, const std::string& path);
// InvalidArgument (naming the way out) if `path` exists: wallets are never overwritten.
core::Status RefuseExisting(core::FileSystem* fs, const std::string& path);
// Writes atomically with mode 0600, creating the folder. Unless `overwrite`, an existing file
// is refused (InvalidArgument, as RefuseExisting) and left untouched, even one that appears
// while this call writes (the temporary file is renamed into place with RenameNoReplace).
core::Status SaveKeystore(core::FileSystem* fs, const std::string& path, const Keystore& ks,
                          bool overwrite);

}  // namespace dfrp::wallet
