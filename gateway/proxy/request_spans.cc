#include "gateway/proxy/request_spans.h"

#include <charconv>
#include <chrono>
#include <string>

namespace sluice::gateway::proxy {

void startTrace(RequestContext& ctx, std::string_view traceparent, int traceparent_fields,
                double ratio) {
  auto& t = ctx.trace;
  t.on = true;
  t.span_id = trace::newSpanId();
  // Several traceparent fields are as good as none (W3C trace context, 3.2).
  const auto parent = traceparent_fields == 1 ? trace::parseTraceParent(traceparent) : std::nullopt;
  if (parent) {
    t.trace_id = parent->trace_id;
    t.parent = parent->parent_id;
    t.sampled = parent->sampled;  // parent-based: the caller decided for the whole trace
  } else {
    t.trace_id = trace::newTraceId();
    t.sampled = trace::sampledByRatio(t.trace_id, ratio);
  }
  if (t.sampled) t.start_unix_ns = unixNanos();
}

std::uint64_t unixNanos() noexcept {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

trace::SpanRecord serverSpan(const RequestContext& ctx, std::uint64_t end_unix_ns) {
  trace::SpanRecord s;
  s.trace_id = ctx.trace.trace_id;
  s.span_id = ctx.trace.span_id;
  s.parent = ctx.trace.parent;
  s.kind = trace::SpanRecord::Kind::Server;
  // "{method} {route}" as the conventions name a server span (the route's name stands for its
  // template: a span name must not carry the path's unbounded values).
  s.name = ctx.method;
  if (ctx.route != nullptr) s.name.append(" ").append(ctx.route->name);
  s.start_unix_ns = ctx.trace.start_unix_ns;
  s.end_unix_ns = end_unix_ns;
  s.attributes.reserve(14);
  s.add("http.request.method", ctx.method);
  s.add("url.path", ctx.path);
  s.add("url.scheme", std::string("http"));
  if (!ctx.host.empty()) s.add("server.address", ctx.host);
  s.add("client.address", std::string(ctx.client_ip));
  if (!ctx.user_agent.empty()) s.add("user_agent.original", ctx.user_agent);
  s.add("http.response.status_code", std::int64_t{ctx.status});
  s.add("sluice.request_id", ctx.request_id);
  s.add("sluice.listener", std::string(ctx.listener));
  if (ctx.route != nullptr) s.add("sluice.route", ctx.route->name);
  if (ctx.cluster != nullptr) s.add("sluice.cluster", ctx.cluster->name);
  if (ctx.attempts > 0) s.add("sluice.upstream.attempts", std::int64_t{ctx.attempts});
  if (!ctx.guard.empty()) {
    s.add("sluice.guard", std::string(ctx.guard));
    s.add("sluice.guard.verdict", std::string(ctx.guard_verdict));
  }
  // A server span is an error for a 5xx only: a 4xx is the client's (the conventions).
  if (ctx.status >= 500 || ctx.status == 0) {
    s.error = true;
    s.status_message =
        ctx.error.empty() ? std::string("HTTP ") + std::to_string(ctx.status) : ctx.error;
    if (ctx.upstream_error) {
      s.add("error.type",
            std::string(stats::kUpstreamErrorNames[static_cast<std::size_t>(*ctx.upstream_error)]));
    } else {
      s.add("error.type", std::to_string(ctx.status));
    }
  }
  return s;
}

trace::SpanRecord clientSpan(const RequestContext& ctx, const TrySpan& t,
                             std::uint64_t end_unix_ns) {
  trace::SpanRecord s;
  s.trace_id = ctx.trace.trace_id;
  s.span_id = t.span_id;
  s.parent = ctx.trace.span_id;
  s.kind = trace::SpanRecord::Kind::Client;
  s.name = ctx.method;  // "{method}" for a client span
  s.start_unix_ns = t.start_unix_ns;
  s.end_unix_ns = end_unix_ns;
  s.attributes.reserve(9);
  s.add("http.request.method", ctx.method);
  const auto colon = t.host.rfind(':');
  std::string address(t.host.substr(0, colon));
  if (address.size() > 2 && address.front() == '[') address = address.substr(1, address.size() - 2);
  s.add("server.address", std::move(address));
  std::int64_t port = 0;
  if (colon != std::string_view::npos) {
    const auto digits = t.host.substr(colon + 1);
    std::from_chars(digits.data(), digits.data() + digits.size(), port);
  }
  if (port != 0) s.add("server.port", port);
  s.add("url.path", ctx.path);
  // Retries are resends (the conventions' http.request.resend_count, from the second try).
  if (t.attempt > 1) s.add("http.request.resend_count", std::int64_t{t.attempt - 1});
  s.add("sluice.try", std::int64_t{t.attempt});
  if (ctx.route != nullptr) s.add("sluice.route", ctx.route->name);
  if (ctx.cluster != nullptr) s.add("sluice.cluster", ctx.cluster->name);
  if (t.status != 0) s.add("http.response.status_code", std::int64_t{t.status});
  // A client span is an error for any 4xx or 5xx, or when no answer came.
  if (!t.error.empty()) {
    s.error = true;
    s.status_message = std::string(t.error);
    s.add("error.type", std::string(t.error));
  } else if (t.status >= 400) {
    s.error = true;
    s.status_message = "HTTP " + std::to_string(t.status);
    s.add("error.type", std::to_string(t.status));
  }
  return s;
}

}  // namespace sluice::gateway::proxy
