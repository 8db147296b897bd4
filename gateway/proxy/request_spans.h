// Where a request meets tracing: the trace it joins (W3C trace context, parent-based sampling
// with a ratio for roots) and the spans it records, after OpenTelemetry's HTTP semantic
// conventions - a server span per request, a client span per upstream try, whose id the
// upstream receives as its parent. Plain functions of the request's context, so that the
// connection and forwarder coroutines stay small and the rules are unit-tested.
#pragma once

#include <cstdint>
#include <string_view>

#include "gateway/proxy/request_context.h"
#include "gateway/trace/span.h"

namespace sluice::gateway::proxy {

// Starts ctx.trace: continues `traceparent` (the client's, when it sent exactly one valid
// field; its sampled flag decides) or starts a trace sampled at `ratio`.
void startTrace(RequestContext& ctx, std::string_view traceparent, int traceparent_fields,
                double ratio);

[[nodiscard]] std::uint64_t unixNanos() noexcept;

// The request's server span, ending at `end_unix_ns`.
[[nodiscard]] trace::SpanRecord serverSpan(const RequestContext& ctx, std::uint64_t end_unix_ns);

// One upstream try's client span.
struct TrySpan {
  trace::SpanId span_id{};
  std::uint64_t start_unix_ns = 0;
  std::uint32_t attempt = 1;  // 1 for the first try
  std::string_view host;      // "ip:port"
  int status = 0;             // the upstream's, 0 when none came
  std::string_view error;     // why the try failed (kUpstreamErrorNames), empty when it did not
};
[[nodiscard]] trace::SpanRecord clientSpan(const RequestContext& ctx, const TrySpan& t,
                                           std::uint64_t end_unix_ns);

}  // namespace sluice::gateway::proxy
