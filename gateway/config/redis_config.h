// Reader of the `redis` section (docs/configuration.md, "redis"). Internal to gateway/config.
#pragma once

#include "gateway/config/config.h"
#include "gateway/config/yaml_reader.h"

namespace sluice::gateway::config {

void readRedis(Reader& r, const yaml::Node& n, Redis& out);

}  // namespace sluice::gateway::config
