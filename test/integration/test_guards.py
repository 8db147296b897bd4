"""Admission guards against the real binary: rate limits and concurrency limits."""
import threading
import time

import pytest

from conftest import basic_config, free_port
from support.client import Client
from support import upstream as up_mod
from test_admin import get, metric, wait_metric


def start(gateway_factory, upstream_factory, route_extra, handler=None, workers=2,
          cluster_extra=""):
    up = upstream_factory(handler)
    port, admin = free_port(), free_port()
    gateway_factory(basic_config(port, [up.address], admin_port=admin, route_extra=route_extra,
                                 cluster_extra=cluster_extra, workers=workers))
    return up, port, admin


def guard_metric(admin, decision, guard="rate_limit", route="all"):
    text = get(admin, "/metrics")[2]
    return metric(text, "sluice_guard_requests_total", route=route, guard=guard,
                  decision=decision)


def test_rate_limit_admits_rate_times_time_plus_burst(gateway_factory, upstream_factory):
    """100 r/s with burst 20 over a 5 s flood from several clients admits 100*5 + 20, +-5%."""
    route = "    rate_limit: { rate: 100/s, burst: 20, key: route }\n"
    up, port, admin = start(gateway_factory, upstream_factory, route)
    counts = {"ok": 0, "limited": 0, "other": 0}
    lock = threading.Lock()
    duration = 5.0
    begin = time.monotonic()
    stop_at = begin + duration

    def flood():
        c = Client(port)
        ok = limited = other = 0
        while time.monotonic() < stop_at:
            r = c.request("GET", "/x")
            if r.status == 200:
                ok += 1
            elif r.status == 429:
                limited += 1
            else:
                other += 1
        c.close()
        with lock:
            counts["ok"] += ok
            counts["limited"] += limited
            counts["other"] += other

    threads = [threading.Thread(target=flood) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - begin
    expected = 100 * elapsed + 20
    assert counts["other"] == 0, counts
    assert counts["limited"] > 5 * counts["ok"], counts  # the flood really exceeded the rate
    assert abs(counts["ok"] - expected) <= 0.05 * expected, (counts, expected)
    assert wait_metric(admin, "sluice_guard_requests_total", counts["limited"], route="all",
                       guard="rate_limit", decision="limited") == counts["limited"]


def test_rejections_carry_retry_after_and_ratelimit_headers(gateway_factory, upstream_factory):
    route = "    rate_limit: { rate: 6/m, burst: 2 }\n"
    up, port, admin = start(gateway_factory, upstream_factory, route)
    c = Client(port)
    assert [c.request().status for _ in range(2)] == [200, 200]
    r = c.request()
    assert r.status == 429
    assert r.body == b"rate limit exceeded\n"
    # GCRA: T = 10 s, so the next request fits in 10 s; the quota of 2 is whole after 20 s.
    assert r.header("Retry-After") == "10"
    assert r.header("RateLimit-Policy") == '"all";q=2;w=20'
    assert r.header("RateLimit") == '"all";r=0;t=20'
    assert up.all_received().count(b"GET / HTTP/1.1") == 2  # the limited one never left


def test_per_ip_keys_isolate_clients(gateway_factory, upstream_factory):
    route = "    rate_limit: { rate: 1/m, burst: 3, key: client_ip }\n"
    up, port, admin = start(gateway_factory, upstream_factory, route)
    first = Client(port, source="127.0.0.1")
    statuses = [first.request().status for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    # Another address has its own limiter: untouched by the first client's exhaustion.
    second = Client(port, source="127.0.0.2")
    assert [second.request().status for _ in range(3)] == [200, 200, 200]
    assert second.request().status == 429
    assert up.all_received().count(b"GET / HTTP/1.1") == 6
    assert metric(get(admin, "/metrics")[2], "sluice_rate_limit_keys", route="all",
                  guard="rate_limit") == 2


def test_header_keys_are_bounded_by_max_keys(gateway_factory, upstream_factory):
    """A flood of distinct keys cannot grow the table past max_keys."""
    route = "    rate_limit: { rate: 1/h, burst: 1, key: 'header:x-user', max_keys: 50 }\n"
    up, port, admin = start(gateway_factory, upstream_factory, route, workers=1)
    c = Client(port)
    for i in range(300):
        assert c.request(headers=[("X-User", f"user-{i}")]).status == 200
    # The most recent key is still tracked: its second request is limited.
    assert c.request(headers=[("X-User", "user-299")]).status == 429
    # A missing header is one more (empty) key, limited like any other.
    assert c.request().status == 200
    assert c.request().status == 429
    text = get(admin, "/metrics")[2]
    assert metric(text, "sluice_rate_limit_keys", route="all", guard="rate_limit") <= 50
    assert metric(text, "sluice_rate_limit_keys_evicted_total", route="all",
                  guard="rate_limit") >= 250


def arrival_recorder():
    """An upstream that answers at once and records when each request arrived."""
    arrivals = []
    lock = threading.Lock()

    def handler(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            with lock:
                arrivals.append(time.monotonic())
            conn.send(up_mod.response(200, b"ok"))

    return handler, arrivals


def burst_of(port, n):
    """n clients send one request each at the same moment; returns [(status, seconds)]."""
    results = [None] * n
    barrier = threading.Barrier(n)

    def one(i):
        c = Client(port)
        barrier.wait()
        t0 = time.monotonic()
        r = c.request()
        results[i] = (r.status, time.monotonic() - t0)
        c.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_delay_mode_spreads_a_burst_instead_of_rejecting_it(gateway_factory, upstream_factory):
    """nginx limit_req semantics: 10 r/s, burst 10: of 13 simultaneous requests 11 pass - one at
    once, ten held back to the rate - and 2 are rejected."""
    handler, arrivals = arrival_recorder()
    route = "    rate_limit: { algorithm: leaky_bucket, rate: 10/s, burst: 10, key: route }\n"
    up, port, admin = start(gateway_factory, upstream_factory, route, handler=handler)
    results = burst_of(port, 13)
    statuses = sorted(s for s, _ in results)
    assert statuses == [200] * 11 + [429] * 2, results
    arrivals.sort()
    assert len(arrivals) == 11
    span = arrivals[-1] - arrivals[0]
    assert 0.85 <= span <= 1.5, arrivals  # ten intervals of 100 ms
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    assert min(gaps) >= 0.05, gaps  # spread out, not forwarded together
    assert guard_metric(admin, "delayed") == 10
    assert guard_metric(admin, "allowed") == 1
    assert guard_metric(admin, "limited") == 2


def test_nodelay_forwards_the_burst_at_once(gateway_factory, upstream_factory):
    handler, arrivals = arrival_recorder()
    route = ("    rate_limit: { algorithm: leaky_bucket, rate: 10/s, burst: 10, nodelay: true,"
             " key: route }\n")
    up, port, admin = start(gateway_factory, upstream_factory, route, handler=handler)
    results = burst_of(port, 11)
    assert all(s == 200 for s, _ in results), results
    assert max(t for _, t in results) < 0.5
    assert guard_metric(admin, "delayed") == 0


def slow_upstream(delay, state=None):
    """Answers after `delay` seconds (or state["delay"] when given) and tracks concurrency."""
    state = state if state is not None else {}
    state.setdefault("delay", delay)
    state.update(active=0, peak=0)
    lock = threading.Lock()

    def handler(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            with lock:
                state["active"] += 1
                state["peak"] = max(state["peak"], state["active"])
            time.sleep(state["delay"])
            with lock:
                state["active"] -= 1
            conn.send(up_mod.response(200, b"ok"))

    return handler, state


def test_concurrency_guard_sheds_above_its_limit(gateway_factory, upstream_factory):
    handler, state = slow_upstream(0.6)
    route = ("    concurrency: { max: 2, queue: 2, queue_timeout: 5s, status: 503,"
             " retry_after: 2s }\n")
    up, port, admin = start(gateway_factory, upstream_factory, route, handler=handler)
    results = burst_of(port, 7)
    statuses = sorted(s for s, _ in results)
    # Two run at once, two wait in the queue and run next, three are shed at once.
    assert statuses == [200] * 4 + [503] * 3, results
    assert state["peak"] == 2
    shed_times = sorted(t for s, t in results if s == 503)
    assert max(shed_times) < 0.4, results  # shed immediately, not after waiting
    queued_times = sorted(t for s, t in results if s == 200)[2:]
    assert min(queued_times) >= 1.0, results  # served after a slot freed up
    assert guard_metric(admin, "allowed", guard="concurrency") == 2
    assert guard_metric(admin, "delayed", guard="concurrency") == 2
    assert guard_metric(admin, "shed", guard="concurrency") == 3
    assert Client(port).request().status == 200  # every slot came back


def test_concurrency_queue_timeout_sheds_with_retry_after(gateway_factory, upstream_factory):
    handler, state = slow_upstream(1.0)
    route = "    concurrency: { max: 1, queue: 5, queue_timeout: 200ms, status: 429 }\n"
    up, port, admin = start(gateway_factory, upstream_factory, route, handler=handler)
    results = [None, None]

    def first():
        results[0] = Client(port).request().status

    t = threading.Thread(target=first)
    t.start()
    # Wait until the first request holds the only slot (it reached the upstream).
    assert wait_metric(admin, "sluice_concurrency_in_flight", 1, route="all",
                       guard="concurrency") == 1
    c = Client(port)
    t0 = time.monotonic()
    r = c.request()
    waited = time.monotonic() - t0
    t.join()
    assert results[0] == 200
    assert r.status == 429 and r.body == b"queue timeout\n"
    assert r.header("Retry-After") == "1"
    assert 0.15 <= waited < 0.8
    assert wait_metric(admin, "sluice_concurrency_queued", 0, route="all",
                       guard="concurrency") == 0
    assert wait_metric(admin, "sluice_concurrency_in_flight", 0, route="all",
                       guard="concurrency") == 0


def test_adaptive_limit_drops_when_the_upstream_slows_and_recovers(gateway_factory,
                                                                   upstream_factory):
    state = {"delay": 0.005}
    handler, state = slow_upstream(0.005, state)
    route = ("    concurrency:\n      adaptive: { algorithm: aimd, initial: 10, min: 2, max: 40,"
             " timeout: 100ms }\n      queue: 100\n      queue_timeout: 10s\n")
    up, port, admin = start(gateway_factory, upstream_factory, route, handler=handler)

    def limit():
        return metric(get(admin, "/metrics")[2], "sluice_concurrency_limit", route="all",
                      guard="concurrency")

    stop = threading.Event()

    def load():
        c = Client(port, timeout=30)
        while not stop.is_set():
            assert c.request().status == 200

    threads = [threading.Thread(target=load) for _ in range(12)]
    for t in threads:
        t.start()
    try:
        time.sleep(2.0)
        fast = limit()
        state["delay"] = 0.3  # every request now exceeds the 100 ms timeout: drops
        deadline = time.monotonic() + 10
        slow = limit()
        while slow > 4 and time.monotonic() < deadline:
            time.sleep(0.2)
            slow = limit()
        state["delay"] = 0.005
        deadline = time.monotonic() + 10
        recovered = limit()
        while recovered < 10 and time.monotonic() < deadline:
            time.sleep(0.2)
            recovered = limit()
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert fast >= 12, (fast, slow, recovered)  # grew while the clients used it
    assert slow <= 4, (fast, slow, recovered)
    assert recovered >= 10, (fast, slow, recovered)


def test_cluster_rate_limit_is_shared_by_its_routes(gateway_factory, upstream_factory):
    up = upstream_factory()
    port, admin = free_port(), free_port()
    config = f"""workers: 2
admin: {{ address: 127.0.0.1:{admin} }}
listeners:
  - name: public
    address: 127.0.0.1:{port}
clusters:
  - name: app
    endpoints: ["{up.address}"]
    rate_limit: {{ rate: 1/m, burst: 3, key: client_ip }}
routes:
  - name: a
    match: {{ path_prefix: /a }}
    cluster: app
  - name: b
    cluster: app
"""
    gateway_factory(config)
    c = Client(port)
    assert [c.request(path=p).status for p in ("/a", "/b", "/a", "/b")] == [200, 200, 200, 429]
    r = c.request(path="/a")
    assert r.status == 429 and r.header("RateLimit-Policy").startswith('"app";')
