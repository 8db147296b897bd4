// Where a failed BOOST_ASSERT goes in builds with assertions (the debug, sanitizer and fuzz
// builds; release builds define NDEBUG, and there BOOST_ASSERT is nothing): BOOST_ENABLE_ASSERT_
// DEBUG_HANDLER, set for every file that includes Boost (gateway/CMakeLists.txt), sends it here.
//
// Every assertion aborts, as assert() would, except one that is wrong: Beast up to 1.85 asserts
// that at least 5 bytes are buffered when it resumes after the final chunk of a chunked body,
// but a peer that sends "0\r\n" and then "\r" leaves 4. The code after the assertion handles
// that correctly (it waits for the rest); Beast's fix relaxes the assertion to what the code
// needs (boostorg/beast#2861, in 1.86). Found by fuzz/chunked_fuzz.cc; without this, a client
// could abort a sanitizer build of sluice.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <boost/assert.hpp>

namespace {

bool knownBeastFinalChunkAssertion(const char* expr, const char* file) {
  return std::strcmp(expr, "n >= 5") == 0 &&
         std::strstr(file, "boost/beast/http/impl/basic_parser.ipp") != nullptr;
}

}  // namespace

namespace boost {

// NOLINTNEXTLINE(readability-identifier-naming): the names Boost declares
void assertion_failed(char const* expr, char const* function, char const* file, long line) {
  if (knownBeastFinalChunkAssertion(expr, file)) return;
  std::fprintf(stderr, "%s:%ld: %s: Assertion `%s' failed.\n", file, line, function, expr);
  std::abort();
}

// NOLINTNEXTLINE(readability-identifier-naming): the names Boost declares
void assertion_failed_msg(char const* expr, char const* msg, char const* function, char const* file,
                          long line) {
  std::fprintf(stderr, "%s:%ld: %s: Assertion `%s' failed: %s\n", file, line, function, expr, msg);
  std::abort();
}

}  // namespace boost
