// Outcomes of the bounded queues' non-blocking operations (MpmcQueue, SpscRing): a push either
// lands, finds the queue full, or finds it closed; a pop either takes an element, finds nothing
// ready, or finds the queue closed and drained. Full and Empty are "not now, maybe later";
// Closed is "never again", so a producer stops producing and a consumer stops polling.
//
//   if (auto r = queue.tryPush(std::move(job)); !r) {
//     if (r.status == PushStatus::Closed) return shutting_down(job);  // `job` is untouched
//     return reject(job);                                             // Full: backpressure
//   }
//   while (true) {
//     auto r = queue.tryPop();
//     if (r) { run(*r); continue; }
//     if (r.status == PopStatus::Closed) break;  // every accepted element has been popped
//     wait_for_work();                           // Empty: nothing ready right now
//   }
//
// Both results convert (explicitly) to bool - true iff the operation moved an element - so the
// short forms `if (!queue.tryPush(x))` and `while (auto v = queue.tryPop())` read as before.
#pragma once

#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>

namespace sluice::resilience {

enum class PushStatus : std::uint8_t {
  Pushed,  // the element is in the queue and will be popped exactly once (or destroyed with it)
  Full,    // no room right now; the argument was left untouched
  Closed,  // close() came first; nothing will ever be accepted again; argument untouched
};

enum class PopStatus : std::uint8_t {
  Popped,  // `value` holds the element
  Empty,   // nothing ready right now (see each queue for "not ready yet" after close())
  Closed,  // closed, and every accepted element has already been popped: stop polling
};

struct [[nodiscard]] PushResult {
  PushStatus status = PushStatus::Full;
  explicit operator bool() const noexcept { return status == PushStatus::Pushed; }
};

template <typename T>
struct [[nodiscard]] PopResult {
  PopResult() noexcept = default;
  explicit PopResult(PopStatus s) noexcept : status(s) {}
  // Popped: the element is constructed in place, so a queue can return this as a prvalue and
  // the caller's object is initialized directly (no copy of the result on the hot path).
  PopResult(std::in_place_t /*tag*/, T&& element) noexcept(std::is_nothrow_move_constructible_v<T>)
      : status(PopStatus::Popped), value(std::in_place, std::move(element)) {}

  PopStatus status = PopStatus::Empty;
  std::optional<T> value;  // engaged iff status == Popped

  explicit operator bool() const noexcept { return value.has_value(); }
  // Precondition for the accessors: status == Popped.
  T& operator*() & noexcept { return *value; }
  const T& operator*() const& noexcept { return *value; }
  T&& operator*() && noexcept { return *std::move(value); }
  T* operator->() noexcept { return &*value; }
  const T* operator->() const noexcept { return &*value; }
};

}  // namespace sluice::resilience
