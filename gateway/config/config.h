// sluice's configuration as plain values.
//
// Loading is a pure function from YAML bytes to a validated Config (config/loader.h); every
// component is then constructed from these values and cannot fail. Durations are
// std::chrono::milliseconds and sizes are bytes; in YAML both require units ("250ms", "10s",
// "8KiB"), and every key is checked: unknown keys, wrong types, missing units, bad addresses and
// duplicate names are errors. docs/configuration.md is the reference for every field.
//
// Every struct compares with a defaulted operator== (field by field), so whether a definition
// changed on a reload is decided by the compiler, never by a hand-written list of fields.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::gateway::config {

using Millis = std::chrono::milliseconds;

// An IP literal and a port. "localhost" is accepted and means 127.0.0.1.
struct Address {
  std::string ip;  // "127.0.0.1", "::1", "0.0.0.0"
  std::uint16_t port = 0;

  [[nodiscard]] std::string text() const;  // "127.0.0.1:8080", "[::1]:8080"
  friend bool operator==(const Address&, const Address&) = default;
};

struct ListenerLimits {
  std::uint64_t request_line = 8 * 1024;      // 414 beyond
  std::uint64_t header_bytes = 32 * 1024;     // whole head; 431 beyond
  std::uint32_t headers = 100;                // field count; 431 beyond
  std::uint64_t body = 100ULL * 1024 * 1024;  // default per-route body limit; 413 beyond
  friend bool operator==(const ListenerLimits&, const ListenerLimits&) = default;
};

