// Coarse per-worker deadlines.
//
// Every connection has a deadline for whatever it is waiting on (the rest of a request head, body
// progress, an upstream response, a slow reader, keep-alive idleness). Arming and disarming such
// deadlines happens several times per request, so it must cost nothing: an Entry is an intrusive
// node embedded in its owner, schedule() and cancel() are O(1) with no allocation and no
// syscall, and one timer per worker drives the wheel. The price is resolution: deadlines fire on
// the first tick at or after them (default tick 10 ms), which is far finer than any timeout an
// operator configures.
//
//   TimerWheel wheel(std::chrono::milliseconds(10), now);
//   TimerWheel::Entry e([](void* self) { static_cast<Conn*>(self)->onDeadline(); }, this);
//   wheel.schedule(e, now + std::chrono::seconds(5));
//   ...
//   wheel.advance(now);   // from the worker's tick; fires what is due
//
// Not thread-safe: a wheel and its entries belong to one event loop.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace sluice::gateway::net {

class TimerWheel {
  struct Link {
    Link* prev = nullptr;
    Link* next = nullptr;
  };

 public:
  using Clock = std::chrono::steady_clock;
  using TimePoint = Clock::time_point;
  using Duration = Clock::duration;

  class Entry : private Link {
   public:
    using Callback = void (*)(void* context);
    Entry(Callback callback, void* context) noexcept : callback_(callback), context_(context) {}
    Entry(const Entry&) = delete;
    Entry& operator=(const Entry&) = delete;
    // An entry must be cancelled (or have fired) before it is destroyed; the destructor does it.
    ~Entry() { unlink(); }

    [[nodiscard]] bool armed() const noexcept { return next != nullptr; }

   private:
    friend class TimerWheel;
    void unlink() noexcept;

    Callback callback_;
    void* context_;
    std::uint64_t expires_tick_ = 0;
  };

  TimerWheel(Duration resolution, TimePoint start) noexcept;
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;
  ~TimerWheel();

  // Arms (or re-arms) `e` to fire at the first tick at or after `deadline`. A deadline in the past
  // fires on the next advance(), never from inside schedule().
  void schedule(Entry& e, TimePoint deadline) noexcept;
  void cancel(Entry& e) noexcept { e.unlink(); }

  // Fires every entry due at `now`, in no particular order. Callbacks may schedule or cancel any
  // entry, including ones due in this same call. Returns how many fired.
  std::size_t advance(TimePoint now);

  [[nodiscard]] std::size_t size() const noexcept;
  [[nodiscard]] Duration resolution() const noexcept { return resolution_; }

 private:
  static constexpr std::size_t kSlots =
      512;  // 5.12 s per turn at 10 ms; longer deadlines wait a turn

  [[nodiscard]] std::uint64_t tickAt(TimePoint t) const noexcept;
  static void pushBack(Link& head, Entry& e) noexcept;

  Duration resolution_;
  TimePoint start_;
  std::uint64_t current_tick_ = 0;  // every tick up to and including this one has been processed
  std::array<Link, kSlots> slots_;  // sentinels of circular lists
};

}  // namespace sluice::gateway::net
