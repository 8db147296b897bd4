// Helpers shared by the config tests (test code only).
#pragma once

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "gateway/config/loader.h"

namespace sluice::gateway::config {

// Every diagnostic of loading `yaml` as "t.yaml", formatted "t.yaml:line:col: message".
inline std::vector<std::string> problems(const std::string& yaml) {
  std::vector<std::string> out;
  for (const auto& d : load(yaml, "t.yaml").diagnostics) out.push_back(d.format());
  return out;
}

// A valid config with text appended to its route (`all`, to cluster `api`) and to cluster `api`
// (a second cluster, `spare`, follows it). The route text starts at line 10, the cluster's at 5.
inline std::string withRoute(const std::string& route_extra,
                             const std::string& cluster_extra = "") {
  return "listeners: [{ name: p, address: 127.0.0.1:8080 }]\n"
         "clusters:\n  - name: api\n    endpoints: [127.0.0.1:9000]\n" +
         cluster_extra +
         "  - name: spare\n    endpoints: [127.0.0.1:9001]\n"
         "routes:\n  - name: all\n    cluster: api\n" +
         route_extra;
}

// The config `yaml` loads to (a test failure, and an empty config, if it has problems).
inline Config loaded(const std::string& yaml) {
  auto r = load(yaml, "t.yaml");
  EXPECT_TRUE(r.ok()) << (r.diagnostics.empty() ? "" : r.diagnostics.front().format());
  return r.ok() ? *r.config : Config{};
}

// A config broken on purpose: text appended to a route and to a cluster of a valid config, and
// the one problem it must be reported with.
struct BrokenSection {
  const char* name;
  std::string route;
  std::string cluster;
  std::string expected;
};

// Route and cluster sections of withRoute() broken on purpose, each reported as exactly one
// problem (the TEST_P is in resilience_config_test.cc; other files add their own cases with
// INSTANTIATE_TEST_SUITE_P under another prefix).
class ResilienceConfigRejects : public ::testing::TestWithParam<BrokenSection> {};

}  // namespace sluice::gateway::config
