// Reader of the top-level `etcd` section (docs/configuration.md has the reference). Internal to
// gateway/config.
#pragma once

#include "gateway/config/config.h"
#include "gateway/config/yaml_reader.h"

namespace sluice::gateway::config {

void readEtcd(Reader& r, const yaml::Node& n, Etcd& out);

// An etcd key or prefix in the config (discovery.etcd, etcd.register.prefix): 1 to 1024
// printable bytes. Reports the problem at `n` and returns false otherwise.
bool readEtcdKey(Reader& r, const yaml::Node& n, std::string_view what, std::string& out);

}  // namespace sluice::gateway::config
