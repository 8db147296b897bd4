// FaultGuard: the `fault` of a route (docs/configuration.md) - breaks things on purpose so that
// tests, demos and game days can watch the rest of the system cope.
//
// Each request is independently delayed with probability delay_percent, then aborted with
// probability abort_percent (answered with abort_status, "fault injected"). It runs last in the
// pipeline, after the circuit breaker, so an injected abort (5xx) or delay counts as an upstream
// failure or a slow call for the breaker and the adaptive concurrency limit - which is the
// point: it lets a demo open a breaker without a broken upstream. A delayed request sleeps on its
// worker's timer, holding its concurrency slot as a slow upstream would.
#pragma once

#include "gateway/config/config.h"
#include "gateway/guards/guard.h"

namespace sluice::gateway::guards {

class FaultGuard final : public Guard {
 public:
  explicit FaultGuard(const config::Fault& fault) : fault_(fault) {}

  [[nodiscard]] std::string_view name() const override { return "fault"; }
  std::optional<Admission> check(proxy::RequestContext& ctx) override;
  boost::asio::awaitable<Admission> admit(proxy::RequestContext& ctx) override;

  // The decision for given draws in [0, 1) (check() draws them at random).
  [[nodiscard]] Admission decide(double delay_draw, double abort_draw) const;

 private:
  config::Fault fault_;
};

}  // namespace sluice::gateway::guards
