// One request in flight as GET /debug/requests shows it: a copy taken on the request's worker
// thread, so that the admin thread never reads a live connection.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "gateway/stats/request_phase.h"

namespace sluice::gateway::proxy {

struct InFlightRequest {
  std::size_t worker = 0;
  std::string request_id;
  std::string method;
  std::string host;
  std::string path;  // without the query, which may carry tokens
  std::string client;
  std::string listener;
  std::string route;     // empty before routing
  std::string cluster;   // empty before routing, or for a route without one
  std::string upstream;  // the host of the current (or last) try; empty before the first
  std::uint32_t attempts = 0;
  stats::RequestPhase phase = stats::RequestPhase::Admitting;
  std::chrono::nanoseconds age{};
  std::optional<std::chrono::nanoseconds> deadline_left;  // negative: past it
};

}  // namespace sluice::gateway::proxy
