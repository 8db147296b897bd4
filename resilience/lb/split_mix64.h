// SplitMix64: the tiny deterministic generator the randomised balancers use to stretch the one
// random value a caller passes per pick into as many draws as the pick needs.
//
// Every randomised policy in resilience/lb takes `std::uint64_t random` per pick instead of a
// generator, so a pick is a pure function of (policy state, random, eligibility) and tests replay
// exactly. Inside, the policy seeds a SplitMix64 with that value:
//
//   SplitMix64 draws(random);
//   const std::size_t first = draws.below(n);
//   const std::size_t second = draws.below(n);
//
// Generator: Steele, Lea, Flood, "Fast splittable pseudorandom number generators" (OOPSLA 2014);
// constants as in Vigna's reference splitmix64.c. Every 64-bit seed, including 0, gives a full
// period 2^64 sequence. Not cryptographic. Thread-safety: a value type; one per pick.
#pragma once

#include <cstdint>

namespace sluice::resilience {

class SplitMix64 {
 public:
  explicit constexpr SplitMix64(std::uint64_t seed) noexcept : state_(seed) {}

  // The next 64 uniformly distributed bits.
  constexpr std::uint64_t next() noexcept {
    state_ += 0x9E3779B97F4A7C15ULL;
    std::uint64_t z = state_;
    z = (z ^ (z >> 30U)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27U)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31U);
  }

  // A value in [0, bound) (0 when bound is 0), using the next draw.
  constexpr std::uint64_t below(std::uint64_t bound) noexcept { return scale(next(), bound); }

  // Maps 64 uniform bits onto [0, bound) by the high half of a 64x64-bit multiplication (Lemire,
  // "Fast random integer generation in an interval", 2019, without the rejection step): the bias
  // is below bound / 2^64, negligible for host counts and weight totals. 0 when bound is 0.
  static constexpr std::uint64_t scale(std::uint64_t bits, std::uint64_t bound) noexcept {
    return mulHigh(bits, bound);
  }

 private:
  // The high 64 bits of a * b: one multiplication where the compiler has 128-bit integers,
  // otherwise from 32-bit halves.
  static constexpr std::uint64_t mulHigh(std::uint64_t a, std::uint64_t b) noexcept {
#if defined(__SIZEOF_INT128__)
    __extension__ using Wide = unsigned __int128;  // __extension__: no -Wpedantic warning
    return static_cast<std::uint64_t>((static_cast<Wide>(a) * b) >> 64U);
#else
    constexpr std::uint64_t kLow = 0xFFFFFFFFULL;
    const std::uint64_t a_lo = a & kLow;
    const std::uint64_t a_hi = a >> 32U;
    const std::uint64_t b_lo = b & kLow;
    const std::uint64_t b_hi = b >> 32U;
    const std::uint64_t lo_lo = a_lo * b_lo;
    const std::uint64_t hi_lo = a_hi * b_lo;
    const std::uint64_t lo_hi = a_lo * b_hi;
    const std::uint64_t cross = (lo_lo >> 32U) + (hi_lo & kLow) + lo_hi;
    return (a_hi * b_hi) + (hi_lo >> 32U) + (cross >> 32U);
#endif
  }

  std::uint64_t state_;
};

}  // namespace sluice::resilience
