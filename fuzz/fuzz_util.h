// Shared helpers for the libFuzzer targets in this folder (one translation unit each).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

// The fuzz build compiles UBSan checks in recoverable mode; make the first report fatal so the
// fuzzer records it as a crash instead of printing it and going on.
extern "C" const char* __ubsan_default_options() { return "halt_on_error=1:print_stacktrace=1"; }

namespace dfrp::fuzz {

// A failed property: print what went wrong and abort, which libFuzzer reports as a crash
// and saves the input for.
[[noreturn]] inline void Fail(const char* what) {
  std::fprintf(stderr, "fuzz property failed: %s\n", what);
  std::abort();
}

#define DFRP_FUZZ_CHECK(cond)                                                             \
  do {                                                                                    \
    if (!(cond)) ::dfrp::fuzz::Fail(#cond " (" __FILE__ ":" DFRP_FUZZ_STR(__LINE__) ")"); \
  } while (0)
#define DFRP_FUZZ_STR2(x) #x
#define DFRP_FUZZ_STR(x) DFRP_FUZZ_STR2(x)

inline std::string_view AsView(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace dfrp::fuzz
