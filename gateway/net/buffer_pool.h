// BufferPool: memory for socket buffers (IoBuffer), kept apart from the general heap.
//
// Why: a busy connection's buffers are the largest things it allocates (4 KiB for the client's
// bytes, 32 KiB for the upstream's) and they are freed when it goes idle. From the general
// heap, the holes they leave are refilled by small long-lived objects (Asio's per-socket state
// of the next connections accepted), and every page holding one of those stays resident: after
// a burst of clients that then idle, that fragmentation is most of what an idle connection
// costs. Measured with glibc serving every allocation of 4 KiB and up from its own mapping
// (MALLOC_MMAP_THRESHOLD_=4096): 1.5 KB per idle connection instead of 2.1 KB.
//
// Blocks are powers of two from kMinBlock to kMaxBlock, carved from 1 MiB slabs mapped with mmap
// and never unmapped. Larger requests go to operator new, and so do smaller ones (a client's
// first read, 1 KiB): a page is the least trim() can give back, and tcmalloc keeps each small
// size in spans of its own, so their holes are not refilled by other objects. Each thread keeps
// its own free blocks, so allocation takes no lock (a block freed on another thread joins that
// thread's lists). trim(), called every second, returns to the kernel the pages of the free
// blocks that no allocation needed since the last call, beyond a small warm reserve
// (MADV_DONTNEED: the addresses stay, reused blocks fault in zeroed pages): the RSS of a burst
// goes away a second or two after it, busy or not, while blocks in steady use stay resident.
#pragma once

#include <cstddef>

namespace sluice::gateway::net {

class BufferPool {
 public:
  static constexpr std::size_t kMinBlock = std::size_t{4} * 1024;
  static constexpr std::size_t kMaxBlock = std::size_t{1024} * 1024;
  // Free blocks per size class that trim() leaves resident, for the next busy connections.
  static constexpr std::size_t kWarmBlocks = 16;

  // At least `bytes`; `bytes` must be passed again to deallocate().
  [[nodiscard]] static void* allocate(std::size_t bytes);
  static void deallocate(void* p, std::size_t bytes) noexcept;

  // Gives back to the kernel the pages of this thread's free blocks that stayed free since the
  // previous trim(), beyond kWarmBlocks per class; returns how many bytes that was. Cheap when
  // there is nothing to give back.
  static std::size_t trim() noexcept;

  // The calling thread's free blocks, resident (warm) or given back (cold); for tests.
  struct Stats {
    std::size_t warm_bytes = 0;
    std::size_t cold_bytes = 0;
  };
  [[nodiscard]] static Stats stats() noexcept;
};

}  // namespace sluice::gateway::net
