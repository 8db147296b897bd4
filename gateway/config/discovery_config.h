// Reader of a cluster's `discovery` section (docs/configuration.md has the reference). Internal
// to gateway/config.
#pragma once

#include "gateway/config/config.h"
#include "gateway/config/yaml_reader.h"

namespace sluice::gateway::config {

void readDiscovery(Reader& r, const yaml::Node& n, Discovery& out);

}  // namespace sluice::gateway::config
