// Shared circuit breakers without Redis: CircuitBreakerGuard's publishing and applyShared(), and
// BreakerSync, against a store whose answers the test delivers by hand.
#include "gateway/guards/breaker_sync.h"

#include <deque>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "gateway/guards/circuit_breaker_guard.h"
#include "gateway/http/head.h"
#include "gateway/proxy/request_context.h"

namespace sluice::gateway::guards {
namespace {

using State = resilience::CircuitBreaker::State;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Probe = BreakerStore::Probe;

// Answers later, when the test calls deliver(), as Redis would on its own thread.
class FakeBreakerStore final : public BreakerStore {
 public:
  bool up = true;
  bool answers = true;  // false: reads and probes fail
  std::map<std::string, Record> records;
  std::vector<std::pair<std::string, resilience::Duration>> opened;  // publishOpen calls
  std::vector<std::string> closed;                                   // publishClosed calls
  std::vector<std::vector<std::string>> reads;
  int probes = 0;
  Probe::Result probe_result = Probe::Result::Won;
  resilience::Duration probe_left = seconds(5);

  [[nodiscard]] bool available() const override { return up; }
  void publishOpen(const std::string& key, resilience::Duration remaining,
                   resilience::Duration /*linger*/) override {
    opened.emplace_back(key, remaining);
  }
  void publishClosed(const std::string& key) override { closed.push_back(key); }
  void read(std::vector<std::string> keys, std::function<void(const Read&)> done) override {
    Read r;
    r.ok = answers;
    if (answers) {
      for (const auto& k : keys) r.records.push_back(records[k]);
    }
    reads.push_back(std::move(keys));
    later_.emplace_back([r = std::move(r), done = std::move(done)] { done(r); });
  }
  void tryProbe(const std::string& /*key*/, resilience::Duration /*window*/,
                std::function<void(const Probe&)> done) override {
    ++probes;
    Probe p{answers ? probe_result : Probe::Result::Failed, probe_left};
    later_.emplace_back([p, done = std::move(done)] { done(p); });
  }
  // Runs the answers owed so far.
  void deliver() {
    while (!later_.empty()) {
      auto f = std::move(later_.front());
      later_.pop_front();
      f();
    }
  }

