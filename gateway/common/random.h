// Cheap randomness for data-plane decisions (retry jitter, fault injection): one small generator
// per thread, seeded from the OS once. Not for anything that must be unpredictable (request IDs
// have their own generator).
#pragma once

#include <random>

namespace sluice::gateway {

// Uniform in [0, 1).
[[nodiscard]] inline double uniformUnit() {
  thread_local std::minstd_rand rng{std::random_device{}()};
  return std::generate_canonical<double, 32>(rng);
}

}  // namespace sluice::gateway
