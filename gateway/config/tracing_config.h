// Reader of the `tracing` section (docs/configuration.md, "tracing"). Internal to gateway/config.
#pragma once

#include "gateway/config/config.h"
#include "gateway/config/yaml_reader.h"

namespace sluice::gateway::config {

void readTracing(Reader& r, const yaml::Node& n, Tracing& out);

}  // namespace sluice::gateway::config
