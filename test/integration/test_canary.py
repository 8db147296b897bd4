"""Progressive canaries against real upstreams: a healthy canary stepped up to 100 %, one with
20 % errors or a p99 three times the baseline's rolled back within an interval, one with too
little traffic left unjudged, the operator's calls, and a reload that keeps the rollout."""
import collections
import itertools
import threading
import time

from conftest import free_port, running_demo
from support.client import Client
from support.upstream import named, response
from test_admin import get, metric
from test_discovery import api
from test_reload import config, reload, rewrite


def failing(every):
    """Answers 500 to one request in `every`, 200 (body "v2") to the others."""
    counter = itertools.count(1)
    lock = threading.Lock()

    def handler(conn):
        while conn.read_request() is not None:
            with lock:
                n = next(counter)
            conn.send(response(500, b"v2") if n % every == 0 else response(200, b"v2"))
    return handler


def sleeping(name, seconds):
    def handler(conn):
        while conn.read_request() is not None:
            time.sleep(seconds)
            conn.send(response(200, name.encode()))
    return handler


def canary_route(canary):
    return ("  - name: pay\n"
            "    split: [{ cluster: v1, weight: 1 }, { cluster: v2, weight: 0 }]\n"
            f"    canary: {canary}\n")


class Traffic:
    """Requests from `threads` keep-alive clients until stopped; counts answers by body."""

    def __init__(self, port, threads=4):
        self.port = port
        self.stop_flag = False
        self.seen = collections.Counter()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for t in self.threads:
            t.start()

    def _run(self):
        c = Client(self.port)
        while not self.stop_flag:
            r = c.request("GET", "/pay")
            with self.lock:
                self.seen[(r.status, r.body.decode())] += 1
        c.close()

    def stop(self):
        self.stop_flag = True
        for t in self.threads:
            t.join(timeout=10)


def start(gateway_factory, upstream_factory, canary, v1=None, v2=None):
    ups = {"v1": upstream_factory(v1 or named("v1")), "v2": upstream_factory(v2 or named("v2"))}
    port, admin = free_port(), free_port()

    def cfg(c):
        return config(port, admin, {n: [f"\"{u.address}\""] for n, u in ups.items()},
                      [canary_route(c)])

    g = gateway_factory(cfg(canary))
    return g, port, admin, cfg


def state(admin):
    status, body = api(admin, "GET", "/canaries/pay")
    assert status == 200, body
    return body


