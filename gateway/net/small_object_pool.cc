#include "gateway/net/small_object_pool.h"

#include <array>
#include <memory>
#include <mutex>
#include <vector>

namespace sluice::gateway::net {
namespace {

constexpr std::size_t kGranule = 64;
constexpr std::size_t kSmallClasses = SmallObjectPool::kMaxSize / kGranule;
constexpr std::size_t kChunkBytes = std::size_t{64} * 1024;

struct FreeBlock {
  FreeBlock* next;
};

class SmallSizeClass {
 public:
  void* allocate(std::size_t block) {
    std::lock_guard lock(mu_);
    if (free_ == nullptr) grow(block);
    FreeBlock* b = free_;
    free_ = b->next;
    return b;
  }
  void deallocate(void* p) noexcept {
    std::lock_guard lock(mu_);
    auto* b = static_cast<FreeBlock*>(p);
    b->next = free_;
    free_ = b;
  }

 private:
  void grow(std::size_t block) {
    auto& chunk = chunks_.emplace_back(std::make_unique<std::byte[]>(kChunkBytes));
    // Thread the new blocks so the lowest address is handed out first.
    for (std::size_t off = kChunkBytes / block * block; off >= block; off -= block) {
      auto* b = reinterpret_cast<FreeBlock*>(chunk.get() + off - block);
      b->next = free_;
      free_ = b;
    }
  }

  std::mutex mu_;
  FreeBlock* free_ = nullptr;
  std::vector<std::unique_ptr<std::byte[]>> chunks_;
};

std::array<SmallSizeClass, kSmallClasses>& smallClasses() {
  // Never destroyed: connections may be freed by static destructors until the very end.
  // NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): the pool is mutable state
  static auto* const pool = new std::array<SmallSizeClass, kSmallClasses>();
  return *pool;
}

std::size_t smallClassOf(std::size_t bytes) { return (bytes + kGranule - 1) / kGranule - 1; }

// Under AddressSanitizer every block comes from operator new, so use-after-free stays visible.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kPoolSmallObjects = false;
#else
constexpr bool kPoolSmallObjects = true;
#endif

}  // namespace

void* SmallObjectPool::allocate(std::size_t bytes) {
  if (!kPoolSmallObjects || bytes == 0 || bytes > kMaxSize) return ::operator new(bytes);
  const std::size_t c = smallClassOf(bytes);
  return smallClasses()[c].allocate((c + 1) * kGranule);
}

void SmallObjectPool::deallocate(void* p, std::size_t bytes) noexcept {
  if (p == nullptr) return;
  if (!kPoolSmallObjects || bytes == 0 || bytes > kMaxSize) {
    ::operator delete(p);
    return;
  }
  smallClasses()[smallClassOf(bytes)].deallocate(p);
}

}  // namespace sluice::gateway::net
