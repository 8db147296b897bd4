// MpmcQueue<T>: a bounded multi-producer multi-consumer FIFO queue without locks, after Dmitry
// Vyukov's bounded MPMC queue (1024cores.net, "Bounded MPMC queue"). Use it to hand work between
// threads when a full queue must be refused rather than waited on (backpressure stays with the
// caller); for waiting, pair it with your own notification or use WorkerPool.
//
//   MpmcQueue<Job> queue({.capacity = 4096});
//   if (!queue.tryPush(std::move(job))) reject(job);   // full or closed: `job` is left untouched
//   while (auto job = queue.tryPop()) run(*job);       // stops when nothing is ready
//   queue.close();                                      // shutdown: see "Closing" below
//
// How it works: a ring of `capacity` cells, each with a sequence number. Producers claim a
// position by CAS on the enqueue counter when the cell's sequence says it is free for exactly
// that position, construct the element, then publish it by bumping the sequence (release);
// consumers do the mirror image. The two counters live on separate cache lines so producers and
// consumers do not false-share them.
//
// Guarantees:
//   * Exactly-once: every successfully pushed element is popped exactly once (or destroyed by the
//     queue's destructor); no element is duplicated or lost.
//   * FIFO per producer: elements pushed by one thread are popped in push order (globally, pops
//     follow the order in which producers claimed positions).
//   * Bounded: at most capacity() elements are stored; tryPush() on a full queue reports Full.
//   * No mutex, no allocation after construction, no exceptions from the operations (T's move
//     constructor and destructor must be noexcept, checked at compile time). Progress is
//     "lock-free" in the practical sense: a producer preempted between claiming and publishing a
//     cell makes consumers report that cell as not yet ready (tryPop() returns nullopt even
//     though later cells may be full) until it resumes. No operation ever spins waiting for it.
//
// Closing (Go's close(ch) for a bounded buffer; results in resilience/queue_status.h):
//   * close() stops acceptance for good: every later push reports PushStatus::Closed (distinct
//     from Full) and leaves its argument untouched. Elements accepted before it stay and drain:
//     pops keep returning them, and report PopStatus::Closed (distinct from Empty) only once
//     every accepted element has been handed to some consumer. A pop may still report Empty
//     after close() while a push that won the race below is between claiming its cell and
//     publishing it; that element follows, and Closed comes after it.
//   * The race "push concurrent with close()" is decided on one word: the producer's claim is a
//     CAS on the enqueue counter and close() sets a bit in that same counter (atomic OR).
//     Whichever comes first in that word's modification order wins: a push claimed before the
//     bit lands and will be drained; a push after it fails as Closed. There is no third outcome,
//     so nothing is lost. close() may be called from any thread, any number of times (later
//     calls do nothing); isClosed() reports it.
//   * Cost: none on the fast paths. The bit makes the producer's cell check fail, so only the
//     full/contended path tests it, and consumers look at it only when nothing is ready. The
//     enqueue counter therefore has 63 bits of positions: 292 years of pushes at 10^9/s.
//
// Edge input: capacity must be in [2, kMaxCapacity] (the sequence scheme cannot tell "full" from
// "free" with one cell); any such value works, powers of two use a mask instead of a division.
// Thread-safety: all member functions except the destructor may be called concurrently.
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
class MpmcQueue {
  static_assert(std::is_nothrow_move_constructible_v<T>,
                "MpmcQueue<T> needs a noexcept move constructor (a throwing move would break a "
                "claimed cell)");
  static_assert(std::is_nothrow_destructible_v<T>, "MpmcQueue<T> needs a noexcept destructor");

 public:
  static constexpr std::size_t kMinCapacity = 2;
  static constexpr std::size_t kMaxCapacity = std::size_t{1} << 32;

  struct Settings {
    std::size_t capacity = 1024;  // elements, in [kMinCapacity, kMaxCapacity]
  };

  // Explains what is wrong with `settings`, or nullopt when they are usable.
  [[nodiscard]] static std::optional<std::string> validate(const Settings& settings) {
    if (settings.capacity < kMinCapacity || settings.capacity > kMaxCapacity) {
      return "capacity must be in [2, 2^32] (got " + std::to_string(settings.capacity) + ")";
    }
    return std::nullopt;
  }

