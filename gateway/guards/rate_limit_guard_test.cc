#include "gateway/guards/rate_limit_guard.h"

#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "gateway/common/testing_time.h"
#include "gateway/http/head.h"
#include "gateway/proxy/request_context.h"

namespace sluice::gateway::guards {
namespace {

using std::chrono::seconds;
using Kind = RateDecision::Kind;

config::RateLimit limit(std::vector<config::RateKeyPart> key) {
  config::RateLimit rl;
  rl.requests = 1;
  rl.period = seconds(60);
  rl.burst = 1;
  rl.key = std::move(key);
  return rl;
}

std::string header(const http::LocalReply& r, std::string_view name) {
  for (const auto& [k, v] : r.fields) {
    if (k == name) return v;
  }
  return "<missing>";
}

struct KeyedRequest {
  http::RequestHead head;
  proxy::RequestContext ctx;
  config::Route route;
  KeyedRequest(std::string_view ip, std::string_view route_name,
               std::vector<std::pair<std::string_view, std::string_view>> fields = {}) {
    for (const auto& [k, v] : fields) head.fields.push_back({http::Field::unknown, k, v});
    route.name = route_name;
    ctx.head = &head;
    ctx.client_ip = ip;
    ctx.route = &route;
  }
};

TEST(RateLimitGuard, KeysByClientIp) {
  RateLimitGuard g("rate_limit", "api", limit({{config::RateKeyPart::Kind::ClientIp, ""}}));
  KeyedRequest a("10.0.0.1", "r"), b("10.0.0.2", "r");
  EXPECT_EQ(g.decide(a.ctx, kT0).kind, Kind::Allow);
  EXPECT_EQ(g.decide(a.ctx, kT0).kind, Kind::Reject);
  EXPECT_EQ(g.decide(b.ctx, kT0).kind, Kind::Allow);
}

TEST(RateLimitGuard, KeysByHeaderCaseInsensitivelyAndAMissingHeaderIsOneKey) {
  RateLimitGuard g("rate_limit", "api", limit({{config::RateKeyPart::Kind::Header, "x-api-key"}}));
  KeyedRequest k1("1.1.1.1", "r", {{"X-API-Key", "one"}});
  KeyedRequest k1_other_ip("2.2.2.2", "r", {{"x-api-key", "one"}});
  KeyedRequest k2("1.1.1.1", "r", {{"X-Api-Key", "two"}});
  KeyedRequest none1("1.1.1.1", "r"), none2("3.3.3.3", "r");
  EXPECT_EQ(g.decide(k1.ctx, kT0).kind, Kind::Allow);
  EXPECT_EQ(g.decide(k1_other_ip.ctx, kT0).kind, Kind::Reject);  // same key, other address
  EXPECT_EQ(g.decide(k2.ctx, kT0).kind, Kind::Allow);
  EXPECT_EQ(g.decide(none1.ctx, kT0).kind, Kind::Allow);
  EXPECT_EQ(g.decide(none2.ctx, kT0).kind, Kind::Reject);  // leaving it out does not escape
}

TEST(RateLimitGuard, CombinedKeysNeedEveryPartToMatch) {
  RateLimitGuard g("rate_limit", "api",
                   limit({{config::RateKeyPart::Kind::ClientIp, ""},
                          {config::RateKeyPart::Kind::Header, "x-user"}}));
  KeyedRequest a("1.1.1.1", "r", {{"x-user", "u"}}), b("1.1.1.2", "r", {{"x-user", "u"}});
  KeyedRequest c("1.1.1.1", "r", {{"x-user", "v"}});
  EXPECT_EQ(g.decide(a.ctx, kT0).kind, Kind::Allow);
  EXPECT_EQ(g.decide(b.ctx, kT0).kind, Kind::Allow);
  EXPECT_EQ(g.decide(c.ctx, kT0).kind, Kind::Allow);
  EXPECT_EQ(g.decide(a.ctx, kT0).kind, Kind::Reject);
}

TEST(RateLimitGuard, ARouteKeyIsOneLimiterUnlessTheGuardSpansRoutes) {
  const auto rl = limit({{config::RateKeyPart::Kind::Route, ""}});
  RateLimitGuard route_guard("rate_limit", "api", rl);
  KeyedRequest a("1.1.1.1", "one"), b("2.2.2.2", "two");
  EXPECT_EQ(route_guard.decide(a.ctx, kT0).kind, Kind::Allow);
  EXPECT_EQ(route_guard.decide(b.ctx, kT0).kind, Kind::Reject);
  RateLimitGuard cluster_guard("cluster_rate_limit", "c", rl, /*many_routes=*/true);
  EXPECT_EQ(cluster_guard.decide(a.ctx, kT0).kind, Kind::Allow);
  EXPECT_EQ(cluster_guard.decide(b.ctx, kT0).kind, Kind::Allow);
  EXPECT_EQ(cluster_guard.decide(a.ctx, kT0).kind, Kind::Reject);
}

TEST(RateLimitGuard, RejectionCarriesRetryAfterAndIetfHeaders) {
  auto rl = limit({{config::RateKeyPart::Kind::Route, ""}});
  rl.status = 503;
  RateLimitGuard g("rate_limit", "api", rl);
  RateDecision d;
  d.kind = Kind::Reject;
  d.wait = std::chrono::milliseconds(1500);
  d.quota = 20;
  d.window = std::chrono::milliseconds(200);
  d.remaining = 0;
  d.reset = std::chrono::milliseconds(2001);
  const auto r = g.rejection(d);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(header(r, "Retry-After"), "2");                      // rounded up
  EXPECT_EQ(header(r, "RateLimit-Policy"), "\"api\";q=20;w=1");  // at least 1 s
  EXPECT_EQ(header(r, "RateLimit"), "\"api\";r=0;t=3");
  d.wait = std::chrono::milliseconds(1);
  EXPECT_EQ(header(g.rejection(d), "Retry-After"), "1");  // never 0
}

// A guard keyed by route alone shares one limiter between all workers, without the table's
// locks: under contention it must still admit exactly its burst (run under TSan by check.sh).
// A reload that changes only numbers keeps what every key has left (Go's SetLimit/SetBurst),
// for each algorithm, with a table of keys and with a single one.
struct Reconfigured {
  config::RateAlgorithm algorithm;
  std::vector<config::RateKeyPart> key;
};

class RateLimitReload : public ::testing::TestWithParam<Reconfigured> {
 protected:
  [[nodiscard]] config::RateLimit settings(std::uint64_t requests, std::uint64_t burst) const {
    auto rl = limit(GetParam().key);
    rl.algorithm = GetParam().algorithm;
    rl.requests = requests;
    rl.burst = GetParam().algorithm == config::RateAlgorithm::SlidingWindow ? 1 : burst;
    rl.nodelay = true;
    return rl;
  }
  static int admitted(RateLimitGuard& g, const proxy::RequestContext& ctx, TimePoint t, int tries) {
    int n = 0;
    for (int i = 0; i < tries; ++i) n += g.decide(ctx, t).kind == Kind::Allow ? 1 : 0;
    return n;
  }
};

TEST_P(RateLimitReload, AKeyKeepsWhatItHasLeftUnderNewNumbers) {
  const bool window = GetParam().algorithm == config::RateAlgorithm::SlidingWindow;
  const bool leaky = GetParam().algorithm == config::RateAlgorithm::LeakyBucket;
  // 4 at once (a leaky bucket: 1 + a burst of 3; a sliding window: 4 per minute), 1 used.
  RateLimitGuard before("rate_limit", "api", settings(window ? 4 : 1, leaky ? 3 : 4), false,
                        nullptr, kT0);
  KeyedRequest r("10.0.0.1", "r");
  ASSERT_EQ(admitted(before, r.ctx, kT0, 1), 1);
  // Twice the rate and room for more at once: the key still has 3, not a full new quota. (A
  // leaky bucket keeps its fill, 1 of 1 + 7 now; a sliding window its count, 1 of 8.)
  RateLimitGuard after("rate_limit", "api", settings(window ? 8 : 2, leaky ? 7 : 8), false, &before,
                       kT0);
  ASSERT_TRUE(after.sharesStateWith(before));
  EXPECT_EQ(admitted(after, r.ctx, kT0, 10), window || leaky ? 7 : 3);
  if (window) return;  // its counts expire with the window, not at a rate
  // It then refills at the new rate: 2 per minute.
  EXPECT_EQ(admitted(after, r.ctx, kT0 + seconds(31), 10), 1);
  // The guard it replaced (requests still running on it) shares the key.
  EXPECT_EQ(admitted(before, r.ctx, kT0 + seconds(61), 10), 1);
}

INSTANTIATE_TEST_SUITE_P(
    Algorithms, RateLimitReload,
    ::testing::Values(
        Reconfigured{config::RateAlgorithm::Gcra, {{config::RateKeyPart::Kind::ClientIp, ""}}},
        Reconfigured{config::RateAlgorithm::Gcra, {{config::RateKeyPart::Kind::Route, ""}}},
        Reconfigured{config::RateAlgorithm::TokenBucket,
                     {{config::RateKeyPart::Kind::ClientIp, ""}}},
        Reconfigured{config::RateAlgorithm::TokenBucket, {{config::RateKeyPart::Kind::Route, ""}}},
        Reconfigured{config::RateAlgorithm::LeakyBucket,
                     {{config::RateKeyPart::Kind::ClientIp, ""}}},
        Reconfigured{config::RateAlgorithm::LeakyBucket, {{config::RateKeyPart::Kind::Route, ""}}},
        Reconfigured{config::RateAlgorithm::SlidingWindow,
                     {{config::RateKeyPart::Kind::ClientIp, ""}}},
        Reconfigured{config::RateAlgorithm::SlidingWindow,
                     {{config::RateKeyPart::Kind::Route, ""}}}));

TEST(RateLimitGuard, ANewAlgorithmOrKeyStartsOver) {
  auto rl = limit({{config::RateKeyPart::Kind::ClientIp, ""}});
  RateLimitGuard before("rate_limit", "api", rl);
  rl.algorithm = config::RateAlgorithm::TokenBucket;
  EXPECT_FALSE(RateLimitGuard("rate_limit", "api", rl, false, &before).sharesStateWith(before));
  rl = limit({{config::RateKeyPart::Kind::Header, "x-user"}});
  EXPECT_FALSE(RateLimitGuard("rate_limit", "api", rl, false, &before).sharesStateWith(before));
}

TEST(RateLimitGuard, ASharedLimiterAdmitsExactlyItsBurstUnderContention) {
  using Algorithm = config::RateAlgorithm;
  for (const auto algorithm : {Algorithm::Gcra, Algorithm::TokenBucket, Algorithm::LeakyBucket,
                               Algorithm::SlidingWindow}) {
    config::RateLimit rl = limit({{config::RateKeyPart::Kind::Route, ""}});
    rl.algorithm = algorithm;
    rl.requests = 1000;
    rl.period = std::chrono::hours(1);
    rl.burst = algorithm == Algorithm::LeakyBucket ? 999 : 1000;  // leaky: excess beyond one
    rl.nodelay = algorithm == Algorithm::LeakyBucket;
    RateLimitGuard g("rate_limit", "api", rl);
    const TimePoint now = resilience::Clock::now();  // the shared limiter starts at real time
    std::atomic<int> allowed{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&] {
        KeyedRequest r("1.1.1.1", "route");
        for (int i = 0; i < 1500; ++i) {
          if (g.decide(r.ctx, now).kind == Kind::Allow) allowed.fetch_add(1);
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(allowed.load(), 1000) << static_cast<int>(algorithm);
  }
}

}  // namespace
}  // namespace sluice::gateway::guards
