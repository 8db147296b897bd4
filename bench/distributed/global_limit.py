#!/usr/bin/env python3
"""What a global rate limit costs: sluice with no limit, a local limit and a global one (Redis),
keyed by route and by 10,000 distinct client keys, under the same wrk load, in one run.

    bench/distributed/global_limit.py                 # 3 interleaved reps of 10 s per target
    bench/distributed/global_limit.py --quick         # 1 rep of 3 s (what CI could afford)

Placement (2 cores): sluice (1 worker) alone on CPU 1; wrk (1 thread, 50 connections) and
redis-server on CPU 0. Every limit admits everything (1,000,000/s, burst 100,000): what is measured
is the limiter's cost on the request path, not refusals. The route answers itself
(direct_response), so no upstream shares the proxy's CPU and the ratio is the harshest one.

Reported per target, medians over the reps: requests/s, requests per sluice CPU-second, the ratio
of that to the local limit's, wrk's p99, Redis calls (EVALSHA/EVAL, from INFO commandstats) per
request and Redis CPU per 1,000 requests. Needs: wrk, redis-server (scripts/setup.sh --bench) and
a release build (build/release/sluice). Everything started is stopped by PID.
"""
import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
REPORT_LUA = os.path.join(ROOT, "bench", "proxy", "tools", "report.lua")

KEYS_LUA = """
-- 10,000 distinct X-Key values, in a fixed pseudo-random order.
local n = 0
request = function()
  n = n + 1
  local k = (n * 7919) % 10000
  return wrk.format("GET", "/", { ["X-Key"] = "client-" .. k })
end
"""

TARGETS = {
    # name: (rate_limit line or None, wrk script with 10k keys?)
    "none": (None, False),
    "local": ("{ rate: 1000000/s, burst: 100000, key: route }", False),
    "global": ("{ rate: 1000000/s, burst: 100000, key: route, scope: global }", False),
    "local-10k-keys": ("{ rate: 1000000/s, burst: 100000, key: 'header:X-Key' }", True),
    "global-10k-keys": ("{ rate: 1000000/s, burst: 100000, key: 'header:X-Key', scope: global }",
                        True),
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def redis_cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True,
                          check=True).stdout


def redis_calls(port):
    total = 0
    for line in redis_cli(port, "INFO", "commandstats").splitlines():
        m = re.match(r"cmdstat_(evalsha|eval):calls=(\d+)", line)
        if m:
            total += int(m.group(2))
    return total


