#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gateway/config/loader.h"

namespace sluice::gateway::config {
namespace {

using ::testing::HasSubstr;

constexpr std::string_view kBase = R"(listeners: [{ name: p, address: 127.0.0.1:8080 }]
clusters: [{ name: c, endpoints: [127.0.0.1:9000] }]
routes: [{ name: r, cluster: c }]
)";

LoadResult loadWith(std::string_view tracing) {
  return load(std::string(kBase) + std::string(tracing), "t.yaml");
}

TEST(TracingConfig, DefaultsAndEndpoint) {
  const auto r = loadWith("tracing: { otlp_endpoint: http://127.0.0.1:4318 }\n");
  ASSERT_TRUE(r.ok()) << r.diagnostics.front().format();
  const Tracing& t = *r.config->tracing;
  EXPECT_EQ(t.collector.text(), "127.0.0.1:4318");
  EXPECT_EQ(t.path, "/v1/traces");  // OTLP/HTTP's default path
  EXPECT_EQ(t.sample_ratio, 0.01);
  EXPECT_EQ(t.service_name, "sluice");
  EXPECT_EQ(t.queue, 2048U);
  EXPECT_EQ(t.batch, 512U);
  EXPECT_FALSE(load(std::string(kBase), "t.yaml").config->tracing);

  const auto v6 = loadWith("tracing: { otlp_endpoint: \"http://[::1]:4318/x/y\" }\n");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6.config->tracing->collector.text(), "[::1]:4318");
  EXPECT_EQ(v6.config->tracing->path, "/x/y");
}

TEST(TracingConfig, RefusesWhatCannotWork) {
  const std::pair<const char*, const char*> cases[] = {
      {"tracing: {}\n", "tracing is missing required key 'otlp_endpoint'"},
      {"tracing: { otlp_endpoint: https://127.0.0.1:4318 }\n", "https is not supported"},
      {"tracing: { otlp_endpoint: http://collector:4318 }\n", "not an IP address"},
      {"tracing: { otlp_endpoint: http://127.0.0.1/v1/traces }\n", ""},
      {"tracing: { otlp_endpoint: http://127.0.0.1:4318, sample_ratio: 2 }\n",
       "tracing.sample_ratio must be a number from 0 to 1"},
      {"tracing: { otlp_endpoint: http://127.0.0.1:4318, queue: 8 }\n", "tracing.queue"},
      {"tracing: { otlp_endpoint: http://127.0.0.1:4318, queue: 100, batch: 200 }\n",
       "tracing.batch must be at most tracing.queue (100)"},
      {"tracing: { otlp_endpoint: http://127.0.0.1:4318, flush_interval: 1ms }\n",
       "tracing.flush_interval"},
      {"tracing: { otlp_endpoint: http://127.0.0.1:4318, service_name: \"\" }\n",
       "tracing.service_name must be 1 to 256 characters"},
      {"tracing: { otlp_endpoint: http://127.0.0.1:4318, sampler: always }\n", "sampler"},
  };
  for (const auto& [yaml, want] : cases) {
    const auto r = loadWith(yaml);
    ASSERT_FALSE(r.ok()) << yaml;
    EXPECT_THAT(r.diagnostics.front().format(), HasSubstr(want)) << yaml;
    EXPECT_THAT(r.diagnostics.front().format(), HasSubstr("t.yaml:4:")) << yaml;
  }
}

}  // namespace
}  // namespace sluice::gateway::config
