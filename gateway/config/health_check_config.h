// Reader of a cluster's `health_check` section (docs/configuration.md has the reference).
// Internal to gateway/config.
#pragma once

#include "gateway/config/config.h"
#include "gateway/config/yaml_reader.h"

namespace sluice::gateway::config {

void readHealthCheck(Reader& r, const yaml::Node& n, HealthCheck& out);

}  // namespace sluice::gateway::config
