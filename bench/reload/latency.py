#!/usr/bin/env python3
"""How long a config reload takes with a large config: from the trigger until every worker serves
the new generation.

    bench/reload/latency.py [--routes 1000] [--clusters 200] [--reloads 30] [--workers 2]
                            [--sluice build/release/sluice]

Writes a config with ROUTES routes (each with a path prefix, a rate limit and a retry policy;
every fifth with a concurrency limit and a circuit breaker) over CLUSTERS clusters (two endpoints
each, pools, retry budgets; every fourth with outlier detection and a bulkhead), starts sluice on
it, and reloads it RELOADS times in each of three ways, each reload changing something:

  one       one route's timeout (the usual edit);
  all       every cluster's pool limits and every route's rate (everything reconfigured in place);
  sighup    like `one`, triggered by SIGHUP.

For SIGHUP the time is sluice's own log line ("... ms after the trigger": from the signal's
handler to the last worker's acknowledgement, reading and validating the file included). For the
admin API it is also the client's round trip of POST /config/reload, which returns once every
worker serves the new generation. Prints medians, p95 and maxima; the target is < 100 ms.
Everything it starts is stopped by PID.
"""
import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(port, admin, routes, clusters, workers, timeout_of_first="15s", rate=1000, max_idle=64):
    out = [f"workers: {workers}",
           f"admin: {{ address: 127.0.0.1:{admin} }}",
           f"listeners: [{{ name: public, address: 127.0.0.1:{port} }}]",
           "clusters:"]
    for c in range(clusters):
        # Endpoints that nothing listens on: the reload does not connect anywhere.
        eps = f"127.0.0.1:{20000 + 2 * c}, 127.0.0.1:{20001 + 2 * c}"
        out.append(f"  - name: c{c}")
        out.append(f"    endpoints: [{eps}]")
        out.append(f"    pool: {{ max_idle: {max_idle}, max_connections: 512 }}")
        out.append("    retry_budget: { percent: 20 }")
        if c % 4 == 0:
            out.append("    outlier_detection: { consecutive_5xx: 5 }")
            out.append("    bulkhead: { max_requests: 1000 }")
    out.append("routes:")
    for r in range(routes):
        timeout = timeout_of_first if r == 0 else "15s"
        out.append(f"  - name: r{r}")
        out.append(f"    match: {{ path_prefix: /r{r}/ }}")
        out.append(f"    cluster: c{r % clusters}")
        out.append(f"    timeout: {timeout}")
        out.append(f"    rate_limit: {{ rate: {rate}/s, burst: 100, key: client_ip }}")
        out.append("    retry: { attempts: 3, on: [connect-failure, reset] }")
        if r % 5 == 0:
            out.append("    concurrency: { max: 100, queue: 50 }")
            out.append("    circuit_breaker: { failure_rate: 50 }")
    return "\n".join(out) + "\n"


def write(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def post_reload(admin):
    req = urllib.request.Request(f"http://127.0.0.1:{admin}/config/reload", data=b"",
                                 method="POST")
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=30) as r:
        body = json.loads(r.read())
    return (time.perf_counter() - t0) * 1000, body


LOGLINE = re.compile(r"every worker serves generation (\d+) .* ([0-9.]+) ms after the trigger "
                     r"\(reading and validating ([0-9.]+) ms, applying ([0-9.]+) ms\)")


def summary(name, values):
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]
    return (f"| {name} | {len(values)} | {statistics.median(values):.1f} | {p95:.1f} | "
            f"{values[-1]:.1f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--routes", type=int, default=1000)
    ap.add_argument("--clusters", type=int, default=200)
    ap.add_argument("--reloads", type=int, default=30)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--sluice", default=os.path.join(REPO, "build", "release", "sluice"))
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="sluice-reload-bench-")
    path = os.path.join(work, "sluice.yaml")
    port, admin = free_port(), free_port()
    base = dict(port=port, admin=admin, routes=args.routes, clusters=args.clusters,
                workers=args.workers)
    write(path, config(**base))
    log = open(os.path.join(work, "sluice.log"), "w+")
    proc = subprocess.Popen([args.sluice, "run", "-c", path], stderr=log, stdout=log)
    try:
        deadline = time.time() + 30
        while True:
            log.seek(0)
            if "serving on" in log.read():
                break
            if proc.poll() is not None or time.time() > deadline:
                log.seek(0)
                sys.exit("sluice did not start:\n" + log.read())
            time.sleep(0.05)
        in_process = {"one": [], "all": [], "sighup": []}
        round_trip = {"one": [], "all": []}
        validate = []
        for i in range(args.reloads):
            for mode in ("one", "all"):
                flip = (i % 2 == 0)
                if mode == "one":
                    text = config(**base, timeout_of_first="16s" if flip else "15s")
                else:
                    text = config(**base, rate=2000 if flip else 1000,
                                  max_idle=128 if flip else 64)
                write(path, text)
                ms, body = post_reload(admin)
                assert body.get("applied"), body
                round_trip[mode].append(ms)
        for i in range(args.reloads):
            write(path, config(**base, timeout_of_first="17s" if i % 2 == 0 else "15s"))
            log.seek(0, os.SEEK_END)
            before = log.tell()
            proc.send_signal(signal.SIGHUP)
            while True:
                log.seek(before)
                tail = log.read()
                if "every worker serves" in tail:
                    break
                time.sleep(0.005)
        log.seek(0)
        lines = [LOGLINE.search(line) for line in log]
        lines = [m for m in lines if m]
        # The log holds the admin reloads (one, all, alternating) and then the SIGHUPs.
        for n, m in enumerate(lines):
            mode = "sighup" if n >= 2 * args.reloads else ("one" if n % 2 == 0 else "all")
            in_process[mode].append(float(m.group(2)))
            validate.append(float(m.group(3)))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    print(f"{args.routes} routes, {args.clusters} clusters, {args.workers} workers, "
          f"{args.reloads} reloads of each kind; sluice {args.sluice}")
    print()
    print("| reload | n | median ms | p95 ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    print(summary("one route changed, POST round trip", round_trip["one"]))
    print(summary("one route changed, in sluice", in_process["one"]))
    print(summary("all reconfigured, POST round trip", round_trip["all"]))
    print(summary("all reconfigured, in sluice", in_process["all"]))
    print(summary("one route changed, SIGHUP, in sluice", in_process["sighup"]))
    print(summary("  of which reading and validating", validate))


if __name__ == "__main__":
    main()
