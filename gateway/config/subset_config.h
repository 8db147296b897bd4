// Readers of host labels: an endpoint's `metadata` and a route's `subset` (docs/configuration.md,
// "Subsets", has the reference). Internal to gateway/config.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "gateway/config/config.h"
#include "gateway/config/yaml_reader.h"

namespace sluice::gateway::config {

// A mapping of label names to text, at most Endpoint::kMaxMetadata entries of 1..256-byte names
// and values up to 256 bytes; `what` names it in errors ("endpoint metadata", "subset.labels").
void readLabels(Reader& r, const yaml::Node& m, std::string_view what,
                std::map<std::string, std::string>& out);

void readSubset(Reader& r, const yaml::Node& n, Subset& out);

}  // namespace sluice::gateway::config
