"""The admin listener: metrics, health, config."""
import json
import os
import re
import shutil
import subprocess
import time
import urllib.request

import pytest

from conftest import Gateway, basic_config, free_port, running_demo
from support.client import Client


def get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def call(port, method, path, token=None, body=None):
    """Any admin request; `token` goes in as a bearer token."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=body,
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def wait_metric(admin, name, want, timeout=5, **labels):
    """Stats are counted when a request completes, just after its last byte is sent: poll the
    scrape until the value arrives (or the deadline passes) instead of guessing a sleep."""
    deadline = time.monotonic() + timeout
    while True:
        value = metric(get(admin, "/metrics")[2], name, **labels)
        if value == want or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


def metric(text, name, **labels):
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        m = re.match(r"^([a-z_]+)(\{[^}]*\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            return float(m.group(3))
    return None


@pytest.fixture
def admin_proxy(gateway_factory, upstream_factory):
    up = upstream_factory()
    port, admin = free_port(), free_port()
    g = gateway_factory(basic_config(port, [up.address], admin_port=admin, workers=2))
    return g, up, port, admin


def test_health_endpoints(admin_proxy):
    _, _, _, admin = admin_proxy
    assert get(admin, "/live")[0] == 200
    assert get(admin, "/ready")[0] == 200
    assert get(admin, "/nope")[0] == 404
    status, _, body = get(admin, "/")
    assert status == 200 and "/metrics" in body


def test_admin_refuses_other_methods_and_what_is_not_http(admin_proxy):
    _, _, _, admin = admin_proxy
    req = urllib.request.Request(f"http://127.0.0.1:{admin}/live", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=5)
    assert e.value.code == 405 and e.value.read() == b"method not allowed\n"
    c = Client(admin)
    c.send(b"NOT HTTP AT ALL\r\n\r\n")
    r = c.read_response()
    assert r.status == 400 and r.body == b"bad request\n"
    assert c.closed()


def test_config_is_the_active_config_as_json(admin_proxy):
    _, up, port, admin = admin_proxy
    status, headers, body = get(admin, "/config")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    cfg = json.loads(body)
    assert cfg["listeners"][0]["address"] == f"127.0.0.1:{port}"
    assert cfg["clusters"][0]["endpoints"][0]["address"] == up.address
    assert cfg["listeners"][0]["timeouts"]["header_ms"] == 10000


def test_metrics_count_requests_by_route_cluster_and_class(admin_proxy):
    _, up, port, admin = admin_proxy
    for _ in range(5):
        c = Client(port)  # new connections land on both workers
        assert c.request("GET", "/").status == 200
        c.close()
    bad = Client(port)
    bad.send(b"GET / HTTP/1.1\r\n\r\n")
    assert bad.read_response().status == 400
    assert wait_metric(admin, "sluice_requests_total", 5, route="all", cluster="app", code_class="2xx") == 5
    assert wait_metric(admin, "sluice_requests_total", 1, route="", code_class="4xx") == 1
    status, headers, text = get(admin, "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert metric(text, "sluice_rejected_requests_total", reason="bad_request") == 1
    assert metric(text, "sluice_request_duration_seconds_count", route="all") == 5
    assert metric(text, "sluice_request_duration_seconds_bucket", route="all", le="+Inf") == 5
    assert metric(text, "sluice_downstream_connections_total") >= 6
    assert metric(text, "sluice_upstream_requests_total", cluster="app", host=up.address) == 5
    assert metric(text, "sluice_upstream_response_head_seconds_count", cluster="app") == 5
    assert metric(text, "sluice_upstream_response_head_seconds_bucket", cluster="app", le="+Inf") == 5
    assert 0 < metric(text, "sluice_upstream_response_head_seconds_sum", cluster="app") < 5
    assert metric(text, "sluice_upstream_connections_idle", cluster="app", host=up.address) >= 1
    assert metric(text, "sluice_workers") == 2
    # Every family is typed, names follow the conventions: sluice's own, or the process_*
    # families every Prometheus client exports.
    for family in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        name, kind = family
        assert name.startswith(("sluice_", "process_"))
        if kind == "counter":
            assert name.endswith("_total")


def test_upstream_errors_are_counted(gateway_factory):
    port, admin = free_port(), free_port()
    gateway_factory(basic_config(port, [f"127.0.0.1:{free_port()}"], admin_port=admin,
                                 route_extra="    retry: { attempts: 1 }\n"))
    assert Client(port).request("GET", "/").status == 502
    assert wait_metric(admin, "sluice_requests_total", 1, route="all", cluster="app", code_class="5xx") == 1
    _, _, text = get(admin, "/metrics")
    assert metric(text, "sluice_upstream_errors_total", cluster="app", kind="connect_failure") == 1


def test_process_metrics_describe_the_gateway_process(admin_proxy):
    g, _, port, admin = admin_proxy
    c = Client(port)
    assert c.request("GET", "/").status == 200
    _, _, text = get(admin, "/metrics")
    rss = metric(text, "process_resident_memory_bytes")
    assert rss is not None and 0.5 < rss / (g.rss_kb() * 1024) < 2
    assert metric(text, "process_virtual_memory_bytes") >= rss
    fds = len(os.listdir(f"/proc/{g.pid}/fd"))
    assert abs(metric(text, "process_open_fds") - fds) <= 4  # connections come and go
    with open(f"/proc/{g.pid}/limits") as f:
        soft = next(int(line.split()[3]) for line in f if line.startswith("Max open files"))
    assert metric(text, "process_max_fds") == soft
    assert abs(metric(text, "process_start_time_seconds") - time.time()) < 60
    assert metric(text, "process_cpu_seconds_total") >= 0
    assert "# TYPE process_cpu_seconds_total counter" in text


def test_workers_auto_counts_the_cpus_the_process_may_use(gateway_factory, sluice_bin, tmp_path):
    # taskset pins sluice to one CPU before it starts: `workers: auto` must start one worker,
    # not one per CPU of the machine.
    wrapper = tmp_path / "pinned-sluice"
    wrapper.write_text(f"#!/bin/sh\nexec taskset -c {min(os.sched_getaffinity(0))} {sluice_bin} \"$@\"\n")
    wrapper.chmod(0o755)
    for binary, want in ((sluice_bin, len(os.sched_getaffinity(0))), (str(wrapper), 1)):
        port, admin = free_port(), free_port()
        g = Gateway(binary, basic_config(port, ["127.0.0.1:9"], admin_port=admin, workers="auto"))
        try:
            assert metric(get(admin, "/metrics")[2], "sluice_workers") == want
            assert any(f"workers: auto = {want} ({want} CPUs in the affinity mask" in line
                       for line in g.stderr_lines)
        finally:
            g.stop()


def test_promtool_accepts_the_metrics_of_the_demo(sluice_bin):
    # The bundled demo turns on most features (rate limits, concurrency, breakers, canaries,
    # splits, health checks): Prometheus's own linter must find nothing in what it exports.
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: scripts/setup.sh installs Debian's prometheus package"
    with running_demo(sluice_bin) as (port, admin):
        for path in ("/", "/limited", "/flaky", "/flaky", "/canary", "/rollout", "/nope"):
            c = Client(port)
            c.request("GET", path)
            c.close()
        _, _, text = get(admin, "/metrics")
    assert "sluice_circuit_breaker_state" in text and "process_open_fds" in text
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
