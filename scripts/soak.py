#!/usr/bin/env python3
"""Soak and fault run: mixed load through a sluice with every guard on, while its backends are
killed and restarted and its config is reloaded, checking that nothing leaks and no idempotent
request fails.

    scripts/soak.py --sluice build/release/sluice                # 10 minutes
    scripts/soak.py --sluice ... --duration 60 --restart-every 20         # CI's short run

What runs: three upstream hosts, each its own process (test/integration/support/host_process.py,
so a kill is a real SIGKILL), behind one sluice whose routes carry a rate limit, a concurrency
limit, a circuit breaker, retries with a budget, a timeout, and whose cluster has health checks,
outlier detection and a bulkhead (its max_retries raised from Envoy's default of 3 retries in
flight: with 3, a kill under this load leaves some GETs no retry, by design of that limit). Client threads send keep-alive GETs (and a share of POSTs with
a body) as fast as the gateway answers. Every `--restart-every` seconds one host is killed
(SIGKILL) and started again two seconds later, round robin; every `--reload-every` seconds the
config is rewritten (a limit changes, so each reload builds a new generation) and reloaded with
SIGHUP.

Pass conditions, after `--warmup` seconds (default: a tenth of the run, at least 10 s):
  * the gateway's RSS grows by at most 5 % (last sample against the first after warm-up);
  * no fd leak: with the load stopped, its open fds are at most 16 more than at the same quiet
    point after warm-up (pooled connections come and go);
  * zero failed idempotent requests: every GET got a 2xx (the guards are sized so that none of
    them refuses this load; what a kill takes down, retries on another host must cover).
POSTs are not retried by design (not idempotent) and are only counted.

Prints a summary, writes it as JSON with --json FILE, exits 1 if a condition fails. Every
process it starts is stopped by PID at the end.
"""
import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "test", "integration"))
from support.host_process import HostProcess  # noqa: E402  (path set just above)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(port, admin_port, hosts, generation):
    # The rate limit moves between two values that this load never reaches, so that each reload
    # is a real change (a new generation whose limiter keeps its tokens) without refusing anyone.
    rate = 100000 + (generation % 2) * 1000
    endpoints = "\n".join(f"      - {{ address: \"{h}\" }}" for h in hosts)
    return f"""workers: 2
drain_timeout: 5s
admin: {{ address: 127.0.0.1:{admin_port} }}
listeners:
  - name: public
    address: 127.0.0.1:{port}
routes:
  - name: api
    match: {{ path_prefix: / }}
    cluster: app
    timeout: 5s
    rate_limit: {{ rate: {rate}/s, burst: {rate} }}
    concurrency: {{ max: 256, queue: 256, queue_timeout: 2s }}
    circuit_breaker: {{ window: 100, minimum_calls: 50, failure_rate: 90, open_duration: 2s }}
    retry: {{ attempts: 3, on: [connect-failure, reset, gateway-error] }}
clusters:
  - name: app
    health_check: {{ path: /healthz, interval: 500ms }}
    outlier_detection: {{ consecutive_5xx: 3, max_ejection_percent: 50, base_ejection_time: 2s }}
    retry_budget: {{ percent: 100, min_per_second: 1000 }}
    bulkhead: {{ max_requests: 4096, max_retries: 256 }}
    pool: {{ connect_timeout: 500ms }}
    endpoints:
{endpoints}
"""


class Gateway:
    def __init__(self, binary, text):
        self.dir = tempfile.mkdtemp(prefix="sluice-soak-")
        self.path = os.path.join(self.dir, "sluice.yaml")
        self.write(text)
        self.log = open(os.path.join(self.dir, "stderr"), "w")
        self.proc = subprocess.Popen([binary, "run", "-c", self.path], stdout=subprocess.DEVNULL,
                                     stderr=self.log)

    def write(self, text):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.path)

    def rss_kb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return -1

    def fds(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def admin_metrics(admin_port):
    try:
        c = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=5)
        c.request("GET", "/metrics")
        return c.getresponse().read().decode()
    except (OSError, http.client.HTTPException) as e:
        return f"# metrics unavailable: {e!r}"


def wait_ready(port, deadline=15):
    end = time.time() + deadline
    while time.time() < end:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/ready")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("sluice did not start")


