// Test support for the hash-based balancers' tests and benchmarks: the seeded hash they are
// given (XXH3, as the gateway uses). xxhash is a test-only dependency, which the leaf check
// allows in *_test_support.h files.
#pragma once

#include <cstdint>
#include <string_view>

#include <xxhash.h>

namespace sluice::resilience {

inline std::uint64_t xxh3(std::string_view data, std::uint64_t seed) {
  return XXH3_64bits_withSeed(data.data(), data.size(), seed);
}

}  // namespace sluice::resilience
