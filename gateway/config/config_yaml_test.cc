// toYaml: load -> toYaml -> load gives an equal Config, and rendering is idempotent, for the
// bundled examples and for configs that give every field a value other than its default (a
// field the renderer forgot fails the round trip; FieldCoverage checks that the configs below
// really reach every field, so a field added to config.h fails here until it is rendered).
#include "gateway/config/config_yaml.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cxxabi.h>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <tuple>
#include <typeinfo>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gateway/config/config_json.h"
#include "gateway/config/guard_config.h"
#include "gateway/config/loader.h"
#include "gateway/demo/demo_config.h"

namespace sluice::gateway::config {
namespace {

using ::testing::HasSubstr;

// load(yaml) -> toYaml -> load: equal configs, and the second rendering is the first.
void expectRoundTrip(const std::string& yaml, const std::string& label) {
  SCOPED_TRACE(label);
  const auto first = load(yaml, label);
  ASSERT_TRUE(first.ok()) << first.diagnostics.front().format();
  const std::string text = toYaml(*first.config);
  const auto second = load(text, label + " (rendered)");
  ASSERT_TRUE(second.ok()) << second.diagnostics.front().format() << "\n" << text;
  // The JSON view names the fields that differ (of the fields it shows), as a JSON patch.
  const auto before = toJson(*first.config);
  const auto after = toJson(*second.config);
  EXPECT_TRUE(after == before) << "changed by the round trip: "
                               << nlohmann::json::diff(before, after).dump();
  EXPECT_TRUE(*second.config == *first.config) << "rendered as:\n" << text;
  EXPECT_EQ(toYaml(*second.config), text);
}

// ---------------------------------------------------------------------------------------------
// Units

TEST(ConfigYamlUnits, DurationsTakeTheLargestExactUnit) {
  EXPECT_EQ(durationText(Millis(0)), "0ms");
  EXPECT_EQ(durationText(Millis(1)), "1ms");
  EXPECT_EQ(durationText(Millis(250)), "250ms");
  EXPECT_EQ(durationText(Millis(1500)), "1500ms");
  EXPECT_EQ(durationText(Millis(2000)), "2s");
  EXPECT_EQ(durationText(Millis(90'000)), "90s");
  EXPECT_EQ(durationText(Millis(120'000)), "2m");
  EXPECT_EQ(durationText(Millis(3'600'000)), "1h");
  EXPECT_EQ(durationText(Millis(3'600'001)), "3600001ms");
  for (const std::int64_t ms : {0LL, 1LL, 999LL, 1000LL, 1001LL, 59'999LL, 60'000LL, 61'000LL,
                                3'599'999LL, 7'200'000LL, 365LL * 24 * 3'600'000}) {
    std::string why;
    EXPECT_EQ(parseDuration(durationText(Millis(ms)), &why), Millis(ms)) << ms << ": " << why;
  }
}

TEST(ConfigYamlUnits, SizesTakeTheShortestExactUnit) {
  EXPECT_EQ(sizeText(0), "0B");
  EXPECT_EQ(sizeText(1), "1B");
  EXPECT_EQ(sizeText(1536), "1536B");
  EXPECT_EQ(sizeText(8192), "8KiB");
  EXPECT_EQ(sizeText(32768), "32KiB");
  EXPECT_EQ(sizeText(100ULL << 20U), "100MiB");
  EXPECT_EQ(sizeText(1000), "1KB");
  EXPECT_EQ(sizeText(3'000'000'000ULL), "3GB");
  EXPECT_EQ(sizeText(1'024'000), "1000KiB");  // rather than 1024KB
  EXPECT_EQ(sizeText(5ULL << 40U), "5TiB");
  for (const std::uint64_t b : std::vector<std::uint64_t>{
           0, 1, 1000, 1023, 1024, 1025, 1ULL << 20U, 1'000'000, 1ULL << 30U, 1ULL << 40U,
           1ULL << 50U, std::numeric_limits<std::uint64_t>::max()}) {
    std::string why;
    EXPECT_EQ(parseSize(sizeText(b), &why), b) << b << ": " << why;
  }
}

TEST(ConfigYamlUnits, RatesAsTheLoaderWritesThem) {
  EXPECT_EQ(rateText(100, Millis(1000)), "100/s");
  EXPECT_EQ(rateText(6000, Millis(60'000)), "6000/m");
  EXPECT_EQ(rateText(7, Millis(3'600'000)), "7/h");
  EXPECT_EQ(rateText(3, Millis(1)), "3/ms");
  EXPECT_EQ(rateText(5, Millis(10'000)), "5/10s");
  EXPECT_EQ(rateText(1, Millis(1500)), "1/1500ms");
  EXPECT_EQ(rateText(2, Millis(11)), "2/11ms");
  for (const auto& [n, ms] : std::vector<std::pair<std::uint64_t, std::int64_t>>{
           {1, 1}, {100, 1000}, {5, 10'000}, {1, 1500}, {9, 60'000}, {1, 3'600'000}, {2, 11}}) {
    std::string why;
    const auto rate = parseRate(rateText(n, Millis(ms)), &why);
    ASSERT_TRUE(rate) << why;
    EXPECT_EQ(rate->requests, n);
    EXPECT_EQ(rate->period, Millis(ms));
  }
}

TEST(ConfigYamlUnits, DecimalsAreShortExactAndPlain) {
  EXPECT_EQ(decimalText(0), "0");
  EXPECT_EQ(decimalText(100), "100");
  EXPECT_EQ(decimalText(12.5), "12.5");
  EXPECT_EQ(decimalText(0.1), "0.1");
  EXPECT_EQ(decimalText(1.25), "1.25");
  EXPECT_EQ(decimalText(1e6), "1000000");
  for (const double v : {0.0, 0.1, 1.0 / 3, 33.3, 85.0, 99.99, 1e-7, 1e6, 123456.789}) {
    const std::string text = decimalText(v);
    EXPECT_EQ(text.find_first_not_of("0123456789."), std::string::npos) << text;
    double back = -1;
    std::from_chars(text.data(), text.data() + text.size(), back);
    EXPECT_EQ(back, v) << text;
  }
}

// ---------------------------------------------------------------------------------------------
// What the rendering looks like

TEST(ConfigYaml, RendersEveryDefaultInTheInputUnits) {
  const auto r = load(R"(listeners: [{ name: public, address: 127.0.0.1:8080 }]
clusters: [{ name: app, endpoints: [127.0.0.1:9000] }]
routes: [{ name: all, cluster: app, rate_limit: { rate: 100/s }, circuit_breaker: {} }]
)",
                      "t.yaml");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(toYaml(*r.config), R"(workers: auto
drain_timeout: 30s
drain_accept_grace: 0ms
listeners:
  - name: public
    address: 127.0.0.1:8080
    trust_forwarded: false
    limits:
      request_line: 8KiB
      header_bytes: 32KiB
      headers: 100
      body: 100MiB
    timeouts:
      header: 10s
      body: 30s
      idle: 1m
      send: 30s
    slow_client:
      body_total: 0ms
      body_min_rate: 512B
      send_total: 0ms
      send_min_rate: 512B
      window: 20s
      grace: 10s
log:
  level: info
  format: text
access_log:
  enabled: false
  path: stdout
routes:
  - name: all
    cluster: app
    timeout: 15s
    client_abort: cancel
    retry:
      attempts: 2
      on: [connect-failure]
      methods: idempotent
      backoff_base: 25ms
      backoff_max: 250ms
    rate_limit:
      algorithm: gcra
      rate: 100/s
      burst: 1
      key: [client_ip]
      max_keys: 100000
      status: 429
      scope: local
    circuit_breaker:
      window: 100
      minimum_calls: 20
      failure_rate: 50
      slow_call_rate: 100
      open_duration: 30s
      open_duration_multiplier: 1
      max_open_duration: 5m
      half_open_probes: 5
      failure_statuses: [5xx]
      fallback:
        status: 503
        body: "circuit breaker open\n"
        content_type: text/plain; charset=utf-8
        headers: {}
        cache: false
clusters:
  - name: app
    endpoints:
      - {address: 127.0.0.1:9000, weight: 1}
    lb:
      policy: round_robin
      panic_threshold: 50
    pool:
      max_connections: 1024
      max_idle: 256
      idle_timeout: 1m
      connect_timeout: 2s
      max_wait: 1s
    io_timeout: 30s
    host_latency_histogram: false
    retry_budget:
      percent: 20
      min_per_second: 10
      window: 10s
)");
}

TEST(ConfigYaml, ShortensStatusListsTheWayTheLoaderReadsThem) {
  const auto r = load(R"(listeners: [{ name: public, address: 127.0.0.1:8080 }]
clusters: [{ name: app, endpoints: [127.0.0.1:9000] }]
routes:
  - name: a
    cluster: app
    retry: { on: [503, 504, 502, 429, connect-failure] }
  - name: b
    cluster: app
    retry: { on: [5xx, 404] }
    circuit_breaker: {}
  - name: c
    cluster: app
    circuit_breaker: { failure_statuses: [429, 5xx] }
)",
                      "t.yaml");
  ASSERT_TRUE(r.ok());
  const std::string text = toYaml(*r.config);
  EXPECT_THAT(text, HasSubstr("on: [connect-failure, gateway-error, 429]"));
  EXPECT_THAT(text, HasSubstr("on: [5xx, 404]"));
  EXPECT_THAT(text, HasSubstr("failure_statuses: [5xx]"));
  EXPECT_THAT(text, HasSubstr("failure_statuses: [5xx, 429]"));
}

TEST(ConfigYaml, QuotesStringsThatAReaderWouldTakeForSomethingElse) {
  const auto r = load(R"(listeners: [{ name: "1", address: 127.0.0.1:8080 }]
clusters:
  - name: "true"
    endpoints: [127.0.0.1:9000]
    circuit_breaker:
      fallback:
        body: "503"
        headers: { X-A: "yes", X-B: "0x1F", X-C: "1e3", X-D: "null", X-E: "", X-F: plain }
routes: [{ name: "off", cluster: "true" }]
)",
                      "t.yaml");
  ASSERT_TRUE(r.ok()) << r.diagnostics.front().format();
  const std::string text = toYaml(*r.config);
  for (const char* quoted :
       {R"(name: "1")", R"(name: "true")", R"(name: "off")", R"(cluster: "true")", R"(body: "503")",
        R"(X-A: "yes")", R"(X-B: "0x1F")", R"(X-C: "1e3")", R"(X-D: "null")", R"(X-E: "")",
        "X-F: plain", "workers: auto", "headers: 100"}) {
    EXPECT_THAT(text, HasSubstr(quoted));
  }
}

// ---------------------------------------------------------------------------------------------
// Round trips

TEST(ConfigYaml, BundledExamplesRoundTrip) {
  // examples/ next to this file's directory (gateway/config/ -> the repository).
  const auto examples =
      std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "examples";
  ASSERT_TRUE(std::filesystem::is_directory(examples)) << examples;
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(examples)) {
    if (entry.path().extension() != ".yaml") continue;
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    expectRoundTrip(text.str(), entry.path().filename().string());
    names.push_back(entry.path().filename().string());
  }
  EXPECT_THAT(names, ::testing::IsSupersetOf({"demo.yaml", "minimal.yaml"}));
}

TEST(ConfigYaml, TheCompiledInDemoConfigValidatesAsItIs) {
  // examples/demo.yaml as `sluice demo` gets it: a complete config that `sluice validate` takes.
  expectRoundTrip(std::string(demo::bundledConfig()), "<demo config>");
}

// Configs that together give every field a value other than both its default in config.h and
// the loader's default, and use every option (FieldCoverage below checks the first part).
using RichConfig = std::pair<const char*, std::string>;

const std::vector<RichConfig>& richConfigs() {
  static const std::vector<RichConfig> configs = {
      {"everything", R"(workers: 7
drain_timeout: 1500ms
drain_accept_grace: 2s
listeners:
  - name: public
    address: 0.0.0.0:8443
    trust_forwarded: true
    limits: { request_line: 4KiB, header_bytes: 20000B, headers: 64, body: 3GB }
    timeouts: { header: 2500ms, body: 45s, idle: 2m, send: 1h }
    slow_client:
      body_total: 5m
      body_min_rate: 1KiB
      send_total: 10m
      send_min_rate: 2KB
      window: 30s
      grace: 5s
  - name: internal
    address: "[::1]:8081"
admin: { address: 127.0.0.2:9902, token_file: /etc/sluice/admin.token }
log: { level: debug, format: json }
tracing:
  otlp_endpoint: "http://[::1]:4319/otlp/v1/traces"
  sample_ratio: 0.25
  service_name: "edge gateway: eu-1"
  queue: 4096
  batch: 256
  flush_interval: 250ms
  timeout: 2s
redis:
  address: "[::1]:6380"
  timeout: 35ms
  username: edge
  password_file: /etc/sluice/redis.pass
  db: 3
  key_prefix: "eu-1:"
  instances: 12
etcd:
  endpoints: [10.0.0.1:2379, "[::1]:2380"]
  timeout: 750ms
  register: { prefix: /sluice/fleet/, name: edge-1, address: 10.1.1.1:8443, ttl: 7s }
access_log:
  enabled: true
  path: "/var/log/sluice/access: log #1.json"
  fields: [error, time, status, user_agent, bytes_in]
routes:
  - name: api.v1
    match: { host: "*.Example.com", path_prefix: /api/v1/ }
    cluster: api
    timeout: 2500ms
    max_body: 10MB
    slow_client:
      body_total: 1m
      body_min_rate: 100B
      send_total: 2m
      send_min_rate: 4KiB
      window: 10s
      grace: 3s
    retry:
      attempts: 4
      on: [reset, timeout, gateway-error, 429, 409]
      per_try_timeout: 750ms
      methods: any
      backoff_base: 10ms
      backoff_max: 1500ms
    rate_limit:
      algorithm: token_bucket
      rate: 250/m
      burst: 40
      key: [route, "header:X-Api-Key", client_ip]
      max_keys: 5000
      status: 503
    concurrency: { max: 48, queue: 16, queue_timeout: 300ms, status: 429, retry_after: 0ms }
    circuit_breaker:
      window: 50
      minimum_calls: 7
      failure_rate: 37.5
      slow_call_rate: 80
      slow_call_duration: 1200ms
      open_duration: 12s
      open_duration_multiplier: 1.5
      max_open_duration: 10m
      half_open_probes: 3
      failure_statuses: [5xx, 429, 408]
      fallback:
        status: 200
        body: "{\"degraded\": true}\n"
        content_type: application/json
        headers: { X-Degraded: "yes", Cache-Control: "no-store, max-age=0" }
        cache: { entries: 50, max_body: 256KiB, max_bytes: 8MiB }
      share: redis
      share_mode: hint
    fault: { delay: { duration: 150ms, percent: 12.5 }, abort: { status: 418, percent: 0.5 } }
  - name: sessions
    match: { path: /session }
    cluster: ring
    client_abort: finish
    hash_key: ["header:X-User", "cookie:sid", path, "query:tenant", client_ip]
    rate_limit: { algorithm: leaky_bucket, rate: 5/10s, burst: 30, delay: 12, key: route }
    concurrency:
      adaptive: { algorithm: aimd, initial: 30, min: 4, max: 300, timeout: 900ms, backoff_cooldown: 250ms }
  - name: global
    match: { path_prefix: /global }
    cluster: ring
    rate_limit: { rate: 7/s, burst: 14, key: route, scope: global, on_failure: deny }
  - name: bulk
    match: { host: example.org }
    cluster: mag
    rate_limit: { algorithm: leaky_bucket, rate: 3/ms, nodelay: true }
    circuit_breaker:
      window: 20s
      fallback: { cluster: spare, content_type: text/html }
    fault: { delay: { duration: 1s } }
  - name: gray
    match:
      path_regex: "/pay/[0-9]+(/.*)?"
      methods: [GET, POST, PURGE]
      headers:
        - { name: X-Env, exact: Gray, ignore_case: true }
        - { name: x-debug, present: false }
        - { name: user-agent, regex: ".*(bot|spider).*", invert: true }
      query: [{ name: "v", prefix: "2." }, { name: "trace id", present: true }]
      cookies: [{ name: beta, exact: "1", invert: true }]
    cluster: api
  - name: canary
    match: { path_prefix: /canary }
    split: [{ cluster: api, weight: 0 }, { cluster: spare, weight: 1000000 }]
    split_key: ["cookie:sid", client_ip]
    subset: { labels: { env: gray, "true": "1" }, from_header: { name: X-Tier, label: tier }, fallback: none }
    rewrite: { path_prefix: /v2/, host: "canary.internal:8443" }
    request_headers:
      remove: [x-debug, Cookie]
      set: { x-env: "${subset}", "X-Quoted": "a: b # c" }
      add: { x-route: "${route} via ${cluster} for ${client_ip} ($$5) ${request_id}" }
    response_headers: { remove: [server], set: { x-served-by: "${cluster}" }, add: { X-A: "true" } }
    mirror: { cluster: ewma, percent: 12.5, max_body: 1MiB, timeout: 250ms, max_in_flight: 77 }
    canary:
      steps: [2.5, 10, 90]
      interval: 90s
      min_requests: 40
      max_error_increase: 0.5
      max_latency_ratio: 2.25
      min_latency_increase: 12ms
      confidence: 95
  - name: moved
    match: { path_prefix: /old }
    redirect: { status: 308, scheme: https, host: example.com, port: 8443, path_prefix: /new, strip_query: true }
    response_headers: { set: { cache-control: no-store } }
  - name: gone
    match: { path: /gone }
    redirect: { status: 302, path: /here }
  - name: teapot
    match: { path: /tea }
    direct_response:
      status: 418
      body: "short and stout\n{ \"json\": true }"
      headers: { content-type: application/json, x-why: "${request_id}" }
  - name: counted
    cluster: ewma
    rate_limit: { algorithm: sliding_window, rate: 7/h, key: "header:X-Tenant" }
    concurrency:
      adaptive: { algorithm: vegas, initial: 2, min: 2, max: 2 }
      queue: 1000000
      queue_delay: { target: 7ms, interval: 70ms }
    fault: { abort: { status: 599 } }
  - name: rest
    match: { path_prefix: / }
    cluster: disc
    concurrency: { adaptive: { window_samples: 100, window_duration: 100ms } }
    retry: { on: [5xx, connect-failure] }
clusters:
  - name: api
    endpoints:
      - { address: 10.0.0.1:8000, weight: 5 }
      - 10.0.0.2:8000
      - { address: "[2001:db8::1]:8000", weight: 1000000, metadata: { env: gray, "true": "123", zone: "eu west" } }
    lb:
      policy: least_request
      panic_threshold: 33.3
      slow_start: { window: 45s, aggression: 2.5, min_weight_percent: 25 }
      dynamic_weights:
        signal: utilization
        header: X-Load
        decay_time: 20s
        min_samples: 3.5
        error_penalty: 2
        min_weight_percent: 5
        blackout: 0ms
        report_ttl: 90s
        update_interval: 250ms
    pool:
      max_connections: 64
      max_idle: 0
      idle_timeout: 90s
      connect_timeout: 300ms
      max_wait: 0ms
    io_timeout: 12s
    host_latency_histogram: true
    rate_limit: { rate: 1000/s, burst: 200, max_keys: 1, status: 503 }
    retry_budget: { percent: 12.5, min_per_second: 0.5, window: 2m }
    circuit_breaker:
      window: 10
      minimum_calls: 10
      failure_rate: 0
      open_duration: 2s
      max_open_duration: 2s
      fallback: { status: 429, body: "", headers: {}, cache: false }
    outlier_detection:
      consecutive_5xx: 0
      consecutive_gateway_failure: 3
      failure_percentage: 70.5
      failure_percentage_minimum_hosts: 2
      failure_percentage_request_volume: 20
      interval: 5s
      base_ejection_time: 15s
      max_ejection_time: 2m
      max_ejection_percent: 100
    bulkhead: { max_connections: 100, max_pending: 0, max_requests: 90, max_retries: 0 }
    health_check:
      path: "/healthz?full=1&x=*"
      host: api.internal:8000
      expected_statuses: [204, 300-399, 503]
      interval: 750ms
      jitter: 40ms
      timeout: 250ms
      unhealthy_threshold: 1
      healthy_threshold: 7
    discovery:
      registry: true
      default_ttl: 15s
      max_ttl: 1h
      file: "/etc/sluice/api endpoints.yaml"
      file_interval: 500ms
      etcd: "/services/api v2/"
      max_hosts: 200
  - name: ring
    endpoints: [10.0.1.1:80, 10.0.1.2:80]
    lb:
      policy: ring_hash
      ring_vnodes: 7
      ring_max_size: 4096
      balance_factor: 1.25
      panic_threshold: 0
  - name: mag
    endpoints: [10.0.2.1:80]
    lb: { policy: maglev, maglev_table_size: 131 }
  - name: ewma
    endpoints: [10.0.3.1:80]
    lb:
      policy: peak_ewma
      ewma_decay: 3s
      dynamic_weights: { signal: latency, decay_time: 1m, update_interval: 2s }
    health_check: { type: tcp, interval: 10ms, timeout: 1ms, jitter: 0ms }
    outlier_detection: { failure_percentage: off }
  - name: disc
    discovery: { file: /run/sluice/disc.yaml }
    lb: random
  - name: spare
    endpoints: [127.0.0.1:9999]
    lb: least_connections
)"},
      // Every section present with nothing set: the defaults inside each section.
      {"empty sections",
       R"(listeners: [{ name: p, address: 127.0.0.1:8080, limits: {}, timeouts: {} }]
admin: { address: 127.0.0.1:9901 }
access_log: {}
clusters:
  - name: c
    endpoints: [127.0.0.1:9000]
    lb: { policy: round_robin, slow_start: {}, dynamic_weights: {} }
    pool: {}
    rate_limit: { rate: 1/s }
    retry_budget: {}
    circuit_breaker: { fallback: {} }
    outlier_detection: {}
    bulkhead: {}
    health_check: {}
    discovery: { registry: true }
  - name: h
    endpoints: [127.0.0.1:9001]
    lb: { policy: ring_hash }
  - name: u
    endpoints: [127.0.0.1:9002]
    lb: { policy: least_request, dynamic_weights: { signal: utilization } }
routes:
  - name: r
    match: {}
    cluster: c
    retry: {}
    rate_limit: { rate: 1/s, algorithm: leaky_bucket }
    concurrency: { max: 1 }
    circuit_breaker: { fallback: { cache: {} } }
    fault: { delay: { duration: 1ms }, abort: { status: 503 } }
  - name: hashed
    cluster: h
    hash_key: client_ip
)"},
      // Strings YAML would read as something else, or not at all, unless quoted and escaped.
      {"tricky strings", R"(workers: 1
drain_timeout: 0ms
listeners: [{ name: p, address: localhost:8080 }]
access_log: { path: "null" }
clusters:
  - name: c
    endpoints: [127.0.0.1:9000]
    circuit_breaker:
      fallback:
        body: "~"
        content_type: "'quoted' \"both\" # not a comment: {x}"
        headers:
          X-Empty: ""
          X-Null: "null"
          X-True: "true"
          X-Number: "0123"
          X-Colon: "a: b"
          X-Unicode: "h\u00e9llo \u2013 \u2713"
          X-Tab: "a\tb"
          X-Spaces: " lead and trail "
          X-Star: "*"
          X-Amp: "&anchor"
          X-Bang: "!tag"
          X-Dash: "- item"
          X-Flow: "[1, 2] {a: b}"
          X-Percent: "%TAG"
          X-Backslash: "C:\\dir\\"
  - name: "0x10"
    endpoints: [127.0.0.1:9001]
routes:
  - name: r
    match: { host: "*.example.com", path_prefix: "/#/: x" }
    cluster: c
  - name: "yes"
    match: { path_prefix: "/" }
    cluster: "0x10"
    circuit_breaker:
      fallback: { body: "", content_type: "|" }
  - name: r2
    match: { path: "/a b\\c 'd' \"e\"" }
    cluster: c
    circuit_breaker:
      fallback: { body: "line 1\nline 2\r\n\ttabbed \\ \u0001\n", status: 299 }
    fault: { abort: { status: 200, percent: 100 } }
)"},
  };
  return configs;
}

class ConfigYamlRich : public ::testing::TestWithParam<RichConfig> {};

TEST_P(ConfigYamlRich, RoundTrips) { expectRoundTrip(GetParam().second, GetParam().first); }

std::string richName(const ::testing::TestParamInfo<RichConfig>& p) {
  std::string name = p.param.first;
  std::replace(name.begin(), name.end(), ' ', '_');
  return name;
}

INSTANTIATE_TEST_SUITE_P(Configs, ConfigYamlRich, ::testing::ValuesIn(richConfigs()), richName);

// ---------------------------------------------------------------------------------------------
// Every field of Config is reached by a rich config with a value other than its default.

template <typename T>
inline constexpr bool kIsOptional = false;
template <typename T>
inline constexpr bool kIsOptional<std::optional<T>> = true;
template <typename T>
inline constexpr bool kIsVector = false;
template <typename T, typename A>
inline constexpr bool kIsVector<std::vector<T, A>> = true;

// The fields of an aggregate, counted and tied without a hand-written list. (Boost.PFR does the
// same, but its field counting crashes GCC 12 on RateLimit's vector member initializer.)
struct AnyField {
  template <typename T>
  operator T() const;  // NOLINT(google-explicit-constructor): converts to any field, unevaluated
};

template <typename T, std::size_t... I>
constexpr bool initializableWith(std::index_sequence<I...> /*unused*/) {
  return requires { T{(void(I), AnyField{})...}; };
}

template <typename T, std::size_t N = 0>
constexpr std::size_t fieldCount() {
  if constexpr (initializableWith<T>(std::make_index_sequence<N + 1>{})) {
    return fieldCount<T, N + 1>();
  } else {
    return N;
  }
}

template <typename T>
auto tieFields(const T& value) {
  constexpr std::size_t kCount = fieldCount<T>();
  static_assert(kCount >= 1 && kCount <= 26, "tieFields: add a case for this many fields");
  // clang-format off
  if constexpr (kCount == 1) { const auto& [a] = value; return std::tie(a); }
  else if constexpr (kCount == 2) { const auto& [a, b] = value; return std::tie(a, b); }
  else if constexpr (kCount == 3) { const auto& [a, b, c] = value; return std::tie(a, b, c); }
  else if constexpr (kCount == 4) { const auto& [a, b, c, d] = value; return std::tie(a, b, c, d); }
  else if constexpr (kCount == 5) {
    const auto& [a, b, c, d, e] = value; return std::tie(a, b, c, d, e);
  } else if constexpr (kCount == 6) {
    const auto& [a, b, c, d, e, f] = value; return std::tie(a, b, c, d, e, f);
  } else if constexpr (kCount == 7) {
    const auto& [a, b, c, d, e, f, g] = value; return std::tie(a, b, c, d, e, f, g);
  } else if constexpr (kCount == 8) {
    const auto& [a, b, c, d, e, f, g, h] = value; return std::tie(a, b, c, d, e, f, g, h);
  } else if constexpr (kCount == 9) {
    const auto& [a, b, c, d, e, f, g, h, i] = value; return std::tie(a, b, c, d, e, f, g, h, i);
  } else if constexpr (kCount == 10) {
    const auto& [a, b, c, d, e, f, g, h, i, j] = value;
    return std::tie(a, b, c, d, e, f, g, h, i, j);
  } else if constexpr (kCount == 11) {
    const auto& [a, b, c, d, e, f, g, h, i, j, k] = value;
    return std::tie(a, b, c, d, e, f, g, h, i, j, k);
  } else if constexpr (kCount == 12) {
    const auto& [a, b, c, d, e, f, g, h, i, j, k, l] = value;
    return std::tie(a, b, c, d, e, f, g, h, i, j, k, l);
  } else if constexpr (kCount == 13) {
    const auto& [a, b, c, d, e, f, g, h, i, j, k, l, m] = value;
    return std::tie(a, b, c, d, e, f, g, h, i, j, k, l, m);
  } else if constexpr (kCount == 14) {
    const auto& [a, b, c, d, e, f, g, h, i, j, k, l, m, n] = value;
    return std::tie(a, b, c, d, e, f, g, h, i, j, k, l, m, n);
  } else if constexpr (kCount == 15) {
    const auto& [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o] = value;
    return std::tie(a, b, c, d, e, f, g, h, i, j, k, l, m, n, o);
  } else if constexpr (kCount == 16) {
    const auto& [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p] = value;
    return std::tie(a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p);
  } else if constexpr (kCount == 17) {
    const auto& [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q] = value;
    return std::tie(a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q);
  } else if constexpr (kCount == 18) {
    const auto& [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r] = value;
    return std::tie(a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r);
  } else if constexpr (kCount == 19) {
    const auto& [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s] = value;
    return std::tie(a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s);
  } else if constexpr (kCount == 20) {
    const auto& [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t] = value;
    return std::tie(a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t);
  } else if constexpr (kCount == 21) {
    const auto& [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t, u] = value;
    return std::tie(a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t, u);
  } else if constexpr (kCount == 22) {
    const auto& [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t, u, v] = value;
    return std::tie(a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t, u, v);
  } else if constexpr (kCount == 23) {
    const auto& [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t, u, v, w] = value;
    return std::tie(a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t, u, v, w);
  } else if constexpr (kCount == 24) {
    const auto& [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t, u, v, w, x] = value;
    return std::tie(a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t, u, v, w, x);
  } else if constexpr (kCount == 25) {
    const auto& [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t, u, v, w, x, y] = value;
    return std::tie(a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t, u, v, w, x, y);
  } else {
    const auto& [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t, u, v, w, x, y, z] =
        value;
    return std::tie(a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t, u, v, w, x, y, z);
  }
  // clang-format on
}

template <typename T>
std::string shortTypeName() {
  int status = 0;
  const std::unique_ptr<char, void (*)(void*)> full(
      abi::__cxa_demangle(typeid(T).name(), nullptr, nullptr, &status), std::free);
  std::string name = status == 0 ? full.get() : typeid(T).name();
  const auto colon = name.rfind("::");
  return colon == std::string::npos ? name : name.substr(colon + 2);
}

// Walks a Config field by field (tieFields: no hand-written list of fields to forget) and
// records, per field of each struct ("RetryPolicy#1" = field 1 of a RetryPolicy, wherever it
// sits; "?" the value of an optional, "[]" the items of a list), whether some config had a value
// other than the default. A struct is rendered by one function wherever it sits, so a field
// needs a value other than its default in one place, not in every place its struct is used.
class FieldCoverage {
 public:
  void add(const Config& c) { visit(c, Config{}, "Config"); }

  [[nodiscard]] std::vector<std::string> uncovered() const {
    std::vector<std::string> out;
    for (const auto& [path, covered] : fields_) {
      if (!covered) out.push_back(path);
    }
    return out;
  }
  [[nodiscard]] std::size_t size() const { return fields_.size(); }

 private:
  template <typename T>
  void visit(const T& value, const T& defaults, const std::string& path) {
    fields_[path] |= !(value == defaults);
    if constexpr (kIsOptional<T>) {
      using U = typename T::value_type;
      if (defaults) fields_[path + "=unset"] |= !value;  // an optional that is on by default
      const U fallback = defaults ? *defaults : U{};
      visit(value ? *value : fallback, fallback, path + "?");
    } else if constexpr (kIsVector<T>) {
      using U = typename T::value_type;
      if (value.empty()) visit(U{}, U{}, path + "[]");
      for (const auto& item : value) visit(item, U{}, path + "[]");
    } else if constexpr (std::is_class_v<T> && std::is_aggregate_v<T>) {
      const std::string prefix = shortTypeName<T>() + "#";
      const auto values = tieFields(value);
      const auto default_values = tieFields(defaults);
      [&]<std::size_t... I>(std::index_sequence<I...> /*unused*/) {
        (visit(std::get<I>(values), std::get<I>(default_values), prefix + std::to_string(I)), ...);
      }
      (std::make_index_sequence<std::tuple_size_v<decltype(values)>>{});
    }
  }

  std::map<std::string, bool> fields_;
};

TEST(ConfigYaml, TheRichConfigsGiveEveryFieldAValueOtherThanItsDefault) {
  FieldCoverage coverage;
  for (const auto& [name, yaml] : richConfigs()) {
    const auto r = load(yaml, name);
    ASSERT_TRUE(r.ok()) << r.diagnostics.front().format();
    coverage.add(*r.config);
  }
  EXPECT_GT(coverage.size(), 150U);
  EXPECT_THAT(coverage.uncovered(), ::testing::IsEmpty())
      << "fields (Struct#n: field n of Struct in config.h, counting from 0) that no rich config "
         "sets: give each a value other than its default in richConfigs(), and render it";
}

}  // namespace
}  // namespace sluice::gateway::config
