// A wallet's public identity: its BLS public key, the proof of possession of that key, its
// address, and its identity vector signed by the key.
//
// The identity vector (VECTOR_DIM float32 values) places the node among its peers. It is
// signed under the ordinary signature tag over the message
//   "dfrp-identity-vector-v1" || u32le(dim) || float32le(v[0]) || ... || float32le(v[dim-1])
// (IdentityVectorMessage). By default a new wallet's vector is derived from its public key
// (DefaultIdentityVector) until the node measures its own profile.
//
// Thread-safety: values and pure functions.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "dfrp/core/status.h"
#include "dfrp/crypto/bls.h"

namespace dfrp::wallet {

struct WalletPublic {
  crypto::bls::PublicKey public_key;
  crypto::bls::Signature proof_of_possession;
  std::string address;
  std::vector<float> vector;
  crypto::bls::Signature vector_signature;
};

// The bytes the identity vector signature covers (see the header comment).
std::string IdentityVectorMessage(const std::vector<float>& vector);

// A unit vector of `dim` values derived from SHA-256 of the public key (deterministic).
std::vector<float> DefaultIdentityVector(const crypto::bls::PublicKey& key, uint32_t dim);

// Builds the public identity of `key`: PoP, address, and the signed vector. InvalidArgument if
// the vector is empty or holds a non-finite value.
core::Result<WalletPublic> MakeWalletPublic(const crypto::bls::SecretKey& key,
                                            std::vector<float> vector);

// Checks that the parts agree: the PoP proves the key, the address encodes the key, the vector
// signature verifies. Corruption naming the first part that does not (`name` is the file or
// source, for the message).
core::Status CheckWalletPublic(const WalletPublic& w, std::string_view name);

// Parses "0.1,0.2,-1" into floats; InvalidArgument naming the bad element.
core::Result<std::vector<float>> ParseVector(std::string_view csv);

}  // namespace dfrp::wallet
