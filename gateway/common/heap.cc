#include "gateway/common/heap.h"

#include <cstdlib>
#include <malloc.h>

#ifdef SLUICE_WITH_TCMALLOC
#include <gperftools/malloc_extension_c.h>
#endif

// GCC says so with __SANITIZE_*__; clang 14 only through __has_feature.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SLUICE_SANITIZER_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define SLUICE_SANITIZER_MALLOC 1
#endif
#endif

namespace sluice::gateway::heap {

std::string_view allocatorName() noexcept {
#if defined(SLUICE_SANITIZER_MALLOC)
  return "sanitizer";
#else
#ifdef SLUICE_WITH_TCMALLOC
  static const bool tcmalloc = [] {
    // malloc itself is the subject here, not a way to hold memory.
    void* p = std::malloc(64);  // NOLINT(cppcoreguidelines-no-malloc)
    const bool owned = MallocExtension_GetOwnership(p) == MallocExtension_kOwned;
    std::free(p);  // NOLINT(cppcoreguidelines-no-malloc)
    return owned;
  }();
  if (tcmalloc) return "tcmalloc";
#endif
  return "glibc";
#endif
}

void releaseFree() noexcept {
#if defined(SLUICE_SANITIZER_MALLOC)
  // The sanitizer's allocator serves malloc and glibc's arenas were never set up, but
  // malloc_trim walks them anyway: from a worker thread it read a null arena, or left glibc's
  // count of threads per arena wrong for its thread-exit check (both seen as aborts of the ASan
  // build in CI). The sanitizer keeps freed memory in quarantine on purpose: nothing to give back.
#else
#ifdef SLUICE_WITH_TCMALLOC
  if (allocatorName() == "tcmalloc") {
    MallocExtension_ReleaseFreeMemory();
    return;
  }
#endif
  malloc_trim(0);
#endif
}

}  // namespace sluice::gateway::heap
