// Readers of the admission-guard sections of a route or cluster: `rate_limit` and
// `concurrency` (docs/configuration.md has the reference). Internal to gateway/config.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "gateway/config/config.h"
#include "gateway/config/yaml_reader.h"

namespace sluice::gateway::config {

// "100/s", "6000/m", "5/10s": a count and the period it is spread over.
struct RateText {
  std::uint64_t requests = 0;
  Millis period{0};
};
[[nodiscard]] std::optional<RateText> parseRate(std::string_view text, std::string* error);

void readRateLimit(Reader& r, const yaml::Node& n, RateLimit& out);
void readConcurrency(Reader& r, const yaml::Node& n, Concurrency& out);

[[nodiscard]] std::string_view algorithmName(RateAlgorithm a);
[[nodiscard]] std::string_view scopeName(RateLimit::Scope s);
[[nodiscard]] std::string_view onFailureName(RateLimit::OnFailure f);
[[nodiscard]] std::string_view algorithmName(AdaptiveConcurrency::Algorithm a);
[[nodiscard]] std::string keyPartText(const RateKeyPart& part);  // "client_ip", "header:x-user"

}  // namespace sluice::gateway::config
