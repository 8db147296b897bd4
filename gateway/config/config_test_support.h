// Helpers shared by the config tests (test code only).
#pragma once

#include <string>
#include <vector>

#include "gateway/config/loader.h"

namespace sluice::gateway::config {

// Every diagnostic of loading `yaml` as "t.yaml", formatted "t.yaml:line:col: message".
inline std::vector<std::string> problems(const std::string& yaml) {
  std::vector<std::string> out;
  for (const auto& d : load(yaml, "t.yaml").diagnostics) out.push_back(d.format());
  return out;
}

// A config broken on purpose: text appended to a route and to a cluster of a valid config, and
// the one problem it must be reported with.
struct BrokenSection {
  const char* name;
  std::string route;
  std::string cluster;
  std::string expected;
};

}  // namespace sluice::gateway::config
