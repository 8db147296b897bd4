// Readers of a route's `retry` section and a cluster's `retry_budget` (docs/configuration.md has
// the reference). Internal to gateway/config.
#pragma once

#include <string>
#include <vector>

#include "gateway/config/config.h"
#include "gateway/config/yaml_reader.h"

namespace sluice::gateway::config {

void readRetry(Reader& r, const yaml::Node& n, RetryPolicy& out);
void readRetryBudget(Reader& r, const yaml::Node& n, RetryBudget& out);

// retry.on as written in YAML: "connect-failure", "reset", "timeout", then the statuses.
[[nodiscard]] std::vector<std::string> retryOnText(const RetryOn& on);

}  // namespace sluice::gateway::config
