#include "dfrp/wallet/wallet.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>

#include "dfrp/core/bytes.h"
#include "dfrp/crypto/sha256.h"
#include "dfrp/wallet/address.h"

namespace dfrp::wallet {

using core::Status;

std::string IdentityVectorMessage(const std::vector<float>& vector) {
  std::string msg = "dfrp-identity-vector-v1";
  core::PutU32(&msg, static_cast<uint32_t>(vector.size()));
  for (float f : vector) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    core::PutU32(&msg, bits);
  }
  return msg;
}

std::vector<float> DefaultIdentityVector(const crypto::bls::PublicKey& key, uint32_t dim) {
  std::vector<float> v;
  double norm = 0;
  for (uint32_t i = 0; v.size() < dim; ++i) {
    std::string seed(reinterpret_cast<const char*>(key.bytes().data()), key.bytes().size());
    core::PutU32(&seed, i);
    crypto::Hash h = crypto::Sha256Of(seed);
    for (size_t j = 0; j + 2 <= h.size() && v.size() < dim; j += 2) {
      int v16 = (h[j] << 8 | h[j + 1]) - 32768;  // uniform in [-32768, 32767]
      v.push_back(static_cast<float>(v16) / 32768.0f);
      norm += static_cast<double>(v.back()) * v.back();
    }
  }
  if (norm > 0) {
    for (float& f : v) f = static_cast<float>(f / std::sqrt(norm));
  }
  return v;
}

core::Result<WalletPublic> MakeWalletPublic(const crypto::bls::SecretKey& key,
                                            std::vector<float> vector) {
  if (vector.empty()) {
    return core::Err(Status::InvalidArgument("identity vector is empty: set VECTOR_DIM >= 1"));
  }
  for (float f : vector) {
    if (!std::isfinite(f)) {
      return core::Err(Status::InvalidArgument("identity vector holds a non-finite value"));
    }
  }
  crypto::bls::PublicKey pk = key.GetPublicKey();
  std::string msg = IdentityVectorMessage(vector);
  crypto::bls::Signature vsig = key.Sign(core::AsBytes(msg));
  return WalletPublic{pk, key.ProvePossession(), AddressOf(pk), std::move(vector), vsig};
}

Status CheckWalletPublic(const WalletPublic& w, std::string_view name) {
  if (!crypto::bls::VerifyPossession(w.public_key, w.proof_of_possession).has_value()) {
    return Status::Corruption(fmt::format(
        "{}: proof_of_possession does not prove public_key: the file was altered; restore it "
        "from a backup",
        name));
  }
  if (w.address != AddressOf(w.public_key)) {
    return Status::Corruption(fmt::format(
        "{}: address does not match public_key: the file was altered; restore it from a backup",
        name));
  }
  std::string msg = IdentityVectorMessage(w.vector);
  if (!crypto::bls::Verify(w.public_key, core::AsBytes(msg), w.vector_signature).ok()) {
    return Status::Corruption(fmt::format(
        "{}: vector_signature does not verify for the vector: the file was altered; restore "
        "it from a backup",
        name));
  }
  return Status::OK();
}

core::Result<std::vector<float>> ParseVector(std::string_view csv) {
  std::vector<float> out;
  size_t start = 0;
  while (start <= csv.size()) {
    size_t end = csv.find(',', start);
    if (end == std::string_view::npos) end = csv.size();
    std::string item(csv.substr(start, end - start));
    char* stop = nullptr;
    float f = std::strtof(item.c_str(), &stop);
    if (item.empty() || stop != item.c_str() + item.size() || !std::isfinite(f)) {
      return core::Err(Status::InvalidArgument(
          fmt::format("vector element {} ('{}') is not a finite number: write e.g. 0.5,-1,0",
                      out.size(), item)));
    }
    out.push_back(f);
    start = end + 1;
  }
  return out;
}

}  // namespace dfrp::wallet
