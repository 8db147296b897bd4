// The balancing hash of a request for a consistent-hashing cluster (ring_hash, maglev): XXH3 of
// the parts of its route's hash_key, in order, each followed by a separator byte so that
// ("ab", "c") and ("a", "bc") differ.
//
//   client_ip        the peer address
//   path             the path, without the query
//   header:<name>    the first field of that name (case-insensitive)
//   cookie:<name>    that cookie's value in the Cookie field(s)
//   query:<name>     that query parameter's raw (not percent-decoded) value
//
// A missing part hashes as empty; a request with none of its parts present gets nullopt (the
// caller draws a random hash rather than send every such request to one host).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "gateway/config/config.h"
#include "gateway/http/head.h"

namespace sluice::gateway::proxy {

[[nodiscard]] std::optional<std::uint64_t> requestHash(const std::vector<config::HashKeyPart>& key,
                                                       const http::RequestHead& head,
                                                       std::string_view client_ip);

// Exposed for tests: the value of cookie `name` in one Cookie field / of parameter `name` in a
// request target's query.
[[nodiscard]] std::optional<std::string_view> cookieValue(std::string_view cookies,
                                                          std::string_view name);
[[nodiscard]] std::optional<std::string_view> queryValue(std::string_view target,
                                                         std::string_view name);

}  // namespace sluice::gateway::proxy
