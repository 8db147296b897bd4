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

}  // namespace
}  // namespace sluice::gateway::config
