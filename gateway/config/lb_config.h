// Readers of a cluster's `lb` and a route's `hash_key` and `split_key` (docs/configuration.md has
// the reference). Internal to gateway/config.
#pragma once

#include <string>
#include <string_view>

#include "gateway/config/config.h"
#include "gateway/config/yaml_reader.h"

namespace sluice::gateway::config {

void readLoadBalancing(Reader& r, const yaml::Node& n, LoadBalancing& out);
void readSlowStart(Reader& r, const yaml::Node& n, SlowStart& out);
void readDynamicWeights(Reader& r, const yaml::Node& n, DynamicWeights& out);
// A route's hash_key, or (what = "split_key") the key of its split: the same syntax.
void readHashKey(Reader& r, const yaml::Node& n, std::vector<HashKeyPart>& out,
                 const std::string& what = "hash_key");

[[nodiscard]] std::string_view policyName(LbPolicy p);
[[nodiscard]] std::string hashKeyText(const HashKeyPart& part);  // "client_ip", "cookie:sid"

}  // namespace sluice::gateway::config
