// How route-match regular expressions are compiled, shared by the loader (which refuses a bad
// pattern) and the router (which runs it), so that what validates is what runs.
//
// - Latin-1: a pattern sees bytes, so a value that is not valid UTF-8 (header values may carry
//   any byte from 0x80 up, a decoded query value any byte) is matched like any other instead of
//   failing to match - which an inverted condition would turn into a pass;
// - `.` also matches a line feed (a decoded query value may hold one), for the same reason;
// - 1 MiB of memory per pattern (RE2's default is 8): what its program and lazy DFA cache may
//   use, so that a hundred patterns under varied input stay within a bounded footprint. A
//   pattern too large for it is refused when the config loads.
#pragma once

#include <re2/re2.h>

namespace sluice::gateway::config {

[[nodiscard]] inline re2::RE2::Options routeRegexOptions() {
  re2::RE2::Options o;
  o.set_encoding(re2::RE2::Options::EncodingLatin1);
  o.set_dot_nl(true);
  o.set_max_mem(std::int64_t{1} << 20);
  o.set_log_errors(false);
  return o;
}

}  // namespace sluice::gateway::config
