// The typed state of one request as it moves through the pipeline (route -> guards -> forward ->
// response -> complete). Guards read it, the forwarding loop fills in the outcome, completion
// feedback and the access log read the result. One RequestContext per connection is reused for
// each of its requests, so its strings keep their capacity and cost no allocation after the
// first request.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/config/config.h"
#include "gateway/guards/held_permit.h"
#include "gateway/http/head.h"
#include "gateway/net/pending_wait.h"
#include "gateway/stats/request_phase.h"
#include "gateway/stats/worker_stats.h"
#include "gateway/trace/trace_context.h"
#include "resilience/circuit_breaker.h"

namespace sluice::gateway::proxy {

// A copy of the response as relayed, for a guard that keeps good responses (the circuit
// breaker's cached fallback). Only 200 responses with a Content-Length of at most max_body are
// captured; `complete` says the whole body reached the client.
struct ResponseCapture {
  bool wanted = false;
  std::uint64_t max_body = 0;
  std::string key;      // what the response is stored under (host and target)
  bool active = false;  // this response is being captured
  bool complete = false;
  std::string content_type;
  std::vector<std::pair<std::string, std::string>> fields;
  std::string body;

  void reset() {
    wanted = active = complete = false;
    key.clear();
    content_type.clear();
    fields.clear();
    // A large body moved into a cache leaves nothing behind; one that was not kept does not get
    // to pin its capacity on an idle connection.
    if (body.capacity() > 64 * 1024) std::string().swap(body);
    body.clear();
  }
};

struct RequestContext {
  // Facts about the request, copied from its head (the head itself is only valid until the
  // forwarding phase starts consuming the input buffer).
  const http::RequestHead* head = nullptr;  // valid during routing and guards only
  std::string method;
  std::string host;
  std::string path;
  std::string query;  // after the '?', without it; copied only when an access log is on
  std::string user_agent;
  std::string request_id;
  bool request_id_received = false;
  std::string_view client_ip;
  std::string_view listener;
  std::chrono::steady_clock::time_point start{};
  std::chrono::system_clock::time_point wall_start{};
  // How long the client will wait, if it said so (X-Sluice-Timeout-Ms or grpc-timeout, the
  // earlier of the two), and whether it used grpc-timeout (the remainder is passed on in it too).
  std::optional<std::chrono::nanoseconds> client_timeout;
  bool grpc_timeout = false;

  // Routing.
  std::optional<std::size_t> route_index;
  const config::Route* route = nullptr;
  std::size_t backend_index = 0;  // which of the route's backends (a split's side) it took
  std::size_t cluster_index = 0;
  const config::Cluster* cluster = nullptr;
  // When the request's time is up: start + the route timeout, or earlier if the client said so.
  std::chrono::steady_clock::time_point deadline{};

  // Guards: how many of the route's guards admitted the request, and what they hold until it
  // is over (returned by reset() and by the destructor, however the request ended).
  std::size_t guards_admitted = 0;
  // When the last guard let the request through (after any queueing or delay): latency fed back
  // to guards is measured from here, so their own waiting does not count as upstream slowness.
  std::chrono::steady_clock::time_point admitted{};
  // When its last upstream try began (unset: none): an adaptive concurrency limit learns from
  // that try alone, since earlier failed tries and the backoff between them are not upstream
  // queueing.
  std::chrono::steady_clock::time_point last_try{};
  // Requests holding a slot of the route's concurrency guard right after this one took its slot,
  // itself included (the `inflight` an adaptive limit is fed: resilience/adaptive_limit.h); 0
  // when no concurrency guard admitted it.
  std::size_t inflight_at_admission = 0;
  std::vector<guards::HeldPermit> permits;  // keeps its capacity across requests
  // The circuit breaker's permit (a route has at most one breaker), given its outcome in the
  // breaker guard's complete().
  resilience::CircuitBreaker::Permit breaker_permit;
  // Made for the first request that wants one (a breaker with a cached fallback) and kept, with
  // its strings' capacity, for the next requests this state serves: most routes never capture,
  // and all of them would pay for it in every request in flight.
  std::unique_ptr<ResponseCapture> capture;
  ResponseCapture& wantCapture() {
    if (!capture) capture = std::make_unique<ResponseCapture>();
    return *capture;
  }

  // Tracing (trace/), when the generation has a `tracing` section: the trace this request is
  // part of, continued from the client's traceparent or started here, and its server span.
  struct Trace {
    bool on = false;       // ids exist and each try carries a traceparent naming its span
    bool sampled = false;  // spans are recorded and exported
    trace::TraceId trace_id{};
    trace::SpanId span_id{};              // the server span
    std::optional<trace::SpanId> parent;  // the client's span, from its traceparent
    std::uint64_t start_unix_ns = 0;
  } trace;

  // The last guard that did more than let the request through (delayed, limited, shed, open,
  // aborted), for the server span; empty while none did. Views into the pinned generation.
  std::string_view guard;
  std::string_view guard_verdict;

  // What it is doing now, for /debug/requests.
  stats::RequestPhase phase = stats::RequestPhase::Idle;
  // The timer it waits on now, if any, for the connection to cut short when its client goes.
  net::PendingWait wait;
  // The client closed its connection while the request waited (route client_abort: cancel): the
  // wait in progress was cut short and the request ends there, answered to nobody (499).
  bool client_gone = false;

  // Outcome.
  int status = 0;
  std::uint64_t bytes_in = 0;   // request body bytes received
  std::uint64_t bytes_out = 0;  // response bytes sent (head and body)
  std::string upstream;         // address of the host that answered (last attempt)
  std::uint32_t attempts = 0;
  std::optional<stats::UpstreamError> upstream_error;
  std::string error;  // short reason for failures, for the access log

  void reset() {
    head = nullptr;
    method.clear();
    host.clear();
    path.clear();
    query.clear();
    user_agent.clear();
    request_id.clear();
    request_id_received = false;
    client_timeout.reset();
    grpc_timeout = false;
    route_index.reset();
    route = nullptr;
    backend_index = 0;
    cluster = nullptr;
    cluster_index = 0;
    deadline = {};
    phase = stats::RequestPhase::Idle;
    wait.clear();
    client_gone = false;
    trace.on = trace.sampled = false;
    guard = guard_verdict = {};
    trace.parent.reset();
    releasePermits();
    admitted = {};
    last_try = {};
    inflight_at_admission = 0;
    status = 0;
    bytes_in = bytes_out = 0;
    upstream.clear();
    attempts = 0;
    upstream_error.reset();
    error.clear();
    if (capture) capture->reset();
  }

  void releasePermits() noexcept {
    guards_admitted = 0;
    permits.clear();
    breaker_permit.release();
  }

  // Keeps `permit` until the request is over.
  template <typename P>
  void hold(P&& permit) {
    permits.emplace_back(std::forward<P>(permit));
  }
};

}  // namespace sluice::gateway::proxy
