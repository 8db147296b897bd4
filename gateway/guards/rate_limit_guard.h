// RateLimitGuard: the `rate_limit` of a route or a cluster (docs/configuration.md).
//
// Each request is keyed (client IP, a header, the route, or several joined) and charged to that
// key's limiter (key_limiter.h) in a bounded table (key_table.h); a route's guard keyed only by
// `route` has a single limiter and skips the table. The limiter's answer becomes the verdict:
//   * allow: continue;
//   * delay (leaky_bucket, excess within the burst): continue after the delay, which the
//     connection sleeps on a timer of its own worker (nothing blocks); counted as delayed;
//   * reject: 429 (or the configured 503) with
//       Retry-After: <whole seconds, rounded up, at least 1>
//       RateLimit-Policy: "<policy>";q=<quota>;w=<window seconds>
//       RateLimit: "<policy>";r=<remaining>;t=<seconds until the quota is whole>
//     (draft-ietf-httpapi-ratelimit-headers; <policy> is the route or cluster name).
// A missing header is an empty value: requests without it share one limiter, so leaving the
// header out cannot escape the limit.
//
// scope: global - the limit is the fleet's: each key's permits come from a PermitStore (Redis)
// through GlobalLimit's leases (global_limit.h), and the RateLimit headers carry the fleet's
// numbers. When the store cannot answer, `on_failure` decides: allow, deny (the rejection above),
// or local - this instance's own limiter at the rate divided by `instances` (the expected fleet
// size: requests per period*instances, burst/instances), kept warm only while it is in use.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/config/config.h"
#include "gateway/guards/global_limit.h"
#include "gateway/guards/guard.h"
#include "gateway/guards/key_limiter.h"
#include "gateway/guards/key_table.h"

namespace sluice::gateway::guards {

// Where a scope-global limit's permits come from, and the fleet size that on_failure local
// divides by (ignored for scope local).
struct GlobalScope {
  PermitStore* store = nullptr;  // outlives the guard
  std::uint32_t instances = 1;
};

class RateLimitGuard final : public Guard {
 public:
  // `name` is the metrics label ("rate_limit", "cluster_rate_limit"); `policy` the name in the
  // RateLimit headers (the route or cluster). `many_routes`: the guard is a cluster's, shared
  // by its routes, so a `route` key part tells them apart. `previous`: the guard of the same
  // route or cluster that this one replaces on a reload; its keys - with what each has left -
  // carry over when only numbers changed (rate, burst, delay, max_keys; same algorithm and key;
  // key_limiter.h says what each algorithm keeps, measured at `now`). Requests still running on
  // the previous guard share the keys with this one.
  // `global`: see GlobalScope.
  RateLimitGuard(std::string name, std::string policy, config::RateLimit settings,
                 bool many_routes = false, const RateLimitGuard* previous = nullptr,
                 TimePoint now = resilience::Clock::now(), const GlobalScope& global = {});

  // Whether this guard shares its keys with `other` (reloads keep them).
  [[nodiscard]] bool sharesStateWith(const RateLimitGuard& other) const {
    return state_ == other.state_;
  }

  [[nodiscard]] std::string_view name() const override { return name_; }
  std::optional<Admission> check(proxy::RequestContext& ctx) override;
  boost::asio::awaitable<Admission> admit(proxy::RequestContext& ctx) override;
  [[nodiscard]] std::vector<GuardGauge> gauges() const override;

  // The decision for `ctx` at `now`, without waiting: what admit() acts on. For tests.
  [[nodiscard]] RateDecision decide(const proxy::RequestContext& ctx, TimePoint now);
  // The reply to a rejected request.
  [[nodiscard]] http::LocalReply rejection(const RateDecision& d) const;

 private:
  void buildKey(const proxy::RequestContext& ctx, std::string& out) const;
  [[nodiscard]] Admission verdictOf(const RateDecision& d) const;
  [[nodiscard]] Admission globalVerdict(const GlobalLimit::Answer& a,
                                        const proxy::RequestContext& ctx);

  // What the guard knows of its clients; outlives the guard while a newer one shares it.
  struct State {
    explicit State(const config::RateLimit& settings) : factory(settings) {}
    KeyLimiterFactory factory;
    std::unique_ptr<KeyLimiter> single;  // the key has no per-request part
    std::optional<KeyTable> table;
    std::shared_ptr<GlobalLimit> global;  // scope global (single/table: on_failure local)
  };
  [[nodiscard]] bool canTakeOver(const RateLimitGuard& previous) const;

  std::string name_;
  std::string policy_;
  config::RateLimit settings_;
  config::RateLimit local_;  // what the local limiters enforce (global: the per-instance share)
  bool many_routes_;
  std::shared_ptr<State> state_;
};

}  // namespace sluice::gateway::guards