  // Allocates the ring (std::bad_alloc propagates). Precondition: validate(settings) is nullopt;
  // otherwise the capacity is clamped into range.
  explicit MpmcQueue(const Settings& settings)
      : capacity_(clampCapacity(settings.capacity)),
        mask_((capacity_ & (capacity_ - 1)) == 0 ? capacity_ - 1 : 0),
        cells_(std::make_unique<Cell[]>(capacity_)) {
    for (std::size_t i = 0; i < capacity_; ++i) {
      cells_[i].sequence.store(i, std::memory_order_relaxed);
    }
  }
  MpmcQueue(const MpmcQueue&) = delete;
  MpmcQueue& operator=(const MpmcQueue&) = delete;
  MpmcQueue(MpmcQueue&&) = delete;
  MpmcQueue& operator=(MpmcQueue&&) = delete;
  // Destroys the elements still queued. Precondition: no concurrent operation.
  ~MpmcQueue() {
    while (tryPop()) {
    }
  }

  // Appends `value` if there is room: Pushed, or Full / Closed with `value` left untouched.
  PushResult tryPush(T&& value) noexcept { return tryEmplace(std::move(value)); }
  PushResult tryPush(const T& value) noexcept(std::is_nothrow_copy_constructible_v<T>) {
    return tryEmplace(value);
  }

  // Constructs an element from `args` if there is room; on Full or Closed nothing is
  // constructed. If T's constructor may throw, the element is built before a cell is claimed,
  // so an exception propagates with the queue unchanged.
  template <typename... Args>
  PushResult tryEmplace(Args&&... args) noexcept(std::is_nothrow_constructible_v<T, Args&&...>) {
    if constexpr (std::is_nothrow_constructible_v<T, Args&&...>) {
      const Claim claim = claimForPush();
      if (claim.cell == nullptr) {
        return {claim.status};
      }
      ::new (static_cast<void*>(claim.cell->storage)) T(std::forward<Args>(args)...);
      // Publishes the element to the consumer that will take position claim.pos.
      claim.cell->sequence.store(claim.pos + 1, std::memory_order_release);
      return {PushStatus::Pushed};
    } else {
      T value(std::forward<Args>(args)...);
      return tryEmplace(std::move(value));
    }
  }

  // Removes and returns the oldest ready element (Popped); Empty when none is ready; Closed once
  // the queue is closed and every accepted element has been popped.
  PopResult<T> tryPop() noexcept {
    std::size_t pos = dequeue_pos_.load(std::memory_order_relaxed);
    Cell* cell = nullptr;
    while (true) {
      cell = &cells_[index(pos)];
      const std::size_t seq = cell->sequence.load(std::memory_order_acquire);
      const auto diff = static_cast<std::ptrdiff_t>(seq - (pos + 1));
      if (diff == 0) {
        if (dequeue_pos_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          break;
        }
      } else if (diff < 0) {
        // The cell for `pos` has not been published: empty, not ready, or closed and drained.
        return PopResult<T>(drainedAt(pos) ? PopStatus::Closed : PopStatus::Empty);
      } else {
        pos = dequeue_pos_.load(std::memory_order_relaxed);  // another consumer took `pos`
      }
    }
    // Frees the cell for the producer that will claim position pos + capacity - after the
    // return value below has been move-constructed from it (locals die after that).
    const ReleaseCell release(cell, pos + capacity_);
    return PopResult<T>(std::in_place, std::move(*release.element()));
  }

  // Stops acceptance (see "Closing" above). Idempotent; lock-free; any thread.
  void close() noexcept { enqueue_pos_.fetch_or(kClosedBit, std::memory_order_acq_rel); }

  // True once close() has been called (a snapshot from other threads).
  [[nodiscard]] bool isClosed() const noexcept {
    return (enqueue_pos_.load(std::memory_order_acquire) & kClosedBit) != 0;
  }

  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

  // Elements stored, clamped to [0, capacity()]. A snapshot: exact only when no thread is
  // pushing or popping.
  [[nodiscard]] std::size_t sizeApprox() const noexcept {
    const std::size_t dequeued = dequeue_pos_.load(std::memory_order_acquire);
    const std::size_t enqueued = enqueue_pos_.load(std::memory_order_acquire) & ~kClosedBit;
    if (enqueued <= dequeued) {
      return 0;
    }
    return enqueued - dequeued < capacity_ ? enqueued - dequeued : capacity_;
  }

