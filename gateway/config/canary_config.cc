#include "gateway/config/canary_config.h"

#include <string>

namespace sluice::gateway::config {

void readCanary(Reader& r, const yaml::Node& n, const Route& route, Canary& out) {
  if (!r.map(n, "canary",
             {"steps", "interval", "min_requests", "max_error_increase", "max_latency_ratio",
              "min_latency_increase", "confidence"})) {
    return;
  }
  if (route.split.size() != 2) {
    r.error(n, "canary needs a split with two sides: the baseline first, the canary second");
  }
  if (const yaml::Node steps = n["steps"]) {
    if (!steps.IsSequence() || steps.size() == 0) {
      r.error(steps, "canary.steps must be a list of percents, e.g. [5, 25, 50]");
    } else {
      out.steps.clear();
      double before = 0;
      for (const auto& s : steps) {
        // 100 is not a step: the baseline would have nothing left to be compared with (the
        // promotion after the last step is the 100).
        const auto v = r.decimal(s, "canary step", 0.01, 99.99);
        if (!v) continue;
        if (*v <= before) {
          r.error(s, "canary.steps must increase (the canary's percent at each step)");
        }
        before = *v;
        out.steps.push_back(*v);
      }
    }
  }
  r.optional(n, "interval", out.interval,
             [&](const yaml::Node& v) { return r.duration(v, "canary.interval", Millis(100)); });
  r.optional(n, "min_requests", out.min_requests, [&](const yaml::Node& v) {
    return r.integer(v, "canary.min_requests", 20, 1'000'000'000);
  });
  r.optional(n, "max_error_increase", out.max_error_increase,
             [&](const yaml::Node& v) { return r.decimal(v, "canary.max_error_increase", 0, 99); });
  r.optional(n, "max_latency_ratio", out.max_latency_ratio, [&](const yaml::Node& v) {
    return r.decimal(v, "canary.max_latency_ratio", 1, 1000);
  });
  r.optional(n, "min_latency_increase", out.min_latency_increase, [&](const yaml::Node& v) {
    return r.duration(v, "canary.min_latency_increase", Millis(0));
  });
  r.optional(n, "confidence", out.confidence,
             [&](const yaml::Node& v) { return r.decimal(v, "canary.confidence", 50.1, 99.99); });
}

}  // namespace sluice::gateway::config
