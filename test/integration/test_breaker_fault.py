"""Circuit breakers, fallbacks, fault injection, chained deadlines and drain during retries."""
import json
import signal
import threading
import time

from conftest import basic_config, free_port
from support.client import Client
from support import upstream as up_mod
from test_admin import get, metric


class Flaky:
    """An upstream whose failure share can be changed while it runs: with `fail` = 0.6, three
    of every five requests get a 500, in a fixed pattern."""

    def __init__(self, upstream_factory, body=b"fresh"):
        self.fail = 0.0
        self.seen = 0
        self.body = body
        self.up = upstream_factory(self.handle)

    def handle(self, conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            self.up.count()
            self.seen += 1
            if (self.seen % 5) < round(self.fail * 5):
                conn.send(up_mod.response(500, b"broken"))
            else:
                conn.send(up_mod.response(200, self.body + req.target.encode(),
                                          [("Content-Type", "text/x-test"),
                                           ("X-Request-Id", req.header("x-request-id"))]))


BREAKER = ("    retry: { attempts: 1 }\n"
           "    circuit_breaker:\n      window: 20\n      minimum_calls: 10\n"
           "      failure_rate: 50\n      open_duration: 500ms\n      half_open_probes: 2\n")


def breakers(admin):
    return json.loads(get(admin, "/breakers")[2])


def wait_state(admin, want, timeout=5):
    """A request's outcome reaches its breaker when the request completes, just after its last
    byte is sent: poll the state rather than read it once."""
    deadline = time.monotonic() + timeout
    while (state := breakers(admin)[0]["state"]) != want and time.monotonic() < deadline:
        time.sleep(0.01)
    return state


def test_breaker_opens_serves_the_fallback_probes_and_closes(gateway_factory, upstream_factory):
    flaky = Flaky(upstream_factory)
    port, admin = free_port(), free_port()
    gateway_factory(basic_config(
        port, [flaky.up.address], admin_port=admin,
        # 1.5 s open: the 20 requests that check "nothing reaches the upstream while open" must
        # fit inside it even on a loaded machine.
        route_extra=BREAKER.replace("open_duration: 500ms", "open_duration: 1500ms") +
        "      fallback: { status: 200, body: degraded, headers: { X-Mode: degraded } }\n"))
    c = Client(port)
    assert c.request("GET", "/").status == 200
    flaky.fail = 0.6
    # It opens within its window: at the latest when the window is full of 60 % failures.
    for sent in range(1, 21):
        r = c.request("GET", "/")
        if r.header("x-sluice-fallback") == "static":
            break
    assert r.header("x-sluice-fallback") == "static" and r.status == 200
    assert r.body == b"degraded" and r.header("x-mode") == "degraded"
    assert 10 <= flaky.up.requests <= 21
    assert breakers(admin)[0]["state"] == "open"
    # While open, nothing reaches the upstream.
    before = flaky.up.requests
    for _ in range(20):
        assert c.request("GET", "/").header("x-sluice-fallback") == "static"
    assert flaky.up.requests == before
    # Still broken after the open period: the probe fails and the breaker reopens.
    flaky.fail = 1.0
    time.sleep(1.6)
    assert c.request("GET", "/").status == 500  # the probe, answered by the upstream
    # One failed probe of two is already 50 %: it reopens at once.
    assert wait_state(admin, "open") == "open"
    assert c.request("GET", "/").header("x-sluice-fallback") == "static"
    # Recovered: the probes succeed and it closes.
    flaky.fail = 0.0
    time.sleep(1.6)
    statuses = [c.request("GET", "/") for _ in range(10)]
    assert all(r.status == 200 and r.header("x-sluice-fallback") is None for r in statuses)
    b = breakers(admin)[0]
    assert b["state"] == "closed" and b["route"] == "all" and b["guard"] == "circuit_breaker"
    assert b["transitions"]["open"] >= 2 and b["transitions"]["half_open"] >= 2
    assert b["transitions"]["closed"] == 1
    text = get(admin, "/metrics")[2]
    assert metric(text, "sluice_circuit_breaker_state", route="all", state="closed") == 1
    assert metric(text, "sluice_circuit_breaker_state", route="all", state="open") == 0
    assert metric(text, "sluice_circuit_breaker_transitions_total", route="all", to="open") >= 2
    assert metric(text, "sluice_guard_requests_total", route="all", guard="circuit_breaker",
                  decision="open") >= 20


def test_an_open_breaker_serves_the_last_good_response_from_cache(gateway_factory,
                                                                 upstream_factory):
    flaky = Flaky(upstream_factory, body=b"v1:")
    port, admin = free_port(), free_port()
    gateway_factory(basic_config(
        port, [flaky.up.address], admin_port=admin,
        route_extra=BREAKER + "      fallback: { cache: true }\n"))
    c = Client(port)
    first = c.request("GET", "/item?id=7")
    assert first.body == b"v1:/item?id=7"
    flaky.fail = 1.0
    for _ in range(10):
        c.request("GET", "/broken")
    r = c.request("GET", "/item?id=7")
    assert r.status == 200 and r.body == b"v1:/item?id=7"
    assert r.header("x-sluice-fallback") == "cache" and r.header("content-type") == "text/x-test"
    assert r.header("age") is not None
    # The request ID is this request's, not the one the cached response once answered.
    ids = r.header_all("x-request-id")
    assert len(ids) == 1 and ids[0] != first.header("x-request-id")
    r = c.request("GET", "/never-seen")
    assert r.status == 503 and r.header("x-sluice-fallback") == "static"
    assert metric(get(admin, "/metrics")[2], "sluice_fallback_cache_entries", route="all") == 1


def test_an_open_breaker_sends_requests_to_the_fallback_cluster(gateway_factory,
                                                                upstream_factory):
    flaky = Flaky(upstream_factory)
    spare = upstream_factory()
    port, admin = free_port(), free_port()
    cfg = basic_config(port, [flaky.up.address], admin_port=admin,
                       cluster_extra=BREAKER.replace("    retry: { attempts: 1 }\n", "") +
                       "      fallback: { cluster: spare }\n"
                       f"  - name: spare\n    endpoints: [\"{spare.address}\"]\n",
                       route_extra="    retry: { attempts: 1 }\n")
    gateway_factory(cfg)
    c = Client(port)
    flaky.fail = 1.0
    for _ in range(10):
        assert c.request("GET", "/").status == 500
    r = c.request("GET", "/via-spare")
    assert r.status == 200 and json.loads(r.body)["target"] == "/via-spare"
    b = breakers(admin)[0]
    assert b["guard"] == "cluster_circuit_breaker" and b["route"] is None and b["state"] == "open"


def test_fault_injection_aborts_and_delays_a_share(gateway_factory, upstream_factory):
    up = upstream_factory()
    port, admin = free_port(), free_port()
    gateway_factory(basic_config(
        port, [up.address], admin_port=admin,
        route_extra="    fault:\n      abort: { status: 503, percent: 50 }\n"
                    "      delay: { duration: 100ms, percent: 100 }\n"))
    c = Client(port)
    begin = time.monotonic()
    results = [c.request("GET", "/") for _ in range(40)]
    assert time.monotonic() - begin >= 40 * 0.1
    aborted = [r for r in results if r.status == 503]
    assert 8 <= len(aborted) <= 32  # 50 % of 40, with generous room for chance
    assert all(r.header("x-sluice-fault") == "abort" for r in aborted)
    assert all(r.status == 200 for r in results if r not in aborted)
    text = get(admin, "/metrics")[2]
    assert metric(text, "sluice_guard_requests_total", route="all", guard="fault",
                  decision="aborted") == len(aborted)


def test_the_deadline_shrinks_hop_by_hop_and_fails_fast_when_spent(gateway_factory,
                                                                   upstream_factory):
    up = upstream_factory()
    delay = "    fault: { delay: { duration: 200ms } }\n"
    port_b = free_port()
    gateway_factory(basic_config(port_b, [up.address], route_extra=delay))
    port_a = free_port()
    gateway_factory(basic_config(port_a, [f"127.0.0.1:{port_b}"], route_extra=delay))
    c = Client(port_a)
    r = c.request("GET", "/", headers=[("X-Sluice-Timeout-Ms", "2000")])
    assert r.status == 200
    seen = [v for k, v in json.loads(r.body)["headers"] if k.lower() == "x-sluice-timeout-ms"]
    assert len(seen) == 1 and 1400 <= int(seen[0]) <= 1600  # 2000 - 200 (a) - 200 (b)
    before = up.connections
    begin = time.monotonic()
    r = c.request("GET", "/", headers=[("X-Sluice-Timeout-Ms", "300")])
    assert r.status == 504 and time.monotonic() - begin < 0.6
    time.sleep(0.3)  # b fails fast on its side too: the upstream never hears of it
    assert up.connections == before


def test_sigterm_during_retries_loses_nothing(gateway_factory, upstream_factory):
    tried = set()

    def first_429(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            if req.target not in tried:
                tried.add(req.target)
                conn.send(up_mod.response(429, b"later", [("Retry-After", "1")]))
            else:
                conn.send(up_mod.response(200, b"done:" + req.target.encode()))

    up = upstream_factory(first_429)
    port = free_port()
    g = gateway_factory(basic_config(
        port, [up.address], workers=2,
        route_extra="    retry: { attempts: 2, on: [429], backoff_max: 2s }\n"))
    clients = [Client(port) for _ in range(6)]
    for i, c in enumerate(clients):
        c.send(f"GET /r{i} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    time.sleep(0.4)  # every request is now waiting out its Retry-After
    g.signal(signal.SIGTERM)
    for i, c in enumerate(clients):
        r = c.read_response()
        assert r.status == 200 and r.body == f"done:/r{i}".encode()
    assert g.wait(timeout=10) == 0


def test_requests_the_upstream_never_saw_do_not_open_the_breaker(gateway_factory,
                                                                 upstream_factory):
    """Spent client deadlines and client-budget timeouts are the client's, not the upstream's."""
    up = upstream_factory(up_mod.slow(0.5))
    port, admin = free_port(), free_port()
    gateway_factory(basic_config(
        port, [up.address], admin_port=admin, route_extra=BREAKER,
        cluster_extra="    outlier_detection: { consecutive_5xx: 2, max_ejection_percent: 100 }\n"))
    c = Client(port)
    for _ in range(20):
        assert c.request("GET", "/", headers=[("X-Sluice-Timeout-Ms", "0")]).status == 504
    for _ in range(4):  # tries cut short by the client's own 100 ms budget
        r = c.request("GET", "/", headers=[("X-Sluice-Timeout-Ms", "100")])
        assert r.status == 504 and b"deadline exceeded" in r.body
    b = breakers(admin)[0]
    assert b["state"] == "closed" and b["calls"] == 0
    text = get(admin, "/metrics")[2]
    assert metric(text, "sluice_outlier_ejections_total", cluster="app",
                  reason="consecutive_5xx") == 0


def test_personal_responses_are_never_served_from_the_fallback_cache(gateway_factory,
                                                                    upstream_factory):
    state = {"fail": False}

    def handler(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            if state["fail"]:
                conn.send(up_mod.response(500, b"broken"))
            elif req.target == "/login":
                conn.send(up_mod.response(200, b"welcome", [("Set-Cookie", "session=abc")]))
            else:
                conn.send(up_mod.response(200, b"page:" + req.target.encode()))

    up = upstream_factory(handler)
    port = free_port()
    gateway_factory(basic_config(port, [up.address],
                                 route_extra=BREAKER + "      fallback: { cache: true }\n"))
    c = Client(port)
    assert c.request("GET", "/login").status == 200                       # Set-Cookie
    assert c.request("GET", "/me", headers=[("Cookie", "session=abc")]).status == 200
    assert c.request("GET", "/public").status == 200
    state["fail"] = True
    for _ in range(10):
        c.request("GET", "/x")
    assert c.request("GET", "/public").header("x-sluice-fallback") == "cache"
    for path in ("/login", "/me"):
        r = c.request("GET", path)
        assert r.header("x-sluice-fallback") == "static" and r.header("set-cookie") is None, path
