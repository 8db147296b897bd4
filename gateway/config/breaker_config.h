// Readers of the `circuit_breaker` (route or cluster) and `fault` (route) sections
// (docs/configuration.md has the reference). Internal to gateway/config.
#pragma once

#include "gateway/config/config.h"
#include "gateway/config/yaml_reader.h"
#include "resilience/circuit_breaker.h"

namespace sluice::gateway::config {

void readCircuitBreaker(Reader& r, const yaml::Node& n, CircuitBreaker& out);
void readFault(Reader& r, const yaml::Node& n, Fault& out);

// The config names of share_mode ("authoritative", "hint").
[[nodiscard]] std::string_view shareModeName(CircuitBreaker::ShareMode m);

// The library's settings for a validated config.
[[nodiscard]] resilience::CircuitBreaker::Settings breakerSettings(const CircuitBreaker& c);

}  // namespace sluice::gateway::config
