#!/usr/bin/env bash
# clang-tidy (config in .clang-tidy) on the given files, or on the C++ files changed since
# origin/main (or the last commit). Needs a configured release build for compile_commands.json.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -f build/release/compile_commands.json ]] || cmake --preset release >/dev/null
if (($#)); then
  files=("$@")
else
  base=$(git merge-base HEAD origin/main 2>/dev/null || git rev-parse HEAD~1)
  mapfile -t files < <(git diff --name-only "$base" -- '*.cc' | while read -r f; do [[ -f $f ]] && echo "$f"; done)
fi
((${#files[@]})) || { echo "lint: nothing to check"; exit 0; }
# The build uses GCC precompiled headers, which clang cannot read: give clang-tidy the same
# commands without them (every header is still included by the sources themselves).
db=$(mktemp -d)
trap 'rm -rf "$db"' EXIT
sed -E 's# -include [^ ]*cmake_pch\.hxx##g; s# -Winvalid-pch##g' build/release/compile_commands.json \
  > "$db/compile_commands.json"
clang-tidy -p "$db" --quiet "${files[@]}"
