// YAML -> validated Config.
//
//   auto result = config::load(yaml_text, "sluice.yaml");
//   if (!result.ok()) for (auto& d : result.diagnostics) std::cerr << d.format() << '\n';
//
// Loading never stops at the first problem: every problem is reported with the file, line and
// column it refers to (1-based), like `nginx -t`, and a config with any problem is refused as a
// whole. A missing unit, an unknown key, a duplicate key or name, a wrong type, an address that
// is not an IP literal with a port, a route to a cluster that does not exist: all are errors.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/config/config.h"

namespace sluice::gateway::config {

struct Diagnostic {
  std::string file;
  int line = 0;    // 1-based; 0 when the problem has no position (file unreadable)
  int column = 0;  // 1-based
  std::string message;

  [[nodiscard]] std::string format() const;  // "file:line:column: message"
};

struct LoadResult {
  std::optional<Config> config;  // set only when diagnostics is empty
  std::vector<Diagnostic> diagnostics;
  // Valid but almost certainly not what was meant (a route an earlier route hides). They do not
  // stop a config from loading; `validate` prints them and `run` logs them. Only for a config
  // without errors.
  std::vector<Diagnostic> warnings;

  [[nodiscard]] bool ok() const { return config.has_value(); }
};

[[nodiscard]] LoadResult load(std::string_view yaml, const std::string& file_name);
[[nodiscard]] LoadResult loadFile(const std::string& path);

// An endpoints file (discovery.file): a YAML list of "ip:port" or { address, weight }, the same
// syntax as a cluster's endpoints; empty means no hosts.
struct EndpointsResult {
  std::optional<std::vector<Endpoint>> endpoints;  // set only when diagnostics is empty
  std::vector<Diagnostic> diagnostics;
};
[[nodiscard]] EndpointsResult loadEndpoints(std::string_view yaml, const std::string& file_name);

// Unit parsers, exposed for tests. nullopt with the reason in *error on failure.
[[nodiscard]] std::optional<Millis> parseDuration(std::string_view text, std::string* error);
[[nodiscard]] std::optional<std::uint64_t> parseSize(std::string_view text, std::string* error);
[[nodiscard]] std::optional<Address> parseAddress(std::string_view text, std::string* error);

}  // namespace sluice::gateway::config
