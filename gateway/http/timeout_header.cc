#include "gateway/http/timeout_header.h"

#include <algorithm>
#include <cstdint>

#include "gateway/http/head_writer.h"

namespace sluice::gateway::http {

namespace {

using std::chrono::nanoseconds;
constexpr std::uint64_t kMaxMillis = 365ULL * 24 * 3'600'000;  // a deadline a year out is none

std::optional<std::uint64_t> digits(std::string_view s, std::size_t max_digits) {
  if (s.empty() || s.size() > max_digits) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

}  // namespace

std::optional<nanoseconds> parseSluiceTimeout(std::string_view value) {
  const auto ms = digits(value, 12);
  if (!ms || *ms > kMaxMillis) return std::nullopt;
  return std::chrono::milliseconds(*ms);
}

std::optional<nanoseconds> parseGrpcTimeout(std::string_view value) {
  if (value.size() < 2) return std::nullopt;
  const auto n = digits(value.substr(0, value.size() - 1), 8);
  if (!n) return std::nullopt;
  std::uint64_t ns_per_unit = 0;
  switch (value.back()) {
    case 'H':
      ns_per_unit = 3'600'000'000'000ULL;
      break;
    case 'M':
      ns_per_unit = 60'000'000'000ULL;
      break;
    case 'S':
      ns_per_unit = 1'000'000'000ULL;
      break;
    case 'm':
      ns_per_unit = 1'000'000ULL;
      break;
    case 'u':
      ns_per_unit = 1'000ULL;
      break;
    case 'n':
      ns_per_unit = 1ULL;
      break;
    default:
      return std::nullopt;
  }
  // 99999999 H overflows 64-bit nanoseconds; anything beyond a year is clamped to a year.
  const std::uint64_t max_units = kMaxMillis * 1'000'000ULL / ns_per_unit;
  return nanoseconds(static_cast<std::int64_t>(std::min(*n, max_units) * ns_per_unit));
}

void appendTimeoutFields(std::string& out, nanoseconds remaining, bool grpc) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::max(remaining, nanoseconds::zero()));
  out.append(kSluiceTimeoutHeader).append(": ");
  appendDecimal(out, static_cast<std::uint64_t>(ms.count()));
  out.append("\r\n");
  if (!grpc) return;
  // The finest unit whose value fits in gRPC's 8 digits.
  out.append(kGrpcTimeoutHeader).append(": ");
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(remaining).count();
  if (us < 100'000'000) {
    appendDecimal(out, static_cast<std::uint64_t>(std::max<std::int64_t>(us, 0)));
    out.push_back('u');
  } else if (ms.count() < 100'000'000) {
    appendDecimal(out, static_cast<std::uint64_t>(ms.count()));
    out.push_back('m');
  } else {
    appendDecimal(out, static_cast<std::uint64_t>(ms.count() / 1000));
    out.push_back('S');
  }
  out.append("\r\n");
}

}  // namespace sluice::gateway::http
