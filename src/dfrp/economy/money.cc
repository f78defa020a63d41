#include "dfrp/economy/money.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace dfrp::economy {

using core::Err;
using core::Status;

namespace {

Status Bad(std::string_view what, std::string_view text, std::string_view why) {
  return Status::InvalidArgument(fmt::format("{}: {:?} {}", what, text.substr(0, 64), why));
}

}  // namespace

core::Result<uint64_t> ParseFixed(std::string_view text, unsigned scale, std::string_view what) {
  if (text.empty()) return Err(Bad(what, text, "is empty: give a number such as 0.25"));
  if (text.size() > 200) return Err(Bad(what, text, "is too long to be an amount"));
  if (text[0] == '-')
    return Err(Bad(what, text, "is negative: amounts and quantities are never below zero"));
  if (text[0] == '+') return Err(Bad(what, text, "has a sign: write the number alone"));
  std::string digits;  // mantissa digits, integer part then fraction
  int64_t frac_len = 0;
  size_t i = 0;
  bool point = false, any = false;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (c >= '0' && c <= '9') {
      digits.push_back(c);
      any = true;
      if (point) ++frac_len;
    } else if (c == '.' && !point) {
      point = true;
    } else {
      break;
    }
  }
  if (!any) {
    std::string lower(text);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char ch) { return std::tolower(ch); });
    if (lower.find("nan") != std::string::npos || lower.find("inf") != std::string::npos)
      return Err(Bad(what, text, "is not a finite number"));
    return Err(Bad(what, text, "is not a number: give digits such as 0.25"));
  }
  int64_t exponent = 0;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    bool negative = false;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) negative = text[i++] == '-';
    const size_t start = i;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i)
      exponent = std::min<int64_t>(exponent * 10 + (text[i] - '0'), 100000);
    if (i == start) return Err(Bad(what, text, "has an exponent without digits"));
    if (negative) exponent = -exponent;
  }
  if (i != text.size()) return Err(Bad(what, text, "is not a number: give digits such as 0.25"));
  // value = digits * 10^(exponent - frac_len); we want value * 10^scale as an integer.
  digits.erase(0, std::min(digits.find_first_not_of('0'), digits.size()));
  if (digits.empty()) return uint64_t{0};
  int64_t shift = exponent - frac_len + static_cast<int64_t>(scale);
  if (shift < 0) {
    const size_t drop = static_cast<size_t>(-shift);
    if (drop > digits.size() ||
        digits.find_first_not_of('0', digits.size() - drop) != std::string::npos)
      return Err(Bad(what, text, fmt::format("has more decimals than the {} allowed here", scale)));
    digits.resize(digits.size() - drop);
    shift = 0;
  }
  if (static_cast<int64_t>(digits.size()) + shift > 20)
    return Err(Bad(what, text, "is too large (past 2^64 - 1 of the smallest unit)"));
  uint64_t v = 0;
  for (char c : digits) {
    if (__builtin_mul_overflow(v, uint64_t{10}, &v) ||
        __builtin_add_overflow(v, static_cast<uint64_t>(c - '0'), &v))
      return Err(Bad(what, text, "is too large (past 2^64 - 1 of the smallest unit)"));
  }
  for (int64_t k = 0; k < shift; ++k)
    if (__builtin_mul_overflow(v, uint64_t{10}, &v))
      return Err(Bad(what, text, "is too large (past 2^64 - 1 of the smallest unit)"));
  return v;
}

std::string FormatFixed(uint64_t v, unsigned scale) {
  std::string s = std::to_string(v);
  if (scale == 0) return s;
  if (s.size() <= scale) s.insert(0, scale + 1 - s.size(), '0');
  s.insert(s.size() - scale, 1, '.');
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s;
}

bool MulDivCeil(uint64_t a, uint64_t b, uint64_t d, uint64_t* out) {
  if (d == 0) return false;
  const unsigned __int128 p = static_cast<unsigned __int128>(a) * b;
  const unsigned __int128 q = p / d + (p % d != 0 ? 1 : 0);
  if (q > UINT64_MAX) return false;
  *out = static_cast<uint64_t>(q);
  return true;
}

bool MulDivFloor(uint64_t a, uint64_t b, uint64_t d, uint64_t* out) {
  if (d == 0) return false;
  const unsigned __int128 q = static_cast<unsigned __int128>(a) * b / d;
  if (q > UINT64_MAX) return false;
  *out = static_cast<uint64_t>(q);
  return true;
}

bool FeeFor(Price p, QuantityMicros q, Amount* out) {
  return MulDivCeil(p, q, kMicros * kMicros, out);
}

}  // namespace dfrp::economy
