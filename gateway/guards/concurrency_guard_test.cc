// The concurrency guard across event loops on several threads: slots handed from one loop to a
// waiter on another, queue timeouts racing with grants. Run under TSan by scripts/check.sh.
#include "gateway/guards/concurrency_guard.h"

#include <array>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <gtest/gtest.h>

#include "gateway/proxy/request_context.h"

namespace sluice::gateway::guards {
namespace {

namespace asio = boost::asio;

struct Tally {
  std::atomic<int> in_flight{0};
  std::atomic<int> peak{0};
  std::atomic<int> allowed{0};
  std::atomic<int> delayed{0};
  std::atomic<int> shed{0};
};

asio::awaitable<void> oneRequest(ConcurrencyGuard& guard, Tally& t,
                                 std::chrono::microseconds hold) {
  proxy::RequestContext ctx;
  const Admission a = co_await guard.admit(ctx);
  if (!a.admitted()) {
    t.shed.fetch_add(1);
    EXPECT_TRUE(ctx.permits.empty());
    co_return;
  }
  (a.verdict == Verdict::Delayed ? t.delayed : t.allowed).fetch_add(1);
  const int now = t.in_flight.fetch_add(1) + 1;
  int peak = t.peak.load();
  while (now > peak && !t.peak.compare_exchange_weak(peak, now)) {
  }
  asio::steady_timer timer(co_await asio::this_coro::executor, hold);
  co_await timer.async_wait(asio::deferred);
  t.in_flight.fetch_sub(1);
  guard.complete(ctx, Completion{200, hold, false});
  ctx.releasePermits();  // what the connection does when the request is over
}

void runLoops(ConcurrencyGuard& guard, Tally& t, int loops, int per_loop,
              std::chrono::microseconds hold) {
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(loops));
  for (int l = 0; l < loops; ++l) {
    threads.emplace_back([&] {
      asio::io_context io;
      for (int i = 0; i < per_loop; ++i) {
        asio::co_spawn(io, oneRequest(guard, t, hold), asio::detached);
      }
      io.run();
    });
  }
  for (auto& th : threads) th.join();
}

TEST(ConcurrencyGuard, NeverExceedsItsLimitAcrossLoopsAndLosesNoSlot) {
  config::Concurrency c;
  c.max = 4;
  c.queue = 1'000;
  c.queue_timeout = std::chrono::seconds(30);
  ConcurrencyGuard guard(c);
  Tally t;
  runLoops(guard, t, 3, 200, std::chrono::microseconds(200));
  EXPECT_LE(t.peak.load(), 4);
  EXPECT_EQ(t.shed.load(), 0);
  EXPECT_EQ(t.allowed.load() + t.delayed.load(), 600);
  EXPECT_GT(t.delayed.load(), 0);
  // Every slot came back: a full set can be taken again at once.
  EXPECT_EQ(guard.limit(), 4U);
  proxy::RequestContext ctx;
  for (int i = 0; i < 4; ++i) {
    asio::io_context io;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          const auto a = co_await guard.admit(ctx);
          EXPECT_EQ(a.verdict, Verdict::Allowed);
        },
        asio::detached);
    io.run();
  }
  EXPECT_EQ(ctx.permits.size(), 4U);
}

TEST(ConcurrencyGuard, QueueTimeoutsRacingWithGrantsNeverLeakASlot) {
  config::Concurrency c;
  c.max = 2;
  c.queue = 50;
  c.queue_timeout = std::chrono::milliseconds(1);  // about as long as a request holds a slot
  ConcurrencyGuard guard(c);
  Tally t;
  runLoops(guard, t, 3, 300, std::chrono::microseconds(800));
  EXPECT_LE(t.peak.load(), 2);
  EXPECT_EQ(t.allowed.load() + t.delayed.load() + t.shed.load(), 900);
  EXPECT_GT(t.shed.load(), 0);
  proxy::RequestContext ctx;
  asio::io_context io;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        EXPECT_EQ((co_await guard.admit(ctx)).verdict, Verdict::Allowed);
        EXPECT_EQ((co_await guard.admit(ctx)).verdict, Verdict::Allowed);
        EXPECT_EQ((co_await guard.admit(ctx)).verdict, Verdict::Shed);  // both slots held
      },
      asio::detached);
  io.run();
}

