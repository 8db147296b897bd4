#!/usr/bin/env bash
# clang-format every C++ file of the project (--check: report and fail instead of rewriting).
set -euo pipefail
cd "$(dirname "$0")/.."
# Tracked and new (untracked, not ignored) files alike: a file not yet added is formatted too.
mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.h' '*.cc' 2>/dev/null || find resilience gateway bench -name '*.h' -o -name '*.cc')
if [[ "${1:-}" == "--check" ]]; then
  clang-format --dry-run -Werror "${files[@]}"
else
  clang-format -i "${files[@]}"
fi
