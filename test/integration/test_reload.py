"""Live configuration: reloads in-process, with zero failed requests and the state kept.

Upstreams are real processes (support/host_process.py). A reload is triggered by SIGHUP or
POST /config/reload; the admin call returns once every worker serves the new generation, so each
change must be observable right after it.
"""
import os
import re
import signal
import socket
import threading
import time

import pytest

from conftest import free_port
from support.client import Client
from test_admin import get, metric, wait_metric
from test_discovery import api


def config(port, admin, clusters, routes, workers=2, extra_listeners="", top=""):
    """clusters: {name: [address, ...]} or {name: "raw yaml body"}; routes: raw yaml list items."""
    lines = [f"workers: {workers}", top,
             f"admin: {{ address: 127.0.0.1:{admin} }}",
             "listeners:",
             f"  - {{ name: public, address: 127.0.0.1:{port} }}",
             extra_listeners,
             "clusters:"]
    for name, body in clusters.items():
        if isinstance(body, list):
            eps = ", ".join(body)
            lines.append(f"  - {{ name: {name}, endpoints: [{eps}] }}")
        else:
            lines.append(f"  - name: {name}\n{body}")
    lines.append("routes:")
    lines.extend(routes)
    return "\n".join(line for line in lines if line) + "\n"


def rewrite(gateway, text):
    # An atomic rename, as deploy tools do: the reload never reads a half-written file.
    tmp = gateway.config_path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, gateway.config_path)


def reload(admin):
    status, body = api(admin, "POST", "/config/reload")
    assert status == 200, body
    return body["generation"]


def body_of(port, path="/"):
    c = Client(port)
    try:
        r = c.request("GET", path)
        return r.status, r.body.decode()
    finally:
        c.close()


@pytest.fixture
def two_hosts(host_process):
    return host_process(free_port(), "A"), host_process(free_port(), "B")


def test_a_reload_applies_at_once_and_counts(gateway_factory, two_hosts):
    a, b = two_hosts
    port, admin = free_port(), free_port()
    g = gateway_factory(config(port, admin, {"a": [a.address], "b": [b.address]},
                               ["  - { name: r, cluster: a }"]))
    assert body_of(port) == (200, "A")
    assert get(admin, "/metrics")[2].count("sluice_config_generation 1") == 1

    rewrite(g, config(port, admin, {"a": [a.address], "b": [b.address]},
                      ["  - { name: r, cluster: b }"]))
    assert reload(admin) == 2
    assert body_of(port) == (200, "B")  # observable as soon as the call returned

    # SIGHUP reads the file again too; the generation moves once the workers serve it.
    rewrite(g, config(port, admin, {"a": [a.address], "b": [b.address]},
                      ["  - { name: r, cluster: a }"]))
    g.signal(signal.SIGHUP)
    assert wait_metric(admin, "sluice_config_generation", 3) == 3
    assert body_of(port) == (200, "A")
    text = get(admin, "/metrics")[2]
    assert metric(text, "sluice_config_reloads_total", result="success") == 2
    assert metric(text, "sluice_config_reloads_total", result="failure") == 0
    # To the millisecond, not rounded to ten seconds by a short float format.
    assert abs(metric(text, "sluice_config_last_reload_success_timestamp_seconds") -
               time.time()) < 2
    assert re.search(r"^sluice_config_last_reload_success_timestamp_seconds \d{10}\.\d+$", text,
                     re.M)
    status, _, cfg = get(admin, "/config")
    assert status == 200 and '"generation": 3' in cfg and '"hash": "xxh3:' in cfg


def test_a_failing_reload_changes_nothing(gateway_factory, two_hosts):
    a, b = two_hosts
    port, admin = free_port(), free_port()
    good = config(port, admin, {"a": [a.address], "b": [b.address]},
                  ["  - { name: r, cluster: a }"])
    g = gateway_factory(good)
    # Two problems at once: both are reported, with file, line and column.
    rewrite(g, good.replace("cluster: a }", "cluster: nope, timeout: 5 }"))
    status, body = api(admin, "POST", "/config/reload")
    assert status == 400 and body["applied"] is False and body["generation"] == 1
    assert len(body["errors"]) == 2, body
    assert all(e.startswith(g.config_path + ":") for e in body["errors"]), body
    assert any("nope" in e for e in body["errors"]) and any("timeout" in e for e in body["errors"])
    assert body_of(port) == (200, "A")
    g.signal(signal.SIGHUP)  # refused the same way, and logged
    deadline = time.monotonic() + 5
    while metric(get(admin, "/metrics")[2], "sluice_config_reloads_total", result="failure") != 2:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert any("refused" in line for line in g.stderr_lines)
    assert body_of(port) == (200, "A")


