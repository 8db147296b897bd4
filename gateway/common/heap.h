// The process heap. Release builds link gperftools' tcmalloc in place of glibc's malloc (see
// ARCHITECTURE.md, "Decisions that differ"); in sanitizer builds the sanitizer's own allocator
// replaces malloc, and glibc's is never used. Nothing else in the gateway needs to know which one
// serves malloc.
#pragma once

#include <string_view>

namespace sluice::gateway::heap {

// The allocator that actually serves malloc in this process: "tcmalloc", "glibc", or
// "sanitizer" (an ASan, TSan or MSan build: the sanitizer's allocator). tcmalloc is checked at
// run time (an allocation is asked who owns it), so a build whose link order failed to
// interpose tcmalloc says "glibc" instead of claiming what it does not run.
[[nodiscard]] std::string_view allocatorName() noexcept;

// Gives freed heap pages back to the OS. Called after connections went cold (a burst of clients
// left their per-request memory free but resident); its cost grows with the free memory, not
// with the heap, and it is safe from any thread. Does nothing under a sanitizer.
void releaseFree() noexcept;

}  // namespace sluice::gateway::heap