 private:
  std::deque<std::function<void()>> later_;
};

config::CircuitBreaker sharedConfig(
    config::CircuitBreaker::ShareMode mode = config::CircuitBreaker::ShareMode::Authoritative) {
  config::CircuitBreaker c;
  c.window = 4;
  c.minimum_calls = 4;
  c.failure_rate = 50;
  c.half_open_probes = 1;
  c.open_duration = milliseconds(30'000);
  for (int s = 500; s <= 599; ++s) c.failure_statuses.push_back(s);
  c.share = config::CircuitBreaker::Share::Redis;
  c.share_mode = mode;
  return c;
}

// Four requests answered `status` through the guard.
void answerAll(CircuitBreakerGuard& g, int status) {
  for (int i = 0; i < 4; ++i) {
    http::RequestHead head;
    head.method = http::Verb::get;
    head.target = "/";
    proxy::RequestContext ctx;
    ctx.head = &head;
    auto a = g.check(ctx);
    if (!a || !a->admitted()) continue;
    g.complete(ctx, {status, milliseconds(1), false});
  }
}

double sharedEvents(const CircuitBreakerGuard& g, std::string_view event) {
  for (const auto& gauge : g.gauges()) {
    if (gauge.name == "sluice_circuit_breaker_shared_total" && gauge.label_value == event) {
      return gauge.value;
    }
  }
  return -1;
}

resilience::Duration openFor(CircuitBreakerGuard& g, resilience::TimePoint now) {
  const auto s = g.breaker().snapshot(now);
  return s.open_until ? *s.open_until - now : resilience::Duration{};
}

BreakerStore::Record openRecord(resilience::Duration remaining) { return {true, remaining}; }

// Verifies: an open of the breaker's own is published once, with its key and the time it has
// left; a local breaker (no share) publishes nothing.
TEST(SharedBreaker, OwnOpenIsPublishedWithWhatIsLeftOfIt) {
  FakeBreakerStore store;
  CircuitBreakerGuard g("circuit_breaker", sharedConfig(), nullptr, "route api", &store);
  EXPECT_EQ(g.sharedKey(), "route:api");
  answerAll(g, 500);
  ASSERT_EQ(g.breaker().state(), State::Open);
  ASSERT_EQ(store.opened.size(), 1U);
  EXPECT_EQ(store.opened[0].first, "route:api");
  EXPECT_GT(store.opened[0].second, seconds(29));
  EXPECT_LE(store.opened[0].second, seconds(30) + milliseconds(1));  // outcomes land at +1 ms

  auto local = sharedConfig();
  local.share = config::CircuitBreaker::Share::None;
  CircuitBreakerGuard l("circuit_breaker", local, nullptr, "route other", &store);
  EXPECT_TRUE(l.sharedKey().empty());
  answerAll(l, 500);
  EXPECT_EQ(store.opened.size(), 1U);
}

// Verifies: a running shared period opens a closed breaker until its end, counted as a remote
// open, and is not echoed back to the store.
TEST(SharedBreaker, SharedPeriodOpensTheBreakerWithoutEcho) {
  FakeBreakerStore store;
  CircuitBreakerGuard g("circuit_breaker", sharedConfig(), nullptr, "route api", &store);
  const auto now = resilience::Clock::now();
  g.applyShared(openRecord(seconds(10)), now);
  EXPECT_EQ(g.breaker().state(), State::Open);
  EXPECT_EQ(openFor(g, now), seconds(10));
  EXPECT_TRUE(store.opened.empty());
  EXPECT_EQ(sharedEvents(g, "remote_open"), 1);
  g.applyShared(openRecord(seconds(10)), now);  // the same period again: nothing new
  EXPECT_EQ(sharedEvents(g, "remote_open"), 1);
  EXPECT_EQ(store.probes, 0);  // far from the end: no token asked
}

// Verifies (authoritative): near the end of the period a breaker asks for the probe token; one
// that loses stays open for as long as the winner holds it; one that wins is left to go
// half-open at its deadline and does not ask again.
TEST(SharedBreaker, OnlyTheTokenWinnerMayProbe) {
  FakeBreakerStore store;
  CircuitBreakerGuard loser("circuit_breaker", sharedConfig(), nullptr, "route api", &store);
  const auto now = resilience::Clock::now();
  store.probe_result = Probe::Result::Lost;
  store.probe_left = seconds(4);
  loser.applyShared(openRecord(milliseconds(300)), now);
  ASSERT_EQ(store.probes, 1);
  loser.applyShared(openRecord(milliseconds(300)), now);  // one request at a time
  EXPECT_EQ(store.probes, 1);
  store.deliver();
  EXPECT_GT(openFor(loser, now), seconds(3));
  EXPECT_EQ(sharedEvents(loser, "probe_lost"), 1);

  CircuitBreakerGuard winner("circuit_breaker", sharedConfig(), nullptr, "route b", &store);
  store.probe_result = Probe::Result::Won;
  winner.applyShared(openRecord(milliseconds(300)), now);
  store.deliver();
  EXPECT_EQ(openFor(winner, now), milliseconds(300));
  EXPECT_EQ(sharedEvents(winner, "probe_won"), 1);
  winner.applyShared(openRecord(milliseconds(100)), now + milliseconds(200));
  EXPECT_EQ(store.probes, 2);  // holds the token: asks no more
}

// Verifies (authoritative): a record that disappears closes a breaker that had seen it, without
// telling the store; a breaker that never saw a record (opened while the store was away) stays
// open.
TEST(SharedBreaker, VanishedRecordClosesTheFleet) {
  FakeBreakerStore store;
  CircuitBreakerGuard g("circuit_breaker", sharedConfig(), nullptr, "route api", &store);
  const auto now = resilience::Clock::now();
  g.applyShared(openRecord(seconds(10)), now);
  ASSERT_EQ(g.breaker().state(), State::Open);
  g.applyShared({}, now);
  EXPECT_EQ(g.breaker().state(), State::Closed);
  EXPECT_EQ(sharedEvents(g, "remote_close"), 1);
  EXPECT_TRUE(store.closed.empty());

  CircuitBreakerGuard own("circuit_breaker", sharedConfig(), nullptr, "route b", &store);
  answerAll(own, 500);
  ASSERT_EQ(own.breaker().state(), State::Open);
  own.applyShared({}, now);
  EXPECT_EQ(own.breaker().state(), State::Open);
}

// Verifies: the close of a probing breaker's own is published (authoritative), so the others
// close; an operator's reset is not.
TEST(SharedBreaker, ProbeVerdictClosesTheRecordButAResetDoesNot) {
  FakeBreakerStore store;
  CircuitBreakerGuard g("circuit_breaker", sharedConfig(), nullptr, "route api", &store);
  const auto now = resilience::Clock::now();
  g.applyShared(openRecord(seconds(1)), now);
  auto probe = g.breaker().tryAcquire(now + seconds(1));
  ASSERT_TRUE(probe);
  probe.success(milliseconds(1));
  EXPECT_EQ(g.breaker().state(), State::Closed);
  ASSERT_EQ(store.closed.size(), 1U);
  EXPECT_EQ(store.closed[0], "route:api");

  answerAll(g, 500);
  ASSERT_EQ(g.breaker().state(), State::Open);
  g.force(CircuitBreakerGuard::Force::Normal);
  EXPECT_EQ(store.closed.size(), 1U);
}

// Verifies (hint): the shared period opens the breaker, but then it neither asks for a token nor
// follows a close: its own counts decide.
TEST(SharedBreaker, HintModeOnlyOpensForTheSharedPeriod) {
  FakeBreakerStore store;
  CircuitBreakerGuard g("circuit_breaker", sharedConfig(config::CircuitBreaker::ShareMode::Hint),
                        nullptr, "route api", &store);
  const auto now = resilience::Clock::now();
  g.applyShared(openRecord(milliseconds(300)), now);
  EXPECT_EQ(g.breaker().state(), State::Open);
  EXPECT_EQ(store.probes, 0);
  g.applyShared({}, now);
  EXPECT_EQ(g.breaker().state(), State::Open);
  auto probe = g.breaker().tryAcquire(now + milliseconds(300));
  ASSERT_TRUE(probe);
  probe.success(milliseconds(1));
  EXPECT_EQ(g.breaker().state(), State::Closed);
  EXPECT_TRUE(store.closed.empty());
}

// Verifies: the first read after start opens the breaker even when the period is over and the
// fleet awaits a probe (authoritative); later reads of such a record leave a closed breaker
// closed.
TEST(SharedBreaker, RestartStartsFromTheSharedState) {
  FakeBreakerStore store;
  const auto now = resilience::Clock::now();
  CircuitBreakerGuard fresh("circuit_breaker", sharedConfig(), nullptr, "route api", &store);
  fresh.applyShared(openRecord(milliseconds(-2000)), now);
  EXPECT_EQ(fresh.breaker().state(), State::Open);

  CircuitBreakerGuard running("circuit_breaker", sharedConfig(), nullptr, "route b", &store);
  running.applyShared({}, now);
  running.applyShared(openRecord(milliseconds(-2000)), now);
  EXPECT_EQ(running.breaker().state(), State::Closed);
}

// Verifies: a store that is down (or does not answer) leaves a local breaker: no token is
// asked, and the breaker goes half-open on its own.
TEST(SharedBreaker, StoreDownLeavesALocalBreaker) {
  FakeBreakerStore store;
  store.up = false;
  CircuitBreakerGuard g("circuit_breaker", sharedConfig(), nullptr, "route api", &store);
  const auto now = resilience::Clock::now();
  g.applyShared(openRecord(milliseconds(300)), now);
  EXPECT_EQ(store.probes, 0);
  EXPECT_TRUE(g.breaker().tryAcquire(now + milliseconds(300)));
  EXPECT_EQ(g.breaker().state(), State::HalfOpen);

  store.up = true;
  store.answers = false;
  BreakerSync sync(store);
  auto guard = std::make_shared<CircuitBreakerGuard>("circuit_breaker", sharedConfig(), nullptr,
                                                     "route c", &store);
  sync.setBreakers({guard});
  store.records["route:c"] = openRecord(seconds(10));
  bool ok = true;
  sync.tick([&](bool answered) { ok = answered; });
  store.deliver();
  EXPECT_FALSE(ok);
  EXPECT_EQ(guard->breaker().state(), State::Closed);
}

// Verifies: one tick reads every shared breaker in one call and applies each record to its own
// breaker; a tick while a read is out is skipped.
TEST(SharedBreaker, SyncReadsAllBreakersInOneCallOneAtATime) {
  FakeBreakerStore store;
  auto a = std::make_shared<CircuitBreakerGuard>("circuit_breaker", sharedConfig(), nullptr,
                                                 "route a", &store);
  auto b = std::make_shared<CircuitBreakerGuard>("cluster_circuit_breaker", sharedConfig(), nullptr,
                                                 "cluster b", &store);
  BreakerSync sync(store);
  sync.setBreakers({a, b});
  store.records["cluster:b"] = openRecord(seconds(10));
  sync.tick();
  bool second = true;
  sync.tick([&](bool answered) { second = answered; });
  EXPECT_FALSE(second);
  ASSERT_EQ(store.reads.size(), 1U);
  EXPECT_EQ(store.reads[0], (std::vector<std::string>{"route:a", "cluster:b"}));
  store.deliver();
  EXPECT_EQ(a->breaker().state(), State::Closed);
  EXPECT_EQ(b->breaker().state(), State::Open);
  sync.tick();
  EXPECT_EQ(store.reads.size(), 2U);
}

// Verifies: a reload's guard takes over the breaker and its sharing, so a shared open survives
// a reload and the new mode applies.
TEST(SharedBreaker, ReloadKeepsTheSharedStateAndTakesTheNewMode) {
  FakeBreakerStore store;
  CircuitBreakerGuard old("circuit_breaker", sharedConfig(), nullptr, "route api", &store);
  const auto now = resilience::Clock::now();
  old.applyShared(openRecord(seconds(10)), now);
  CircuitBreakerGuard next("circuit_breaker", sharedConfig(config::CircuitBreaker::ShareMode::Hint),
                           &old, "route api", &store);
  EXPECT_EQ(next.breaker().state(), State::Open);
  next.applyShared({}, now);  // hint now: a vanished record closes nothing
  EXPECT_EQ(next.breaker().state(), State::Open);
}

}  // namespace
}  // namespace sluice::gateway::guards
