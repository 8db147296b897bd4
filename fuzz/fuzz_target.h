// One fuzz harness, two builds (fuzz/CMakeLists.txt):
//   - with clang and SLUICE_FUZZ (scripts/fuzz.sh), each harness is its own libFuzzer binary;
//   - in every other build, all harnesses link into one `fuzz_replay` binary that runs each
//     harness over its seed corpus and the inputs of past crashes (ctest fuzz_replay_<name>),
//     so that what a fuzzer once found stays fixed under GCC's ASan+UBSan too.
//
//   SLUICE_FUZZ_TARGET(request_parser) {   // `input`: the bytes to try, a std::string_view
//     ...                                  // a finding is a crash, a sanitizer report, or a
//   }                                      // failed SLUICE_FUZZ_CHECK
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace sluice::fuzz {

using Harness = void (*)(std::string_view input);
// Adds a harness to fuzz_replay's table (replay_main.cc); returns true for static initialisation.
bool registerHarness(const char* name, Harness harness);

// An invariant the code under test promises; breaking it is a finding like a crash.
[[noreturn]] inline void checkFailed(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "%s:%d: SLUICE_FUZZ_CHECK(%s) failed\n", file, line, expr);
  std::abort();
}

}  // namespace sluice::fuzz

#define SLUICE_FUZZ_CHECK(expr) \
  ((expr) ? void(0) : ::sluice::fuzz::checkFailed(#expr, __FILE__, __LINE__))

#ifdef SLUICE_LIBFUZZER
#define SLUICE_FUZZ_TARGET(name)                                                      \
  static void sluiceFuzz_##name(std::string_view input);                              \
  extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) { \
    sluiceFuzz_##name(std::string_view(reinterpret_cast<const char*>(data), size));   \
    return 0;                                                                         \
  }                                                                                   \
  static void sluiceFuzz_##name(std::string_view input)
#else
#define SLUICE_FUZZ_TARGET(name)                                   \
  static void sluiceFuzz_##name(std::string_view input);           \
  [[maybe_unused]] static const bool sluiceFuzzRegistered_##name = \
      ::sluice::fuzz::registerHarness(#name, &sluiceFuzz_##name);  \
  static void sluiceFuzz_##name(std::string_view input)
#endif
