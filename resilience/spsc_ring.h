// SpscRing<T>: a bounded single-producer single-consumer FIFO ring buffer without locks - the
// cheapest way to pass items from exactly one thread to exactly one other (e.g. an event loop
// handing finished work to a logger thread, or a worker handing results back to its loop).
//
//   SpscRing<Event> ring({.capacity = 1024});
//   // producer thread:                        // consumer thread:
//   if (!ring.tryPush(std::move(ev))) drop();   while (auto ev = ring.tryPop()) handle(*ev);
//   ring.close();  // no more events            // ... until tryPop().status == PopStatus::Closed
//
// How it works: the producer owns the tail index and the consumer the head index (free-running
// 64-bit counters, so all `capacity` slots are usable). Each side keeps a private cached copy of
// the other side's index and re-reads the shared one only when the cache says full/empty, which
// keeps the common case to one relaxed load, one release store and no shared-line traffic. The
// producer's and the consumer's data sit on separate cache lines.
//
// Guarantees: strict FIFO; every pushed element is popped exactly once (or destroyed by the
// destructor); at most capacity() elements stored; wait-free operations (no loops, no CAS); no
// allocation after construction; no exceptions (T's move constructor and destructor must be
// noexcept, checked at compile time).
//
// Closing (results in resilience/queue_status.h): close() is a PRODUCER function, as in Go,
// where only the sender closes a channel. After it, every push reports PushStatus::Closed
// (distinct from Full) with its argument untouched; the consumer keeps popping what was pushed
// before and then gets PopStatus::Closed (distinct from Empty). Because the producer's pushes
// precede its close() in program order, "push concurrent with close" cannot arise: each push
// either landed before the close (and will be drained) or comes after it (and fails as Closed).
// close() is idempotent. Why producer-only: letting a third thread close would make it race with
// the producer's plain store that publishes the tail, and closing that race needs an atomic
// read-modify-write (or a full fence) on every push - several times the cost of the whole push.
// A third party that wants the ring closed asks the producer (e.g. with a flag it polls). Cost:
// none on the fast paths - close() makes the producer's cached head say "full", so only the
// full path tests the flag, and the consumer reads it only when the ring looks empty.
//
// Thread-safety: at most ONE thread may call the producer functions (tryPush, tryEmplace, close)
// and at most ONE thread the consumer functions (tryPop) at any time; the two may run
// concurrently. Handing a role to another thread needs a happens-before edge (mutex, join, ...).
// This is not checked. isClosed(), sizeApprox() and capacity() may be called from any thread.
// Edge input: capacity in [1, kMaxCapacity]; powers of two use a mask instead of a division.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "resilience/queue_status.h"

namespace sluice::resilience {

template <typename T>
class SpscRing {
  static_assert(std::is_nothrow_move_constructible_v<T>,
                "SpscRing<T> needs a noexcept move constructor");
  static_assert(std::is_nothrow_destructible_v<T>, "SpscRing<T> needs a noexcept destructor");

 public:
  static constexpr std::size_t kMaxCapacity = std::size_t{1} << 32;

  struct Settings {
    std::size_t capacity = 1024;  // elements, in [1, kMaxCapacity]
  };

  // Explains what is wrong with `settings`, or nullopt when they are usable.
  [[nodiscard]] static std::optional<std::string> validate(const Settings& settings) {
    if (settings.capacity < 1 || settings.capacity > kMaxCapacity) {
      return "capacity must be in [1, 2^32] (got " + std::to_string(settings.capacity) + ")";
    }
    return std::nullopt;
  }

  // Allocates the ring (std::bad_alloc propagates). Precondition: validate(settings) is nullopt;
  // otherwise the capacity is clamped into range.
  explicit SpscRing(const Settings& settings)
      : capacity_(clampCapacity(settings.capacity)),
        mask_((capacity_ & (capacity_ - 1)) == 0 ? capacity_ - 1 : 0),
        pow2_((capacity_ & (capacity_ - 1)) == 0),
        slots_(std::make_unique<Slot[]>(capacity_)) {}
  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;
  SpscRing(SpscRing&&) = delete;
  SpscRing& operator=(SpscRing&&) = delete;
  // Destroys the elements still stored. Precondition: no concurrent operation.
  ~SpscRing() {
    while (tryPop()) {
    }
  }

  // Producer only. Appends `value` if there is room: Pushed, or Full / Closed with `value` left
  // untouched.
  PushResult tryPush(T&& value) noexcept { return tryEmplace(std::move(value)); }
  PushResult tryPush(const T& value) noexcept(std::is_nothrow_copy_constructible_v<T>) {
    return tryEmplace(value);
  }

