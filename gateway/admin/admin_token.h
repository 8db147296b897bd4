// The admin bearer token: read from a file (admin.token_file) and checked on every mutating admin
// request. The file holds the token alone; surrounding whitespace (the newline an editor or
// `echo` leaves) is ignored. The token must be at least kMinLength characters of RFC 6750's
// token68 alphabet, so that a placeholder like "changeme" cannot protect a fleet.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::gateway::admin {

inline constexpr std::size_t kMinTokenLength = 16;

struct TokenFile {
  std::string token;    // empty when `error` is set
  std::string error;    // "<path>: <what is wrong>"
  std::string warning;  // set when the file is readable by other users
};

[[nodiscard]] TokenFile readTokenFile(const std::string& path);

// Whether an Authorization field value carries `token` ("Bearer <token>", the scheme in any case,
// RFC 6750 section 2.1). The comparison takes the same time wherever the first difference is.
[[nodiscard]] bool bearerMatches(std::string_view authorization, std::string_view token) noexcept;

}  // namespace sluice::gateway::admin
