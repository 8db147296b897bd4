// The concurrency guard across event loops on several threads: slots handed from one loop to a
// waiter on another, queue timeouts racing with grants. Run under TSan by scripts/check.sh.
#include "gateway/guards/concurrency_guard.h"

#include <array>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
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
  co_await timer.async_wait(asio::use_awaitable);
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

// Queues for a slot and, once let in, holds it for 20 ms; `got` says what happened ("a in", or
// "b " and the reply's body).
asio::awaitable<void> queueAndHold(ConcurrencyGuard& guard, std::string name,
                                   std::vector<std::string>& got) {
  proxy::RequestContext ctx;
  const Admission a = co_await guard.admit(ctx);
  got.push_back(name + (a.admitted() ? " in" : " " + a.reply->body));
  if (!a.admitted()) co_return;
  asio::steady_timer hold(co_await asio::this_coro::executor, std::chrono::milliseconds(20));
  co_await hold.async_wait(asio::use_awaitable);
  ctx.releasePermits();
}

// Verifies: with queue_delay, once waiters have been leaving the queue after the target for an
// interval (a standing queue), the next one that waited past the target is shed as it reaches a
// slot ("queue delay"), and the slot goes on to whoever asks next.
TEST(ConcurrencyGuard, QueueDelayShedsTheStaleWaitersOfAStandingQueue) {
  config::Concurrency c;
  c.max = 1;
  c.queue = 10;
  c.queue_timeout = std::chrono::seconds(5);
  c.queue_delay = config::QueueDelay{config::Millis(1), config::Millis(1)};
  ConcurrencyGuard guard(c);
  asio::io_context io;
  std::array<proxy::RequestContext, 2> ctx;
  ASSERT_EQ(guard.check(ctx[0])->verdict, Verdict::Allowed);
  std::vector<std::string> got;
  asio::co_spawn(io, queueAndHold(guard, "a", got), asio::detached);
  asio::co_spawn(io, queueAndHold(guard, "b", got), asio::detached);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        asio::steady_timer hold(io, std::chrono::milliseconds(20));
        co_await hold.async_wait(asio::use_awaitable);
        ctx[0].releasePermits();  // a gets it after 20 ms: the queue starts standing
      },
      asio::detached);
  io.run();
  ASSERT_EQ(got.size(), 2U);
  EXPECT_EQ(got[0], "a in");
  EXPECT_NE(got[1].find("b queue delay"), std::string::npos) << got[1];
  EXPECT_EQ(guard.check(ctx[1])->verdict, Verdict::Allowed);  // b gave its slot back
}

}  // namespace
}  // namespace sluice::gateway::guards
