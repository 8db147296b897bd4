#include "gateway/guards/concurrency_guard.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "gateway/proxy/request_context.h"
#include "resilience/aimd_limit.h"
#include "resilience/auto_limit.h"
#include "resilience/gradient_limit.h"
#include "resilience/vegas_limit.h"

namespace sluice::gateway::guards {
namespace {

namespace asio = boost::asio;
using Algorithm = config::AdaptiveConcurrency::Algorithm;

// An algorithm with the config's bounds; `s` carries its other settings.
template <typename Limit>
std::unique_ptr<resilience::AdaptiveLimit> withBounds(const config::AdaptiveConcurrency& a,
                                                      typename Limit::Settings s) {
  s.initial_limit = a.initial;
  s.min_limit = a.min;
  s.max_limit = a.max;
  return std::make_unique<Limit>(s);
}

std::unique_ptr<resilience::AdaptiveLimit> makeAdaptive(const config::AdaptiveConcurrency& a) {
  switch (a.algorithm) {
    case Algorithm::Gradient: {
      resilience::GradientLimit::Settings s;
      s.window_min_samples = a.window_samples;
      s.window_min_duration = a.window_duration;
      return withBounds<resilience::GradientLimit>(a, s);
    }
    case Algorithm::Aimd: {
      resilience::AimdLimit::Settings s;
      s.timeout = a.timeout;
      s.backoff_cooldown = a.backoff_cooldown;
      return withBounds<resilience::AimdLimit>(a, s);
    }
    case Algorithm::Vegas:
      return withBounds<resilience::VegasLimit>(a, {});
    case Algorithm::Auto:
      return withBounds<resilience::AutoLimit>(a, {});
  }
  return nullptr;
}

// A queued request's side of the hand-over; shared with the grant callback, which may run on
// another worker's thread and posts back to the waiter's loop.
struct Waiter {
  explicit Waiter(const asio::any_io_executor& ex) : timer(ex) {}
  asio::steady_timer timer;
  resilience::Semaphore::Permit permit;
  bool granted = false;
};

// Withdraws the queue ticket if the waiting coroutine is destroyed (its connection torn down),
// so the semaphore never hands a slot to a request that is gone.
struct TicketGuard {
  TicketGuard(resilience::Semaphore& s, const resilience::Semaphore::WaitTicket& t)
      : sem(s), ticket(t) {}
  resilience::Semaphore& sem;
  const resilience::Semaphore::WaitTicket& ticket;
  bool armed = true;
  TicketGuard(const TicketGuard&) = delete;
  TicketGuard& operator=(const TicketGuard&) = delete;
  TicketGuard(TicketGuard&&) = delete;
  TicketGuard& operator=(TicketGuard&&) = delete;
  ~TicketGuard() {
    if (armed) (void)sem.cancel(ticket);
  }
};

// Requests holding a slot of `sem` now (a held slot included), at least 1.
std::size_t holders(const resilience::Semaphore& sem) {
  const auto n = static_cast<std::int64_t>(sem.capacity()) - sem.available();
  return static_cast<std::size_t>(std::max<std::int64_t>(1, n));
}

// The CoDel state of the guard's queue, when `queue_delay` is set.
std::optional<resilience::QueueDelay> makeCodel(const config::Concurrency& settings) {
  if (!settings.queue_delay) return std::nullopt;
  return resilience::QueueDelay({settings.queue_delay->target, settings.queue_delay->interval});
}

}  // namespace

ConcurrencyGuard::Shared::Shared(const config::Concurrency& settings)
    : sem({settings.adaptive ? settings.adaptive->initial : settings.max, settings.queue}),
      adaptive(settings.adaptive ? makeAdaptive(*settings.adaptive) : nullptr),
      codel(makeCodel(settings)) {
  if (adaptive) sem.setCapacity(adaptive->limit());
}

ConcurrencyGuard::ConcurrencyGuard(const config::Concurrency& settings,
                                   const ConcurrencyGuard* previous)
    : settings_(settings) {
  if (previous == nullptr) {
    state_ = std::make_shared<Shared>(settings_);
    return;
  }
  state_ = previous->state_;
  Shared& s = *state_;
  s.sem.setMaxWaiters(settings_.queue);
  const std::lock_guard lock(s.mu);
  if (settings_.queue_delay != previous->settings_.queue_delay) s.codel = makeCodel(settings_);
  if (!settings_.adaptive) {
    s.adaptive.reset();
    s.sem.setCapacity(settings_.max);
  } else if (settings_.adaptive != previous->settings_.adaptive) {
    // A new algorithm, or new bounds: it starts from the limit in force, within its bounds.
    auto a = *settings_.adaptive;
    a.initial = static_cast<std::uint32_t>(
        std::clamp<std::size_t>(s.sem.capacity(), a.min, std::max(a.min, a.max)));
    s.adaptive = makeAdaptive(a);
    s.sem.setCapacity(s.adaptive->limit());
  }
}

std::optional<Admission> ConcurrencyGuard::check(proxy::RequestContext& ctx) {
  if (auto permit = state_->sem.tryAcquire()) {
    ctx.inflight_at_admission = holders(state_->sem);
    ctx.hold(std::move(permit));
    return Admission::allowed();
  }
  if (settings_.queue == 0) return Admission{Verdict::Shed, shed("over capacity")};
  return std::nullopt;  // queue for a slot: admit()
}

asio::awaitable<Admission> ConcurrencyGuard::admit(proxy::RequestContext& ctx) {
  if (auto fast = check(ctx)) co_return std::move(*fast);

  const auto ex = co_await asio::this_coro::executor;
  auto w = std::make_shared<Waiter>(ex);
  auto& sem = state_->sem;
  const auto joined = std::chrono::steady_clock::now();
  // While the queue stands (queue_delay), a waiter older than the target would be shed on
  // reaching a slot anyway: it is told then instead of at the queue's timeout.
  auto max_wait = std::chrono::steady_clock::duration(settings_.queue_timeout);
  if (settings_.queue_delay) {
    const std::lock_guard lock(state_->mu);
    if (state_->codel) {
      if (sem.waiting() == 0) state_->codel->onEmpty(joined);  // whatever stood has drained
      if (state_->codel->shedding(joined)) {
        max_wait = std::min(max_wait, state_->codel->settings().target);
      }
    }
  }
  const bool shortened = max_wait < settings_.queue_timeout;
  auto r = sem.acquireAsync([w, ex](resilience::Semaphore::Permit p) {
    asio::post(ex, [w, p = std::move(p)]() mutable {
      w->permit = std::move(p);
      w->granted = true;
      w->timer.cancel();
    });
  });
  switch (r.status) {
    case resilience::Semaphore::AcquireStatus::Acquired:
      ctx.inflight_at_admission = holders(sem);
      ctx.hold(std::move(r.permit));
      co_return Admission::allowed();
    case resilience::Semaphore::AcquireStatus::Queued:
      break;
    default:
      co_return Admission{Verdict::Shed, shed("over capacity")};
  }

  TicketGuard ticket(sem, r.ticket);
  w->timer.expires_after(max_wait);
  ctx.wait.set(w->timer);  // a client that leaves cuts the wait short (ctx.client_gone)
  co_await w->timer.async_wait(asio::as_tuple(asio::use_awaitable));
  ctx.wait.clear();
  if (!w->granted) {
    if (sem.cancel(r.ticket) == resilience::Semaphore::CancelResult::Cancelled) {
      ticket.armed = false;
      const auto now = std::chrono::steady_clock::now();
      (void)shedByDelay(now, now - joined);  // a departure all the same (it may empty the queue)
      co_return Admission{Verdict::Shed, shed(shortened ? "queue delay" : "queue timeout")};
    }
    // Granted while the timer fired: the permit is on its way through a post to this loop,
    // whose handler cancels this wait.
    w->timer.expires_at(asio::steady_timer::time_point::max());
    co_await w->timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  ticket.armed = false;
  const auto now = std::chrono::steady_clock::now();
  if (shedByDelay(now, now - joined) && !ctx.client_gone) {
    w->permit.release();  // to the next waiter, which is judged the same way
    co_return Admission{Verdict::Shed, shed("queue delay")};
  }
  ctx.inflight_at_admission = holders(sem);
  ctx.hold(std::move(w->permit));
  co_return Admission::delayed();
}

bool ConcurrencyGuard::shedByDelay(std::chrono::steady_clock::time_point now,
                                   std::chrono::steady_clock::duration waited) const {
  if (!settings_.queue_delay) return false;
  const std::lock_guard lock(state_->mu);
  return state_->codel && state_->codel->onDequeue(now, waited, state_->sem.waiting() == 0);
}

void ConcurrencyGuard::complete(proxy::RequestContext& ctx, const Completion& c) {
  if (!settings_.adaptive || c.no_verdict) return;
  Shared& s = *state_;
  // auto (AutoLimit) learns throughput x latency: an upstream answer of any status used the
  // upstream for its latency, so only an exchange with no answer is a failure to it. Counted as
  // failures, a service answering 30 % errors at its usual speed (a bad deploy, not overload)
  // looked 30 % less productive and the limit shed a third of its traffic.
  const bool dropped =
      settings_.adaptive->algorithm == Algorithm::Auto
          ? c.upstream_failed
          : c.upstream_failed || c.status == 503 || c.status == 504 || c.status == 429;
  // In flight when this request was admitted, not now (resilience/adaptive_limit.h, Netflix's
  // convention): the app-limited checks ask whether the limit was used when the request went in.
  const std::size_t in_flight = std::max<std::size_t>(1, ctx.inflight_at_admission);
  std::lock_guard lock(s.mu);
  if (!s.adaptive) return;  // a reload made the limit static meanwhile
  const auto latency = c.last_try.count() > 0 ? c.last_try : c.latency;
  s.adaptive->onSample(resilience::Clock::now(), latency, in_flight, dropped);
  s.sem.setCapacity(s.adaptive->limit());
}

http::LocalReply ConcurrencyGuard::shed(std::string_view why) const {
  http::LocalReply r = http::LocalReply::text(settings_.status, why);
  if (settings_.retry_after.count() > 0) {
    const auto s = std::chrono::ceil<std::chrono::seconds>(settings_.retry_after).count();
    r.fields.emplace_back("Retry-After", std::to_string(std::max<std::int64_t>(1, s)));
  }
  return r;
}

std::vector<GuardGauge> ConcurrencyGuard::gauges() const {
  const auto& sem = state_->sem;
  const auto capacity = static_cast<double>(sem.capacity());
  return {
      {"sluice_concurrency_limit", "Requests a concurrency guard lets in flight at once.",
       capacity},
      {"sluice_concurrency_in_flight", "Requests holding a concurrency slot.",
       std::max(0.0, capacity - static_cast<double>(sem.available()))},
      {"sluice_concurrency_queued", "Requests waiting for a concurrency slot.",
       static_cast<double>(sem.waiting())},
  };
}

}  // namespace sluice::gateway::guards
