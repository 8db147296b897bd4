// Deadlines carried in request headers, so that every hop knows how long its caller will wait.
//
//   X-Sluice-Timeout-Ms: 1500     sluice's own: the milliseconds left, a decimal integer
//   grpc-timeout: 1500m           gRPC's (PROTOCOL-HTTP2.md): 1 to 8 digits and a unit,
//                                 H (hours) M (minutes) S m (milliseconds) u (microseconds) n
//
// sluice reads either (the earlier wins when both are present), takes the earlier of that and
// the route timeout, and sends each try upstream with what is left of it at that moment
// (always as X-Sluice-Timeout-Ms, and also as grpc-timeout when the client used it).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::gateway::http {

inline constexpr std::string_view kSluiceTimeoutHeader = "X-Sluice-Timeout-Ms";
inline constexpr std::string_view kGrpcTimeoutHeader = "grpc-timeout";

// nullopt when malformed (empty, signs, spaces, a fraction, or beyond a year).
[[nodiscard]] std::optional<std::chrono::nanoseconds> parseSluiceTimeout(std::string_view value);
[[nodiscard]] std::optional<std::chrono::nanoseconds> parseGrpcTimeout(std::string_view value);

// Appends "X-Sluice-Timeout-Ms: <whole ms>\r\n" (and the grpc-timeout field when `grpc`).
void appendTimeoutFields(std::string& out, std::chrono::nanoseconds remaining, bool grpc);

}  // namespace sluice::gateway::http
