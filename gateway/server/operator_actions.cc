#include "gateway/server/operator_actions.h"

#include <optional>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "gateway/guards/circuit_breaker_guard.h"
#include "gateway/server/admin_views.h"

namespace sluice::gateway::server {

namespace {

// The breaker of route `name` (cluster_wide: of cluster `name`), or null.
guards::CircuitBreakerGuard* findBreaker(const Snapshot& snap, bool cluster_wide,
                                         std::string_view name) {
  for (std::size_t r = 0; r < snap.routes.size(); ++r) {
    if (!cluster_wide && snap.config.routes[r].name != name) continue;
    for (const auto& backend : snap.routes[r].backends) {
      if (cluster_wide && (backend.cluster == RouteBackend::kNoCluster ||
                           snap.config.clusters[backend.cluster].name != name)) {
        continue;
      }
      for (const auto& guard : backend.guards) {
        auto* b = dynamic_cast<guards::CircuitBreakerGuard*>(guard.get());
        if (b != nullptr && clusterWide(*b) == cluster_wide) return b;
      }
    }
  }
  return nullptr;
}

// "<prefix><a>/<b...>/<action>" split in three (b may hold slashes); nullopt if it does not fit.
struct ActionPath {
  std::string_view owner;
  std::string_view target;
  std::string_view action;
};
std::optional<ActionPath> splitActionPath(std::string_view path, std::string_view prefix) {
  const std::string_view rest = path.substr(prefix.size());
  const auto first = rest.find('/');
  const auto last = rest.rfind('/');
  if (first == std::string_view::npos || first == last) return std::nullopt;
  return ActionPath{rest.substr(0, first), rest.substr(first + 1, last - first - 1),
                    rest.substr(last + 1)};
}

}  // namespace

admin::Response breakerAction(const Snapshot& snap, const admin::ApiRequest& r) {
  constexpr std::string_view kUsage =
      "use POST /breakers/{route|cluster}/<name>/{force-open|force-closed|normal}";
  const auto parts = splitActionPath(r.path, "/breakers/");  // <kind>/<name>/<action>
  if (!parts) return admin::jsonError(404, std::string(kUsage));
  const auto [kind, name, action] = *parts;
  if (kind != "route" && kind != "cluster") return admin::jsonError(404, std::string(kUsage));
  const auto force = guards::CircuitBreakerGuard::parseForce(action);
  if (!force) return admin::jsonError(404, std::string(kUsage));
  auto* breaker = findBreaker(snap, kind == "cluster", name);
  if (breaker == nullptr) {
    return admin::jsonError(
        404, "no " + std::string(kind) + " '" + std::string(name) + "' with a circuit_breaker");
  }
  if (r.method != "POST") return admin::jsonError(405, "use POST");
  breaker->force(*force);
  spdlog::warn("admin: circuit breaker of {} {}: {}", kind, name, action);
  nlohmann::json j = breaker->status();
  j[std::string(kind)] = name;
  return admin::jsonResponse(200, j);
}

admin::Response hostAction(StateRegistry& registry, const admin::ApiRequest& r,
                           const std::function<void(std::string_view)>& publish) {
  constexpr std::string_view kUsage = "use POST /upstreams/<cluster>/<ip:port>/{drain|undrain}";
  const auto parts = splitActionPath(r.path, "/upstreams/");  // <cluster>/<address>/<action>
  if (!parts) return admin::jsonError(404, std::string(kUsage));
  const auto [cluster, address, action] = *parts;
  if (action != "drain" && action != "undrain") return admin::jsonError(404, std::string(kUsage));
  auto* entry = registry.cluster(cluster);
  if (entry == nullptr) return admin::jsonError(404, "no cluster '" + std::string(cluster) + "'");
  const auto slot = entry->hosts->find(address);
  if (!slot) {
    return admin::jsonError(
        404, "cluster '" + std::string(cluster) + "' has no host " + std::string(address));
  }
  if (r.method != "POST") return admin::jsonError(405, "use POST");
  const bool drain = action == "drain";
  if (*entry->hosts->setDrained(address, drain)) {
    spdlog::warn("admin: {} {} in cluster {}", drain ? "drained" : "undrained", address, cluster);
    publish(cluster);
  }
  return admin::jsonResponse(200, {{"cluster", cluster}, {"address", address}, {"drained", drain}});
}

}  // namespace sluice::gateway::server
