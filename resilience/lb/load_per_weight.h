// Exact comparison of weighted loads, load_a / weight_a against load_b / weight_b, shared by the
// load-aware balancers (PowerOfTwoChoices, LeastConnections).
//
//   compareLoadPerWeight(/*load_a=*/3U, /*weight_a=*/2U, /*load_b=*/1U, /*weight_b=*/1U)
//       == std::weak_ordering::greater  // 1.5 > 1
//
// Cross-multiplies instead of dividing, so equal ratios compare equal and integer loads compare
// exactly: integral loads (e.g. requests in flight, any unsigned or non-negative value up to
// 2^64 - 1) in 128-bit arithmetic, floating loads (e.g. peak-EWMA costs) in long double.
// Edge input: weight 0 on both sides compares loads only; weight 0 on one side means "cannot take
// load" and compares greater than any positive weight. NaN and negative loads count as +infinity
// and 0 respectively. Thread-safety: a pure function.
#pragma once

#include <cmath>
#include <compare>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace sluice::resilience {

template <typename Load>
[[nodiscard]] constexpr std::weak_ordering compareLoadPerWeight(Load load_a, std::uint32_t weight_a,
                                                                Load load_b,
                                                                std::uint32_t weight_b) noexcept {
  static_assert(std::is_arithmetic_v<Load>, "loads must be integral or floating-point numbers");
  if (weight_a == 0 || weight_b == 0) {
    if (weight_a != weight_b) {
      return weight_a == 0 ? std::weak_ordering::greater : std::weak_ordering::less;
    }
    weight_a = 1;
    weight_b = 1;
  }
  if constexpr (std::is_floating_point_v<Load>) {
    const auto sanitize = [](Load load) -> long double {
      if (std::isnan(load)) {
        return std::numeric_limits<long double>::infinity();
      }
      return load < 0 ? 0.0L : static_cast<long double>(load);
    };
    const long double a = sanitize(load_a) * weight_b;
    const long double b = sanitize(load_b) * weight_a;
    return a < b ? std::weak_ordering::less
                 : (b < a ? std::weak_ordering::greater : std::weak_ordering::equivalent);
  } else {
    const auto sanitize = [](Load load) -> std::uint64_t {
      if constexpr (std::is_signed_v<Load>) {
        if (load < 0) {
          return 0;
        }
      }
      return static_cast<std::uint64_t>(load);
    };
#if defined(__SIZEOF_INT128__)
    __extension__ using Wide = unsigned __int128;  // __extension__: no -Wpedantic warning
    const Wide a = static_cast<Wide>(sanitize(load_a)) * weight_b;
    const Wide b = static_cast<Wide>(sanitize(load_b)) * weight_a;
    return a <=> b;
#else
    const long double a = static_cast<long double>(sanitize(load_a)) * weight_b;
    const long double b = static_cast<long double>(sanitize(load_b)) * weight_a;
    return a < b ? std::weak_ordering::less
                 : (b < a ? std::weak_ordering::greater : std::weak_ordering::equivalent);
#endif
  }
}

}  // namespace sluice::resilience
