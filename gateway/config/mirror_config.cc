#include "gateway/config/mirror_config.h"

#include <string>

namespace sluice::gateway::config {

void readMirror(Reader& r, const yaml::Node& n, Mirror& out) {
  if (!r.map(n, "mirror", {"cluster", "percent", "max_body", "timeout", "max_in_flight"})) return;
  if (r.require(n, "cluster", "mirror")) {
    if (auto v = r.name(n["cluster"], "mirror cluster")) out.cluster = *v;
  }
  r.optional(n, "percent", out.percent,
             [&](const yaml::Node& v) { return r.decimal(v, "mirror.percent", 0, 100); });
  if (const yaml::Node b = n["max_body"]) {
    if (auto v = r.size(b, "mirror.max_body", 0)) {
      if (*v > Mirror::kMaxBody) {
        r.error(b, "mirror.max_body must be at most 16MiB (a copy is held in memory until sent)");
      } else {
        out.max_body = *v;
      }
    }
  }
  if (const yaml::Node t = n["timeout"]) {
    if (auto v = r.duration(t, "mirror.timeout", kMinTimeout)) {
      if (*v > Mirror::kMaxTimeout) {
        r.error(t,
                "mirror.timeout must be at most 60s (a copy holds its memory and its config "
                "generation until it ends)");
      } else {
        out.timeout = *v;
      }
    }
  }
  r.optional(n, "max_in_flight", out.max_in_flight,
             [&](const yaml::Node& v) { return r.integer(v, "mirror.max_in_flight", 1, 65'536); });
}

}  // namespace sluice::gateway::config
