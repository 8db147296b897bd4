#!/usr/bin/env python3
"""What a Prometheus scrape of /metrics costs a gateway with many routes.

Starts `sluice run` with ROUTES routes (each its own path prefix, a rate limit and a concurrency
limit, so that every route has guard series too) on one upstream, sends one request through
every route (so each has latency buckets to print), then scrapes /metrics SCRAPES times and
reports the median wall time of a scrape, the exposition's size and series count, and the CPU
the gateway's main thread (which renders it) spent per scrape, from /proc.

    bench/admin/metrics_scrape.py [--routes 1000] [--scrapes 50] [--bin build/release/sluice]
"""
import argparse
import http.server
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def upstream():
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def main_thread_cpu(pid):
    """utime + stime of the process's first thread (the main loop), in seconds."""
    with open(f"/proc/{pid}/task/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--routes", type=int, default=1000)
    ap.add_argument("--scrapes", type=int, default=50)
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__),
                                                  "../../build/release/sluice"))
    args = ap.parse_args()
    up = upstream()
    port, admin = free_port(), free_port()
    routes = "".join(
        f"  - name: r{i}\n    cluster: app\n    match: {{ path_prefix: /r{i}/ }}\n"
        f"    rate_limit: {{ rate: 100000/s, burst: 1000 }}\n"
        f"    concurrency: {{ max: 100 }}\n" for i in range(args.routes))
    config = (f"workers: 1\nadmin: {{ address: 127.0.0.1:{admin} }}\n"
              f"listeners: [{{ name: p, address: 127.0.0.1:{port} }}]\n"
              f"clusters: [{{ name: app, endpoints: [127.0.0.1:{up.server_address[1]}] }}]\n"
              f"routes:\n{routes}")
    d = tempfile.mkdtemp(prefix="sluice-scrape-")
    path = os.path.join(d, "sluice.yaml")
    with open(path, "w") as f:
        f.write(config)
    proc = subprocess.Popen([args.bin, "run", "-c", path], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{admin}/ready", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit("sluice did not start")
                time.sleep(0.05)
        for i in range(args.routes):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/r{i}/x", timeout=5).read()
        url = f"http://127.0.0.1:{admin}/metrics"
        body = urllib.request.urlopen(url, timeout=10).read()  # warm
        walls = []
        cpu0 = main_thread_cpu(proc.pid)
        for _ in range(args.scrapes):
            t0 = time.perf_counter()
            body = urllib.request.urlopen(url, timeout=10).read()
            walls.append(time.perf_counter() - t0)
        cpu = (main_thread_cpu(proc.pid) - cpu0) / args.scrapes
        series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
        print(f"routes {args.routes}: {len(body) / 1e6:.2f} MB, {series} series; "
              f"scrape median {statistics.median(walls) * 1e3:.1f} ms "
              f"(p90 {sorted(walls)[int(len(walls) * 0.9)] * 1e3:.1f} ms), "
              f"main-thread CPU {cpu * 1e3:.1f} ms per scrape")
    finally:
        proc.terminate()
        proc.wait(10)
        up.shutdown()
        for name in os.listdir(d):
            os.remove(os.path.join(d, name))
        os.rmdir(d)


if __name__ == "__main__":
    main()
