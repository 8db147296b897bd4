#include "gateway/config/config_json.h"

#include <gtest/gtest.h>

#include "gateway/config/config_test_support.h"

namespace sluice::gateway::config {
namespace {

TEST(ConfigJson, ShowsEveryBoundOfTheFallbackCache) {
  const Config c = loaded(
      withRoute("    circuit_breaker:\n"
                "      fallback: { cache: { entries: 7, max_body: 4KiB, max_bytes: 3MiB } }\n"));
  const auto cache = toJson(c)["routes"][0]["circuit_breaker"]["fallback"]["cache"];
  EXPECT_EQ(cache["entries"], 7);
  EXPECT_EQ(cache["max_body_bytes"], 4096);
  EXPECT_EQ(cache["max_bytes"], 3 * 1024 * 1024);
}

TEST(ConfigJson, ShowsTheCacheAsNullWhenOff) {
  const Config c = loaded(withRoute("    circuit_breaker: {}\n"));
  EXPECT_TRUE(toJson(c)["routes"][0]["circuit_breaker"]["fallback"]["cache"].is_null());
}

TEST(ConfigJson, ShowsTheListenersSlowClientAndTheRoutesOverrides) {
  const Config c = loaded(withRoute("    slow_client: { send_min_rate: 4KiB }\n"));
  const auto listener = toJson(c)["listeners"][0]["slow_client"];
  EXPECT_EQ(listener["body_total_ms"], 0);
  EXPECT_EQ(listener["body_min_rate_bytes_per_s"], 512);
  EXPECT_EQ(listener["window_ms"], 20'000);
  EXPECT_EQ(listener["grace_ms"], 10'000);
  const auto route = toJson(c)["routes"][0]["slow_client"];
  EXPECT_EQ(route["send_min_rate_bytes_per_s"], 4096);
  EXPECT_TRUE(route["body_min_rate_bytes_per_s"].is_null());  // the listener's applies
}

}  // namespace
}  // namespace sluice::gateway::config
