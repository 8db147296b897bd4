// What a request in flight is doing, for GET /debug/requests: the gateway's analogue of a
// goroutine dump. Written by the code that moves the request on (the connection, the forwarder,
// the pool), on the request's own worker thread; read only by that thread, when the admin asks.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace sluice::gateway::stats {

enum class RequestPhase : std::uint8_t {
  Idle,        // no request: a keep-alive connection between requests (never listed)
  Admitting,   // head read: routing and the guards that answer at once
  Queued,      // waiting in a guard: a concurrency queue, a rate limit's delay
  Waiting,     // waiting for a pooled connection to the chosen host
  Connecting,  // opening a connection to the chosen host
  Awaiting,    // sending the request, awaiting the response head
  Streaming,   // relaying the response to the client
  Backoff,     // between two tries
  Replying,    // writing a reply of the gateway's own (a guard's, an error, a fallback)
};

inline constexpr std::array<std::string_view, 9> kRequestPhaseNames = {
    "idle",      "admitting", "queued",  "waiting_connection", "connecting", "awaiting_response",
    "streaming", "backoff",   "replying"};

// The phases in which a request waits with its client's connection idle: where a client that
// closes it cancels the request (route client_abort: cancel).
inline constexpr std::array<RequestPhase, 5> kAbortablePhases = {
    RequestPhase::Queued, RequestPhase::Waiting, RequestPhase::Connecting, RequestPhase::Awaiting,
    RequestPhase::Backoff};

[[nodiscard]] constexpr std::string_view phaseName(RequestPhase p) noexcept {
  return kRequestPhaseNames[static_cast<std::size_t>(p)];
}

}  // namespace sluice::gateway::stats
