#include "gateway/net/buffer_pool.h"

#include <cstring>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "gateway/net/io_buffer.h"

namespace sluice::gateway::net {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kPooled = false;  // every block comes from operator new under ASan
#else
constexpr bool kPooled = true;
#endif

// Each test runs on a thread of its own, so it starts with an empty pool.
template <typename F>
void onFreshThread(F f) {
  std::thread t(f);
  t.join();
}

TEST(BufferPool, BlocksAreUsableAndDistinct) {
  onFreshThread([] {
    std::vector<char*> blocks;
    for (std::size_t bytes : {1UL, 4096UL, 4097UL, 32768UL, 100000UL, 1048576UL, 2000000UL}) {
      auto* p = static_cast<char*>(BufferPool::allocate(bytes));
      std::memset(p, 0x5a, bytes);  // the whole request is writable
      blocks.push_back(p);
    }
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      for (std::size_t j = i + 1; j < blocks.size(); ++j) EXPECT_NE(blocks[i], blocks[j]);
    }
    const std::size_t sizes[] = {1, 4096, 4097, 32768, 100000, 1048576, 2000000};
    for (std::size_t i = 0; i < blocks.size(); ++i) BufferPool::deallocate(blocks[i], sizes[i]);
  });
}

// A client's first read (1 KiB) would waste the rest of a pooled page: the heap serves it.
TEST(BufferPool, LessThanAPageComesFromTheHeap) {
  if (!kPooled) GTEST_SKIP() << "not pooled under AddressSanitizer";
  onFreshThread([] {
    void* p = BufferPool::allocate(1024);
    BufferPool::deallocate(p, 1024);
    const auto s = BufferPool::stats();
    EXPECT_EQ(s.warm_bytes + s.cold_bytes, 0U) << "a 1 KiB buffer took a slab";
  });
}

TEST(BufferPool, FreedBlockIsReusedFirst) {
  if (!kPooled) GTEST_SKIP() << "not pooled under AddressSanitizer";
  onFreshThread([] {
    void* a = BufferPool::allocate(std::size_t{32} * 1024);
    BufferPool::deallocate(a, std::size_t{32} * 1024);
    EXPECT_EQ(BufferPool::allocate(30000), a);  // same size class, LIFO
    BufferPool::deallocate(a, 30000);
  });
}

TEST(BufferPool, TrimKeepsAWarmReserveAndGivesBackTheRest) {
  if (!kPooled) GTEST_SKIP() << "not pooled under AddressSanitizer";
  onFreshThread([] {
    constexpr std::size_t kBlock = 4096;
    constexpr std::size_t kCount = BufferPool::kWarmBlocks + 40;
    std::vector<void*> blocks;
    for (std::size_t i = 0; i < kCount; ++i) {
      blocks.push_back(BufferPool::allocate(kBlock));
      std::memset(blocks.back(), 1, kBlock);
    }
    const auto before = BufferPool::stats();
    for (void* p : blocks) BufferPool::deallocate(p, kBlock);
    EXPECT_EQ(BufferPool::stats().warm_bytes, before.warm_bytes + kCount * kBlock);

    // Free now, but in use since the last trim: nothing is known to be unneeded yet.
    EXPECT_EQ(BufferPool::trim(), 0U);
    // Free for a whole interval: all but the reserve go.
    EXPECT_EQ(BufferPool::trim(), 40 * kBlock);
    const auto after = BufferPool::stats();
    EXPECT_EQ(after.warm_bytes, BufferPool::kWarmBlocks * kBlock);
    EXPECT_EQ(after.cold_bytes, before.cold_bytes + 40 * kBlock);
    EXPECT_EQ(BufferPool::trim(), 0U);  // nothing more to give back

    // The most recently freed blocks stayed warm; a cold block is reusable and reads as zero.
    EXPECT_EQ(BufferPool::allocate(kBlock), blocks.back());
    std::vector<void*> again;
    for (std::size_t i = 0; i < BufferPool::kWarmBlocks + 1; ++i) {
      again.push_back(BufferPool::allocate(kBlock));
    }
    const auto* cold = static_cast<const unsigned char*>(again.back());
    for (std::size_t i = 0; i < kBlock; ++i) ASSERT_EQ(cold[i], 0) << i;
    BufferPool::deallocate(blocks.back(), kBlock);
    for (void* p : again) BufferPool::deallocate(p, kBlock);
  });
}

TEST(BufferPool, TrimKeepsWhatTheLastIntervalNeeded) {
  if (!kPooled) GTEST_SKIP() << "not pooled under AddressSanitizer";
  onFreshThread([] {
    constexpr std::size_t kBlock = 4096;
    constexpr std::size_t kCount = BufferPool::kWarmBlocks + 40;
    std::vector<void*> blocks(kCount);
    for (void*& p : blocks) p = BufferPool::allocate(kBlock);
    for (void* p : blocks) BufferPool::deallocate(p, kBlock);
    EXPECT_EQ(BufferPool::trim(), 0U);
    // Steady use of 30 blocks in the next interval: only the 26 never reached are unneeded,
    // and the reserve keeps 16 of those.
    for (int round = 0; round < 3; ++round) {
      std::vector<void*> busy(30);
      for (void*& p : busy) p = BufferPool::allocate(kBlock);
      for (void* p : busy) BufferPool::deallocate(p, kBlock);
    }
    EXPECT_EQ(BufferPool::trim(), (kCount - 30 - BufferPool::kWarmBlocks) * kBlock);
    EXPECT_EQ(BufferPool::stats().warm_bytes, (30 + BufferPool::kWarmBlocks) * kBlock);
  });
}

TEST(IoBuffer, KeepsBytesAcrossGrowthFromThePool) {
  onFreshThread([] {
    IoBuffer b;
    b.append("hello ", 1 << 20);
    auto space = b.prepare(std::size_t{64} * 1024, 1 << 20);
    EXPECT_GE(space.size(), 64U * 1024);
    std::memcpy(space.data(), "world", 5);
    b.commit(5);
    EXPECT_EQ(b.readable(), "hello world");
    b.consume(b.size());
    b.release();
    EXPECT_EQ(b.capacity(), 0U);
  });
}

}  // namespace
}  // namespace sluice::gateway::net