class Load:
    """Client threads on keep-alive connections; counts every answer by method and outcome."""

    def __init__(self, port, threads):
        self.port = port
        self.running = threading.Event()
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        self.counts = {}  # (method, outcome) -> n
        self.failures = []  # the first few failed GETs, for the report
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(threads)]
        for t in self.threads:
            t.start()

    def count(self, method, outcome, detail=None):
        with self.lock:
            self.counts[(method, outcome)] = self.counts.get((method, outcome), 0) + 1
            if method == "GET" and outcome != "2xx" and len(self.failures) < 20:
                self.failures.append(f"{time.strftime('%H:%M:%S')} {outcome} {detail or ''}")

    def run(self, index):
        conn = None
        n = 0
        while not self.stopped.is_set():
            if not self.running.wait(0.1):
                if conn is not None:
                    conn.close()
                    conn = None
                continue
            n += 1
            method = "POST" if n % 10 == 0 else "GET"
            body = b"x" * 4096 if method == "POST" else None
            for attempt in range(2):
                reused = conn is not None
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                    conn.request(method, f"/item/{index}/{n}", body=body)
                    resp = conn.getresponse()
                    data = resp.read()
                    self.count(method, f"{resp.status // 100}xx",
                               f"{resp.status} {data[:80]!r}" if resp.status >= 300 else None)
                    if resp.getheader("connection", "").lower() == "close":
                        conn.close()
                        conn = None
                    break
                except (OSError, http.client.HTTPException) as e:
                    if conn is not None:
                        conn.close()
                    conn = None
                    # A keep-alive connection the server closed while idle fails the next
                    # request before any answer; clients resend an idempotent request once on a
                    # new connection (RFC 9110 9.2.2). Anything else is a failure.
                    stale = isinstance(e, (http.client.RemoteDisconnected, ConnectionResetError,
                                           BrokenPipeError))
                    if reused and stale and method == "GET" and attempt == 0:
                        self.count(method, "resent-after-idle-close")
                        continue
                    self.count(method, "error", repr(e))
                    break

    def total(self, method, outcome=None):
        with self.lock:
            return sum(v for (m, o), v in self.counts.items()
                       if m == method and (outcome is None or o == outcome))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sluice", default=os.path.join(ROOT, "build/release/sluice"))
    ap.add_argument("--duration", type=float, default=600)
    ap.add_argument("--warmup", type=float, default=None)
    ap.add_argument("--restart-every", type=float, default=60)
    ap.add_argument("--reload-every", type=float, default=10)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--json", default=None, help="also write the summary here")
    args = ap.parse_args()
    warmup = args.warmup if args.warmup is not None else max(10.0, args.duration / 10)

    hosts, gateway, load = [], None, None
    try:
        ports = [free_port() for _ in range(3)]
        hosts = [HostProcess(p, f"h{i}") for i, p in enumerate(ports)]
        addrs = [h.address for h in hosts]
        port, admin_port = free_port(), free_port()
        generation = 0
        gateway = Gateway(args.sluice, config(port, admin_port, addrs, generation))
        wait_ready(port)
        load = Load(port, args.threads)

        def quiet_fds():
            load.running.clear()
            time.sleep(2)
            n = gateway.fds()
            return n

        load.running.set()
        start = time.time()
        next_restart = start + args.restart_every
        next_reload = start + args.reload_every
        victim = 0
        samples = []  # (t, rss_kb, fds)
        baseline = None
        restarts = reloads = 0
        while True:
            now = time.time()
            t = now - start
            if t >= args.duration:
                break
            if baseline is None and t >= warmup:
                baseline = {"fds": quiet_fds(), "rss_kb": gateway.rss_kb(), "t": round(t, 1)}
                load.running.set()
            if now >= next_restart:
                hosts[victim].kill()
                time.sleep(2)
                hosts[victim] = HostProcess(ports[victim], f"h{victim}")
                victim = (victim + 1) % len(hosts)
                restarts += 1
                next_restart += args.restart_every
            if now >= next_reload:
                generation += 1
                gateway.write(config(port, admin_port, addrs, generation))
                gateway.proc.send_signal(signal.SIGHUP)
                reloads += 1
                next_reload += args.reload_every
            if gateway.proc.poll() is not None:
                raise RuntimeError(f"sluice exited with {gateway.proc.returncode}")
            samples.append((round(t, 1), gateway.rss_kb(), gateway.fds()))
            time.sleep(1)
        end_fds = quiet_fds()
        end_rss = gateway.rss_kb()
        metrics = admin_metrics(admin_port)

        gets = load.total("GET", "2xx")
        get_failed = sum(v for (m, o), v in load.counts.items()
                         if m == "GET" and o not in ("2xx", "resent-after-idle-close"))
        after = [s for s in samples if baseline and s[0] >= baseline["t"]]
        rss_growth = (end_rss / baseline["rss_kb"] - 1) if baseline else float("nan")
        summary = {
            "duration_s": args.duration, "warmup_s": warmup, "restarts": restarts,
            "reloads": reloads, "requests": {f"{m} {o}": v for (m, o), v in load.counts.items()},
            "get_failed": get_failed,
            "rss_kb": {"after_warmup": baseline["rss_kb"] if baseline else None,
                       "end": end_rss, "max": max((s[1] for s in after), default=None)},
            "rss_growth_pct": round(rss_growth * 100, 2),
            "fds": {"after_warmup_quiet": baseline["fds"] if baseline else None,
                    "end_quiet": end_fds, "max": max((s[2] for s in after), default=None)},
            "failures": load.failures,
            # What the guards did: retries, their budget, ejections, breaker, rejections.
            "metrics": [line for line in metrics.splitlines() if not line.startswith("#") and any(
                k in line for k in ("retr", "eject", "breaker_state", "rejected", "upstream_errors"))
                and not line.endswith(" 0")],
        }
        checks = {
            "rss grows by at most 5 % after warm-up": baseline is not None and rss_growth <= 0.05,
            "no fd leak (quiet fds within 16 of warm-up)":
                baseline is not None and end_fds <= baseline["fds"] + 16,
            "zero failed idempotent requests": get_failed == 0 and gets > 0,
        }
        summary["checks"] = checks
        print(json.dumps(summary, indent=2))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(summary, f, indent=2)
        ok = all(checks.values())
        print("soak: " + ("passed" if ok else "FAILED: " + ", ".join(
            k for k, v in checks.items() if not v)))
        return 0 if ok else 1
    finally:
        if load is not None:
            load.stopped.set()
            for t in load.threads:
                t.join(timeout=15)
        if gateway is not None:
            gateway.stop()
        for h in hosts:
            h.kill()


if __name__ == "__main__":
    sys.exit(main())