def test_what_needs_a_restart_is_refused_with_a_reason(gateway_factory, two_hosts):
    a, _ = two_hosts
    port, admin = free_port(), free_port()
    g = gateway_factory(config(port, admin, {"a": [a.address]}, ["  - { name: r, cluster: a }"]))
    rewrite(g, config(port, admin, {"a": [a.address]}, ["  - { name: r, cluster: a }"],
                      workers=3))
    status, body = api(admin, "POST", "/config/reload")
    assert status == 400 and "workers" in body["errors"][0] and "restart" in body["errors"][0]
    other_admin = free_port()
    rewrite(g, config(port, other_admin, {"a": [a.address]}, ["  - { name: r, cluster: a }"]))
    status, body = api(admin, "POST", "/config/reload")
    assert status == 400 and "admin.address" in body["errors"][0], body
    # A listener whose address is taken refuses the whole reload before anything changes.
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    busy = taken.getsockname()[1]
    try:
        rewrite(g, config(port, admin, {"a": [a.address]}, ["  - { name: r, cluster: a }"],
                          extra_listeners=f"  - {{ name: extra, address: 127.0.0.1:{busy} }}"))
        status, body = api(admin, "POST", "/config/reload")
        assert status == 400 and "listener 'extra'" in body["errors"][0], body
    finally:
        taken.close()
    assert metric(get(admin, "/metrics")[2], "sluice_config_generation") == 1


def breaker_route(failure_rate=50):
    return ("  - name: r\n    cluster: a\n"
            "    circuit_breaker: { window: 4, minimum_calls: 4, failure_rate: "
            f"{failure_rate}, open_duration: 60s }}\n"
            "    fault: { abort: { status: 503, percent: 100 } }")


def test_limits_and_breakers_keep_their_state(gateway_factory, two_hosts):
    a, b = two_hosts
    port, admin = free_port(), free_port()
    limited = "  - { name: l, match: { path_prefix: /l }, cluster: b, rate_limit: { rate: 1/m, burst: 2 } }"
    routes = [limited, breaker_route()]
    g = gateway_factory(config(port, admin, {"a": [a.address], "b": [b.address]}, routes))
    assert [body_of(port, "/l")[0] for _ in range(3)] == [200, 200, 429]
    for _ in range(4):
        assert body_of(port)[0] == 503  # the fault fails every call: the breaker opens
    deadline = time.monotonic() + 5  # (outcomes are recorded just after the last byte is sent)
    while get(admin, "/breakers")[2].count('"state": "open"') != 1:
        assert time.monotonic() < deadline
        time.sleep(0.02)

    # An unrelated change: the bucket stays empty and the breaker open.
    rewrite(g, config(port, admin, {"a": [a.address], "b": [b.address], "c": [b.address]},
                      routes))
    reload(admin)
    assert body_of(port, "/l")[0] == 429
    assert '"state": "open"' in get(admin, "/breakers")[2]

    # A new threshold keeps the breaker's state; a new burst keeps what the bucket has left (0).
    rewrite(g, config(port, admin, {"a": [a.address], "b": [b.address]},
                      [limited.replace("burst: 2", "burst: 3"), breaker_route(failure_rate=90)]))
    reload(admin)
    assert '"state": "open"' in get(admin, "/breakers")[2]
    status, _ = body_of(port)
    assert status == 503
    assert body_of(port, "/l")[0] == 429
    text = get(admin, "/metrics")[2]
    assert metric(text, "sluice_circuit_breaker_transitions_total", route="r", to="open") == 1
    # Route counters of unchanged routes stay monotonic across reloads.
    assert metric(text, "sluice_requests_total", route="l", code_class="4xx") == 3


