// ObjectPool<T>: a bounded pool of reusable objects - buffers, parsers, scratch vectors - so that
// a hot path reuses what an earlier request allocated instead of allocating again. It is the
// seeds' `sync.Pool`, bounded. Objects are handed out as move-only RAII handles that give the
// object back when destroyed.
//
//   ObjectPool<Buffer> buffers({.max_idle = 256},
//                              [] { return std::make_unique<Buffer>(64 * 1024); },  // on a miss
//                              [](Buffer& b) { b.clear(); });  // on return, before reuse
//   {
//     auto buf = buffers.acquire();        // an idle Buffer, or a new one from the factory
//     read_into(*buf);
//   }                                      // back to the pool (or destroyed if 256 are idle)
//   auto kept = buffers.acquire().detach();  // std::unique_ptr<Buffer>: leaves the pool for good
//
// Rules:
//   * acquire() takes an idle object if there is one, otherwise calls the factory (a miss). A
//     factory that throws propagates from acquire() with nothing changed; one that returns
//     nullptr yields an empty Handle (operator bool false), e.g. to refuse when memory is short.
//   * Returning (the Handle's destructor, release(), or move-assigning over it) calls the reset
//     hook on the object, then keeps it idle if fewer than max_idle objects are idle; otherwise
//     the object is destroyed. The pool never holds more than max_idle objects, so the memory it
//     keeps is bounded. max_idle = 0 disables pooling (every acquire() is a miss, every return
//     destroys, and the reset hook is never called); max_idle = 1 is refused by validate()
//     because the lock-free idle queue needs two cells.
//   * The reset hook runs on the returning thread, on every returned object, before the object
//     can be handed out again (an object that then finds max_idle objects idle is destroyed
//     after its reset: checking first would be a race anyway). It and T's destructor must not
//     throw (they run from noexcept code: std::terminate).
//   * Exclusive ownership: an object is owned by exactly one Handle or idle in the pool, never
//     both, never two Handles (a stress test checks this with 8 threads). detach() hands
//     ownership to the caller; the pool forgets the object.
//   * Objects are reused in FIFO order of return (not LIFO): see "Implementation".
//
// Compared with Go's sync.Pool: Go's pool is unbounded and may drop any idle object at any time
// (every garbage collection clears it, keeping one generation as a victim cache); Get may return
// any object and Put does no reset (callers reset by convention). Go can afford "unbounded"
// because the collector trims the pool. C++ has no collector: an unbounded pool would keep the
// high-water mark of the worst burst forever (10 000 64 KiB buffers after one spike = 640 MiB,
// never returned). So this pool is bounded, and what it retains is a configuration decision; and
// it resets on return, so an idle object pins no request data and a forgotten reset cannot leak
// one request's bytes into the next.
//
// Implementation (chosen by measurement, docs/benchmarks.md "Object pool"): the idle objects live
// in an MpmcQueue<std::unique_ptr<T>> of capacity max_idle - lock-free, bounded by construction,
// and free of ABA because each cell carries a sequence number - so acquire and release are one
// CAS each when uncontended. Measured against a std::mutex-guarded vector (LIFO) holding 4 KiB
// buffers, it took half the time per acquire + release with one thread and three quarters with
// two on one core; the mutex version was barely faster than new/delete. A per-thread cache in
// front (Go's per-P private slot) was not taken: it needs thread_local state keyed by pool instance
// (a registry - a global), strands objects in threads that exit, and the gateway already gets the
// same effect by giving each event loop its own pool. The price of the queue is FIFO reuse (an
// object returned long ago is colder in cache than the one just returned) and no max_idle of
// exactly 1.
//
// Thread-safety: acquire() and the Handles' operations may be called from any thread
// concurrently; stats accessors are snapshots. A Handle is used by one thread at a time. The
// pool must outlive its Handles (they point back to it).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "resilience/mpmc_queue.h"

namespace sluice::resilience {

template <typename T>
class ObjectPool {
  static_assert(std::is_nothrow_destructible_v<T>, "ObjectPool<T> needs a noexcept destructor");
  using IdleQueue = MpmcQueue<std::unique_ptr<T>>;

 public:
  static constexpr std::size_t kMaxIdle = IdleQueue::kMaxCapacity;

  struct Settings {
    std::size_t max_idle = 64;  // objects kept for reuse: 0 (no pooling) or [2, kMaxIdle]
  };

  // Called on a miss; may throw (propagates from acquire()) or return nullptr (empty Handle).
  using Factory = std::function<std::unique_ptr<T>()>;
  // Called on an object being returned to the idle set; must not throw.
  using Reset = std::function<void(T&)>;

  // Explains what is wrong with `settings`, or nullopt when they are usable.
  [[nodiscard]] static std::optional<std::string> validate(const Settings& settings) {
    if (settings.max_idle == 1 || settings.max_idle > kMaxIdle) {
      return "max_idle must be 0 or in [2, 2^32] (got " + std::to_string(settings.max_idle) + ")";
    }
    return std::nullopt;
  }

  // Exclusive use of one pooled object; gives it back when destroyed. Move-only.
  class Handle {
   public:
    Handle() noexcept = default;
    Handle(Handle&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)), object_(std::move(other.object_)) {}
    Handle& operator=(Handle&& other) noexcept {
      if (this != &other) {
        release();
        pool_ = std::exchange(other.pool_, nullptr);
        object_ = std::move(other.object_);
      }
      return *this;
    }
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    ~Handle() { release(); }

