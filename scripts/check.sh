#!/usr/bin/env bash
# The README's second command (and what CI runs through .ci/run): installs what is missing,
# builds, and runs every test:
#   1. formatting of every C++ file (clang-format, config in .clang-format);
#   2. release build: unit tests (GoogleTest) and black-box integration tests (pytest);
#   3. ASan+UBSan build: the same unit and integration tests;
#   4. TSan build: the unit tests, including every multi-threaded stress test;
#   5. fuzz: the libFuzzer harnesses of fuzz/ (clang, ASan+UBSan), a short run each
#      (scripts/fuzz.sh; SLUICE_FUZZ_SECONDS, default 10).
# The release build compiles every file alone (include hygiene); the sanitizer builds compile
# the same sources in unity batches with -g1 (CMakePresets.json), for time.
# Each stage prints its duration. Set SLUICE_CHECK_STAGES="release asan" to run a subset.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

stages=${SLUICE_CHECK_STAGES:-"format release asan tsan fuzz"}
jobs=$(nproc)
stage() { printf '\n==== %s ====\n' "$*"; }
timed() { local t0=$SECONDS; "$@"; echo "(${1##*/} ${2:-}: $((SECONDS - t0)) s)"; }

for s in $stages; do
  case $s in
    format)
      stage "clang-format, and names that would clash in the sanitizer builds' unity batches"
      timed scripts/format.sh --check
      timed scripts/check_unity_names.py ;;
    release)
      stage "release: build, unit and integration tests"
      cmake --preset release >/dev/null
      timed cmake --build --preset release -j "$jobs"
      timed ctest --preset release -j "$jobs" ;;
    asan)
      stage "asan-ubsan: build, unit and integration tests"
      cmake --preset asan-ubsan >/dev/null
      timed cmake --build --preset asan-ubsan -j "$jobs"
      timed ctest --preset asan-ubsan -j "$jobs" ;;
    tsan)
      stage "tsan: build and unit tests (multi-threaded stress tests included)"
      cmake --preset tsan >/dev/null
      timed cmake --build --preset tsan -j "$jobs" --target resilience_tests gateway_tests
      timed ctest --preset tsan -j "$jobs" -L unit ;;
    fuzz)
      stage "fuzz: libFuzzer harnesses (clang, ASan+UBSan), ${SLUICE_FUZZ_SECONDS:-10} s each"
      timed scripts/fuzz.sh --time "${SLUICE_FUZZ_SECONDS:-10}" ;;
    *) echo "unknown stage $s" >&2; exit 2 ;;
  esac
done
printf '\nall checks passed\n'
