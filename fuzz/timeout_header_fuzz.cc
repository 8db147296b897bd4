// The deadline headers a client sends (gateway/http/timeout_header.h): X-Sluice-Timeout-Ms and
// grpc-timeout. A value read must be within a year, and what sluice forwards for a remaining
// time must never give the next hop more time than it has (a propagated deadline only shrinks).
#include <chrono>
#include <string>

#include "fuzz/fuzz_target.h"
#include "gateway/http/timeout_header.h"

namespace {

using std::chrono::nanoseconds;
constexpr nanoseconds kYear = std::chrono::hours(365 * 24);

// The value of `name` in the fields appendTimeoutFields wrote.
std::string_view fieldValue(std::string_view fields, std::string_view name) {
  const auto at = fields.find(name);
  SLUICE_FUZZ_CHECK(at != std::string_view::npos);
  const auto begin = at + name.size() + 2;  // ": "
  return fields.substr(begin, fields.find("\r\n", begin) - begin);
}

void checkForwarded(nanoseconds remaining) {
  std::string out;
  sluice::gateway::http::appendTimeoutFields(out, remaining, /*grpc=*/true);
  const auto sluice_ms =
      sluice::gateway::http::parseSluiceTimeout(fieldValue(out, "X-Sluice-Timeout-Ms"));
  const auto grpc = sluice::gateway::http::parseGrpcTimeout(fieldValue(out, "grpc-timeout"));
  SLUICE_FUZZ_CHECK(sluice_ms && grpc);
  const nanoseconds floor = std::max(remaining, nanoseconds::zero());
  SLUICE_FUZZ_CHECK(*sluice_ms <= floor && floor - *sluice_ms < std::chrono::milliseconds(1));
  SLUICE_FUZZ_CHECK(*grpc <= floor && floor - *grpc < std::chrono::seconds(1));
}

}  // namespace

SLUICE_FUZZ_TARGET(timeout_header) {
  for (const auto parsed : {sluice::gateway::http::parseSluiceTimeout(input),
                            sluice::gateway::http::parseGrpcTimeout(input)}) {
    if (!parsed) continue;
    SLUICE_FUZZ_CHECK(*parsed >= nanoseconds::zero() && *parsed <= kYear);
    checkForwarded(*parsed);
    checkForwarded(*parsed - std::chrono::microseconds(1500));  // some time spent in sluice
  }
}
