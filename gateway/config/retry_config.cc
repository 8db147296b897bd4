#include "gateway/config/retry_config.h"

#include <algorithm>

namespace sluice::gateway::config {

namespace {

constexpr std::string_view kConditions =
    "connect-failure, reset, timeout, gateway-error (502, 503, 504), 5xx, or a status from 400 "
    "to 599";

void addStatus(std::vector<int>& statuses, int s) {
  if (std::find(statuses.begin(), statuses.end(), s) == statuses.end()) statuses.push_back(s);
}

void readRetryOn(Reader& r, const yaml::Node& on, RetryOn& out) {
  if (!on.IsSequence() || on.size() == 0) {
    r.error(on,
            "retry.on must be a non-empty list of conditions (" + std::string(kConditions) + ")");
    return;
  }
  out = RetryOn{.connect_failure = false};
  for (const auto& item : on) {
    auto s = r.scalar(item, "retry.on entry");
    if (!s) continue;
    if (*s == "connect-failure") {
      out.connect_failure = true;
    } else if (*s == "reset") {
      out.reset = true;
    } else if (*s == "timeout") {
      out.timeout = true;
    } else if (*s == "gateway-error") {
      for (int st : {502, 503, 504}) addStatus(out.statuses, st);
    } else if (*s == "5xx") {
      for (int st = 500; st <= 599; ++st) addStatus(out.statuses, st);
    } else if (const auto st = parseUnsigned<int>(*s); st && *st >= 400 && *st <= 599) {
      addStatus(out.statuses, *st);
    } else {
      r.error(item,
              "unknown retry condition '" + *s + "' (supported: " + std::string(kConditions) + ")");
    }
  }
  std::sort(out.statuses.begin(), out.statuses.end());
}

}  // namespace

void readRetry(Reader& r, const yaml::Node& n, RetryPolicy& out) {
  if (!r.map(n, "route retry",
             {"attempts", "on", "per_try_timeout", "methods", "backoff_base", "backoff_max"})) {
    return;
  }
  r.optional(n, "attempts", out.attempts,
             [&](const yaml::Node& v) { return r.integer(v, "retry.attempts", 1, 10); });
  if (const yaml::Node on = n["on"]) readRetryOn(r, on, out.on);
  if (const yaml::Node t = n["per_try_timeout"]) {
    if (auto d = r.duration(t, "retry.per_try_timeout", kMinTimeout)) out.per_try_timeout = *d;
  }
  if (const yaml::Node m = n["methods"]) {
    if (auto s = r.scalar(m, "retry.methods")) {
      if (*s == "idempotent") {
        out.any_method = false;
      } else if (*s == "any") {
        out.any_method = true;
      } else {
        r.error(m, "retry.methods must be 'idempotent' or 'any', got '" + *s + "'");
      }
    }
  }
  r.optional(n, "backoff_base", out.backoff_base,
             [&](const yaml::Node& v) { return r.duration(v, "retry.backoff_base", kMinTimeout); });
  r.optional(n, "backoff_max", out.backoff_max,
             [&](const yaml::Node& v) { return r.duration(v, "retry.backoff_max", kMinTimeout); });
  if (out.backoff_max < out.backoff_base) {
    r.error(n, "retry.backoff_max (" + std::to_string(out.backoff_max.count()) +
                   "ms) must be at least retry.backoff_base (" +
                   std::to_string(out.backoff_base.count()) + "ms)");
  }
}

void readRetryBudget(Reader& r, const yaml::Node& n, RetryBudget& out) {
  if (!r.map(n, "cluster retry_budget", {"percent", "min_per_second", "window"})) return;
  r.optional(n, "percent", out.percent,
             [&](const yaml::Node& v) { return r.decimal(v, "retry_budget.percent", 0, 1000); });
  r.optional(n, "min_per_second", out.min_per_second, [&](const yaml::Node& v) {
    return r.decimal(v, "retry_budget.min_per_second", 0, 1e6);
  });
  r.optional(n, "window", out.window, [&](const yaml::Node& v) {
    return r.duration(v, "retry_budget.window", Millis(100));
  });
}

std::vector<std::string> retryOnText(const RetryOn& on) {
  std::vector<std::string> out;
  if (on.connect_failure) out.emplace_back("connect-failure");
  if (on.reset) out.emplace_back("reset");
  if (on.timeout) out.emplace_back("timeout");
  for (int s : on.statuses) out.push_back(std::to_string(s));
  return out;
}

}  // namespace sluice::gateway::config
