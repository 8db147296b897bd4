// Reader of a route's `mirror` (docs/configuration.md, "Mirroring", has the reference). Internal
// to gateway/config.
#pragma once

#include "gateway/config/config.h"
#include "gateway/config/yaml_reader.h"

namespace sluice::gateway::config {

// The shape and ranges; that the cluster exists is checked with the other cross-references.
void readMirror(Reader& r, const yaml::Node& n, Mirror& out);

}  // namespace sluice::gateway::config
