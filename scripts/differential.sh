#!/usr/bin/env bash
# Differential test of resilience::TokenBucket against Go's golang.org/x/time/rate (Debian's
# golang-golang-x-time-dev, installed by scripts/setup.sh): test/differential/token_bucket/gen.go
# plays random scenarios on Go's Limiter and records its answers; token_bucket_replay replays
# them against the C++ class and reports every answer that differs (exit status 1).
#
#   scripts/differential.sh                        # 3000 scenarios each of seeds 1 and 2 (CI)
#   scripts/differential.sh --scenarios 20000 --seeds "$(seq 1 50)"    # a longer run
#   scripts/differential.sh --replay build/asan-ubsan/test/differential/token_bucket_replay
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
replay=$root/build/release/test/differential/token_bucket_replay
scenarios=3000
seeds="1 2"
while (($#)); do
  case $1 in
    --replay) replay=$2; shift 2 ;;
    --scenarios) scenarios=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    *) echo "usage: $0 [--replay PATH] [--scenarios N] [--seeds \"S1 S2 ...\"]" >&2; exit 2 ;;
  esac
done
[[ -x $replay ]] || { echo "differential: $replay not built (cmake --build --preset release)" >&2; exit 2; }
command -v go >/dev/null || { echo "differential: go not found (scripts/setup.sh installs golang-go)" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Debian packages Go libraries as a GOPATH tree, not as modules.
export GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE=$work/cache GOFLAGS=
go build -o "$work/gen" "$root/test/differential/token_bucket/gen.go"
for seed in $seeds; do
  printf 'seed %s: ' "$seed"
  "$work/gen" -seed "$seed" -n "$scenarios" | "$replay"
done