TEST(ConcurrencyGuard, AdaptiveLimitFollowsCompletions) {
  config::Concurrency c;
  c.adaptive = config::AdaptiveConcurrency{config::AdaptiveConcurrency::Algorithm::Aimd, 10, 2, 40,
                                           std::chrono::milliseconds(100)};
  ConcurrencyGuard guard(c);
  EXPECT_EQ(guard.limit(), 10U);
  proxy::RequestContext ctx;
  // Spent deadlines and bulkhead refusals say nothing about the upstream: no drop, no sample.
  for (int i = 0; i < 20; ++i) {
    guard.complete(ctx, Completion{504, std::chrono::milliseconds(50), false, true});
  }
  EXPECT_EQ(guard.limit(), 10U);
  for (int i = 0; i < 20; ++i) {
    guard.complete(ctx, Completion{504, std::chrono::milliseconds(50), true});  // drops
  }
  EXPECT_EQ(guard.limit(), 2U);
}

// Verifies: an adaptive limit learns from the last upstream try's latency, not the whole
// request's: a request retried after a failed first try (and a backoff) took 300 ms in all, past
// AIMD's 100 ms timeout, but its last try answered in 10 ms - a success, which grows the limit.
TEST(ConcurrencyGuard, AdaptiveLimitLearnsFromTheLastTry) {
  config::Concurrency c;
  c.adaptive = config::AdaptiveConcurrency{config::AdaptiveConcurrency::Algorithm::Aimd, 2, 1, 40,
                                           std::chrono::milliseconds(100)};
  ConcurrencyGuard guard(c);
  std::array<proxy::RequestContext, 2> ctx;
  for (auto& x : ctx) ASSERT_EQ(guard.check(x)->verdict, Verdict::Allowed);
  using std::chrono::milliseconds;
  guard.complete(ctx[1], Completion{200, milliseconds(300), false, false, milliseconds(10)});
  EXPECT_EQ(guard.limit(), 3U);
  guard.complete(ctx[1], Completion{200, milliseconds(300), false});  // no try: the whole
  EXPECT_EQ(guard.limit(), 2U);                                       // request, a drop
}

// Verifies: an adaptive limit is fed the requests in flight when the sampled one was admitted
// (resilience/adaptive_limit.h), not when it completes: a request admitted alone says the limit
// was not used, however many were admitted after it.
TEST(ConcurrencyGuard, SamplesInFlightAtAdmissionNotAtCompletion) {
  config::Concurrency c;
  c.adaptive = config::AdaptiveConcurrency{config::AdaptiveConcurrency::Algorithm::Aimd, 4, 1, 40,
                                           std::chrono::seconds(5)};
  ConcurrencyGuard guard(c);
  std::array<proxy::RequestContext, 4> ctx;
  for (auto& x : ctx) ASSERT_EQ(guard.check(x)->verdict, Verdict::Allowed);
  EXPECT_EQ(ctx[0].inflight_at_admission, 1U);
  EXPECT_EQ(ctx[3].inflight_at_admission, 4U);
  // AIMD grows only when inflight * 2 >= limit: 1 * 2 < 4, app-limited, unchanged (at completion
  // 4 were in flight, which would have grown it to 5).
  guard.complete(ctx[0], Completion{200, std::chrono::milliseconds(10), false});
  EXPECT_EQ(guard.limit(), 4U);
  guard.complete(ctx[3], Completion{200, std::chrono::milliseconds(10), false});
  EXPECT_EQ(guard.limit(), 5U);
}

// Waits `after`, queues for a slot and, once let in, holds it for `hold`; `got` says what
// happened ("a in", or "b " and the reply's body).
asio::awaitable<void> queueAndHold(ConcurrencyGuard& guard, std::string name,
                                   std::vector<std::string>& got, std::chrono::milliseconds hold,
                                   std::chrono::milliseconds after = {}) {
  const auto ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(ex, after);
  co_await timer.async_wait(asio::deferred);
  proxy::RequestContext ctx;
  const Admission a = co_await guard.admit(ctx);
  got.push_back(name + (a.admitted() ? " in" : " " + a.reply->body));
  if (!a.admitted()) co_return;
  timer.expires_after(hold);
  co_await timer.async_wait(asio::deferred);
  ctx.releasePermits();
}

