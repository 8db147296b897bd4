// HeldPermit: whatever a guard must hold until its request is finished (a concurrency slot),
// kept in the request's context so that it is returned however the request ends - completed,
// failed, abandoned by a closing connection or a shutting-down worker - because the context
// releases everything it holds when it is reset or destroyed.
//
// It type-erases one small move-only RAII value (a resilience::Semaphore::Permit, ...) stored
// inline: no allocation per request.
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace sluice::gateway::guards {

class HeldPermit {
 public:
  static constexpr std::size_t kInlineSize = 32;

  HeldPermit() noexcept = default;

  template <typename P>
  requires(!std::is_same_v<std::decay_t<P>, HeldPermit>) explicit HeldPermit(P&& permit) noexcept {
    using T = std::decay_t<P>;
    static_assert(sizeof(T) <= kInlineSize && alignof(T) <= alignof(std::max_align_t));
    static_assert(std::is_nothrow_move_constructible_v<T>);
    ::new (static_cast<void*>(storage_)) T(std::forward<P>(permit));
    ops_ = &kOps<T>;
  }

  HeldPermit(HeldPermit&& other) noexcept { take(other); }
  HeldPermit& operator=(HeldPermit&& other) noexcept {
    if (this != &other) {
      reset();
      take(other);
    }
    return *this;
  }
  HeldPermit(const HeldPermit&) = delete;
  HeldPermit& operator=(const HeldPermit&) = delete;
  ~HeldPermit() { reset(); }

  // Destroys the held value now (returning its permit).
  void reset() noexcept {
    if (ops_ != nullptr) std::exchange(ops_, nullptr)->destroy(storage_);
  }
  explicit operator bool() const noexcept { return ops_ != nullptr; }

 private:
  struct Ops {
    void (*move)(void* from, void* to) noexcept;
    void (*destroy)(void* p) noexcept;
  };
  template <typename T>
  static constexpr Ops kOps{[](void* from, void* to) noexcept {
                              ::new (to) T(std::move(*static_cast<T*>(from)));
                              static_cast<T*>(from)->~T();
                            },
                            [](void* p) noexcept { static_cast<T*>(p)->~T(); }};

  void take(HeldPermit& other) noexcept {
    if (other.ops_ != nullptr) {
      other.ops_->move(other.storage_, storage_);
      ops_ = std::exchange(other.ops_, nullptr);
    }
  }

  alignas(std::max_align_t) std::byte storage_[kInlineSize];
  const Ops* ops_ = nullptr;
};

}  // namespace sluice::gateway::guards
