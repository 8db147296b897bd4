#!/usr/bin/env bash
# Installs the Debian 12 packages sluice needs. Idempotent: installs only what is missing, and
# touches apt only when something is. Run as root (or with sudo available).
#
#   scripts/setup.sh            build + test dependencies
#   scripts/setup.sh --bench    also the peers and load tools used by bench/ (nginx, HAProxy, Caddy, wrk,
#                               liburing for bench/relay, matplotlib for bench/overload plots)
set -euo pipefail

# Why each package is here is in README.md ("Dependencies").
packages=(
  g++ cmake ninja-build pkg-config git ca-certificates
  libboost1.81-dev libyaml-dev libyaml-cpp-dev libre2-dev libcli11-dev nlohmann-json3-dev libspdlog-dev
  libfmt-dev libxxhash-dev libgoogle-perftools-dev
  libgtest-dev libgmock-dev libbenchmark-dev python3 python3-pytest curl llvm-14
  clang-format clang-tidy golang-go golang-golang-x-time-dev clang libclang-rt-14-dev prometheus
  libsystemd-dev help2man dpkg-dev systemd man-db libhiredis-dev redis-server etcd-server
  chromium
)
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(nginx haproxy caddy wrk linux-perf procps liburing-dev python3-matplotlib)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "setup: installing ${missing[*]}" >&2
sudo=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "setup: run as root (or install sudo)" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
# Package installs must never start services on the machine (nginx, haproxy, caddy): the tests and
# benchmarks start their own copies on free ports and stop them by PID.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
  "${sudo[@]}" chmod +x "$policy"
  created_policy=1
fi
cleanup() { if ((created_policy)); then "${sudo[@]}" rm -f "$policy"; fi; }
trap cleanup EXIT
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
