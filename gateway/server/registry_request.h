// The parsing half of the admin registry (discovery.h): what a /registry request asks, read
// from its path and JSON body without touching any state. Apart from DiscoveryService so that
// the untrusted input it reads can be unit-tested and fuzzed alone (fuzz/registry_fuzz.cc).
//
//   /registry                              -> List
//   /registry/<cluster>/<ip:port>          -> Host       (PUT register/renew, DELETE leave)
//   /registry/<cluster>/<ip:port>/heartbeat -> Heartbeat (POST)
// Repeated and trailing slashes are ignored, as they always were.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/config/config.h"

namespace sluice::gateway::server {

struct RegistryPath {
  enum class Kind : std::uint8_t { List, Host, Heartbeat };
  Kind kind = Kind::List;
  std::string_view cluster;  // views into the parsed path
  std::string_view address;
};

// nullopt when `path` is not one of the three shapes above (the caller answers 404).
[[nodiscard]] std::optional<RegistryPath> parseRegistryPath(std::string_view path);

// What a registration body sets; fields it does not name keep the values given on entry.
struct Registration {
  std::uint32_t weight = 1;
  std::chrono::milliseconds ttl{0};
  std::map<std::string, std::string> metadata;
};

inline constexpr std::uint32_t kMaxRegistryWeight = 1'000'000;
inline constexpr std::chrono::milliseconds kMinRegistryTtl{1000};

// Reads an optional JSON object {"weight": 1..1000000, "ttl_ms": 1000..max_ttl, "metadata":
// {string: string}} into `out` (metadata within config::Endpoint's bounds). An empty body changes
// nothing. Returns what is wrong (the caller answers 400 with it), or nullopt.
[[nodiscard]] std::optional<std::string> parseRegistration(std::string_view body,
                                                           std::chrono::milliseconds max_ttl,
                                                           Registration& out);

// A value under a cluster's discovery.etcd prefix (docs/distributed.md has the key layout):
// {"address": "ip:port", "weight": 1..1000000, "metadata": {string: string}}, address required.
struct EtcdEndpoint {
  config::Address address;
  Registration registration;  // weight and metadata
};
// Returns what is wrong with `value`, or nullopt.
[[nodiscard]] std::optional<std::string> parseEtcdEndpoint(std::string_view value,
                                                           EtcdEndpoint& out);

}  // namespace sluice::gateway::server