// Releases the slot `ctx` holds after `after`.
asio::awaitable<void> releaseAfter(proxy::RequestContext& ctx, std::chrono::milliseconds after) {
  asio::steady_timer timer(co_await asio::this_coro::executor, after);
  co_await timer.async_wait(asio::deferred);
  ctx.releasePermits();
}

// One slot, a queue of 10 that would wait up to 5 s, and queue_delay with `target` and a 40 ms
// interval: the queue_delay tests below see its rules and nothing else.
config::Concurrency oneSlotWithQueueDelay(config::Millis target) {
  config::Concurrency c;
  c.max = 1;
  c.queue = 10;
  c.queue_timeout = std::chrono::seconds(5);
  c.queue_delay = config::QueueDelay{target, config::Millis(40)};
  return c;
}

// Verifies: with queue_delay, once the queue has not been empty for an interval (a standing
// queue), a waiter that waited longer than the target is shed as it reaches a slot ("queue
// delay"), and the slot goes on to whoever asks next; before that, a long wait is served.
// Timeline (target 1 ms, interval 40 ms): a and b queue at 0; a gets the slot at 30 (the queue
// has stood 30 ms: served) and holds it to 60, when b, after 60 ms of a standing queue, is shed.
TEST(ConcurrencyGuard, QueueDelayShedsTheStaleWaitersOfAStandingQueue) {
  using std::chrono::milliseconds;
  ConcurrencyGuard guard(oneSlotWithQueueDelay(config::Millis(1)));
  asio::io_context io;
  std::array<proxy::RequestContext, 2> ctx;
  ASSERT_EQ(guard.check(ctx[0])->verdict, Verdict::Allowed);
  std::vector<std::string> got;
  asio::co_spawn(io, queueAndHold(guard, "a", got, milliseconds(30)), asio::detached);
  asio::co_spawn(io, queueAndHold(guard, "b", got, milliseconds(30)), asio::detached);
  asio::co_spawn(io, releaseAfter(ctx[0], milliseconds(30)), asio::detached);
  io.run();
  ASSERT_EQ(got.size(), 2U);
  EXPECT_EQ(got[0], "a in");
  EXPECT_NE(got[1].find("b queue delay"), std::string::npos) << got[1];
  EXPECT_EQ(guard.check(ctx[1])->verdict, Verdict::Allowed);  // b gave its slot back
}

// Verifies: a request that joins a standing queue waits at most the target, not queue_timeout:
// it is shed ("queue delay") long before the slot frees. Timeline (target 5 ms, interval 40 ms)
// as above, but a holds its slot to 230 and c joins at 100: shed at about 105, long before b
// reaches the slot at 230 (and is shed too).
TEST(ConcurrencyGuard, QueueDelayShortensTheWaitOfRequestsJoiningAStandingQueue) {
  using std::chrono::milliseconds;
  ConcurrencyGuard guard(oneSlotWithQueueDelay(config::Millis(5)));
  asio::io_context io;
  proxy::RequestContext first;
  ASSERT_EQ(guard.check(first)->verdict, Verdict::Allowed);
  std::vector<std::string> got;
  asio::co_spawn(io, queueAndHold(guard, "a", got, milliseconds(200)), asio::detached);
  asio::co_spawn(io, queueAndHold(guard, "b", got, milliseconds(0)), asio::detached);
  asio::co_spawn(io, queueAndHold(guard, "c", got, milliseconds(0), milliseconds(100)),
                 asio::detached);
  asio::co_spawn(io, releaseAfter(first, milliseconds(30)), asio::detached);
  io.run();
  ASSERT_EQ(got.size(), 3U);
  EXPECT_EQ(got[0], "a in");
  EXPECT_NE(got[1].find("c queue delay"), std::string::npos) << got[1];
  EXPECT_NE(got[2].find("b queue delay"), std::string::npos) << got[2];
}

}  // namespace
}  // namespace sluice::gateway::guards
