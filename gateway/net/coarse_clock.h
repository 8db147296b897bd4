// A cheap reading of the monotonic clock for deadlines.
//
// Deadlines fire from a 10 ms timer wheel, so they do not need nanoseconds: CLOCK_MONOTONIC_COARSE
// (the time of the last kernel tick, a few ms at most behind) shares CLOCK_MONOTONIC's epoch, so
// its readings compare directly with std::chrono::steady_clock's, and it costs a few ns instead
// of a full vDSO clock read. Latencies that are reported keep using steady_clock.
#pragma once

#include <chrono>
#include <time.h>

namespace sluice::gateway::net {

[[nodiscard]] inline std::chrono::steady_clock::time_point coarseNow() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return std::chrono::steady_clock::time_point(std::chrono::seconds(ts.tv_sec) +
                                               std::chrono::nanoseconds(ts.tv_nsec));
}

}  // namespace sluice::gateway::net