def wait_state(admin, want, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        s = state(admin)
        if s["state"] == want or time.monotonic() > deadline:
            return s
        time.sleep(0.05)


def actions(s):
    return [h["action"] for h in s["history"]]


def test_a_healthy_canary_is_promoted_step_by_step(gateway_factory, upstream_factory):
    _, port, admin, _ = start(gateway_factory, upstream_factory,
                              "{ steps: [20, 50], interval: 1s, min_requests: 30 }")
    s = state(admin)
    assert s["state"] == "progressing" and s["percent"] == 20 and s["step"] == 0
    traffic = Traffic(port)
    try:
        s = wait_state(admin, "promoted")
    finally:
        traffic.stop()
    assert s["percent"] == 100, s
    assert actions(s) == ["start", "step", "promote"], s["history"]
    step, promote = s["history"][1], s["history"][2]
    assert (step["percent_before"], step["percent"]) == (20, 50)
    assert step["analysis"]["verdict"] == "healthy"
    assert step["canary_requests"] >= 30 and step["baseline_requests"] >= 30
    # Each step lasted its interval.
    assert step["seconds_ago"] - promote["seconds_ago"] >= 0.95
    # Promoted: every request goes to the canary now.
    c = Client(port)
    assert {c.request("GET", "/pay").body for _ in range(50)} == {b"v2"}
    c.close()
    text = get(admin, "/metrics")[2]
    assert metric(text, "sluice_canary_weight", route="pay", cluster="v2") == 1
    assert metric(text, "sluice_canary_state", route="pay", state="promoted") == 1
    assert metric(text, "sluice_canary_decisions_total", route="pay", action="step") == 1


def test_a_canary_with_20_percent_errors_is_rolled_back_within_one_interval(gateway_factory,
                                                                         upstream_factory):
    _, port, admin, _ = start(gateway_factory, upstream_factory,
                              "{ steps: [20, 50], interval: 3s, min_requests: 30 }",
                              v2=failing(5))
    traffic = Traffic(port)
    try:
        s = wait_state(admin, "rolled_back")
    finally:
        traffic.stop()
    assert actions(s) == ["start", "rollback"], s["history"]
    start_at, rollback = s["history"][0], s["history"][1]
    assert start_at["seconds_ago"] - rollback["seconds_ago"] < 3  # before the first step was due
    assert rollback["analysis"]["verdict"] == "error_rate"
    assert rollback["analysis"]["canary_error_rate"] > 0.1
    assert rollback["analysis"]["error_z"] > rollback["analysis"]["critical_z"]
    assert s["percent"] == 0
    c = Client(port)
    assert {c.request("GET", "/pay").body for _ in range(50)} == {b"v1"}
    c.close()
    assert metric(get(admin, "/metrics")[2], "sluice_canary_state", route="pay",
                  state="rolled_back") == 1


def test_a_canary_three_times_slower_is_rolled_back(gateway_factory, upstream_factory):
    _, port, admin, _ = start(gateway_factory, upstream_factory,
                              "{ steps: [50], interval: 5s, min_requests: 20 }",
                              v1=sleeping("v1", 0.010), v2=sleeping("v2", 0.030))
    traffic = Traffic(port, threads=6)
    try:
        s = wait_state(admin, "rolled_back")
    finally:
        traffic.stop()
    assert actions(s) == ["start", "rollback"], s["history"]
    a = s["history"][1]["analysis"]
    assert a["verdict"] == "latency", a
    assert a["canary_p99_ms"] > 2 * a["baseline_p99_ms"]


def test_a_canary_with_too_little_traffic_is_not_judged(gateway_factory, upstream_factory):
    _, port, admin, _ = start(gateway_factory, upstream_factory,
                              "{ steps: [20, 50], interval: 500ms, min_requests: 1000 }",
                              v2=failing(2))
    c = Client(port)
    for _ in range(100):
        c.request("GET", "/pay")
    c.close()
    # Wait for two intervals' holds (one history entry with repeats) rather than guess a sleep.
    deadline = time.monotonic() + 10
    while True:
        s = state(admin)
        holds = [h for h in s["history"] if h["action"] == "hold"]
        if (holds and holds[-1].get("repeats", 1) >= 2) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert holds and holds[-1].get("repeats", 1) >= 2, s["history"]
    assert s["state"] == "progressing" and s["step"] == 0 and s["percent"] == 20, s
    assert "hold" in actions(s) and "rollback" not in actions(s)
    hold = [h for h in s["history"] if h["action"] == "hold"][-1]
    assert hold["canary_requests"] < 1000


def test_operators_pause_resume_promote_abort_and_restart(gateway_factory, upstream_factory):
    _, port, admin, _ = start(gateway_factory, upstream_factory,
                              "{ steps: [10, 50], interval: 1h }")
    assert api(admin, "POST", "/canaries/pay/pause")[0] == 200
    assert state(admin)["state"] == "paused"
    status, body = api(admin, "POST", "/canaries/pay/pause")
    assert status == 409 and "paused" in body["error"]
    assert api(admin, "POST", "/canaries/pay/resume")[0] == 200
    assert api(admin, "POST", "/canaries/pay/promote")[0] == 200
    s = state(admin)
    assert (s["state"], s["percent"]) == ("promoted", 100)
    c = Client(port)
    assert {c.request("GET", "/pay").body for _ in range(20)} == {b"v2"}
    assert api(admin, "POST", "/canaries/pay/abort")[0] == 200
    assert {c.request("GET", "/pay").body for _ in range(20)} == {b"v1"}
    assert api(admin, "POST", "/canaries/pay/restart")[0] == 200
    s = state(admin)
    assert (s["state"], s["step"], s["percent"]) == ("progressing", 0, 10)
    assert actions(s) == ["start", "pause", "resume", "promote", "abort", "restart"]
    assert all(h["operator"] for h in s["history"][1:])
    c.close()
    assert api(admin, "POST", "/canaries/pay/jump")[0] == 404  # no such action
    assert api(admin, "POST", "/canaries/pay/pause/")[0] == 404
    assert api(admin, "GET", "/canaries/pay/pause")[0] == 405
    assert api(admin, "POST", "/canaries/nope/pause")[0] == 404
    status, body = api(admin, "GET", "/canaries")
    assert status == 200 and [x["route"] for x in body] == ["pay"]


def test_a_reload_keeps_an_unchanged_canary_and_restarts_a_changed_one(gateway_factory,
                                                                       upstream_factory):
    canary = "{ steps: [10, 50], interval: 1h }"
    g, port, admin, cfg = start(gateway_factory, upstream_factory, canary)
    assert api(admin, "POST", "/canaries/pay/pause")[0] == 200
    # An unrelated change: the route's timeout.
    rewrite(g, cfg(canary).replace("    canary:", "    timeout: 7s\n    canary:"))
    reload(admin)
    s = state(admin)
    assert s["state"] == "paused" and actions(s) == ["start", "pause"], s
    # A change to the canary itself starts a new rollout.
    rewrite(g, cfg("{ steps: [20, 50], interval: 1h }"))
    reload(admin)
    s = state(admin)
    assert (s["state"], s["percent"]) == ("progressing", 20) and actions(s) == ["start"], s
    # So does a new build of the canary: its cluster's endpoints changed.
    assert api(admin, "POST", "/canaries/pay/pause")[0] == 200
    v2b = upstream_factory(named("v2b"))
    text = cfg("{ steps: [20, 50], interval: 1h }")
    old_v2 = text.split("name: v2, endpoints: [")[1].split("]")[0]
    rewrite(g, text.replace(old_v2, f"\"{v2b.address}\""))
    reload(admin)
    s = state(admin)
    assert s["state"] == "progressing" and actions(s) == ["start"], s


def test_the_demo_shows_a_progressive_canary_and_a_mirror(sluice_bin):
    """`sluice demo`'s /rollout starts at 10 % on fast-b; /mirrored copies to the slow upstream
    without the client waiting for it."""
    with running_demo(sluice_bin) as (port, admin):
        status, body = api(admin, "GET", "/canaries")
        assert status == 200 and len(body) == 1
        assert (body[0]["route"], body[0]["state"], body[0]["percent"]) == (
            "rollout", "progressing", 10)
        assert (body[0]["baseline"], body[0]["canary"]) == ("stable", "canary")
        c = Client(port)
        assert c.request("GET", "/rollout").status == 200
        started = time.monotonic()
        for _ in range(40):
            assert c.request("GET", "/mirrored").status == 200
        assert time.monotonic() - started < 5  # ~20 copies to a 300 ms upstream, not waited for
        c.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            copies = metric(get(admin, "/metrics")[2], "sluice_mirror_requests_total",
                            route="mirrored", cluster="slow", result="2xx")
            if copies and copies >= 8:
                break
            time.sleep(0.1)
        # Binomial(40, 0.5): below 8 is 3.8 standard deviations away.
        assert copies and 8 <= copies <= 40, copies
