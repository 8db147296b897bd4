#!/usr/bin/env bash
# The README's first command: installs what is missing, builds sluice, and runs `sluice demo`
# (built-in demo upstreams, the bundled config, the admin page). Extra arguments go to
# `sluice demo` (e.g. --listen 127.0.0.1:8081 --admin 127.0.0.1:9902).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target sluice -j "$(nproc)"
exec build/release/sluice demo "$@"
