#include "gateway/config/discovery_config.h"

#include "gateway/config/etcd_config.h"

namespace sluice::gateway::config {

void readDiscovery(Reader& r, const yaml::Node& n, Discovery& out) {
  if (!r.map(
          n, "discovery",
          {"max_hosts", "registry", "default_ttl", "max_ttl", "file", "file_interval", "etcd"})) {
    return;
  }
  r.optional(n, "max_hosts", out.max_hosts,
             [&](const yaml::Node& v) { return r.integer(v, "discovery.max_hosts", 1, 10'000); });
  r.optional(n, "registry", out.registry,
             [&](const yaml::Node& v) { return r.boolean(v, "discovery.registry"); });
  r.optional(n, "default_ttl", out.default_ttl, [&](const yaml::Node& v) {
    return r.duration(v, "discovery.default_ttl", Millis(1000));
  });
  r.optional(n, "max_ttl", out.max_ttl,
             [&](const yaml::Node& v) { return r.duration(v, "discovery.max_ttl", Millis(1000)); });
  if (const yaml::Node f = n["file"]) {
    if (const auto s = r.scalar(f, "discovery.file")) {
      if (s->empty()) {
        r.error(f, "discovery.file must be a path");
      } else {
        out.file = *s;
      }
    }
  }
  r.optional(n, "file_interval", out.file_interval, [&](const yaml::Node& v) {
    return r.duration(v, "discovery.file_interval", Millis(100));
  });
  if (const yaml::Node e = n["etcd"]) readEtcdKey(r, e, "discovery.etcd", out.etcd);
  if (!out.registry && out.file.empty() && out.etcd.empty()) {
    r.error(n, "discovery needs registry: true, a file, an etcd prefix, or several of them");
  }
  if (out.max_ttl < out.default_ttl) {
    r.error(n, "discovery.max_ttl must be at least default_ttl");
  }
}

}  // namespace sluice::gateway::config
