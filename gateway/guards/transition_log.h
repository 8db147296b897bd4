// TransitionLog: the last few state changes of a circuit breaker, with wall-clock times, for the
// admin API (/breakers, /stats) and the dashboard's timeline.
//
//   TransitionLog log;
//   log.record(State::Closed, State::Open, std::chrono::system_clock::now());  // any thread
//   for (const auto& t : log.recent()) ...                                     // oldest first
//
// Thread-safety: record() runs in the breaker's listener, on whichever worker thread made the
// breaker change state; recent() runs on the main thread. A mutex guards a fixed array: both
// sides are rare (the breaker bounds transitions to about one per open_duration; the admin
// reads once per poll) and neither allocates under the lock.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "resilience/circuit_breaker.h"

namespace sluice::gateway::guards {

class TransitionLog {
 public:
  using State = resilience::CircuitBreaker::State;
  static constexpr std::size_t kCapacity = 16;

  struct Transition {
    std::chrono::system_clock::time_point at;
    State from = State::Closed;
    State to = State::Closed;
  };

  void record(State from, State to, std::chrono::system_clock::time_point at) noexcept {
    const std::lock_guard lock(mu_);
    ring_[total_ % kCapacity] = Transition{at, from, to};
    ++total_;
  }

  // At most kCapacity transitions, oldest first.
  [[nodiscard]] std::vector<Transition> recent() const {
    std::vector<Transition> out;
    out.reserve(kCapacity);
    const std::lock_guard lock(mu_);
    const std::uint64_t first = total_ > kCapacity ? total_ - kCapacity : 0;
    for (std::uint64_t i = first; i < total_; ++i) out.push_back(ring_[i % kCapacity]);
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::array<Transition, kCapacity> ring_{};
  std::uint64_t total_ = 0;  // transitions ever recorded
};

}  // namespace sluice::gateway::guards
