#!/usr/bin/env bash
# Line and branch coverage of the library (resilience/) and the gateway (gateway/<module>/), by
# the tests ctest runs: unit tests, the black-box integration tests, the differential test and the
# fuzz replays (the soak and the benchmark-report tests are left out: the soak adds a minute of
# load and measures RSS, which a coverage build makes meaningless).
#
#   scripts/coverage.sh            configure, build, run the tests, report
#   scripts/coverage.sh --report   report again from the profiles of the last run
#
# The build (build/coverage) is clang's source-based coverage (-fprofile-instr-generate
# -fcoverage-mapping, read by llvm-cov) at -O0, in unity batches like the sanitizer builds,
# without benchmarks or tcmalloc. Not GCC's --coverage with gcovr: GCC 12 leaves coroutine bodies
# uninstrumented (not one line of one is reported), and the gateway's request path is coroutines;
# and over clang's gcov-format counters gcovr counts every call's exception edge and each
# co_await's suspend and destroy paths as branches. Source-based branches are the conditions the
# source writes (each operand of && and ||, if, loops, ?:, switch cases), counted once per line
# however many of the gateway's binaries run it.
#
# Every test process writes its profile when it exits (LLVM_PROFILE_FILE, merged per binary);
# the integration tests stop the gateway with SIGTERM, which drains and exits normally, so the
# report includes what the real binary ran, not only what unit tests reach.
#
# Output in build/coverage/report/: modules.txt (the per-module table, also printed), files.txt
# (per file), summary.json (llvm-cov's export) and html/index.html (annotated sources). Tests,
# benchmarks, fuzz harnesses and generated files are not counted. Asserts are compiled out
# (NDEBUG, as in the release build): their never-taken failure branch would count against every
# function that checks something.
#
# Environment: JOBS (default 2) parallel compile jobs and test processes.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=build/coverage
report=$build/report
profiles=$root/$build/profiles
jobs=${JOBS:-2}
llvm=/usr/lib/llvm-14/bin

tests_status=0
if [[ "${1:-}" != "--report" ]]; then
  scripts/setup.sh  # clang and llvm-14 (llvm-cov, llvm-profdata) among what it installs
  flags="-O0 -g -fprofile-instr-generate -fcoverage-mapping -DNDEBUG"
  cmake -S . -B "$build" -G Ninja \
    -DCMAKE_CXX_COMPILER=clang++-14 \
    -DCMAKE_BUILD_TYPE=Coverage \
    -DCMAKE_CXX_FLAGS_COVERAGE="$flags" \
    -DCMAKE_EXE_LINKER_FLAGS_COVERAGE=-fprofile-instr-generate \
    -DCMAKE_UNITY_BUILD=ON \
    -DSLUICE_BUILD_BENCHMARKS=OFF \
    -DSLUICE_TCMALLOC=OFF \
    -DSLUICE_WERROR=OFF >/dev/null # the release build holds GCC's warnings; clang has others
  cmake --build "$build" -j "$jobs"
  # This run's profiles only; %4m: each binary's processes merge into at most 4 files.
  rm -rf "$profiles"
  export LLVM_PROFILE_FILE="$profiles/%4m.profraw"
  ctest --test-dir "$build" -j "$jobs" -LE 'soak|tools' --output-on-failure || tests_status=$?
  if ((tests_status)); then
    echo "coverage: some tests failed (ctest exit $tests_status); the report covers what ran" >&2
  fi
  "$llvm/llvm-profdata" merge -sparse -o "$build/coverage.profdata" "$profiles"/*.profraw
fi

# Every executable the build made (the gateway, the test binaries, the replays): llvm-cov reads
# each one's coverage mapping.
objects=()
while IFS= read -r f; do
  [[ $(head -c 4 "$f" | od -An -c | tr -d ' ') == '177ELF' ]] && objects+=(-object "$f")
done < <(find "$build" -type f -perm -u+x ! -path '*/CMakeFiles/*' | sort)
cov=(-instr-profile "$build/coverage.profdata" "${objects[@]:1}"
     -ignore-filename-regex '_(test|benchmark)\.cc$' "$root/resilience" "$root/gateway")

mkdir -p "$report"
"$llvm/llvm-cov" export -summary-only "${cov[@]}" >"$report/summary.json"
"$llvm/llvm-cov" report --show-branch-summary "${cov[@]}" >"$report/files.txt"
"$llvm/llvm-cov" show -format=html -show-branches=count -output-dir "$report/html" \
  -project-title sluice "${cov[@]}" >/dev/null

# llvm-cov reports per file; the modules are the library and each directory of the gateway
# (gateway/upstream/lb/ counts as gateway/upstream/).
python3 - "$report/summary.json" "$root/" >"$report/modules.txt" <<'EOF'
import collections
import json
import sys

files = json.load(open(sys.argv[1]))["data"][0]["files"]
root = sys.argv[2]
totals = collections.defaultdict(lambda: [0, 0, 0, 0])  # lines covered/total, branches covered/total


def module(path):
    parts = path.split("/")
    if parts[0] == "gateway" and len(parts) > 2:
        return "gateway/" + parts[1] + "/"
    return parts[0] + "/"


for f in files:
    name = f["filename"].removeprefix(root)
    s = f["summary"]
    for key in (module(name), "gateway (all)" if name.startswith("gateway/") else None, "total"):
        if key is None:
            continue
        t = totals[key]
        t[0] += s["lines"]["covered"]
        t[1] += s["lines"]["count"]
        t[2] += s["branches"]["covered"]
        t[3] += s["branches"]["count"]


def pct(covered, total):
    return f"{100.0 * covered / total:5.1f} %" if total else "    -  "


order = sorted(k for k in totals if k.endswith("/"))
order += ["gateway (all)", "total"]
print(f"{'module':<20} {'lines':>13} {'line %':>8} {'branches':>13} {'branch %':>8}")
for key in order:
    lc, lt, bc, bt = totals[key]
    print(f"{key:<20} {f'{lc}/{lt}':>13} {pct(lc, lt):>8} {f'{bc}/{bt}':>13} {pct(bc, bt):>8}")
EOF
cat "$report/modules.txt"
echo "coverage: per file in $report/files.txt, annotated sources in $report/html/index.html" >&2
exit "$tests_status"
