// For the mesh's tests only: a deterministic BLS key from one seed byte.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "dfrp/crypto/bls.h"

namespace dfrp::mesh {

inline crypto::bls::SecretKey TestKey(char seed) {
  auto k = crypto::bls::SecretKey::FromIkm(core::AsBytes(std::string(32, seed)));
  EXPECT_TRUE(k.has_value());
  return std::move(*k);
}

}  // namespace dfrp::mesh
