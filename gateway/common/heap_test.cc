#include "gateway/common/heap.h"

#include <memory>
#include <vector>

#include <gtest/gtest.h>

namespace sluice::gateway::heap {
namespace {

TEST(Heap, ReportsTheAllocatorTheBuildAskedFor) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  EXPECT_EQ(allocatorName(), "sanitizer");
#elif defined(SLUICE_WITH_TCMALLOC)
  // Fails if tcmalloc is linked but glibc still serves malloc (link order, static libc, ...).
  EXPECT_EQ(allocatorName(), "tcmalloc");
#else
  EXPECT_EQ(allocatorName(), "glibc");
#endif
}

TEST(Heap, ReleaseFreeLeavesLiveMemoryIntact) {
  std::vector<std::unique_ptr<char[]>> blocks;
  for (int i = 0; i < 256; ++i) {
    blocks.push_back(std::make_unique<char[]>(4096));
    blocks.back()[0] = static_cast<char>(i);
  }
  for (int i = 0; i < 256; i += 2) blocks[i].reset();
  releaseFree();
  for (int i = 1; i < 256; i += 2) EXPECT_EQ(blocks[i][0], static_cast<char>(i));
}

}  // namespace
}  // namespace sluice::gateway::heap
