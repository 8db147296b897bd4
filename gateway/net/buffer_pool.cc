#include "gateway/net/buffer_pool.h"

#include <algorithm>
#include <array>
#include <bit>
#include <new>
#include <sys/mman.h>
#include <vector>

namespace sluice::gateway::net {
namespace {

constexpr std::size_t kSlabBytes = BufferPool::kMaxBlock;
constexpr std::size_t kClasses =
    std::countr_zero(BufferPool::kMaxBlock) - std::countr_zero(BufferPool::kMinBlock) + 1;

// Under AddressSanitizer every block comes from operator new, so use-after-free stays visible.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kPooled = false;
#else
constexpr bool kPooled = true;
#endif

std::size_t classOf(std::size_t bytes) {
  const std::size_t block =
      std::bit_ceil(bytes < BufferPool::kMinBlock ? BufferPool::kMinBlock : bytes);
  return static_cast<std::size_t>(std::countr_zero(block) -
                                  std::countr_zero(BufferPool::kMinBlock));
}
std::size_t blockOf(std::size_t c) { return BufferPool::kMinBlock << c; }

struct SizeClass {
  std::vector<void*> warm;  // freed recently: pages resident, handed out first (LIFO)
  std::vector<void*> cold;  // pages given back by trim()
  // The fewest warm blocks since the last trim(): that many at the bottom of `warm` (the oldest)
  // were not needed in the meantime.
  std::size_t low = 0;
};

struct ThreadPool {
  std::array<SizeClass, kClasses> classes;

  void* allocate(std::size_t c) {
    SizeClass& sc = classes[c];
    if (sc.warm.empty() && sc.cold.empty()) grow(c);
    std::vector<void*>& from = sc.warm.empty() ? sc.cold : sc.warm;
    void* p = from.back();
    from.pop_back();
    sc.low = std::min(sc.low, sc.warm.size());
    return p;
  }

  void grow(std::size_t c) {
    void* slab =
        ::mmap(nullptr, kSlabBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (slab == MAP_FAILED) throw std::bad_alloc();
    // Untouched pages cost nothing until written: the new blocks are cold until used.
    const std::size_t block = blockOf(c);
    auto* base = static_cast<std::byte*>(slab);
    for (std::size_t off = kSlabBytes; off >= block; off -= block) {
      classes[c].cold.push_back(base + off - block);  // lowest address on top
    }
  }

  std::size_t trim() noexcept {
    std::size_t released = 0;
    for (std::size_t c = 0; c < kClasses; ++c) {
      SizeClass& sc = classes[c];
      const std::size_t unused = std::min(sc.low, sc.warm.size());
      sc.low = sc.warm.size();
      if (unused <= BufferPool::kWarmBlocks) continue;
      // The oldest free blocks go (the front): those no allocation reached since the last trim.
      const std::size_t excess = unused - BufferPool::kWarmBlocks;
      sc.low -= excess;
      try {
        sc.cold.reserve(sc.cold.size() + excess);
      } catch (...) {
        continue;  // no memory for the bookkeeping: keep the blocks warm
      }
      const auto first = sc.warm.begin();
      const auto last = first + static_cast<std::ptrdiff_t>(excess);
      sc.cold.insert(sc.cold.end(), first, last);
      sc.warm.erase(first, last);
      // Blocks of a slab are adjacent: sorted, neighbours merge into one madvise per run.
      const auto begin = sc.cold.end() - static_cast<std::ptrdiff_t>(excess);
      std::sort(begin, sc.cold.end());
      const std::size_t block = blockOf(c);
      for (auto run = begin; run != sc.cold.end();) {
        auto* start = static_cast<std::byte*>(*run);
        std::size_t length = block;
        for (++run; run != sc.cold.end() && *run == start + length; ++run) length += block;
        ::madvise(start, length, MADV_DONTNEED);
        released += length;
      }
    }
    return released;
  }
};

ThreadPool& local() {
  // Never destroyed: a buffer may be freed by a static or thread-local destructor that runs
  // after this thread's thread-locals are gone. (Slabs are never unmapped either.)
  // NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): per-thread mutable state
  thread_local auto* const pool = new ThreadPool();
  return *pool;
}

}  // namespace

void* BufferPool::allocate(std::size_t bytes) {
  if (!kPooled || bytes > kMaxBlock || bytes < kMinBlock) return ::operator new(bytes);
  return local().allocate(classOf(bytes));
}

void BufferPool::deallocate(void* p, std::size_t bytes) noexcept {
  if (p == nullptr) return;
  if (!kPooled || bytes > kMaxBlock || bytes < kMinBlock) {
    ::operator delete(p);
    return;
  }
  try {
    local().classes[classOf(bytes)].warm.push_back(p);
  } catch (...) {
    // Out of memory for the free list itself: the block stays mapped but unused.
  }
}

std::size_t BufferPool::trim() noexcept { return kPooled ? local().trim() : 0; }

BufferPool::Stats BufferPool::stats() noexcept {
  Stats s;
  if (!kPooled) return s;
  for (std::size_t c = 0; c < kClasses; ++c) {
    s.warm_bytes += local().classes[c].warm.size() * blockOf(c);
    s.cold_bytes += local().classes[c].cold.size() * blockOf(c);
  }
  return s;
}

}  // namespace sluice::gateway::net
