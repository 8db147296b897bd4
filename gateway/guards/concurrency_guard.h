// ConcurrencyGuard: the `concurrency` of a route (docs/configuration.md): at most N of its
// requests in flight at once, across all workers, with a bounded FIFO queue in front.
//
// N is static (`max`) or adaptive: a resilience AdaptiveLimit (gradient, aimd, vegas or auto)
// learns it from every admitted request's completion - its latency, and whether it was dropped
// (the upstream failed, or answered 503, 504 or 429) - and the guard resizes its semaphore to it.
//
// A request takes a slot at once (allowed), or waits in the queue up to `queue_timeout`
// (delayed when it then gets one), or is shed - queue full, or its wait ran out - with 503 (or
// the configured 429) and Retry-After. With `queue_delay` the queue is also managed by time,
// CoDel-like (resilience/queue_delay.h): once the queue has not been empty for a whole
// `interval` (a standing queue, not a burst), a waiter that has waited more than `target` is shed
// ("queue delay") - at that time if it is still queued, or as it reaches a slot, which then goes
// to the next one - so the requests served never queue longer than that while it stands,
// whatever `queue` allows. Waiting never blocks a
// worker: the slot is handed over by whichever worker frees it, through a post to the waiter's own
// event loop. The slot is held in the request's context and returned when the request is over,
// however it ends.
//
// Reloads: the guard that replaces a route's takes over its semaphore, so requests in flight and
// queued keep counting against the one limit: a new `max` or `queue` applies at once without
// revoking a slot or dropping a waiter; an adaptive algorithm whose settings changed starts over
// from the limit in force (switching between static and adaptive too).
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <vector>

#include "gateway/config/config.h"
#include "gateway/guards/guard.h"
#include "resilience/adaptive_limit.h"
#include "resilience/queue_delay.h"
#include "resilience/semaphore.h"

namespace sluice::gateway::guards {

class ConcurrencyGuard final : public Guard {
 public:
  // `previous`: the concurrency guard of the same route that this one replaces on a reload.
  explicit ConcurrencyGuard(const config::Concurrency& settings,
                            const ConcurrencyGuard* previous = nullptr);

  [[nodiscard]] std::string_view name() const override { return "concurrency"; }
  std::optional<Admission> check(proxy::RequestContext& ctx) override;
  boost::asio::awaitable<Admission> admit(proxy::RequestContext& ctx) override;
  void complete(proxy::RequestContext& ctx, const Completion& c) override;
  [[nodiscard]] std::vector<GuardGauge> gauges() const override;

  [[nodiscard]] std::size_t limit() const { return state_->sem.capacity(); }

 private:
  // What outlives the guard while a newer one shares it.
  struct Shared {
    explicit Shared(const config::Concurrency& settings);
    resilience::Semaphore sem;
    std::mutex mu;                                        // guards adaptive and codel
    std::unique_ptr<resilience::AdaptiveLimit> adaptive;  // null for a static limit
    std::optional<resilience::QueueDelay> codel;          // queue_delay, when configured
  };

  // Whether a waiter that leaves the queue now, `waited` after it joined, is shed by
  // queue_delay (and tells the CoDel state of the departure).
  [[nodiscard]] bool shedByDelay(std::chrono::steady_clock::time_point now,
                                 std::chrono::steady_clock::duration waited) const;

  [[nodiscard]] http::LocalReply shed(std::string_view why) const;

  config::Concurrency settings_;
  std::shared_ptr<Shared> state_;
};

}  // namespace sluice::gateway::guards
