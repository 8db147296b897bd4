// Readers of a cluster's upstream-protection sections, `outlier_detection` and `bulkhead`
// (docs/configuration.md has the reference). Internal to gateway/config.
#pragma once

#include "gateway/config/config.h"
#include "gateway/config/yaml_reader.h"
#include "resilience/outlier_detector.h"

namespace sluice::gateway::config {

void readOutlierDetection(Reader& r, const yaml::Node& n, OutlierDetection& out);
void readBulkhead(Reader& r, const yaml::Node& n, Bulkhead& out);

// The library's settings for a validated config.
[[nodiscard]] resilience::OutlierDetector::Settings outlierSettings(const OutlierDetection& c);

}  // namespace sluice::gateway::config