    // True while this handle holds an object.
    explicit operator bool() const noexcept { return object_ != nullptr; }
    // Precondition for the accessors: *this is true.
    T& operator*() const noexcept { return *object_; }
    T* operator->() const noexcept { return object_.get(); }
    [[nodiscard]] T* get() const noexcept { return object_.get(); }

    // Gives the object back now (reset, then idle or destroyed). Idempotent.
    void release() noexcept {
      if (object_ != nullptr) {
        pool_->giveBack(std::move(object_));
      }
      pool_ = nullptr;
    }
    // Takes the object out of the pool for good: no reset, not counted as idle. Empty handle
    // -> nullptr.
    [[nodiscard]] std::unique_ptr<T> detach() noexcept {
      if (object_ != nullptr) {
        pool_->detached_.fetch_add(1, std::memory_order_relaxed);
      }
      pool_ = nullptr;
      return std::move(object_);
    }

   private:
    friend class ObjectPool;
    Handle(ObjectPool* pool, std::unique_ptr<T> object) noexcept
        : pool_(pool), object_(std::move(object)) {}

    ObjectPool* pool_ = nullptr;
    std::unique_ptr<T> object_;
  };

  // Allocates the idle queue (std::bad_alloc propagates); no object is created up front.
  // Precondition: validate(settings) is nullopt (otherwise max_idle is clamped into range, 1
  // becoming 2). `factory` must not be empty.
  ObjectPool(const Settings& settings, Factory factory, Reset reset = {})
      : max_idle_(clampIdle(settings.max_idle)),
        factory_(std::move(factory)),
        reset_(std::move(reset)),
        idle_(max_idle_ == 0
                  ? nullptr
                  : std::make_unique<IdleQueue>(typename IdleQueue::Settings{max_idle_})) {}
  // For default-constructible T: the factory is std::make_unique<T>().
  explicit ObjectPool(const Settings& settings,
                      Reset reset = {}) requires std::is_default_constructible_v<T>
      : ObjectPool(
            settings, [] { return std::make_unique<T>(); }, std::move(reset)) {}

  ObjectPool(const ObjectPool&) = delete;
  ObjectPool& operator=(const ObjectPool&) = delete;
  ObjectPool(ObjectPool&&) = delete;
  ObjectPool& operator=(ObjectPool&&) = delete;
  // Destroys the idle objects. Precondition: no Handle from this pool is still alive.
  ~ObjectPool() = default;

  // An idle object, or a new one from the factory (see the rules above).
  [[nodiscard]] Handle acquire() {
    if (idle_ != nullptr) {
      if (auto idle = idle_->tryPop()) {
        return Handle(this, std::move(*idle));
      }
    }
    std::unique_ptr<T> fresh = factory_();
    if (fresh == nullptr) {
      return Handle();
    }
    created_.fetch_add(1, std::memory_order_relaxed);
    return Handle(this, std::move(fresh));
  }

  [[nodiscard]] std::size_t maxIdle() const noexcept { return max_idle_; }

  // Snapshots. Counting only the slow paths keeps the fast path free of shared counters:
  // reuses = your acquisitions - created().
  [[nodiscard]] std::size_t idle() const noexcept {
    return idle_ == nullptr ? 0 : idle_->sizeApprox();
  }
  // Objects made by the factory (misses).
  [[nodiscard]] std::uint64_t created() const noexcept {
    return created_.load(std::memory_order_relaxed);
  }
  // Objects destroyed on return because max_idle were already idle.
  [[nodiscard]] std::uint64_t discarded() const noexcept {
    return discarded_.load(std::memory_order_relaxed);
  }
  // Objects taken out with Handle::detach().
  [[nodiscard]] std::uint64_t detached() const noexcept {
    return detached_.load(std::memory_order_relaxed);
  }

 private:
  static std::size_t clampIdle(std::size_t max_idle) noexcept {
    if (max_idle == 1) {
      return IdleQueue::kMinCapacity;
    }
    return max_idle < kMaxIdle ? max_idle : kMaxIdle;
  }

  void giveBack(std::unique_ptr<T> object) noexcept {
    if (idle_ != nullptr) {
      // Reset before the object becomes visible to other threads: after the push it may be
      // handed out at once.
      if (reset_) {
        reset_(*object);
      }
      if (idle_->tryPush(std::move(object))) {
        return;
      }
    }
    discarded_.fetch_add(1, std::memory_order_relaxed);
    // `object` (still owned here when the push failed) is destroyed on return.
  }

  const std::size_t max_idle_;
  const Factory factory_;
  const Reset reset_;
  const std::unique_ptr<IdleQueue> idle_;  // null when max_idle_ == 0
  std::atomic<std::uint64_t> created_{0};
  std::atomic<std::uint64_t> discarded_{0};
  std::atomic<std::uint64_t> detached_{0};
};

template <typename T>
inline constexpr bool kObjectPoolHandleIsNothrowMovable =
    std::is_nothrow_move_constructible_v<typename ObjectPool<T>::Handle>&&
        std::is_nothrow_move_assignable_v<typename ObjectPool<T>::Handle> &&
    !std::is_copy_constructible_v<typename ObjectPool<T>::Handle>;
static_assert(kObjectPoolHandleIsNothrowMovable<int>);

}  // namespace sluice::resilience
