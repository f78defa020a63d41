#include "dfrp/crypto/sha256.h"

#include <openssl/evp.h>

#include <cstdlib>

namespace dfrp::crypto {

namespace {
const EVP_MD* Md() {
  static const EVP_MD* md = EVP_sha256();
  return md;
}
EVP_MD_CTX* Ctx(void* p) { return static_cast<EVP_MD_CTX*>(p); }
}  // namespace

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr) std::abort();  // out of memory
  Reset();
}
Sha256::~Sha256() { EVP_MD_CTX_free(Ctx(ctx_)); }

void Sha256::Reset() {
  if (EVP_DigestInit_ex(Ctx(ctx_), Md(), nullptr) != 1) std::abort();
}

void Sha256::Update(std::string_view data) {
  if (EVP_DigestUpdate(Ctx(ctx_), data.data(), data.size()) != 1) std::abort();
}

Hash Sha256::Final() {
  Hash out;
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(Ctx(ctx_), out.data(), &len) != 1 || len != out.size()) std::abort();
  Reset();
  return out;
}

Hash Sha256Of(std::string_view data) {
  thread_local Sha256 h;
  h.Update(data);
  return h.Final();
}

}  // namespace dfrp::crypto