def test_a_pool_keeps_its_upstream_connections(gateway_factory, two_hosts):
    a, _ = two_hosts
    port, admin = free_port(), free_port()
    cluster = f"    endpoints: [{a.address}]\n    pool: {{ max_idle: 8 }}"
    g = gateway_factory(config(port, admin, {"a": cluster}, ["  - { name: r, cluster: a }"],
                               workers=1))
    c = Client(port)
    assert c.request("GET", "/").status == 200
    connects = metric(get(admin, "/metrics")[2], "sluice_upstream_connects_total", cluster="a")
    assert connects == 1
    for i, change in enumerate(["max_idle: 16", "max_idle: 16, max_connections: 100",
                                "max_idle: 4, idle_timeout: 90s"]):
        rewrite(g, config(port, admin, {"a": cluster.replace("max_idle: 8", change)},
                          [f"  - {{ name: r, cluster: a, timeout: {10 + i}s }}"], workers=1))
        reload(admin)
        assert c.request("GET", "/").status == 200
    # A changed lb builds the worker a new balancer: the idle connection moves over to it.
    rewrite(g, config(port, admin, {"a": cluster + "\n    lb: { policy: least_request }"},
                      ["  - { name: r, cluster: a }"], workers=1))
    reload(admin)
    assert c.request("GET", "/").status == 200
    c.close()
    assert metric(get(admin, "/metrics")[2], "sluice_upstream_connects_total", cluster="a") == 1


def test_removed_routes_leave_the_metrics_and_new_ones_appear(gateway_factory, two_hosts):
    a, b = two_hosts
    port, admin = free_port(), free_port()
    g = gateway_factory(config(port, admin, {"a": [a.address], "b": [b.address]},
                               ["  - { name: old, cluster: a }"]))
    assert body_of(port)[0] == 200
    assert wait_metric(admin, "sluice_requests_total", 1, route="old", code_class="2xx") == 1
    rewrite(g, config(port, admin, {"a": [a.address]}, ["  - { name: new, cluster: a }"]))
    reload(admin)
    text = get(admin, "/metrics")[2]
    assert 'route="old"' not in text and 'cluster="b"' not in text
    assert metric(text, "sluice_requests_total", route="new", code_class="2xx") == 0


def test_a_listener_is_added_and_a_removed_one_drains(gateway_factory, host_process):
    slow = host_process(free_port(), "S")
    port, admin, extra = free_port(), free_port(), free_port()
    base = config(port, admin, {"s": [slow.address]}, ["  - { name: r, cluster: s }"])
    g = gateway_factory(base)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", extra), timeout=2)
    rewrite(g, config(port, admin, {"s": [slow.address]}, ["  - { name: r, cluster: s }"],
                      extra_listeners=f"  - {{ name: extra, address: 127.0.0.1:{extra} }}"))
    reload(admin)
    assert body_of(extra) == (200, "S")  # bound on every worker before the call returned

    # A slow download is in flight on the extra listener when it is removed: it finishes, with
    # Connection: close, and the listener takes no new connection.
    c = Client(extra)
    c.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
    time.sleep(0.2)
    rewrite(g, base)
    reload(admin)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", extra), timeout=2)
    r = c.read_response()
    assert r.status == 200 and r.complete and len(r.body) == 20480
    assert c.closed()  # its head went out before the reload: the close says it
    assert body_of(port) == (200, "S")


