"""The overload benchmark's own tools (bench/overload/): the capacity-limited backend and the
open-loop load generator, run for a few seconds each, so that the numbers docs/overload.md rests
on cannot silently rot. No proxy is involved: this checks the measuring instruments.

The tools are built beside the sluice binary when SLUICE_BUILD_BENCHMARKS is on (the default);
OVERLOAD_TOOLS points elsewhere.
"""
import csv
import json
import os
import subprocess
import time
import urllib.request

import pytest

from conftest import free_port


@pytest.fixture(scope="module")
def tools(request):
    # Beside the sluice binary the run is given (ctest passes the build's), without needing it.
    d = os.environ.get("OVERLOAD_TOOLS")
    if not d:
        sluice = request.config.getoption("--sluice")
        build = (os.path.dirname(os.path.abspath(sluice)) if sluice else
                 os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build",
                              "release"))
        d = os.path.join(build, "bench", "overload")
    for name in ("overload_backend", "overload_loadgen"):
        if not os.access(os.path.join(d, name), os.X_OK):
            pytest.skip(f"{name} not built in {d} (SLUICE_BUILD_BENCHMARKS=OFF?)")
    return d


class Backend:
    def __init__(self, tools, *args):
        self.port = free_port()
        self.proc = subprocess.Popen([os.path.join(tools, "overload_backend"), "--port",
                                      str(self.port), *args], stderr=subprocess.PIPE, text=True)
        assert "listening" in self.proc.stderr.readline()

    def call(self, path, method="GET"):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method)
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(5)


@pytest.fixture
def backend(tools):
    made = []

    def make(*args):
        b = Backend(tools, *args)
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop()


def load(tools, tmp_path, port, stages, *args):
    out = tmp_path / "requests.csv"
    r = subprocess.run([os.path.join(tools, "overload_loadgen"), "--target", f"127.0.0.1:{port}",
                        "--stages", stages, "--out", str(out), *args],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    with open(out) as f:
        rows = [(float(x["sched_ms"]), float(x["latency_ms"]), int(x["status"]))
                for x in csv.DictReader(f)]
    return summary, rows


def test_under_capacity_latency_is_the_service_time(tools, backend, tmp_path):
    b = backend("--workers", "2", "--service-ms", "20")  # 100 req/s
    s, rows = load(tools, tmp_path, b.port, "1:50", "--arrivals", "uniform")
    assert s["sent"] == len(rows) == 49  # a request every 20 ms from 20 ms on
    assert s["ok"] == s["sent"]
    assert 19 <= s["ok_latency_ms"]["p50"] <= 30
    stats = b.call("/_stats")
    assert stats["received"] == s["sent"]
    assert stats["max_queue"] <= 1
    # the generator kept its schedule (it must never be the bottleneck)
    assert s["start_lag_ms"]["p99"] < 20


def test_twice_the_capacity_builds_a_queue_and_latency_counts_from_the_schedule(
        tools, backend, tmp_path):
    b = backend("--workers", "2", "--service-ms", "20")  # 100 req/s, offered 200 req/s
    s, rows = load(tools, tmp_path, b.port, "2:200", "--arrivals", "uniform", "--timeout-ms",
                   "5000")
    assert s["ok"] == s["sent"] > 350
    stats = b.call("/_stats")
    # Queue: +100 per second of overload, seen in the backend's own time series too.
    assert 150 <= stats["max_queue"] <= 210
    assert max(x[1] for x in stats["series"]) >= 150
    # Open loop: the last requests were scheduled ~2 s in, and wait behind ~200 others (2 s).
    first = [lat for t, lat, _ in rows if t < 200]
    last = [lat for t, lat, _ in rows if t > 1800]
    assert max(first) < 300
    assert min(last) > 1500


def test_a_connection_cap_does_not_hide_the_wait(tools, backend, tmp_path):
    # With two connections for two workers the backend never queues: the wait moves into the
    # load generator, and still counts, since latency runs from each request's schedule.
    b = backend("--workers", "2", "--service-ms", "20")
    s, rows = load(tools, tmp_path, b.port, "2:200", "--arrivals", "uniform", "--timeout-ms",
                   "5000", "--max-conns", "2")
    assert b.call("/_stats")["max_queue"] == 0
    assert s["max_open_conns"] == 2
    assert s["waited_for_conn"] > 300
    assert min(lat for t, lat, _ in rows if t > 1800) > 1500


def test_failure_modes_and_client_timeouts(tools, backend, tmp_path):
    b = backend("--workers", "4", "--service-ms", "10")
    b.call("/_control?error_rate=0.5&error_status=503", "POST")
    s, rows = load(tools, tmp_path, b.port, "1:100")
    assert 0.3 < s["by_status"].get("503", 0) / s["sent"] < 0.7
    assert s["ok"] + s["5xx"] == s["sent"]

    # A stall: every request times out at the client, which closes its connection; the backend
    # (--abort cancel, the default) sees its clients leave and frees the workers.
    b.call("/_control?error_rate=0&stall=1&reset=1", "POST")
    s, rows = load(tools, tmp_path, b.port, "0.5:100", "--timeout-ms", "200")
    assert s["timeout"] == s["sent"] > 20
    assert all(190 <= lat < 400 for _, lat, _ in rows)
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        stats = b.call("/_stats?series=0")
        if stats["abandoned_queued"] + stats["abandoned_service"] == s["sent"]:
            break
        time.sleep(0.05)
    assert stats["abandoned_queued"] + stats["abandoned_service"] == s["sent"]
    assert stats["busy"] == 0 and stats["queue"] == 0

    # The slowdown: service time x3.
    b.call("/_control?stall=0&slowdown=3", "POST")
    s, _ = load(tools, tmp_path, b.port, "0.5:20", "--arrivals", "uniform")
    assert 29 <= s["ok_latency_ms"]["p50"] <= 45
