// Keeps an outage from flooding the disk with diagnostic lines: each key (a cluster and a kind of
// failure, say) may log `burst` lines at once, then one per `every`; the lines held back are
// counted, and the next line of that key says how many ("12 more since"). A token bucket per
// key (the library's resilience::TokenBucket), with time as a parameter. Not thread-safe: one
// per worker thread (thread_local), so the data plane takes no lock to log, and each worker
// keeps its own allowance.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "resilience/token_bucket.h"

namespace sluice::gateway::log {

class LogThrottle {
 public:
  using Clock = std::chrono::steady_clock;

  LogThrottle(std::uint32_t burst, Clock::duration every);

  // True when a line for `key` may be written at `now`; `held_back` is then how many lines of
  // that key were refused since the last one allowed.
  [[nodiscard]] bool allow(std::string_view key, Clock::time_point now, std::uint64_t& held_back);

 private:
  struct State {
    State(double rate, std::uint32_t burst, Clock::time_point now) : bucket(rate, burst, now) {}
    resilience::TokenBucket bucket;
    std::uint64_t held_back = 0;
  };
  // Distinct keys kept at most; past it the table starts over (a burst more for everyone).
  static constexpr std::size_t kMaxKeys = 1024;

  std::uint32_t burst_;
  double rate_;  // lines per second, after the burst
  std::unordered_map<std::string, State> keys_;
};

}  // namespace sluice::gateway::log
