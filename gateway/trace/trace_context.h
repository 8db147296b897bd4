// W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent` field a request
// carries, and the ids and sampling decision sluice derives from it.
//
//   traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
//                ^version ^trace-id (16 bytes)       ^parent-id (8)   ^flags (bit 0: sampled)
//
// Parsing follows the spec's rules for a receiver: lowercase hex only, ids not all zero, version
// ff invalid; a version above 00 is read as 00 when its first four fields are (later versions may
// append fields after another '-'). A field that breaks them is ignored, as if absent: the
// request starts a new trace.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::gateway::trace {

using TraceId = std::array<std::uint8_t, 16>;
using SpanId = std::array<std::uint8_t, 8>;

struct TraceParent {
  TraceId trace_id{};
  SpanId parent_id{};
  bool sampled = false;
};

[[nodiscard]] std::optional<TraceParent> parseTraceParent(std::string_view value) noexcept;

// "00-<trace-id>-<span-id>-<flags>": what the next hop gets, naming `span` as its parent.
void appendTraceParent(std::string& out, const TraceId& trace, const SpanId& span, bool sampled);

// Lowercase hex, as the ids appear in traceparent, OTLP/JSON and the access log.
void appendHex(std::string& out, const std::uint8_t* bytes, std::size_t n);
template <std::size_t N>
[[nodiscard]] std::string hex(const std::array<std::uint8_t, N>& id) {
  std::string s;
  appendHex(s, id.data(), N);
  return s;
}

// Fresh random ids, never all zero.
[[nodiscard]] TraceId newTraceId() noexcept;
[[nodiscard]] SpanId newSpanId() noexcept;

// The ratio sampler of a root (OpenTelemetry's TraceIdRatioBased): keeps a trace when its id's
// last 8 bytes, read as a number, fall below ratio * 2^64. Decided by the id alone, so every
// instance that samples at the same ratio keeps the same traces.
[[nodiscard]] bool sampledByRatio(const TraceId& id, double ratio) noexcept;

}  // namespace sluice::gateway::trace
