#include "gateway/guards/global_limit.h"

#include <deque>
#include <memory>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

namespace sluice::gateway::guards {
namespace {

using namespace std::chrono_literals;
using GlobalKind = GlobalLimit::Kind;

// A store whose calls wait in a queue until the test answers them, with the fleet's GCRA state
// kept here (resilience::Gcra::decide, the arithmetic the Redis script mirrors).
class FakeStore final : public PermitStore {
 public:
  struct Call {
    std::string key;
    std::uint64_t want = 0;
    std::uint64_t refund = 0;
    resilience::Gcra::Params params;
    Done done;
  };
  bool up = true;
  std::deque<Call> calls;
  std::int64_t tat = resilience::Gcra::kEmptyState;

  [[nodiscard]] bool available() const override { return up; }
  [[nodiscard]] Duration timeout() const override { return 20ms; }
  void take(const std::string& key, std::uint64_t want, std::uint64_t refund,
            const resilience::Gcra::Params& params, Done done) override {
    calls.push_back({key, want, refund, params, std::move(done)});
  }

  // Answers the oldest call at `now` as the Redis script would.
  void grant(TimePoint now) {
    Call c = std::move(calls.front());
    calls.pop_front();
    const std::int64_t now_ns = now.time_since_epoch().count();
    const std::int64_t T = c.params.emission_interval_ns;
    if (tat != resilience::Gcra::kEmptyState && c.refund > 0) {
      tat = std::max(now_ns, tat - static_cast<std::int64_t>(c.refund) * T);
    }
    const auto peek = resilience::Gcra::decide(tat, now_ns, 0, c.params);
    const std::uint64_t room = peek.allowed ? peek.remaining : 0;
    Grant g;
    g.ok = true;
    g.at = now;
    g.granted = std::min(c.want, room);
    if (g.granted > 0) tat = resilience::Gcra::decide(tat, now_ns, g.granted, c.params).new_state;
    g.remaining = room - g.granted;
    g.reset = tat == resilience::Gcra::kEmptyState
                  ? Duration::zero()
                  : std::max(Duration::zero(), Duration(tat - now_ns));
    g.retry_after = g.granted < c.want ? Duration(T) : Duration::zero();
    c.done(g);
  }
  void fail(TimePoint now) {
    Call c = std::move(calls.front());
    calls.pop_front();
    Grant g;
    g.at = now;
    c.done(g);
  }
};

config::RateLimit limit(std::uint64_t per_second, std::uint64_t burst) {
  config::RateLimit rl;
  rl.requests = per_second;
  rl.period = config::Millis{1000};
  rl.burst = burst;
  rl.scope = config::RateLimit::Scope::Global;
  return rl;
}

TEST(GlobalLimit, FirstRequestFetchesAndLaterOnesUseTheLease) {
  FakeStore store;
  auto g = std::make_shared<GlobalLimit>("api:rate_limit", limit(1000, 100), &store, 100);
  const TimePoint t0{std::chrono::seconds(1000)};
  EXPECT_EQ(g->tryTake("k", t0).kind, GlobalKind::Fetch);
  ASSERT_EQ(store.calls.size(), 1U);
  EXPECT_EQ(store.calls[0].key, "api:rate_limit:k");
  EXPECT_EQ(store.calls[0].want, GlobalLimit::kMinLease);
  // A second request while the fetch is out does not send another.
  EXPECT_EQ(g->tryTake("k", t0).kind, GlobalKind::Fetch);
  EXPECT_EQ(store.calls.size(), 1U);
  store.grant(t0);
  // kMinLease permits: the first few go without a call, the refill leaves at half.
  for (std::uint64_t i = 0; i < GlobalLimit::kMinLease / 2; ++i) {
    EXPECT_EQ(g->tryTake("k", t0).kind, GlobalKind::Allow) << i;
  }
  EXPECT_EQ(store.calls.size(), 1U) << "refill ahead of need";
  store.grant(t0);
  for (std::uint64_t i = 0; i < GlobalLimit::kMinLease; ++i) {
    EXPECT_EQ(g->tryTake("k", t0).kind, GlobalKind::Allow) << i;
  }
}

// Steady demand costs at most one store call per kMinLease requests.
TEST(GlobalLimit, SteadyDemandCostsAFractionOfACallPerRequest) {
  FakeStore store;
  auto g = std::make_shared<GlobalLimit>("r", limit(1000, 100), &store, 100);
  TimePoint now{std::chrono::seconds(1000)};
  std::uint64_t allowed = 0;
  std::uint64_t calls = 0;
  for (int i = 0; i < 5000; ++i) {  // 500/s for 10 s, under the limit of 1000/s
    now += 2ms;
    if (g->tryTake("k", now).kind == GlobalKind::Allow) ++allowed;
    while (!store.calls.empty()) {
      ++calls;
      store.grant(now);
    }
  }
  EXPECT_GE(allowed, 4990U);
  EXPECT_LE(static_cast<double>(calls) / static_cast<double>(allowed), 0.1);
}

// Over the limit, the fleet's rate holds (the store's arithmetic) and a refused instance does
// not call the store per refused request.
TEST(GlobalLimit, OverTheLimitAdmitsTheRateAndRefusesLocally) {
  FakeStore store;
  auto a = std::make_shared<GlobalLimit>("r", limit(200, 50), &store, 100);
  auto b = std::make_shared<GlobalLimit>("r", limit(200, 50), &store, 100);
  TimePoint now{std::chrono::seconds(1000)};
  std::uint64_t allowed = 0;
  std::uint64_t calls = 0;
  for (int i = 0; i < 10'000; ++i) {  // 10 s at 1000/s, split 3:1 between two instances
    now += 1ms;
    auto& g = (i % 4 == 0) ? b : a;
    const auto r = g->tryTake("k", now);
    if (r.kind == GlobalKind::Allow) ++allowed;
    if (r.kind == GlobalKind::Reject) {
      EXPECT_GT(r.decision.wait, Duration::zero());
      EXPECT_EQ(r.decision.quota, 50U);
    }
    while (!store.calls.empty()) {
      ++calls;
      store.grant(now);
    }
  }
  // 200/s for 10 s plus the burst, within 5 %.
  EXPECT_NEAR(static_cast<double>(allowed), 2050.0, 2050.0 * 0.05);
  EXPECT_LE(static_cast<double>(calls) / static_cast<double>(allowed), 0.1);
}

TEST(GlobalLimit, UnusedPermitsStillAheadGoBackWithTheNextFetch) {
  FakeStore store;
  // 1 per second: a lease of kMinLease reaches kMinLease seconds into the future.
  auto g = std::make_shared<GlobalLimit>("r", limit(1, 40), &store, 100);
  const TimePoint t0{std::chrono::seconds(1000)};
  EXPECT_EQ(g->tryTake("k", t0).kind, GlobalKind::Fetch);
  store.grant(t0);
  EXPECT_EQ(g->tryTake("k", t0).kind, GlobalKind::Allow);
  // The lease expires with kMinLease - 1 unused; of those, the ones whose slots are still ahead
  // (kMinLease s - kLeaseTtl - 1 ms, in whole seconds) go back.
  const TimePoint later = t0 + GlobalLimit::kLeaseTtl + 1ms;
  EXPECT_EQ(g->tryTake("k", later).kind, GlobalKind::Fetch);
  ASSERT_EQ(store.calls.size(), 1U);
  const auto ahead = std::chrono::seconds(GlobalLimit::kMinLease) - GlobalLimit::kLeaseTtl - 1ms;
  EXPECT_EQ(store.calls[0].refund,
            static_cast<std::uint64_t>(std::chrono::floor<std::chrono::seconds>(ahead).count()));
}

// Permits whose slots have passed free nothing in Redis: giving them back would let the fleet
// use them twice.
TEST(GlobalLimit, PermitsWhoseTimeHasPassedAreNotRefunded) {
  FakeStore store;
  auto g = std::make_shared<GlobalLimit>("r", limit(100, 40), &store, 100);
  const TimePoint t0{std::chrono::seconds(1000)};
  EXPECT_EQ(g->tryTake("k", t0).kind, GlobalKind::Fetch);
  store.grant(t0);  // kMinLease permits, 200 ms of the rate
  EXPECT_EQ(g->tryTake("k", t0).kind, GlobalKind::Allow);
  EXPECT_EQ(g->tryTake("k", t0 + GlobalLimit::kLeaseTtl + 1ms).kind, GlobalKind::Fetch);
  ASSERT_EQ(store.calls.size(), 1U);
  EXPECT_EQ(store.calls[0].refund, 0U);
}

TEST(GlobalLimit, StoreFailureAnswersFailedForAWhileThenTriesAgain) {
  FakeStore store;
  auto g = std::make_shared<GlobalLimit>("r", limit(100, 20), &store, 100);
  const TimePoint t0{std::chrono::seconds(1000)};
  EXPECT_EQ(g->tryTake("k", t0).kind, GlobalKind::Fetch);
  store.fail(t0);
  EXPECT_EQ(g->tryTake("k", t0 + 1ms).kind, GlobalKind::Failed);
  EXPECT_TRUE(store.calls.empty()) << "no call while failed";
  EXPECT_EQ(g->tryTake("k", t0 + GlobalLimit::kFailHold).kind, GlobalKind::Fetch);
  store.grant(t0 + GlobalLimit::kFailHold);
  EXPECT_EQ(g->tryTake("k", t0 + GlobalLimit::kFailHold).kind, GlobalKind::Allow);
  EXPECT_EQ(g->counts().failures, 1U);
}

TEST(GlobalLimit, UnavailableStoreFailsAtOnceWithoutACall) {
  FakeStore store;
  store.up = false;
  auto g = std::make_shared<GlobalLimit>("r", limit(100, 20), &store, 100);
  EXPECT_EQ(g->tryTake("k", TimePoint{std::chrono::seconds(5)}).kind, GlobalKind::Failed);
  EXPECT_TRUE(store.calls.empty());
}

TEST(GlobalLimit, LeaseFollowsDemandUpToTheBurst) {
  FakeStore store;
  auto g = std::make_shared<GlobalLimit>("r", limit(100'000, 300), &store, 100);
  TimePoint now{std::chrono::seconds(1000)};
  std::uint64_t biggest = 0;
  for (int i = 0; i < 20'000; ++i) {  // 10,000/s: a lease of 100 ms is 1,000, capped at 300
    now += 100us;
    (void)g->tryTake("k", now);
    while (!store.calls.empty()) {
      biggest = std::max(biggest, store.calls.front().want);
      store.grant(now);
    }
  }
  EXPECT_EQ(biggest, 300U);
}

TEST(GlobalLimit, KeysAreBounded) {
  FakeStore store;
  auto g = std::make_shared<GlobalLimit>("r", limit(100, 20), &store, 32);
  TimePoint now{std::chrono::seconds(1000)};
  for (int i = 0; i < 1000; ++i) {
    now += 10s;  // every earlier key idle
    (void)g->tryTake("key" + std::to_string(i), now);
    while (!store.calls.empty()) store.grant(now);
  }
  EXPECT_LE(g->counts().keys, 32U);
}

// take(): a request with no permit at hand waits for the fetch under way on its own loop, and is
// woken by the grant (real time: an io_context runs the wait).
TEST(GlobalLimit, AWaitingRequestIsWokenByTheGrant) {
  boost::asio::io_context io;
  FakeStore store;
  auto g = std::make_shared<GlobalLimit>("r", limit(100, 40), &store, 100);
  EXPECT_EQ(g->tryTake("k", resilience::Clock::now()).kind, GlobalKind::Fetch);
  std::optional<GlobalLimit::Answer> got;
  boost::asio::co_spawn(io, g->take("k", 5s, io.get_executor()),
                        [&](const std::exception_ptr&, GlobalLimit::Answer a) { got = a; });
  io.poll();
  EXPECT_FALSE(got.has_value()) << "waits for the fetch";
  EXPECT_EQ(store.calls.size(), 1U) << "joins the fetch under way";
  store.grant(resilience::Clock::now());
  const auto start = std::chrono::steady_clock::now();
  while (!got && std::chrono::steady_clock::now() - start < 2s) io.run_one_for(10ms);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->kind, GlobalKind::Allow);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}

TEST(GlobalLimit, AWaitEndsAtItsTimeoutAsAFailure) {
  boost::asio::io_context io;
  FakeStore store;
  auto g = std::make_shared<GlobalLimit>("r", limit(100, 40), &store, 100);
  EXPECT_EQ(g->tryTake("k", resilience::Clock::now()).kind, GlobalKind::Fetch);
  std::optional<GlobalLimit::Answer> got;
  boost::asio::co_spawn(io, g->take("k", 30ms, io.get_executor()),
                        [&](const std::exception_ptr&, GlobalLimit::Answer a) { got = a; });
  const auto start = std::chrono::steady_clock::now();
  io.run_for(2s);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->kind, GlobalKind::Failed);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  // The late grant still lands in the lease for the next request.
  store.grant(resilience::Clock::now());
  EXPECT_EQ(g->tryTake("k", resilience::Clock::now()).kind, GlobalKind::Allow);
}

}  // namespace
}  // namespace sluice::gateway::guards
