// Where `sluice run -c etcd://...` reads its config: one key on an etcd cluster.
//
//   etcd://127.0.0.1:2379/sluice/config
//   etcd://10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379/sluice/config
//
// Endpoints are IP literals with a port ([::1]:2379 for IPv6), like every address in sluice's
// config: names are not resolved (etcd_client.h). The key is everything from the first '/' after
// the endpoints, that slash included, and must have at least one character after it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/config/config.h"

namespace sluice::gateway::etcd {

struct EtcdUrl {
  std::vector<config::Address> endpoints;
  std::string key;
};

[[nodiscard]] bool isEtcdUrl(std::string_view text) noexcept;
// nullopt with the reason in *error when `text` is not a valid etcd:// URL.
[[nodiscard]] std::optional<EtcdUrl> parseEtcdUrl(std::string_view text, std::string* error);

}  // namespace sluice::gateway::etcd