  // Producer only. Constructs an element from `args` in place if there is room; on Full or
  // Closed nothing is constructed. If T's constructor throws, the exception propagates and the
  // ring is unchanged.
  template <typename... Args>
  PushResult tryEmplace(Args&&... args) noexcept(std::is_nothrow_constructible_v<T, Args&&...>) {
    const std::size_t tail = tail_.load(std::memory_order_relaxed);
    if (tail - producer_cached_head_ == capacity_) {
      // close() forced this path; the producer wrote the flag itself, so relaxed suffices.
      if (closed_.load(std::memory_order_relaxed)) {
        return {PushStatus::Closed};
      }
      producer_cached_head_ = head_.load(std::memory_order_acquire);
      if (tail - producer_cached_head_ == capacity_) {
        return {PushStatus::Full};
      }
    }
    // Nothing is published until the store below, so a throwing constructor leaves no trace.
    ::new (static_cast<void*>(slots_[index(tail)].storage)) T(std::forward<Args>(args)...);
    tail_.store(tail + 1, std::memory_order_release);
    return {PushStatus::Pushed};
  }

  // Producer only. Stops acceptance (see "Closing" above); idempotent.
  void close() noexcept {
    // Release: a consumer that sees the flag also sees every element pushed before it.
    closed_.store(true, std::memory_order_release);
    // Sends every later push to the full path, where the flag is tested.
    producer_cached_head_ = tail_.load(std::memory_order_relaxed) - capacity_;
  }

  // Consumer only. Removes and returns the oldest element (Popped); Empty when there is none;
  // Closed once the producer has closed the ring and everything it pushed has been popped.
  PopResult<T> tryPop() noexcept {
    const std::size_t head = head_.load(std::memory_order_relaxed);
    if (head == consumer_cached_tail_) {
      consumer_cached_tail_ = tail_.load(std::memory_order_acquire);
      if (head == consumer_cached_tail_) {
        if (!closed_.load(std::memory_order_acquire)) {
          return PopResult<T>(PopStatus::Empty);
        }
        // The flag was stored after the last push, so this read sees the final tail.
        consumer_cached_tail_ = tail_.load(std::memory_order_acquire);
        if (head == consumer_cached_tail_) {
          return PopResult<T>(PopStatus::Closed);
        }
      }
    }
    // Frees the slot - after the return value below has been move-constructed from it.
    const ReleaseSlot release(std::launder(reinterpret_cast<T*>(slots_[index(head)].storage)),
                              &head_, head + 1);
    return PopResult<T>(std::in_place, std::move(*release.element));
  }

  // True once the producer has called close() (a snapshot from other threads).
  [[nodiscard]] bool isClosed() const noexcept { return closed_.load(std::memory_order_acquire); }

  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

  // Elements stored; a snapshot, exact only from the producer or consumer thread when the other
  // side is idle.
  [[nodiscard]] std::size_t sizeApprox() const noexcept {
    const std::size_t head = head_.load(std::memory_order_acquire);
    const std::size_t tail = tail_.load(std::memory_order_acquire);
    return tail > head ? tail - head : 0;
  }

 private:
  // See MpmcQueue: 64 bytes on x86-64 / most ARM64; not hardware_destructive_interference_size.
  static constexpr std::size_t kCacheLine = 64;

  // Raw memory on purpose: a push constructs an element there, a pop destroys it.
  struct Slot {
    alignas(T) unsigned char storage[sizeof(T)];
  };

  // Ends the popped element's lifetime and publishes the new head when it goes out of scope.
  struct ReleaseSlot {
    ReleaseSlot(T* e, std::atomic<std::size_t>* h, std::size_t next) noexcept
        : element(e), head(h), next_head(next) {}
    T* element;
    std::atomic<std::size_t>* head;
    std::size_t next_head;
    ReleaseSlot(const ReleaseSlot&) = delete;
    ReleaseSlot& operator=(const ReleaseSlot&) = delete;
    ReleaseSlot(ReleaseSlot&&) = delete;
    ReleaseSlot& operator=(ReleaseSlot&&) = delete;
    ~ReleaseSlot() {
      // Destroying a moved-from object is what ends its lifetime; the analyzer flags it anyway.
      element->~T();  // NOLINT(clang-analyzer-cplusplus.Move)
      head->store(next_head, std::memory_order_release);
    }
  };

  static std::size_t clampCapacity(std::size_t capacity) noexcept {
    if (capacity < 1) {
      return 1;
    }
    return capacity > kMaxCapacity ? kMaxCapacity : capacity;
  }

  [[nodiscard]] std::size_t index(std::size_t pos) const noexcept {
    return pow2_ ? (pos & mask_) : (pos % capacity_);
  }

  // Consumer-owned line: what the consumer writes, plus its cache of the producer's index.
  alignas(kCacheLine) std::atomic<std::size_t> head_{0};
  std::size_t consumer_cached_tail_ = 0;
  // Producer-owned line.
  alignas(kCacheLine) std::atomic<std::size_t> tail_{0};
  std::size_t producer_cached_head_ = 0;
  std::atomic<bool> closed_{false};  // written once by the producer; read by the consumer
  // Read-only after construction.
  alignas(kCacheLine) const std::size_t capacity_;
  const std::size_t mask_;
  const bool pow2_;
  const std::unique_ptr<Slot[]> slots_;
};

}  // namespace sluice::resilience
