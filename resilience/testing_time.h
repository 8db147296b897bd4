// Fixed times for the unit tests that pass `now` by hand (standard library and resilience/ only,
// so it can live in the leaf): kT0 is ManualClock's default start, at(ms) a time that many
// milliseconds after it. One definition for every test, so that tests batched into one
// translation unit (CMake unity builds) share it instead of each defining its own.
#pragma once

#include <chrono>
#include <cstdint>

#include "resilience/clock.h"

namespace sluice::resilience {

inline constexpr TimePoint kT0 = ManualClock::kDefaultStart;

inline TimePoint at(std::int64_t ms) { return kT0 + std::chrono::milliseconds(ms); }

}  // namespace sluice::resilience
