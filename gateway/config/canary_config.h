// Reader of a route's `canary` (docs/configuration.md, "canary", has the reference). Internal to
// gateway/config.
#pragma once

#include "gateway/config/config.h"
#include "gateway/config/yaml_reader.h"

namespace sluice::gateway::config {

// The shape and ranges; `route` (read so far) must have a two-sided split.
void readCanary(Reader& r, const yaml::Node& n, const Route& route, Canary& out);

}  // namespace sluice::gateway::config
