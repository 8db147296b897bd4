// Cheap randomness for data-plane decisions (retry jitter, fault injection): one small generator
// per thread, seeded from the OS once. Not for anything that must be unpredictable (request IDs
// have their own generator).
#pragma once

#include <cstdint>
#include <random>

namespace sluice::gateway {

// Uniform in [0, 1).
[[nodiscard]] inline double uniformUnit() {
  thread_local std::minstd_rand rng{std::random_device{}()};
  return std::generate_canonical<double, 32>(rng);
}

// Uniform over all 64-bit values (random draws for load balancing).
[[nodiscard]] inline std::uint64_t randomU64() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng();
}

}  // namespace sluice::gateway
