#!/usr/bin/env bash
# Builds the libFuzzer harnesses of fuzz/ (clang, ASan+UBSan; preset fuzz) and runs each for a
# while, then prints, per harness: executions, corpus size, and the code edges it reached.
#
#   scripts/fuzz.sh                       every harness, 10 minutes each (the long run)
#   scripts/fuzz.sh --time 10             what CI runs (scripts/check.sh, stage fuzz)
#   scripts/fuzz.sh --time 3600 config    one harness for an hour
#
# Each harness keeps growing its own corpus in build/fuzz/corpus/<name>, seeded from
# fuzz/corpus/<name>; worthwhile new inputs can be minimised into the seeds with
#   build/fuzz/fuzzers/<name>_fuzz -merge=1 fuzz/corpus/<name> build/fuzz/corpus/<name>
# A crash, a sanitizer report or a failed SLUICE_FUZZ_CHECK stops the run: the input is left in
# build/fuzz/artifacts/<name>/ and the script fails. Fix it, then copy the input into
# fuzz/regressions/<name>/ (ctest fuzz_replay_<name> replays it in every build from then on)
# and add a unit test for the bug next to the code.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=600
jobs=$(nproc)
while [[ $# -gt 0 ]]; do
  case $1 in
    --time) seconds=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
if [[ $# -gt 0 ]]; then
  names=("$@")
else
  mapfile -t names < <(ls fuzz/*_fuzz.cc | sed 's|fuzz/||; s|_fuzz\.cc$||')
fi

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$jobs"

out=build/fuzz
mkdir -p "$out/logs"
run() {
  local name=$1
  mkdir -p "$out/corpus/$name" "$out/artifacts/$name" "fuzz/corpus/$name"
  # Options: each input gets 10 s and 2 GiB; the first corpus directory receives new inputs.
  "$out/fuzzers/${name}_fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$out/artifacts/$name/" \
    "$out/corpus/$name" "fuzz/corpus/$name" >"$out/logs/$name.log" 2>&1
}
export -f run
export out seconds
printf '%s\n' "${names[@]}" | xargs -P "$jobs" -I{} bash -c 'run {} || echo {} >>"$out/logs/failed"' \
  || true

# The code each harness is there to test: its coverage is reported apart from the rest of the
# binary (Boost, yaml-cpp and the harness itself count among the instrumented edges too).
declare -A under_test=(
  [request_parser]='gateway/http/(request|strict)_parser' [response_parser]='gateway/http/(response|strict)_parser'
  [chunked]='gateway/http/strict_parser' [config]='gateway/config/' [endpoints]='gateway/config/(loader|yaml_)'
  [router]='gateway/routing/' [hash_key]='gateway/proxy/hash_key' [timeout_header]='gateway/http/timeout_header'
  [registry]='gateway/server/registry_request'
)
# Edges reached / edges in the functions of files matching $2, replaying corpus dirs $3...
edges_of() {
  local bin=$1 pattern=$2
  shift 2
  "$bin" -runs=0 -print_coverage=1 "$@" 2>&1 | awk -v re="$pattern" '
    /^(UN)?COVERED_FUNC:/ && $NF ~ re { split($5, e, "/"); hit += e[1]; all += e[2] }
    END { if (all == 0) print "-"; else printf "%d / %d (%.0f %%)", hit, all, 100 * hit / all }'
}

report=$out/report.md
{
  printf '| harness | executions | exec/s | corpus (inputs / bytes) | edges of the code under test | edges in the binary |\n'
  printf '|---|---:|---:|---:|---:|---:|\n'
  for name in "${names[@]}"; do
    log=$out/logs/$name.log
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    total=$(sed -n 's/^INFO: Loaded 1 modules *(\([0-9]*\) inline.*/\1/p' "$log" | head -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    files=$(find "$out/corpus/$name" "fuzz/corpus/$name" -type f | wc -l)
    bytes=$(cat "$out/corpus/$name"/* "fuzz/corpus/$name"/* 2>/dev/null | wc -c)
    tested=$(edges_of "$out/fuzzers/${name}_fuzz" "${under_test[$name]:-^$}" "$out/corpus/$name" "fuzz/corpus/$name")
    printf '| %s | %s | %s | %s / %s | %s | %s / %s |\n' "$name" "${execs:-?}" "${rate:-?}" \
      "$files" "$bytes" "$tested" "${cov:-?}" "${total:-?}"
  done
} >"$report"
echo "fuzz: $seconds s per harness"
cat "$report"

if [[ -s $out/logs/failed ]]; then
  while read -r name; do
    echo "fuzz: $name found a problem: see $out/logs/$name.log; the input is in $out/artifacts/$name/" >&2
    grep -m3 -E 'ERROR|SLUICE_FUZZ_CHECK|runtime error' "$out/logs/$name.log" >&2 || true
  done <"$out/logs/failed"
  rm -f "$out/logs/failed"
  exit 1
fi
