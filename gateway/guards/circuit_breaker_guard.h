// CircuitBreakerGuard: the `circuit_breaker` of a route or cluster (docs/configuration.md) -
// stop sending requests to an upstream that is failing, answer from a fallback meanwhile, and
// probe it before trusting it again.
//
// The breaker is resilience::CircuitBreaker (closed -> open -> half-open -> closed; its header
// has the exact thresholds). A request it admits carries the permit in its context; complete()
// records the outcome: a failure when sluice could not get a usable upstream response (502, 503,
// 504 of its own, resets, timeouts) or the status is in failure_statuses (default 5xx), a slow
// call when the service time (from admission, queueing excluded) exceeds slow_call_duration. A
// request the client abandoned before any response records nothing.
//
// While the breaker refuses, the request gets its fallback (verdict `open`):
//   - cache:   the last good 200 response to the same GET (host and target), with
//              X-Sluice-Fallback: cache and Age; the static answer when there is none;
//   - static:  the configured status, headers and body, with X-Sluice-Fallback: static;
//   - cluster: the request is forwarded to the fallback cluster instead.
// A cluster's breaker is one guard shared by all of its routes; a route with its own breaker
// uses that one instead. State and transitions are exported as gauges and on the admin API
// (/breakers, with the last few transitions timed: transition_log.h).
//
// Reloads: the guard that replaces a route's or cluster's breaker takes over the breaker itself
// (resilience::CircuitBreaker::reconfigure: its state, its open period and, unless the window's
// kind or size changed, its window), its transition counts and its cache of good responses.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "gateway/config/config.h"
#include "gateway/guards/guard.h"
#include "gateway/guards/response_cache.h"
#include "gateway/guards/transition_log.h"
#include "resilience/circuit_breaker.h"

namespace sluice::gateway::guards {

class CircuitBreakerGuard final : public Guard {
 public:
  // `previous`: the breaker guard of the same route or cluster that this one replaces on a
  // reload (see above).
  // `owner` names the breaker in its log lines ("route api", "cluster api").
  CircuitBreakerGuard(std::string_view name, config::CircuitBreaker config,
                      const CircuitBreakerGuard* previous = nullptr, std::string owner = {});

  [[nodiscard]] std::string_view name() const override { return name_; }
  std::optional<Admission> check(proxy::RequestContext& ctx) override;
  boost::asio::awaitable<Admission> admit(proxy::RequestContext& ctx) override;
  void complete(proxy::RequestContext& ctx, const Completion& c) override;
  [[nodiscard]] std::vector<GuardGauge> gauges() const override;

  [[nodiscard]] resilience::CircuitBreaker& breaker() noexcept { return state_->breaker; }
  [[nodiscard]] const config::CircuitBreaker& settings() const noexcept { return config_; }
  // State, rates and counts, and the recent transitions (`history`, oldest first, each with its
  // wall-clock time in ms since the epoch), for the admin API.
  [[nodiscard]] nlohmann::json status() const;

  // An operator's override through the admin API: force-open rejects every request (the
  // fallback answers, if any), force-closed admits every one and counts nothing, normal closes
  // the breaker with an empty window. A forced state holds across reloads, like any breaker
  // state, until `normal`.
  enum class Force : std::uint8_t { Open, Closed, Normal };
  [[nodiscard]] static std::optional<Force> parseForce(std::string_view action);
  void force(Force f);

 private:
  static constexpr std::size_t kStates = 5;  // resilience::CircuitBreaker::State values

  [[nodiscard]] http::LocalReply fallbackReply(const proxy::RequestContext& ctx);
  [[nodiscard]] bool isFailure(const Completion& c) const;

  // What outlives the guard while a newer one shares it.
  struct Shared {
    // `owner`: who the breaker is for, in the log line of each transition.
    Shared(const config::CircuitBreaker& config, std::string owner);
    std::string name;
    std::array<std::atomic<std::uint64_t>, kStates> transitions{};  // by target state
    TransitionLog recent;                                           // the last few, timed
    ResponseCache cache;                                            // used only with fallback.cache
    resilience::CircuitBreaker breaker;  // last: its listener writes transitions
  };

  std::string name_;
  config::CircuitBreaker config_;
  std::shared_ptr<Shared> state_;
};

[[nodiscard]] std::string_view stateName(resilience::CircuitBreaker::State s);

}  // namespace sluice::gateway::guards
