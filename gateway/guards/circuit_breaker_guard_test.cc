#include "gateway/guards/circuit_breaker_guard.h"

#include <gtest/gtest.h>

#include "gateway/guards/fault_guard.h"
#include "gateway/http/head.h"
#include "gateway/proxy/request_context.h"

namespace sluice::gateway::guards {
namespace {

using State = resilience::CircuitBreaker::State;

config::CircuitBreaker tiny() {
  config::CircuitBreaker c;
  c.window = 4;
  c.minimum_calls = 4;
  c.failure_rate = 50;
  for (int s = 500; s <= 599; ++s) c.failure_statuses.push_back(s);
  return c;
}

std::string field(const http::LocalReply& r, std::string_view name) {
  for (const auto& [k, v] : r.fields) {
    if (k == name) return v;
  }
  return "<missing>";
}

struct Request {
  http::RequestHead head;
  proxy::RequestContext ctx;
  explicit Request(http::Verb method = http::Verb::get, std::string_view target = "/a") {
    head.method = method;
    head.target = target;
    ctx.head = &head;
    ctx.host = "example.com";
  }
};

// One request through the guard: admitted, answered `status`, completed. Returns the verdict.
Verdict run(CircuitBreakerGuard& g, int status, Request&& r = Request()) {
  auto a = g.check(r.ctx);
  EXPECT_TRUE(a.has_value());
  if (a->admitted() && a->cluster == nullptr) {
    r.ctx.status = status;
    g.complete(r.ctx, {status, std::chrono::milliseconds(1), false});
  }
  return a->verdict;
}

TEST(CircuitBreakerGuard, OpensOnFailuresAndAnswersTheStaticFallback) {
  auto cfg = tiny();
  cfg.fallback.status = 200;
  cfg.fallback.body = "degraded";
  cfg.fallback.headers = {{"X-Mode", "degraded"}};
  CircuitBreakerGuard g("circuit_breaker", cfg);
  EXPECT_EQ(run(g, 200), Verdict::Allowed);
  EXPECT_EQ(run(g, 503), Verdict::Allowed);
  EXPECT_EQ(run(g, 404), Verdict::Allowed);  // a 4xx is not the upstream failing
  EXPECT_EQ(g.breaker().state(), State::Closed);
  EXPECT_EQ(run(g, 500), Verdict::Allowed);  // 2 of 4 failed: >= 50 % trips
  EXPECT_EQ(g.breaker().state(), State::Open);

  Request r;
  auto a = g.check(r.ctx);
  ASSERT_TRUE(a && a->reply);
  EXPECT_EQ(a->verdict, Verdict::Open);
  EXPECT_EQ(a->reply->status, 200);
  EXPECT_EQ(a->reply->body, "degraded");
  EXPECT_EQ(field(*a->reply, "X-Mode"), "degraded");
  EXPECT_EQ(field(*a->reply, "X-Sluice-Fallback"), "static");
}

TEST(CircuitBreakerGuard, ClientsThatLeaveAndLocalFailuresAreCountedRightly) {
  CircuitBreakerGuard g("circuit_breaker", tiny());
  for (int i = 0; i < 10; ++i) {
    Request r;
    ASSERT_TRUE(g.check(r.ctx)->admitted());
    g.complete(r.ctx, {0, std::chrono::milliseconds(1), false});  // client gone: no verdict
  }
  EXPECT_EQ(g.breaker().snapshot(resilience::Clock::now()).calls, 0U);
  for (int i = 0; i < 4; ++i) {
    Request r;
    ASSERT_TRUE(g.check(r.ctx)->admitted());
    g.complete(r.ctx, {502, std::chrono::milliseconds(1), true});  // sluice's own 502
  }
  EXPECT_EQ(g.breaker().state(), State::Open);
}

TEST(CircuitBreakerGuard, ServesTheLastGoodResponseToTheSameGet) {
  auto cfg = tiny();
  cfg.fallback.cache = true;
  CircuitBreakerGuard g("circuit_breaker", cfg);
  {
    Request r(http::Verb::get, "/item?id=7");
    ASSERT_TRUE(g.check(r.ctx)->admitted());
    ASSERT_NE(r.ctx.capture, nullptr);
    auto& cap = *r.ctx.capture;
    EXPECT_TRUE(cap.wanted);
    EXPECT_EQ(cap.key, "example.com/item?id=7");
    // What the forwarder fills in while relaying a 200.
    cap.active = cap.complete = true;
    cap.content_type = "application/json";
    cap.fields = {{"ETag", "\"v7\""}};
    cap.body = "{\"id\":7}";
    g.complete(r.ctx, {200, std::chrono::milliseconds(1), false});
  }
  for (int i = 0; i < 4; ++i) run(g, 503, Request(http::Verb::get, "/other"));
  ASSERT_EQ(g.breaker().state(), State::Open);

  Request hit(http::Verb::get, "/item?id=7");
  auto a = g.check(hit.ctx);
  ASSERT_TRUE(a && a->reply);
  EXPECT_EQ(a->reply->status, 200);
  EXPECT_EQ(a->reply->body, "{\"id\":7}");
  EXPECT_EQ(a->reply->content_type, "application/json");
  EXPECT_EQ(field(*a->reply, "ETag"), "\"v7\"");
  EXPECT_EQ(field(*a->reply, "X-Sluice-Fallback"), "cache");
  EXPECT_EQ(field(*a->reply, "Age"), "0");

  // Another target, or a POST to the same one, gets the static answer.
  Request miss(http::Verb::get, "/item?id=8");
  EXPECT_EQ(field(*g.check(miss.ctx)->reply, "X-Sluice-Fallback"), "static");
  Request post(http::Verb::post, "/item?id=7");
  EXPECT_EQ(g.check(post.ctx)->reply->status, 503);
}

TEST(CircuitBreakerGuard, RequestsTheUpstreamNeverSawTeachItNothing) {
  CircuitBreakerGuard g("circuit_breaker", tiny());
  for (auto e : {stats::UpstreamError::Deadline, stats::UpstreamError::Overflow}) {
    for (int i = 0; i < 4; ++i) {
      Request r;
      ASSERT_TRUE(g.check(r.ctx)->admitted());
      g.complete(r.ctx, {e == stats::UpstreamError::Deadline ? 504 : 503,
                         std::chrono::milliseconds(1), false, /*no_verdict=*/true});
    }
  }
  EXPECT_EQ(g.breaker().state(), State::Closed);
  EXPECT_EQ(g.breaker().snapshot(resilience::Clock::now()).calls, 0U);
}

TEST(CircuitBreakerGuard, NeverCachesForRequestsWithCredentials) {
  auto cfg = tiny();
  cfg.fallback.cache = true;
  CircuitBreakerGuard g("circuit_breaker", cfg);
  for (auto field : {http::Field::authorization, http::Field::cookie}) {
    Request r;
    r.head.fields.push_back({field, "x", "secret"});
    ASSERT_TRUE(g.check(r.ctx)->admitted());
    EXPECT_TRUE(r.ctx.capture == nullptr || !r.ctx.capture->wanted);
  }
}

TEST(CircuitBreakerGuard, AFallbackClusterContinuesWithoutAReply) {
  auto cfg = tiny();
  cfg.fallback.cluster = "spare";
  CircuitBreakerGuard g("circuit_breaker", cfg);
  for (int i = 0; i < 4; ++i) run(g, 500);
  Request r;
  auto a = g.check(r.ctx);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->verdict, Verdict::Open);
  EXPECT_TRUE(a->admitted());
  ASSERT_NE(a->cluster, nullptr);
  EXPECT_EQ(*a->cluster, "spare");  // by name: resolved in the request's own config generation
  // Whatever the fallback cluster answers says nothing about the broken one.
  g.complete(r.ctx, {500, std::chrono::milliseconds(1), false});
  EXPECT_EQ(g.breaker().state(), State::Open);
}

TEST(CircuitBreakerGuard, ExportsStateAndTransitions) {
  CircuitBreakerGuard g("cluster_circuit_breaker", tiny());
  for (int i = 0; i < 4; ++i) run(g, 500);
  double open = -1;
  double to_open = -1;
  for (const auto& gauge : g.gauges()) {
    if (gauge.name == "sluice_circuit_breaker_state" && gauge.label_value == "open") {
      open = gauge.value;
    }
    if (gauge.name == "sluice_circuit_breaker_transitions_total" && gauge.label_value == "open") {
      to_open = gauge.value;
    }
  }
  EXPECT_EQ(open, 1.0);
  EXPECT_EQ(to_open, 1.0);
}

TEST(FaultGuard, DelaysAndAbortsTheConfiguredShare) {
  config::Fault f;
  f.delay = std::chrono::milliseconds(200);
  f.delay_percent = 25;
  f.abort_status = 503;
  f.abort_percent = 10;
  FaultGuard g(f);
  auto a = g.decide(0.2, 0.5);  // delayed (0.2 < 25 %), not aborted
  EXPECT_EQ(a.verdict, Verdict::Delayed);
  EXPECT_EQ(a.wait, std::chrono::milliseconds(200));
  EXPECT_TRUE(a.admitted());
  a = g.decide(0.25, 0.099);  // not delayed (25 % is exclusive), aborted
  EXPECT_EQ(a.verdict, Verdict::Aborted);
  EXPECT_EQ(a.wait.count(), 0);
  ASSERT_TRUE(a.reply);
  EXPECT_EQ(a.reply->status, 503);
  a = g.decide(0.0, 0.0);  // both: the delay happens, then the abort
  EXPECT_EQ(a.verdict, Verdict::Aborted);
  EXPECT_EQ(a.wait, std::chrono::milliseconds(200));
  a = g.decide(0.99, 0.99);
  EXPECT_EQ(a.verdict, Verdict::Allowed);
  // Over many real draws the shares hold roughly.
  Request r;
  int aborted = 0;
  for (int i = 0; i < 10'000; ++i) {
    if (g.check(r.ctx)->verdict == Verdict::Aborted) ++aborted;
  }
  EXPECT_NEAR(aborted, 1000, 200);
}

}  // namespace
}  // namespace sluice::gateway::guards
