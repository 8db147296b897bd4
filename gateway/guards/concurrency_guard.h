// ConcurrencyGuard: the `concurrency` of a route (docs/configuration.md): at most N of its
// requests in flight at once, across all workers, with a bounded FIFO queue in front.
//
// N is static (`max`) or adaptive: a resilience AdaptiveLimit (gradient, aimd or vegas) learns it
// from every admitted request's completion - its latency, and whether it was dropped (the
// upstream failed, or answered 503, 504 or 429) - and the guard resizes its semaphore to it.
//
// A request takes a slot at once (allowed), or waits in the queue up to `queue_timeout`
// (delayed when it then gets one), or is shed - queue full, or its wait ran out - with 503 (or
// the configured 429) and Retry-After. Waiting never blocks a worker: the slot is handed over by
// whichever worker frees it, through a post to the waiter's own event loop. The slot is held in
// the request's context and returned when the request is over, however it ends.
#pragma once

#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include "gateway/config/config.h"
#include "gateway/guards/guard.h"
#include "resilience/adaptive_limit.h"
#include "resilience/semaphore.h"

namespace sluice::gateway::guards {

class ConcurrencyGuard final : public Guard {
 public:
  explicit ConcurrencyGuard(const config::Concurrency& settings);

  [[nodiscard]] std::string_view name() const override { return "concurrency"; }
  std::optional<Admission> check(proxy::RequestContext& ctx) override;
  boost::asio::awaitable<Admission> admit(proxy::RequestContext& ctx) override;
  void complete(proxy::RequestContext& ctx, const Completion& c) override;
  [[nodiscard]] std::vector<GuardGauge> gauges() const override;

  [[nodiscard]] std::size_t limit() const { return sem_.capacity(); }

 private:
  [[nodiscard]] http::LocalReply shed(std::string_view why) const;

  config::Concurrency settings_;
  resilience::Semaphore sem_;
  std::unique_ptr<resilience::AdaptiveLimit> adaptive_;  // null for a static limit
  std::mutex sample_mu_;                                 // serialises adaptive_->onSample()
};

}  // namespace sluice::gateway::guards
