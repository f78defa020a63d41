// Exact money and fixed-point quantities: no float ever touches an amount.
//
// An Amount is an unsigned 64-bit count of base units; a currency with `decimals` d has 10^d
// base units to one coin ("0.0042" with d = 9 is 4,200,000). Text, from economic.toml, a JSON
// request or the command line, is parsed digit by digit into such integers; a number with more
// fractional digits than its scale allows, a negative one, NaN, infinity and anything past
// 2^64 - 1 are errors, never rounded.
//
// Prices need a finer grain than one base unit (a CPU-second may cost less than one), so a
// Price counts 10^-6 base units per unit of its resource; request quantities likewise count
// 10^-6 of their unit (QuantityMicros). A fee is then ceil(price x quantity / 10^12) base
// units: 128-bit arithmetic, rounded up so that a provider is never paid below its price.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "dfrp/core/status.h"

namespace dfrp::economy {

using Amount = uint64_t;          // base units
using Price = uint64_t;           // 10^-6 base units per unit of a resource
using QuantityMicros = uint64_t;  // 10^-6 of a resource's unit

inline constexpr unsigned kPriceExtraDecimals = 6;  // a Price has decimals + 6 places
inline constexpr unsigned kQuantityDecimals = 6;    // a QuantityMicros has 6 places
inline constexpr uint64_t kMicros = 1'000'000;

// Parses a non-negative decimal number, exactly, into a count of 10^-scale units: digits with
// an optional fraction (".5", "5." and "5" are fine) and an optional exponent ("1.5e-3",
// "2E+2"). `what` names the value in errors ("economic.toml: pricing.floor.cpu_sec"). At most
// 200 characters. InvalidArgument for anything else: empty, a sign, NaN/Inf, more fractional
// digits than `scale` ("0.0000000001 has more decimals than the 9 that DFRP has"), overflow.
core::Result<uint64_t> ParseFixed(std::string_view text, unsigned scale, std::string_view what);

// `v` / 10^scale in decimal, without trailing zeros after the point ("0.0042", "12", "0").
std::string FormatFixed(uint64_t v, unsigned scale);

// ceil(a * b / d) in 128 bits; nullopt-like failure (returns false) when the result does not
// fit in 64 bits or d is 0.
bool MulDivCeil(uint64_t a, uint64_t b, uint64_t d, uint64_t* out);
bool MulDivFloor(uint64_t a, uint64_t b, uint64_t d, uint64_t* out);

// The fee in base units for `q` (micros of a unit) at price `p`: ceil(p * q / 10^12). False on
// overflow.
bool FeeFor(Price p, QuantityMicros q, Amount* out);

// a + b, false when it would pass 2^64 - 1.
inline bool AddAmount(Amount a, Amount b, Amount* out) {
  return !__builtin_add_overflow(a, b, out);
}

}  // namespace dfrp::economy