 private:
  // 64 bytes on x86-64 and most ARM64 cores. Not std::hardware_destructive_interference_size:
  // GCC warns that its value may differ between translation units compiled with other flags.
  static constexpr std::size_t kCacheLine = 64;
  // Set in enqueue_pos_ by close(). Positions never reach it (see "Closing").
  static constexpr std::size_t kClosedBit = std::size_t{1} << 63;
  static_assert(sizeof(std::size_t) == 8, "the closed bit needs a 64-bit enqueue counter");

  // `storage` is raw memory on purpose: a push constructs an element there, a pop destroys it.
  struct Cell {  // NOLINT(cppcoreguidelines-pro-type-member-init)
    std::atomic<std::size_t> sequence{0};
    alignas(T) unsigned char storage[sizeof(T)];
  };

  static std::size_t clampCapacity(std::size_t capacity) noexcept {
    if (capacity < kMinCapacity) {
      return kMinCapacity;
    }
    return capacity > kMaxCapacity ? kMaxCapacity : capacity;
  }

  [[nodiscard]] std::size_t index(std::size_t pos) const noexcept {
    return mask_ != 0 ? (pos & mask_) : (pos % capacity_);
  }

  // Ends the popped element's lifetime and hands its cell to the producer of `next_sequence`,
  // when it goes out of scope.
  struct ReleaseCell {
    ReleaseCell(Cell* c, std::size_t next) noexcept : cell(c), next_sequence(next) {}
    Cell* cell;
    std::size_t next_sequence;
    [[nodiscard]] T* element() const noexcept {
      return std::launder(reinterpret_cast<T*>(cell->storage));
    }
    ReleaseCell(const ReleaseCell&) = delete;
    ReleaseCell& operator=(const ReleaseCell&) = delete;
    ReleaseCell(ReleaseCell&&) = delete;
    ReleaseCell& operator=(ReleaseCell&&) = delete;
    ~ReleaseCell() {
      // Destroying a moved-from object is what ends its lifetime; the analyzer flags it anyway.
      element()->~T();  // NOLINT(clang-analyzer-cplusplus.Move)
      cell->sequence.store(next_sequence, std::memory_order_release);
    }
  };

  struct Claim {
    Cell* cell = nullptr;
    std::size_t pos = 0;
    PushStatus status = PushStatus::Full;  // why cell is nullptr
  };

  // Claims the cell for the next enqueue position; cell is nullptr when the queue is full or
  // closed. With the closed bit set, `pos` never equals a cell's sequence (sequences stay below
  // 2^63), so the bit is tested only off the fast path.
  Claim claimForPush() noexcept {
    std::size_t pos = enqueue_pos_.load(std::memory_order_relaxed);
    while (true) {
      Cell* const cell = &cells_[index(pos)];
      const std::size_t seq = cell->sequence.load(std::memory_order_acquire);
      const auto diff = static_cast<std::ptrdiff_t>(seq - pos);
      if (diff == 0) {
        // Fails if close() set the bit since the load: the reloaded pos then carries it.
        if (enqueue_pos_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          return {cell, pos, PushStatus::Pushed};
        }
      } else if ((pos & kClosedBit) != 0) {
        return {nullptr, 0, PushStatus::Closed};
      } else if (diff < 0) {
        return {};  // the cell still holds the element from pos - capacity: full
      } else {
        pos = enqueue_pos_.load(std::memory_order_relaxed);  // another producer took `pos`
      }
    }
  }

  // True when the queue is closed and the consumer position `pos` has reached the final
  // enqueue position: every accepted element has been claimed by some consumer. The OR in
  // close() read the latest counter, so the value seen with the bit is final.
  [[nodiscard]] bool drainedAt(std::size_t pos) const noexcept {
    const std::size_t enqueued = enqueue_pos_.load(std::memory_order_acquire);
    return (enqueued & kClosedBit) != 0 && pos >= (enqueued & ~kClosedBit);
  }

  alignas(kCacheLine) std::atomic<std::size_t> enqueue_pos_{0};
  alignas(kCacheLine) std::atomic<std::size_t> dequeue_pos_{0};
  alignas(kCacheLine) const std::size_t capacity_;
  const std::size_t mask_;  // capacity_ - 1 when capacity_ is a power of two, else 0
  const std::unique_ptr<Cell[]> cells_;
};

}  // namespace sluice::resilience
