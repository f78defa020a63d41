// SHA-256 through OpenSSL's low-level SHA256_* functions. OpenSSL 3 marks them deprecated in
// favour of EVP, but EVP_DigestInit in 3.0 looks the algorithm up under a global read-write
// lock on every call: with one init per 4 KiB leaf that lock, not the hashing, set the pace
// (measured: verify of 1 GiB on 2 threads 2.7 s with EVP, see docs/BENCHMARKS.md). The
// low-level calls run the same SHA-NI code with no lookup.
#define OPENSSL_SUPPRESS_DEPRECATED
#include "dfrp/crypto/sha256.h"

#include <openssl/sha.h>

#include <cstdlib>

namespace dfrp::crypto {

namespace {
SHA256_CTX* Ctx(void* p) { return static_cast<SHA256_CTX*>(p); }
}  // namespace

Sha256::Sha256() : ctx_(new SHA256_CTX) { Reset(); }
Sha256::~Sha256() { delete Ctx(ctx_); }

void Sha256::Reset() { SHA256_Init(Ctx(ctx_)); }

void Sha256::Update(std::string_view data) { SHA256_Update(Ctx(ctx_), data.data(), data.size()); }

Hash Sha256::Final() {
  Hash out;
  SHA256_Final(out.data(), Ctx(ctx_));
  Reset();
  return out;
}

Hash Sha256Of(std::string_view data) {
  // Not SHA256(): in OpenSSL 3.0 the one-shot goes through EVP and its locked lookup.
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, data.data(), data.size());
  Hash out;
  SHA256_Final(out.data(), &ctx);
  return out;
}

}  // namespace dfrp::crypto
