#!/usr/bin/env bash
# resilience/ must stay a leaf: it may include only the C++ standard library and itself. Tests,
# benchmarks and the headers only they include (*_test_support.h) may also use their own
# dependencies (GoogleTest, Google Benchmark, xxhash).
# Prints every offending include as file:line: text and fails if there is one.
set -euo pipefail
dir=${1:-$(dirname "$0")/../resilience}
bad=$(grep -rnE '^\s*#\s*include\s*[<"]' "$dir" --include='*.h' --include='*.cc' \
  | grep -vE '(_(test|benchmark)\.cc|_test_support\.h):' \
  | grep -vE '#\s*include\s*"resilience/' \
  | grep -vE '#\s*include\s*<[a-z_]+>' || true)
if [[ -n "$bad" ]]; then
  echo "resilience/ must include only the standard library and resilience/ headers:" >&2
  echo "$bad" >&2
  exit 1
fi