class Load:
    """Traffic across reloads: keep-alive and pipelined clients, chunked uploads and slow
    downloads, each checking every response; any failure is recorded."""

    def __init__(self, port):
        self.port = port
        self.stop = threading.Event()
        self.failures = []
        self.done = {"keepalive": 0, "pipelined": 0, "upload": 0, "download": 0}
        self.threads = [threading.Thread(target=self._run, args=(k, f), daemon=True)
                        for k, f in [("keepalive", self._keepalive), ("keepalive", self._keepalive),
                                     ("pipelined", self._pipelined), ("upload", self._upload),
                                     ("download", self._download)]]

    def _run(self, kind, fn):
        while not self.stop.is_set():
            try:
                fn()
                self.done[kind] += 1
            except Exception as e:  # noqa: BLE001 - every failure is the test's finding
                self.failures.append(f"{kind}: {e!r}")

    def _check(self, r, what):
        if r.status != 200 or not r.complete:
            raise AssertionError(f"{what}: {r.status} complete={r.complete} {r.body[:100]!r}")

    def _keepalive(self):
        c = Client(self.port)
        try:
            for _ in range(20):
                r = c.request("GET", "/")
                self._check(r, "keep-alive")
                if r.header("Connection") == "close":
                    return
        finally:
            c.close()

    def _pipelined(self):
        c = Client(self.port)
        try:
            c.send(b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\n" * 3)
            for _ in range(3):
                self._check(c.read_response(), "pipelined")
        finally:
            c.close()

    def _upload(self):
        c = Client(self.port)
        try:
            c.send(b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
            for _ in range(5):
                c.send(b"400\r\n" + b"u" * 1024 + b"\r\n")
                time.sleep(0.04)
            c.send(b"0\r\n\r\n")
            self._check(c.read_response(), "chunked upload")
        finally:
            c.close()

    def _download(self):
        c = Client(self.port)
        try:
            r = c.request("GET", "/slow")
            self._check(r, "slow download")
            if len(r.body) != 20480:
                raise AssertionError(f"slow download: {len(r.body)} bytes")
        finally:
            c.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=15)


def test_twenty_reloads_under_load_fail_no_request(gateway_factory, host_process):
    hosts = [host_process(free_port(), n) for n in ("A", "B", "C")]
    port, admin, extra = free_port(), free_port(), free_port()

    def cfg(i):
        # Every reload changes something: the route's cluster, an endpoint, a limit, a guard,
        # a listener (added on odd reloads, removed on even ones), retries and timeouts.
        cluster = "a" if i % 2 == 0 else "b"
        b_endpoints = [hosts[1].address] if i % 4 < 2 else [hosts[1].address, hosts[2].address]
        guard = ", concurrency: { max: 64, queue: 64 }" if i % 3 == 0 else ""
        route = (f"  - {{ name: r, cluster: {cluster}, timeout: {10 + i}s, "
                 f"rate_limit: {{ rate: {100000 + 1000 * i}/s, burst: 50000 }}{guard}, "
                 f"retry: {{ attempts: {2 + i % 2} }} }}")
        listener = (f"  - {{ name: extra, address: 127.0.0.1:{extra} }}" if i % 2 == 1 else "")
        return config(port, admin, {"a": [hosts[0].address], "b": b_endpoints}, [route],
                      extra_listeners=listener)

    g = gateway_factory(cfg(0))
    with Load(port) as load:
        time.sleep(0.3)
        for i in range(1, 21):
            rewrite(g, cfg(i))
            assert reload(admin) == i + 1
            # Each change is there when the call returns.
            want = {"A"} if i % 2 == 0 else ({"B"} if i % 4 < 2 else {"B", "C"})
            assert body_of(port)[1] in want
            if i % 2 == 1:
                assert body_of(extra)[0] == 200
            else:
                with pytest.raises(ConnectionRefusedError):
                    socket.create_connection(("127.0.0.1", extra), timeout=2)
            time.sleep(0.15)
        time.sleep(0.3)
    assert load.failures == []
    assert all(n > 0 for n in load.done.values()), load.done
    text = get(admin, "/metrics")[2]
    assert metric(text, "sluice_config_reloads_total", result="success") == 20
    for cls in ("4xx", "5xx"):
        assert metric(text, "sluice_requests_total", route="r", code_class=cls) == 0


def test_rss_stays_flat_over_a_thousand_reloads(gateway_factory, two_hosts):
    a, b = two_hosts
    port, admin = free_port(), free_port()

    def cfg(i):
        return config(port, admin, {"a": [a.address], "b": [b.address]},
                      [f"  - {{ name: r{i % 7}, cluster: {'ab'[i % 2]}, "
                       f"rate_limit: {{ rate: {100 + i}/s, burst: 10 }} }}"])

    g = gateway_factory(cfg(0))

    def run(first, last):
        for i in range(first, last):
            rewrite(g, cfg(i))
            reload(admin)
            if i % 50 == 0:
                assert body_of(port)[0] == 200

    run(1, 200)  # warm: allocator arenas, caches
    before = g.rss_kb()
    run(200, 1001)
    after = g.rss_kb()
    g.signal(signal.SIGTERM)
    assert g.wait() == 0  # under ASan, LeakSanitizer fails the exit if a generation leaked
    if "ASAN_OPTIONS" in os.environ:
        # AddressSanitizer keeps freed memory in its quarantine: RSS says nothing there.
        return
    assert after - before < 4096, f"RSS grew from {before} kB to {after} kB over 800 reloads"


def wait_generation(admin, want, timeout=5):
    return wait_metric(admin, "sluice_config_generation", want, timeout=timeout)


def test_watch_sees_writes_renames_and_configmap_symlink_swaps(gateway_factory, two_hosts):
    a, b = two_hosts
    port, admin = free_port(), free_port()

    def cfg(cluster):
        return config(port, admin, {"a": [a.address], "b": [b.address]},
                      [f"  - {{ name: r, cluster: {cluster} }}"])

    g = gateway_factory(cfg("a"), extra_args=["--watch"])
    with open(g.config_path, "w") as f:  # an in-place write, as an editor saves
        f.write(cfg("b"))
    assert wait_generation(admin, 2) == 2 and body_of(port) == (200, "B")
    rewrite(g, cfg("a"))  # an atomic rename
    assert wait_generation(admin, 3) == 3 and body_of(port) == (200, "A")

    # A Kubernetes ConfigMap volume: sluice.yaml -> ..data/sluice.yaml, ..data -> a timestamped
    # directory; an update writes a new directory and renames a new ..data link over the old.
    def configmap_version(name, text):
        os.makedirs(os.path.join(g.dir, name))
        with open(os.path.join(g.dir, name, "sluice.yaml"), "w") as f:
            f.write(text)
        os.symlink(name, os.path.join(g.dir, "..data_tmp"))
        os.replace(os.path.join(g.dir, "..data_tmp"), os.path.join(g.dir, "..data"))

    configmap_version("..2026_12_04_v1", cfg("b"))
    os.symlink("..data/sluice.yaml", g.config_path + ".link")
    os.replace(g.config_path + ".link", g.config_path)
    assert wait_generation(admin, 4) == 4 and body_of(port) == (200, "B")
    configmap_version("..2026_12_04_v2", cfg("a"))
    assert wait_generation(admin, 5) == 5 and body_of(port) == (200, "A")
    # The same bytes again (an update of another key of the ConfigMap): no reload.
    configmap_version("..2026_12_04_v3", cfg("a"))
    time.sleep(1.5)
    assert metric(get(admin, "/metrics")[2], "sluice_config_generation") == 5


def test_config_as_yaml_is_a_config_validate_takes(gateway_factory, two_hosts, sluice_bin,
                                                   tmp_path):
    import subprocess
    a, b = two_hosts
    port, admin = free_port(), free_port()
    g = gateway_factory(config(port, admin, {"a": [a.address], "b": [b.address]},
                               ["  - { name: r, cluster: a, rate_limit: { rate: 5/s } }"]))
    status, headers, text = get(admin, "/config?format=yaml")
    assert status == 200 and headers["Content-Type"].startswith("application/yaml")
    assert text.startswith(f"# generation 1 from {g.config_path} (xxh3:")
    assert "drain_timeout: 30s" in text and "burst: 1" in text  # every default filled in
    path = tmp_path / "effective.yaml"
    path.write_text(text)
    out = subprocess.run([sluice_bin, "validate", "-c", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    # ... and serving it is a reload that changes nothing but the generation.
    rewrite(g, text)
    assert reload(admin) == 2
    assert get(admin, "/config?format=yaml")[2].split("\n", 1)[1] == text.split("\n", 1)[1]
    assert get(admin, "/config?format=xml")[0] == 400


def test_listener_limits_and_the_access_log_change_by_reload(gateway_factory, two_hosts,
                                                             tmp_path):
    import json
    a, _ = two_hosts
    port, admin = free_port(), free_port()
    log_path = tmp_path / "access.log"
    g = gateway_factory(config(port, admin, {"a": [a.address]}, ["  - { name: r, cluster: a }"]))
    c = Client(port)  # a keep-alive connection that lives across the reload
    long_header = [("X-Long", "v" * 3000)]
    assert c.request("GET", "/", headers=long_header).status == 200
    rewrite(g, config(port, admin, {"a": [a.address]}, ["  - { name: r, cluster: a }"],
                      top=f"access_log: {{ enabled: true, path: \"{log_path}\", fields: [path] }}")
            .replace("name: public, address",
                     "name: public, limits: { header_bytes: 2KiB, request_line: 1KiB }, address"))
    reload(admin)
    # The next request on the same connection is read with the new limit, and logged.
    assert c.request("GET", "/logged").status == 200
    assert c.request("GET", "/", headers=long_header).status == 431
    deadline = time.monotonic() + 5
    while not log_path.exists() or "/logged" not in log_path.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert json.loads(log_path.read_text().splitlines()[0]) == {"path": "/logged"}
