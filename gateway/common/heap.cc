#include "gateway/common/heap.h"

#include <cstdlib>
#include <malloc.h>

#ifdef SLUICE_WITH_TCMALLOC
#include <gperftools/malloc_extension_c.h>
#endif

namespace sluice::gateway::heap {

std::string_view allocatorName() noexcept {
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
}

void releaseFree() noexcept {
#ifdef SLUICE_WITH_TCMALLOC
  if (allocatorName() == "tcmalloc") {
    MallocExtension_ReleaseFreeMemory();
    return;
  }
#endif
  malloc_trim(0);
}

}  // namespace sluice::gateway::heap
