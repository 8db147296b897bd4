// Round robin: hosts in index order, one after another, skipping ineligible ones.
//
//   RoundRobin rr(hosts.size(), /*start=*/worker_index);  // stagger workers' starting points
//   std::optional<std::size_t> host = rr.pick([&](std::size_t i) { return healthy[i]; });
//
// The cursor moves past the host picked, not one step per pick, so while the set of eligible
// hosts stays the same each of them is picked exactly once per cycle: an ineligible host's turns
// are not handed to its successor (no double share for the host after a down one).
// For weights use SmoothWeightedRoundRobin.
//
// Thread-safety: none; one instance per event loop (worker).
#pragma once

#include <cstddef>
#include <optional>
#include <type_traits>

namespace sluice::resilience {

class RoundRobin {
 public:
  // `size` hosts; the first pick starts looking at host `start % size` (0 when size is 0).
  explicit RoundRobin(std::size_t size, std::size_t start = 0)
      : size_(size), cursor_(size == 0 ? 0 : start % size) {}

  // The first host at or after the cursor (wrapping) for which eligible(i) is true; the cursor
  // then moves just past it. nullopt if size() is 0 or nothing is eligible (cursor unchanged).
  // `eligible` is called once per host examined, in rotation order, stopping at the first
  // eligible one: O(1) when the host at the cursor is eligible, O(size()) at worst.
  template <typename Eligible>
  [[nodiscard]] std::optional<std::size_t> pick(Eligible&& eligible) {
    static_assert(std::is_invocable_r_v<bool, Eligible&, std::size_t>,
                  "eligible must be callable as bool(std::size_t host)");
    std::size_t host = cursor_;
    for (std::size_t examined = 0; examined < size_; ++examined) {
      if (eligible(host)) {
        cursor_ = host + 1 == size_ ? 0 : host + 1;
        return host;
      }
      host = host + 1 == size_ ? 0 : host + 1;
    }
    return std::nullopt;
  }

  // The next host with every host eligible; nullopt only when size() is 0.
  [[nodiscard]] std::optional<std::size_t> pick() {
    return pick([](std::size_t) { return true; });
  }

  // Appends a host (index size() before the call). The cursor stays put, so the rotation
  // continues where it was and reaches the new host at the end of the current cycle.
  void addHost() { ++size_; }

  // Erases host, shifting later hosts down one index (as std::vector::erase does to the caller's
  // list). The cursor keeps pointing at the same next host (or, if that was the one removed, at
  // its successor). Out of range: no effect.
  void removeHost(std::size_t host) {
    if (host >= size_) {
      return;
    }
    --size_;
    if (host < cursor_) {
      --cursor_;
    }
    if (cursor_ >= size_) {
      cursor_ = 0;
    }
  }

  // The host the next pick examines first.
  [[nodiscard]] std::size_t cursor() const { return cursor_; }

  [[nodiscard]] std::size_t size() const { return size_; }

 private:
  std::size_t size_;
  std::size_t cursor_;  // < size_ when size_ > 0
};

}  // namespace sluice::resilience