struct ListenerTimeouts {
  Millis header{10'000};  // from a request's first byte to the end of its head (slowloris)
  Millis body{30'000};    // longest wait for request body progress
  Millis idle{60'000};    // keep-alive wait for the next request
  Millis send{30'000};    // longest wait for a slow client to accept response bytes
  friend bool operator==(const ListenerTimeouts&, const ListenerTimeouts&) = default;
};

// How slowly, and for how long in all, sluice waits on a client moving a body: the request body
// it uploads (body_*) and the response it reads (send_*). Only time spent waiting on the client
// counts (a read of its body pending, or response bytes it has not taken yet), never time spent
// waiting on the upstream. A rate is bytes per second averaged over each `window` of that time;
// the first window is longer by `grace`. Zero turns a limit off. Broken on a request body: 408
// (if no response has started) and the connection closed; on a response: the connection closed.
// The listener's values, which a route can override one by one (RouteSlowClient).
struct SlowClient {
  Millis body_total{0};               // 0: no limit
  std::uint64_t body_min_rate = 512;  // bytes/s; 0: no minimum
  Millis send_total{0};
  std::uint64_t send_min_rate = 512;
  Millis window{20'000};
  Millis grace{10'000};
  friend bool operator==(const SlowClient&, const SlowClient&) = default;
};

// A route's overrides of its listener's SlowClient: each key set replaces the listener's.
struct RouteSlowClient {
  std::optional<Millis> body_total;
  std::optional<std::uint64_t> body_min_rate;
  std::optional<Millis> send_total;
  std::optional<std::uint64_t> send_min_rate;
  std::optional<Millis> window;
  std::optional<Millis> grace;
  friend bool operator==(const RouteSlowClient&, const RouteSlowClient&) = default;

  [[nodiscard]] SlowClient over(const SlowClient& l) const {
    return {body_total.value_or(l.body_total), body_min_rate.value_or(l.body_min_rate),
            send_total.value_or(l.send_total), send_min_rate.value_or(l.send_min_rate),
            window.value_or(l.window),         grace.value_or(l.grace)};
  }
  [[nodiscard]] bool empty() const { return *this == RouteSlowClient{}; }
};

struct Listener {
  std::string name;
  Address address;
  bool trust_forwarded = false;  // keep the client's X-Forwarded-* (sluice behind a proxy)
  ListenerLimits limits;
  ListenerTimeouts timeouts;
  SlowClient slow_client;
  friend bool operator==(const Listener&, const Listener&) = default;
};

// A condition on the named header, query parameter or cookie of a request (route match). A
// value condition holds when any occurrence of the name satisfies it; `invert` negates the
// result, except that a value that cannot be read (a query value with a bad %-escape) fails the
// condition either way: a malformed request never matches by accident.
struct ValueMatch {
  enum class Kind : std::uint8_t { Present, Exact, Prefix, Regex };
  std::string name;  // header names in lower case; parameter and cookie names as written
  Kind kind = Kind::Present;
  std::string value;         // Exact, Prefix: the text; Regex: an RE2 pattern, matching whole
  bool ignore_case = false;  // Exact and Prefix: ASCII case-insensitive
  bool invert = false;       // `present: false` is Present inverted
  friend bool operator==(const ValueMatch&, const ValueMatch&) = default;
};

// What a route accepts: all of its conditions hold (routing/request_matcher.h has the rules).
struct RouteMatch {
  std::string host;                        // "" = any; "example.com"; "*.example.com"
  std::optional<std::string> path_prefix;  // "/api/"
  std::optional<std::string> path;         // exact path
  std::optional<std::string> path_regex;   // RE2, matching the whole path
  std::vector<std::string> methods;        // any of these (case-sensitive); empty = any method
  std::vector<ValueMatch> headers;
  std::vector<ValueMatch> query;    // parameters, %-decoded ('+' is a space)
  std::vector<ValueMatch> cookies;  // in the Cookie field(s)
  friend bool operator==(const RouteMatch&, const RouteMatch&) = default;
};

// What makes a failed attempt worth another try (route retry.on). Conditions other than a
// connect failure happen after the request was sent, so they apply only to requests that can be
// sent again: no body (or an empty one), and an idempotent method unless retry.methods is any.
struct RetryOn {
  bool connect_failure = true;  // refused, connect timeout, pool wait timeout: nothing was sent
  bool reset = false;           // the upstream closed, reset or sent garbage before a response head
  bool timeout = false;         // no response head within the try's timeout
  std::vector<int> statuses;    // response statuses to retry (the response is discarded), e.g. 503
  friend bool operator==(const RetryOn&, const RetryOn&) = default;
};

struct RetryPolicy {
  std::uint32_t attempts = 2;  // tries in total, the first included
  RetryOn on;
  // Longest wait for one try's response head; unset = whatever is left of the route timeout.
  std::optional<Millis> per_try_timeout;
  bool any_method = false;  // retry non-idempotent methods too (methods: any)
  // Pause before retry n (n = 0 first): full jitter over min(max, base * 2^n). A Retry-After
  // from a retried 429/503 lengthens it; one longer than backoff_max is not waited for.
  Millis backoff_base{25};
  Millis backoff_max{250};
  friend bool operator==(const RetryPolicy&, const RetryPolicy&) = default;
};

// Retries to a cluster are at most `percent` of its requests over `window`, or `min_per_second`
// when that is more (resilience/retry_budget.h), however many routes and tries ask.
struct RetryBudget {
  double percent = 20;
  double min_per_second = 10;
  Millis window{10'000};
  friend bool operator==(const RetryBudget&, const RetryBudget&) = default;
};

// What identifies "one client" to a rate limit: the parts are joined into one key.
struct RateKeyPart {
  enum class Kind : std::uint8_t { ClientIp, Route, Header };
  Kind kind = Kind::ClientIp;
  std::string header;  // Kind::Header: the field name, lower case
  friend bool operator==(const RateKeyPart&, const RateKeyPart&) = default;
};

enum class RateAlgorithm : std::uint8_t { Gcra, TokenBucket, LeakyBucket, SlidingWindow };

// A rate limit (guards/rate_limit_guard.h). `requests` per `period` is the steady rate; for
// sliding_window it is the most requests in any window of length `period`.
struct RateLimit {
  RateAlgorithm algorithm = RateAlgorithm::Gcra;
  std::uint64_t requests = 0;  // >= 1
  Millis period{1'000};        // "100/s" -> 100 per 1000ms
  // gcra, token_bucket: requests allowed at once (>= 1). leaky_bucket: excess requests accepted
  // beyond the steady rate (nginx burst=, >= 0). Unused by sliding_window.
  std::uint64_t burst = 1;
  // leaky_bucket only: excess requests forwarded at once (nginx delay=); beyond it, up to the
  // burst, requests are held to the rate. nodelay = forward all accepted excess at once.
  std::uint64_t delay = 0;
  bool nodelay = false;
  std::vector<RateKeyPart> key{RateKeyPart{}};  // default: the client IP
  std::uint64_t max_keys = 100'000;             // keys tracked at once (least recent evicted)
  int status = 429;                             // answer when limited (429 or 503)
  // local: this instance's own limit. global: one limit shared by every instance through Redis
  // (the `redis` section; gcra and token_bucket only; guards/global_limit.h).
  enum class Scope : std::uint8_t { Local, Global };
  Scope scope = Scope::Local;
  // global: what a request gets when Redis cannot answer within redis.timeout (down, slow, its
  // breaker open): allow it, deny it, or apply `local`: this limit divided by
  // redis.instances on each instance.
  enum class OnFailure : std::uint8_t { Allow, Deny, Local };
  OnFailure on_failure = OnFailure::Local;
  friend bool operator==(const RateLimit&, const RateLimit&) = default;
};

// A cap on the requests of a route in flight at once (guards/concurrency_guard.h).
struct AdaptiveConcurrency {
  enum class Algorithm : std::uint8_t { Gradient, Aimd, Vegas, Auto };
  Algorithm algorithm = Algorithm::Gradient;
  std::uint32_t initial = 20;
  std::uint32_t min = 1;
  std::uint32_t max = 1'000;
  Millis timeout{5'000};       // aimd: a request slower than this counts as a drop
  Millis backoff_cooldown{0};  // aimd: a drop this soon after a decrease is ignored (0: none)
  // gradient: a sample window closes once it has this many samples and lasted this long (1 and
  // 0: every completion updates the limit).
  std::uint32_t window_samples = 1;
  Millis window_duration{0};
  friend bool operator==(const AdaptiveConcurrency&, const AdaptiveConcurrency&) = default;
};

// CoDel for the concurrency queue (resilience/queue_delay.h): once waiters have left the queue
// after at least `target` for a whole `interval`, a waiter that waited `target` or more is shed.
struct QueueDelay {
  Millis target{5};
  Millis interval{100};
  friend bool operator==(const QueueDelay&, const QueueDelay&) = default;
};

struct Concurrency {
  std::uint32_t max = 0;                        // static limit (when not adaptive), >= 1
  std::optional<AdaptiveConcurrency> adaptive;  // instead of max
  std::uint32_t queue = 0;                      // requests that may wait for a slot
  Millis queue_timeout{1'000};                  // longest wait for a slot; then shed
  std::optional<QueueDelay> queue_delay;        // shed by time spent queued, CoDel-like
  int status = 503;                             // answer when shed (503 or 429)
  Millis retry_after{1'000};                    // Retry-After on a shed request (0: none)
  friend bool operator==(const Concurrency&, const Concurrency&) = default;
};

// What a request gets while its circuit breaker is open (guards/circuit_breaker_guard.h).
struct Fallback {
  int status = 503;  // the static answer (also when the cache has nothing for the request)
  std::string body = "circuit breaker open\n";
  std::string content_type = "text/plain; charset=utf-8";
  std::vector<std::pair<std::string, std::string>> headers;
  // Serve the last good (200, Content-Length) response to the same GET, if one was kept.
  bool cache = false;
  std::uint32_t cache_entries = 1'000;          // responses kept (least recently used evicted)
  std::uint64_t cache_max_body = 1 << 20;       // larger responses are not kept
  std::uint64_t cache_max_bytes = 64ULL << 20;  // body bytes kept in all (LRU evicted)
  std::optional<std::string> cluster;  // forward to this cluster instead (fallback cluster)
  friend bool operator==(const Fallback&, const Fallback&) = default;
};

// resilience::CircuitBreaker's settings (resilience/circuit_breaker.h has the exact rules). An
// upstream failure (502/503/504 from sluice, a reset, a timeout) or a status in
// `failure_statuses` is a failure; a call slower than slow_call_duration is slow.
struct CircuitBreaker {
  std::uint32_t window = 100;         // calls in the count-based window
  std::optional<Millis> window_time;  // instead: a time-based window of this length
  std::uint32_t minimum_calls = 20;   // before it may trip
  double failure_rate = 50;           // percent of the window that trips it (>=)
  double slow_call_rate = 100;        // percent; 100 = only when every call is slow
  std::optional<Millis> slow_call_duration;
  Millis open_duration{30'000};
  double open_duration_multiplier = 1;  // growth on repeated trips from half-open
  Millis max_open_duration{300'000};
  std::uint32_t half_open_probes = 5;
  std::vector<int> failure_statuses;  // default: 500-599
  Fallback fallback;
  // Shared with the other instances through Redis (guards/breaker_store.h): an open on one
  // opens the others. Needs a top-level `redis` section.
  enum class Share : std::uint8_t { None, Redis };
  Share share = Share::None;
  // Authoritative: the shared state decides (open, one instance's probes at a time, close);
  // hint: a shared open opens this instance for its period, then its own counts decide.
  enum class ShareMode : std::uint8_t { Authoritative, Hint };
  ShareMode share_mode = ShareMode::Authoritative;
  friend bool operator==(const CircuitBreaker&, const CircuitBreaker&) = default;
};

// Breaks things on purpose (guards/fault_guard.h): delay and/or abort a share of the requests.
struct Fault {
  Millis delay{0};
  double delay_percent = 0;  // 0-100
  int abort_status = 0;      // 0: no abort
  double abort_percent = 0;
  friend bool operator==(const Fault&, const Fault&) = default;
};

// What a consistent-hashing cluster hashes for a request (route hash_key); parts are joined.
struct HashKeyPart {
  enum class Kind : std::uint8_t { ClientIp, Header, Cookie, Path, Query };
  Kind kind = Kind::ClientIp;
  std::string name;  // Header (lower case), Cookie, Query: which one
  friend bool operator==(const HashKeyPart&, const HashKeyPart&) = default;
};

// One side of a weighted split.
struct WeightedCluster {
  std::string cluster;
  std::uint32_t weight = 0;  // a share of the sum of the split's weights; 0 sends nothing
  friend bool operator==(const WeightedCluster&, const WeightedCluster&) = default;
};

// Tag routing: the hosts of the route's cluster a request goes to, chosen by the labels the hosts
// carry in their metadata (Endpoint::metadata, registry and endpoints-file metadata alike).
struct Subset {
  // Every host of the subset carries all of these (env: gray).
  std::map<std::string, std::string> labels;
  // A request with header `header` asks for hosts whose label `label` has the header's value
  // (x-env: gray -> env: gray), on top of `labels`; without the header, `labels` alone decide.
  std::string header;  // lowercase; "" when the subset is fixed
  std::string label;
  // No host carries the labels: send to the whole cluster, or answer 503.
  enum class Fallback : std::uint8_t { Cluster, None };
  Fallback fallback = Fallback::Cluster;
  friend bool operator==(const Subset&, const Subset&) = default;
};

// A share of a route's requests copied to another cluster, fire-and-forget (proxy/mirror.h): the
// copy never delays or fails the request it copies, and its response is read and dropped.
struct Mirror {
  std::string cluster;
  double percent = 100;                // of the route's forwarded requests, 0-100
  std::uint64_t max_body = 64 * 1024;  // a request with a larger body is not copied
  Millis timeout{1'000};               // the copy's whole exchange, connect to last byte
  std::uint32_t max_in_flight = 256;   // copies running at once, per worker; more are dropped
  friend bool operator==(const Mirror&, const Mirror&) = default;

  static constexpr std::uint64_t kMaxBody = 16ULL * 1024 * 1024;
  static constexpr Millis kMaxTimeout{60'000};
};

// A progressive canary on a two-sided split (server/route_canary.h): the second side is the
// canary, the first its baseline. The canary's share steps up each interval while it stays
// within the margins of the baseline, goes to 100 % after the last step, and back to 0 as soon as
// a margin is broken with enough evidence (resilience/canary_analysis.h).
struct Canary {
  std::vector<double> steps{5, 25, 50};  // the canary's percent at each step, increasing, (0, 100]
  Millis interval{60'000};               // each step lasts this long before the next
  std::uint64_t min_requests = 100;      // on each side in a window, or it is not judged
  double max_error_increase = 1;         // percentage points of 5xx over the baseline's rate
  double max_latency_ratio = 1.5;        // canary p99 over baseline p99
  Millis min_latency_increase{5};        // a p99 slowdown smaller than this never fails
  double confidence = 99;                // percent, of each one-sided test
  friend bool operator==(const Canary&, const Canary&) = default;
};

// Fields a route changes in what it forwards; names as written (compared case-insensitively),
// values may hold variables (value_template.h). Applied in this order: remove, set, add.
struct HeaderEdits {
  std::vector<std::string> remove;
  std::vector<std::pair<std::string, std::string>> set;  // replaces every field of the name
  std::vector<std::pair<std::string, std::string>> add;  // appended, beside those kept
  [[nodiscard]] bool empty() const { return remove.empty() && set.empty() && add.empty(); }
  friend bool operator==(const HeaderEdits&, const HeaderEdits&) = default;
};

// What a route changes in the request line and Host it sends upstream.
struct Rewrite {
  // Replaces the part of the path that the route's match.path_prefix (or match.path) matched.
  std::optional<std::string> path_prefix;
  std::optional<std::string> host;  // the Host sent upstream (X-Forwarded-Host keeps the client's)
  friend bool operator==(const Rewrite&, const Rewrite&) = default;
};

// A route that answers with a redirect: Location is the request's URL with these parts replaced.
struct Redirect {
  int status = 301;                        // 301, 302, 303, 307 or 308
  std::optional<std::string> scheme;       // http or https; default: the listener's
  std::optional<std::string> host;         // default: the request's Host (without its port)
  std::optional<std::uint16_t> port;       // default: the request's (none when the scheme changes)
  std::optional<std::string> path;         // the whole path
  std::optional<std::string> path_prefix;  // the part match.path_prefix (or match.path) matched
  bool strip_query = false;
  friend bool operator==(const Redirect&, const Redirect&) = default;
};

// A route that answers itself, with no upstream.
struct DirectResponse {
  int status = 200;
  std::string body;                                          // sent as is
  std::vector<std::pair<std::string, std::string>> headers;  // values may hold variables
  friend bool operator==(const DirectResponse&, const DirectResponse&) = default;

  static constexpr std::size_t kMaxBody = 64 * 1024;
};

// True when `metadata` has every label of `labels` with the same value.
[[nodiscard]] inline bool carriesLabels(const std::map<std::string, std::string>& metadata,
                                        const std::map<std::string, std::string>& labels) {
  return std::all_of(labels.begin(), labels.end(), [&](const auto& kv) {
    const auto it = metadata.find(kv.first);
    return it != metadata.end() && it->second == kv.second;
  });
}

struct Route {
  std::string name;
  RouteMatch match;
  std::string cluster;  // where matching requests go; "" when `split` says instead
  // A weighted split over several clusters (two or more, distinct); each side applies its own
  // cluster's guards, balancing and retry budget, and a request's retries stay on its side.
  std::vector<WeightedCluster> split;
  // What keeps a client on one side (header:<n>, cookie:<n>, query:<n>, client_ip, path); empty:
  // each request is drawn at random.
  std::vector<HashKeyPart> split_key;
  // Only the hosts carrying these labels, on each side of a split alike.
  std::optional<Subset> subset;
  std::optional<Mirror> mirror;  // a copy of a share of the requests, to another cluster
  // With a two-sided split: the second side's share follows the canary, not `split`'s weights.
  std::optional<Canary> canary;
  Rewrite rewrite;
  HeaderEdits request_headers;   // to the upstream
  HeaderEdits response_headers;  // to the client (upstream and direct responses)
  // Instead of cluster/split: the route answers itself.
  std::optional<Redirect> redirect;
  std::optional<DirectResponse> direct_response;
  // The request's whole budget: from its head arriving to the upstream response head, across
  // guards, queues and every try. An earlier deadline sent by the client (X-Sluice-Timeout-Ms,
  // grpc-timeout) wins.
  Millis timeout{15'000};
  std::optional<std::uint64_t> max_body;  // overrides the listener's limits.body
  RouteSlowClient slow_client;            // overrides the listener's slow_client, key by key
  // A client that closes its connection while its request waits (a guard's queue, a pooled
  // connection, the upstream's response head, a retry's backoff): Cancel stops the request there
  // (the upstream connection is closed, 499); Finish lets it run to its end (nginx
  // proxy_ignore_client_abort on), for endpoints where the upstream must see the request through.
  enum class ClientAbort : std::uint8_t { Cancel, Finish };
  ClientAbort client_abort = ClientAbort::Cancel;
  RetryPolicy retry;
  std::optional<RateLimit> rate_limit;
  std::optional<Concurrency> concurrency;
  std::optional<CircuitBreaker> circuit_breaker;  // instead of the cluster's, when both are set
  std::optional<Fault> fault;
  // For a ring_hash or maglev cluster: what identifies "the same key" (default: client IP).
  std::vector<HashKeyPart> hash_key;
  friend bool operator==(const Route&, const Route&) = default;

  // A redirect or direct response: no cluster, no upstream.
  [[nodiscard]] bool answersItself() const { return redirect || direct_response; }
  // The clusters requests go to: `cluster` with weight 1, or the split's sides ("" for a route
  // that answers itself).
  [[nodiscard]] std::vector<WeightedCluster> targets() const {
    if (split.empty()) return {{cluster, 1}};
    return split;
  }
};

struct Endpoint {
  Address address;
  std::uint32_t weight = 1;
  // Labels of the host (env: gray, zone: a), as registered hosts carry them: what a route's
  // subset selects by. At most kMaxMetadata entries, keys and values up to 256 bytes.
  std::map<std::string, std::string> metadata;
  friend bool operator==(const Endpoint&, const Endpoint&) = default;

  static constexpr std::size_t kMaxMetadata = 32;
  static constexpr std::size_t kMaxMetadataText = 256;
};

struct PoolSettings {
  std::uint32_t max_connections = 1024;  // per worker and host
  std::uint32_t max_idle = 256;          // idle keep-alive connections kept per worker and host
  Millis idle_timeout{60'000};           // an idle pooled connection is closed after this
  Millis connect_timeout{2'000};
  Millis max_wait{1'000};  // wait for a free connection at max_connections; then 503
  friend bool operator==(const PoolSettings&, const PoolSettings&) = default;
};

// Passive health: hosts that fail more than their peers leave selection for a while
// (resilience/outlier_detector.h has the exact rules; the defaults are Envoy's).
struct OutlierDetection {
  std::uint32_t consecutive_5xx = 5;              // 0 disables
  std::uint32_t consecutive_gateway_failure = 0;  // 502/503/504 and connection failures; 0: off
  std::optional<double> failure_percentage = 85;  // percent; unset disables
  std::uint32_t failure_percentage_minimum_hosts = 5;
  std::uint32_t failure_percentage_request_volume = 50;
  Millis interval{10'000};
  Millis base_ejection_time{30'000};
  Millis max_ejection_time{300'000};
  double max_ejection_percent = 10;
  friend bool operator==(const OutlierDetection&, const OutlierDetection&) = default;
};

// Caps on a cluster across all workers and hosts (upstream/bulkhead.h); the defaults are
// Envoy's.
struct Bulkhead {
  std::uint32_t max_connections = 1024;
  std::uint32_t max_pending = 1024;
  std::uint32_t max_requests = 1024;
  std::uint32_t max_retries = 3;
  friend bool operator==(const Bulkhead&, const Bulkhead&) = default;
};

// A cluster's active health check (upstream/health_checker.h), run from the main thread.
struct HealthCheck {
  enum class Type : std::uint8_t { Http, Tcp };
  struct StatusRange {
    int first = 200;
    int last = 299;
    friend bool operator==(const StatusRange&, const StatusRange&) = default;
  };
  Type type = Type::Http;
  std::string path = "/";  // http: the request target
  std::string host;        // http: the Host header; empty = the endpoint's address
  std::vector<StatusRange> expected_statuses{{200, 299}};  // http
  Millis interval{5'000};
  std::optional<Millis> jitter;  // added at random to each interval; unset = interval / 10
  Millis timeout{1'000};         // connect + (http) the response head
  std::uint32_t unhealthy_threshold = 3;
  std::uint32_t healthy_threshold = 2;

  [[nodiscard]] Millis effectiveJitter() const { return jitter.value_or(interval / 10); }
  [[nodiscard]] bool expects(int status) const {
    for (const auto& r : expected_statuses) {
      if (status >= r.first && status <= r.last) return true;
    }
    return false;
  }
  friend bool operator==(const HealthCheck&, const HealthCheck&) = default;
};

// Hosts that join a cluster while sluice runs (upstream/host_set.h): registered through the
// admin API, listed in a watched file, or both.
struct Discovery {
  std::uint32_t max_hosts = 64;  // slots beside the static endpoints
  bool registry = false;
  Millis default_ttl{30'000};  // a registration that names no TTL
  Millis max_ttl{300'000};
  std::string file;  // empty: none
  Millis file_interval{1'000};
  // The hosts under this etcd prefix (the top-level `etcd` section's cluster), watched; empty:
  // none. Values are JSON: {"address": "ip:port", "weight": n, "metadata": {...}}.
  std::string etcd;
  friend bool operator==(const Discovery&, const Discovery&) = default;
};

// A host's weight ramps from min_weight_percent up to its full weight over `window` after it
// becomes healthy again (resilience/lb/slow_start.h has the formula).
struct SlowStart {
  Millis window{30'000};
  double aggression = 1.0;
  double min_weight_percent = 10;
  friend bool operator==(const SlowStart&, const SlowStart&) = default;
};

// Weights that follow what each worker observes of its hosts (resilience/lb/weight_adjuster.h
// has the formulas): their latency and errors, or a utilization they report in a header.
struct DynamicWeights {
  enum class Signal : std::uint8_t { Latency, Utilization };
  Signal signal = Signal::Latency;
  std::string header = "x-utilization";  // utilization: lower-cased name of the report header
  Millis decay_time{10'000};
  double min_samples = 10;
  double error_penalty = 1;
  double min_weight_percent = 10;
  Millis blackout{10'000};     // utilization: reports count only after this long...
  Millis report_ttl{180'000};  // ...and until this long after the last one
  Millis update_interval{1'000};
  friend bool operator==(const DynamicWeights&, const DynamicWeights&) = default;
};

enum class LbPolicy : std::uint8_t {
  RoundRobin,        // smooth weighted round robin (nginx's)
  Random,            // weighted random
  LeastRequest,      // power of two choices on requests in flight per weight
  LeastConnections,  // fewest requests in flight per weight, over all hosts
  PeakEwma,          // power of two choices on peak-EWMA latency x (in flight + 1)
  RingHash,          // consistent hashing on a ring with virtual nodes (route hash_key)
  Maglev,            // Maglev consistent hashing (route hash_key)
};

// A cluster's `lb` (upstream/lb/): the policy and its parameters.
struct LoadBalancing {
  LbPolicy policy = LbPolicy::RoundRobin;
  std::uint32_t ring_vnodes = 100;          // ring_hash: points per unit of weight
  std::uint64_t ring_max_size = 1U << 22U;  // ring_hash: points in all (at most)
  std::uint64_t maglev_table_size = 65537;  // maglev: a prime
  Millis ewma_decay{10'000};                // peak_ewma: time for the estimate to decay to 1/e
  // ring_hash: a host takes at most this factor of its weighted share of the requests in
  // flight (consistent hashing with bounded loads); unset = plain ring hash.
  std::optional<double> balance_factor;
  // Below this percentage of actively healthy hosts, balance across all of them (0: never;
  // then an all-unhealthy cluster answers 503).
  double panic_threshold = 50;
  std::optional<SlowStart> slow_start;            // not for the hashing policies
  std::optional<DynamicWeights> dynamic_weights;  // not for the hashing policies

  [[nodiscard]] bool hashing() const {
    return policy == LbPolicy::RingHash || policy == LbPolicy::Maglev;
  }
  friend bool operator==(const LoadBalancing&, const LoadBalancing&) = default;
};

struct Cluster {
  std::string name;
  std::vector<Endpoint> endpoints;
  LoadBalancing lb;
  PoolSettings pool;
  Millis io_timeout{
      30'000};  // longest an upstream may take to accept request bytes or send more response bytes
  std::optional<RateLimit> rate_limit;  // shared by every route to this cluster
  RetryBudget retry_budget;
  std::optional<CircuitBreaker> circuit_breaker;  // one breaker for every route to the cluster
  std::optional<OutlierDetection> outlier_detection;
  std::optional<Bulkhead> bulkhead;
  std::optional<HealthCheck> health_check;
  std::optional<Discovery> discovery;
  // Export sluice_upstream_response_head_seconds by host too (one histogram per host: 17 series
  // each, so a choice for clusters of a few hosts).
  bool host_latency_histogram = false;
  friend bool operator==(const Cluster&, const Cluster&) = default;
};

struct Admin {
  Address address;
  // A file holding the bearer token that mutating admin requests (every method but GET and
  // HEAD) must present; empty: no token asked. Read at start and at each reload, so a rotated
  // token takes effect with a reload.
  std::string token_file;
  friend bool operator==(const Admin&, const Admin&) = default;
};

// Fields an access log line may contain. The default set is all of them but `query`, in this
// order: a query string may carry tokens and personal data, so logging it is a choice.
inline constexpr std::array<std::string_view, 17> kAccessLogFields = {
    "time",     "request_id", "trace_id",    "client", "method",  "host",
    "path",     "status",     "duration_ms", "route",  "cluster", "upstream",
    "bytes_in", "bytes_out",  "user_agent",  "error",  "query"};
inline constexpr std::string_view kAccessLogOptInField = "query";

// The diagnostic log (stderr): what sluice says about itself, apart from the access log.
struct Log {
  enum class Level : std::uint8_t { Trace, Debug, Info, Warn, Error, Off };
  enum class Format : std::uint8_t { Text, Json };
  Level level = Level::Info;
  Format format = Format::Text;
  friend bool operator==(const Log&, const Log&) = default;
};
inline constexpr std::array<std::string_view, 6> kLogLevels = {"trace", "debug", "info",
                                                               "warn",  "error", "off"};
inline constexpr std::array<std::string_view, 2> kLogFormats = {"text", "json"};

// OpenTelemetry tracing: W3C trace context followed on every request, spans of the sampled
// ones exported to a collector as OTLP/HTTP JSON (trace/span_exporter.h; docs/operations.md,
// "Tracing").
struct Tracing {
  std::string otlp_endpoint;        // "http://ip:port/path", as written
  Address collector;                // its address
  std::string path = "/v1/traces";  // its path
  double sample_ratio = 0.01;       // of the requests that arrive without a sampling decision
  std::string service_name = "sluice";
  std::uint32_t queue = 2048;   // spans waiting for export at most; beyond, dropped
  std::uint32_t batch = 512;    // spans per export request at most
  Millis flush_interval{1000};  // a partial batch waits at most this long
  Millis timeout{5000};         // per export request
  friend bool operator==(const Tracing&, const Tracing&) = default;
};

// The Redis server that global rate limits share (redis/redis_client.h; docs/distributed.md).
struct Redis {
  Address address;
  Millis timeout{20};         // every call's deadline; then the limit's on_failure applies
  std::string username;       // AUTH with an ACL user (Redis 6+); empty: the default user
  std::string password_file;  // AUTH password, read at start and at every reload; empty: none
  std::uint32_t db = 0;       // SELECT
  std::string key_prefix = "sluice:";  // every key sluice writes starts with it
  // How many instances share the limits: on_failure local gives each 1/instances of a limit.
  std::uint32_t instances = 1;
  friend bool operator==(const Redis&, const Redis&) = default;
};

// This instance's entry in etcd (the top-level etcd section's `register`): the key
// `prefix` + `name` under a lease of `ttl`, renewed every ttl/3; the fleet list (admin /fleet).
struct EtcdRegister {
  std::string prefix;
  std::string name;    // empty: "<hostname>-<first listener's port>"
  Address address;     // what others should call; port 0: the first listener's address
  Millis ttl{10'000};  // the lease; the key goes this long after the instance stops renewing
  friend bool operator==(const EtcdRegister&, const EtcdRegister&) = default;
};

// The etcd cluster for discovery (a cluster's discovery.etcd) and this instance's registration.
struct Etcd {
  std::vector<Address> endpoints;    // members' client URLs (plain HTTP); at least one
  Millis timeout{2'000};             // each request's deadline
  std::optional<EtcdRegister> self;  // `register`; none: no registration
  friend bool operator==(const Etcd&, const Etcd&) = default;
};

struct AccessLog {
  bool enabled = false;
  std::string path = "stdout";      // "stdout", "stderr" or a file path
  std::vector<std::string> fields;  // empty = the default set (access_log.h)
  friend bool operator==(const AccessLog&, const AccessLog&) = default;
};

struct Config {
  std::uint32_t workers = 0;  // 0 = auto: the CPUs the process may use (server/cpu_limit.h)
  Millis drain_timeout{30'000};
  // On SIGTERM/SIGINT, /ready answers 503 at once but listeners keep accepting and serving for
  // this long before the drain starts, so that load balancers watching /ready move away before
  // connections are refused. 0: the drain starts at once.
  Millis drain_accept_grace{0};
  std::vector<Listener> listeners;
  std::optional<Admin> admin;
  Log log;
  AccessLog access_log;
  std::optional<Tracing> tracing;
  std::optional<Redis> redis;
  std::optional<Etcd> etcd;
  std::vector<Route> routes;
  std::vector<Cluster> clusters;

  [[nodiscard]] const Cluster* findCluster(std::string_view name) const;
  friend bool operator==(const Config&, const Config&) = default;
};

}  // namespace sluice::gateway::config
