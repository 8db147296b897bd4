#!/usr/bin/env python3
"""What an open admin dashboard costs the gateway: requests per gateway CPU-second with and
without a client polling GET /stats as the page does, and the main thread's CPU per poll (and per /metrics scrape, for scale).

    bench/dashboard/cost.py [--sluice build/release/sluice] [--runs 3] [--duration 8]
                            [--interval 1.0] [--clients 4]

Runs `sluice demo` (its routes, breakers and clusters are what the page shows; its demo upstreams
run in the same process, so their CPU is in both arms alike) and loads `/` with CLIENTS
keep-alive clients, in RUNS pairs of DURATION-second arms, alternating "closed" (no dashboard)
and "open" (one poller every INTERVAL s, the page's default). CPU is the process's utime+stime
from /proc/<pid>/stat. Then, on the idle gateway, 2,000 polls back to back measure one poll's
main-thread CPU (/proc/<pid>/task/<pid>/stat: the admin listener runs on the main thread) and
the document's size. Prints medians. wrk is not needed: the load is Python's, so absolute
rates are low; the per-CPU-second figures and the per-poll cost are what to compare.
Everything it starts is stopped by PID.
"""
import argparse
import http.client
import os
import signal
import socket
import statistics
import subprocess
import threading
import time

TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(path):
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14 and 15)


def load(port, stop, counter, lock):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    n = 0
    while not stop.is_set():
        try:
            c.request("GET", "/")
            c.getresponse().read()
            n += 1
        except (OSError, http.client.HTTPException):
            c.close()
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.close()
    with lock:
        counter[0] += n


def poller(admin, stop, interval, polls):
    c = http.client.HTTPConnection("127.0.0.1", admin, timeout=5)
    while not stop.wait(interval):
        c.request("GET", "/stats")
        c.getresponse().read()
        polls[0] += 1
    c.close()


def arm(pid, port, admin, seconds, clients, interval):
    stop = threading.Event()
    counter, lock, polls = [0], threading.Lock(), [0]
    threads = [threading.Thread(target=load, args=(port, stop, counter, lock))
               for _ in range(clients)]
    if interval:
        threads.append(threading.Thread(target=poller, args=(admin, stop, interval, polls)))
    cpu0 = cpu_seconds(f"/proc/{pid}/stat")
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    cpu = cpu_seconds(f"/proc/{pid}/stat") - cpu0
    return counter[0] / cpu, counter[0] / seconds, polls[0]


def poll_cost(admin, main_stat, path, polls=2000):
    """(main-thread CPU ms, round-trip ms, bytes) of one GET of `path`, over `polls` of them back
    to back (enough for the 10 ms clock tick of /proc's CPU times to be under 1 %)."""
    c = http.client.HTTPConnection("127.0.0.1", admin, timeout=5)
    size = 0
    t0, wall0 = cpu_seconds(main_stat), time.monotonic()
    for _ in range(polls):
        c.request("GET", path)
        size = len(c.getresponse().read())
    cpu_ms = (cpu_seconds(main_stat) - t0) / polls * 1000
    wall_ms = (time.monotonic() - wall0) / polls * 1000
    c.close()
    return cpu_ms, wall_ms, size


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser()
    p.add_argument("--sluice", default=os.path.join(here, "..", "..", "build", "release", "sluice"))
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--duration", type=float, default=8)
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--clients", type=int, default=4)
    a = p.parse_args()

    port, admin = free_port(), free_port()
    proc = subprocess.Popen([a.sluice, "demo", "--listen", f"127.0.0.1:{port}", "--admin",
                             f"127.0.0.1:{admin}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", admin), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "sluice did not start"
                time.sleep(0.1)
        arm(proc.pid, port, admin, 2, a.clients, 0)  # warm-up
        closed, opened = [], []
        for _ in range(a.runs):
            closed.append(arm(proc.pid, port, admin, a.duration, a.clients, 0))
            opened.append(arm(proc.pid, port, admin, a.duration, a.clients, a.interval))

        main_stat = f"/proc/{proc.pid}/task/{proc.pid}/stat"
        per_poll = {path: poll_cost(admin, main_stat, path) for path in ("/stats", "/metrics")}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    med = lambda xs, i: statistics.median(x[i] for x in xs)  # noqa: E731
    c_cpu, o_cpu = med(closed, 0), med(opened, 0)
    print(f"runs {a.runs} x {a.duration:g} s per arm, {a.clients} clients, poll every "
          f"{a.interval:g} s")
    print("| dashboard | requests/s | requests per gateway CPU-second |")
    print("|---|---:|---:|")
    print(f"| closed | {med(closed, 1):,.0f} | {c_cpu:,.0f} |")
    print(f"| open | {med(opened, 1):,.0f} | {o_cpu:,.0f} ({(o_cpu / c_cpu - 1) * 100:+.1f} %) |")
    for path, (cpu_ms, wall_ms, size) in per_poll.items():
        print(f"one GET {path}: {cpu_ms:.3f} ms of main-thread CPU, {wall_ms:.2f} ms round trip, "
              f"{size:,} bytes")
    for name, xs in (("closed", closed), ("open", opened)):
        print(f"  {name}: " + ", ".join(f"{x[0]:,.0f}" for x in xs) + " per CPU-second")


if __name__ == "__main__":
    main()
