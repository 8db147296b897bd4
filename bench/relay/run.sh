#!/usr/bin/env bash
# The floor under any proxy on this box: runs bench/proxy/run.sh twice, each time with nginx,
# sluice and one flavour of the do-nothing relay (relay.cc) in the same run, so every figure
# has an nginx to be divided by. Answers "how much CPU per request can a proxy save here at
# all, and would another I/O model save kernel time" (see docs/benchmarks.md).
#
#   bench/relay/run.sh                 # 1k at 50 and 500 connections, 5 interleaved reps
#   MODES=uring REPS=3 bench/relay/run.sh
#
# Env: MODES ["epoll uring"], and every bench/proxy/run.sh knob (CONNS, BODIES, REPS, ...).
# Needs liburing-dev (scripts/setup.sh --bench) and Linux >= 6.1 for the io_uring flavour.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
if [[ -z "${SLUICE_NO_BUILD:-}" ]]; then
  "$REPO/scripts/setup.sh" --bench
  (cd "$REPO" && cmake --preset release >/dev/null && cmake --build --preset release --target sluice)
fi
BIN="$REPO/build/relay"
mkdir -p "$(dirname "$BIN")"
g++ -std=c++20 -O2 -Wall -Wextra -o "$BIN" "$HERE/relay.cc" -luring

export SLUICE_NO_BUILD=1
export CONNS=${CONNS:-"50 500"} BODIES=${BODIES:-1k} REPS=${REPS:-5} IDLE_CONNS=${IDLE_CONNS:-0}
export TARGETS=${TARGETS:-"nginx sluice"}
for mode in ${MODES:-epoll uring}; do
  EXTRA_CMD="$BIN $mode 18090 18080" TAG="relay-$mode" \
    "$REPO/bench/proxy/run.sh" 127.0.0.1:18090 "relay-$mode"
done
