// The active config as JSON, for the admin API's /config. Every field is shown, defaults
// included, with durations in milliseconds and sizes in bytes (the units are in the key names).
#pragma once

#include <nlohmann/json.hpp>

#include "gateway/config/config.h"

namespace sluice::gateway::config {

[[nodiscard]] nlohmann::json toJson(const Config& config);

}  // namespace sluice::gateway::config