def redis_cpu(port):
    info = dict(line.split(":", 1) for line in redis_cli(port, "INFO", "cpu").splitlines()
                if ":" in line)
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def wait_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def run_target(binary, name, redis_port, workdir, duration, proxy_cpu, load_cpu):
    limit, many_keys = TARGETS[name]
    port, admin = free_port(), free_port()
    config = (f"workers: 1\nlisteners:\n  - {{ name: public, address: 127.0.0.1:{port} }}\n"
              f"admin: {{ address: 127.0.0.1:{admin} }}\n"
              f"redis: {{ address: 127.0.0.1:{redis_port}, timeout: 20ms }}\n"
              "clusters:\n  - { name: app, endpoints: [127.0.0.1:9] }\n"
              "routes:\n  - name: hello\n    direct_response: { status: 200, body: \"hello\\n\" }\n")
    if limit:
        config += f"    rate_limit: {limit}\n"
    path = os.path.join(workdir, f"{name}.yaml")
    with open(path, "w") as f:
        f.write(config)
    proc = subprocess.Popen(["taskset", "-c", str(proxy_cpu), binary, "run", "-c", path],
                            stdout=subprocess.DEVNULL, stderr=open(path + ".log", "w"))
    try:
        wait_port(port)
        script = REPORT_LUA
        if many_keys:
            script = os.path.join(workdir, "keys.lua")
            with open(script, "w") as f:
                f.write(KEYS_LUA + open(REPORT_LUA).read())
        wrk = ["taskset", "-c", str(load_cpu), "wrk", "-t1", "-c50", "-s", script,
               f"http://127.0.0.1:{port}/"]
        subprocess.run(wrk + ["-d1s"], capture_output=True, check=True)  # warm-up
        redis_cli(redis_port, "CONFIG", "RESETSTAT")
        calls0, rcpu0, cpu0 = redis_calls(redis_port), redis_cpu(redis_port), cpu_seconds(proc.pid)
        out = subprocess.run(wrk + [f"-d{duration}s"], capture_output=True, text=True,
                             check=True).stdout
        cpu = cpu_seconds(proc.pid) - cpu0
        calls = redis_calls(redis_port) - calls0
        rcpu = redis_cpu(redis_port) - rcpu0
        m = re.search(r"RESULT requests=(\d+) duration_s=([\d.]+) rps=([\d.]+).*?p99_us=(\d+)"
                      r".*?err_connect=(\d+) err_read=(\d+) err_write=(\d+) err_status=(\d+)", out)
        requests, secs, rps, p99 = int(m.group(1)), float(m.group(2)), float(m.group(3)), \
            int(m.group(4))
        errors = sum(int(m.group(i)) for i in range(5, 9))
        return {"rps": rps, "per_cpu_s": requests / cpu if cpu > 0 else 0.0, "p99_us": p99,
                "calls_per_req": calls / requests if requests else 0.0,
                "redis_cpu_ms_per_1k": 1000 * rcpu / requests * 1000 if requests else 0.0,
                "errors": errors, "secs": secs}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int)
    ap.add_argument("--duration", type=int)
    ap.add_argument("--sluice", default=os.path.join(ROOT, "build", "release", "sluice"))
    ap.add_argument("--proxy-cpu", type=int, default=1)
    ap.add_argument("--load-cpu", type=int, default=0)
    ap.add_argument("targets", nargs="*", default=list(TARGETS))
    a = ap.parse_args()
    reps = a.reps or (1 if a.quick else 3)
    duration = a.duration or (3 if a.quick else 10)
    for tool in ("wrk", "redis-server", "redis-cli", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found (scripts/setup.sh --bench)")
    workdir = tempfile.mkdtemp(prefix="sluice-bench-global-")
    redis_port = free_port()
    redis = subprocess.Popen(["taskset", "-c", str(a.load_cpu), "redis-server", "--port",
                              str(redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", workdir],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = {t: [] for t in a.targets}
    try:
        wait_port(redis_port)
        for rep in range(reps):
            for t in a.targets:  # interleaved: drift on a noisy box hits every target alike
                r = run_target(a.sluice, t, redis_port, workdir, duration, a.proxy_cpu,
                               a.load_cpu)
                results[t].append(r)
                print(f"rep {rep + 1} {t:16} {r['rps']:9.0f} req/s {r['per_cpu_s']:9.0f} "
                      f"req/CPU-s p99 {r['p99_us']:6d} us calls/req {r['calls_per_req']:.5f} "
                      f"errors {r['errors']}", file=sys.stderr, flush=True)
    finally:
        redis.send_signal(signal.SIGTERM)
        redis.wait(timeout=15)
        shutil.rmtree(workdir, ignore_errors=True)

    def med(t, k):
        return statistics.median(r[k] for r in results[t])

    print(f"| target | req/s | req per CPU-s | vs local | p99 (ms) | Redis calls/req | "
          f"Redis CPU ms/1k req |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for t in a.targets:
        base = "local-10k-keys" if t.endswith("10k-keys") else "local"
        ratio = (f"{med(t, 'per_cpu_s') / med(base, 'per_cpu_s'):.3f}"
                 if base in results and med(base, "per_cpu_s") else "")
        print(f"| {t} | {med(t, 'rps'):.0f} | {med(t, 'per_cpu_s'):.0f} | {ratio} | "
              f"{med(t, 'p99_us') / 1000:.2f} | {med(t, 'calls_per_req'):.5f} | "
              f"{med(t, 'redis_cpu_ms_per_1k'):.3f} |")


if __name__ == "__main__":
    main()
