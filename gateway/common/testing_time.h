// The start of hand-driven time in the gateway's unit tests: kT0, an hour after the steady
// clock's epoch. One definition for every test, so that tests batched into one translation unit
// (CMake unity builds) share it instead of each defining its own.
#pragma once

#include <chrono>

namespace sluice::gateway {

inline constexpr std::chrono::steady_clock::time_point kT0 =
    std::chrono::steady_clock::time_point{} + std::chrono::hours(1);

}  // namespace sluice::gateway
