// SmallObjectPool: packs the small objects an idle connection keeps alive - the connection
// itself and its parked readability wait - densely into 64 KiB chunks.
//
// Why: an idle keep-alive connection should cost little RSS (target: well under 2 KiB). From
// the general heap its few hundred bytes of live state end up scattered between the chunks its
// requests freed (buffers, coroutine frames), and every page holding one live object stays
// resident: at 10,000 idle connections that fragmentation cost more than the objects. Objects
// from this pool sit next to each other whatever else the process allocates.
//
// Size classes of 64 bytes up to kMaxSize; larger requests go to operator new. Freed blocks go
// back to their class's free list and chunks are never returned to the system (like Asio's
// descriptor pool): the pool's footprint is the peak number of connections.
//
// Thread-safety: allocate/deallocate may be called from any thread (one mutex per class;
// a connection allocates twice per accept and once per park, so it is never contended).
#pragma once

#include <cstddef>
#include <new>

namespace sluice::gateway::net {

class SmallObjectPool {
 public:
  static constexpr std::size_t kMaxSize = 512;

  [[nodiscard]] static void* allocate(std::size_t bytes);
  static void deallocate(void* p, std::size_t bytes) noexcept;
};

// A standard allocator over the pool, for Asio handlers (boost::asio::bind_allocator).
template <typename T>
struct PoolAllocator {
  using value_type = T;
  PoolAllocator() noexcept = default;
  template <typename U>
  PoolAllocator(const PoolAllocator<U>& /*other*/) noexcept {
  }  // NOLINT(google-explicit-constructor)
  [[nodiscard]] T* allocate(std::size_t n) {
    return static_cast<T*>(SmallObjectPool::allocate(n * sizeof(T)));
  }
  void deallocate(T* p, std::size_t n) noexcept { SmallObjectPool::deallocate(p, n * sizeof(T)); }
  template <typename U>
  friend bool operator==(const PoolAllocator& /*a*/, const PoolAllocator<U>& /*b*/) noexcept {
    return true;
  }
};

}  // namespace sluice::gateway::net
