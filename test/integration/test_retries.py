"""Retries in the forward phase and deadlines that propagate, against the real binary."""
import json
import threading
import time

from conftest import basic_config, free_port
from support.client import Client
from support import upstream as up_mod
from test_admin import get, metric


def status_upstream(status, headers=()):
    """Answers every request with `status`, counting them."""
    holder = {}

    def handler(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            holder["up"].count()
            conn.send(up_mod.response(status, b"fail", list(headers)))

    return holder, handler


def counting_echo(holder):
    def handler(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            holder["up"].count()
            conn.send(up_mod.response(200, up_mod.describe(req)))
    return handler


def start(gateway_factory, upstreams, route_extra="", cluster_extra="", workers=1):
    port, admin = free_port(), free_port()
    gateway_factory(basic_config(port, [u.address for u in upstreams], admin_port=admin,
                                 route_extra=route_extra, cluster_extra=cluster_extra,
                                 workers=workers))
    return port, admin


def failing_and_good(upstream_factory, status=503, headers=()):
    bad_holder, bad_handler = status_upstream(status, headers)
    bad = upstream_factory(bad_handler)
    bad_holder["up"] = bad
    good_holder = {}
    good = upstream_factory(counting_echo(good_holder))
    good_holder["up"] = good
    return bad, good


def test_a_retried_status_goes_to_the_other_host(gateway_factory, upstream_factory):
    bad, good = failing_and_good(upstream_factory)
    port, admin = start(gateway_factory, [bad, good],
                        "    retry: { attempts: 2, on: [gateway-error], backoff_base: 1ms, "
                        "backoff_max: 5ms }\n")
    c = Client(port)
    for _ in range(20):
        assert c.request("GET", "/x").status == 200
    assert bad.requests == 10 and good.requests == 20  # round robin: every other first try
    assert metric(get(admin, "/metrics")[2], "sluice_upstream_retries_total", cluster="app") == 10


def test_statuses_are_not_retried_for_unsafe_or_bodied_requests(gateway_factory,
                                                                 upstream_factory):
    bad, good = failing_and_good(upstream_factory)
    port, _ = start(gateway_factory, [bad, good],
                    "    retry: { attempts: 2, on: [503], backoff_base: 1ms, backoff_max: 5ms }\n")
    c = Client(port)
    statuses = [c.request("POST", "/x", body=b"").status for _ in range(4)]
    statuses += [c.request("PUT", "/x", body=b"payload").status for _ in range(4)]
    assert statuses.count(503) == 4 and statuses.count(200) == 4
    assert bad.requests == 4  # each 503 reached the client unretried


def test_methods_any_retries_a_post(gateway_factory, upstream_factory):
    bad, good = failing_and_good(upstream_factory)
    port, _ = start(gateway_factory, [bad, good],
                    "    retry: { attempts: 2, on: [503], methods: any, backoff_base: 1ms, "
                    "backoff_max: 5ms }\n")
    c = Client(port)
    assert all(c.request("POST", "/x").status == 200 for _ in range(6))
    assert bad.requests == 3


def test_retry_after_is_honoured_or_the_answer_passed_on(gateway_factory, upstream_factory):
    calls = []

    def once_429(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            calls.append(time.monotonic())
            wait = req.header("x-wait")
            if len(calls) % 2 == 1:
                conn.send(up_mod.response(429, b"slow down", [("Retry-After", wait)]))
            else:
                conn.send(up_mod.response(200, b"ok"))

    up = upstream_factory(once_429)
    port, _ = start(gateway_factory, [up],
                    "    retry: { attempts: 2, on: [429], backoff_base: 1ms, backoff_max: 2s }\n")
    c = Client(port)
    begin = time.monotonic()
    r = c.request("GET", "/", headers=[("X-Wait", "1")])
    assert r.status == 200 and r.body == b"ok"
    assert calls[1] - calls[0] >= 0.95  # waited the upstream's Retry-After
    assert time.monotonic() - begin < 1.9
    # Longer than backoff_max: not waited for; the client gets the 429 and its Retry-After.
    calls.clear()
    r = c.request("GET", "/", headers=[("X-Wait", "5")])
    assert r.status == 429 and r.header("retry-after") == "5" and len(calls) == 1


def test_reset_is_retried_only_when_asked(gateway_factory, upstream_factory):
    def hang_up(conn):
        conn.read_request()  # and close without answering

    for on, expected in (("[reset]", 200), ("[connect-failure]", 502)):
        bad = upstream_factory(hang_up)
        good = upstream_factory()
        port, _ = start(gateway_factory, [bad, good],
                        f"    retry: {{ attempts: 2, on: {on}, backoff_base: 1ms, "
                        "backoff_max: 5ms }\n")
        c = Client(port)
        statuses = {c.request("GET", "/").status for _ in range(4)}
        assert expected in statuses and (expected == 200) == (statuses == {200}), (on, statuses)


def test_per_try_timeout_moves_on_to_a_fast_host(gateway_factory, upstream_factory):
    bad = upstream_factory(up_mod.slow(3))
    good = upstream_factory()
    port, _ = start(gateway_factory, [bad, good],
                    "    timeout: 5s\n"
                    "    retry: { attempts: 2, on: [timeout], per_try_timeout: 300ms, "
                    "backoff_base: 1ms, backoff_max: 5ms }\n")
    c = Client(port)
    for _ in range(2):  # one of the two starts on the slow host
        begin = time.monotonic()
        r = c.request("GET", "/")
        assert r.status == 200 and r.body != b"slow"
        assert time.monotonic() - begin < 1.5


def test_retry_budget_bounds_upstream_load_when_everything_fails(gateway_factory,
                                                                 upstream_factory):
    """3 tries per request would triple the load; the budget keeps retries near 20 %."""
    holders = []
    ups = []
    for _ in range(2):
        holder, handler = status_upstream(503)
        u = upstream_factory(handler)
        holder["up"] = u
        ups.append(u)
    port, admin = start(gateway_factory, ups,
                        "    retry: { attempts: 3, on: [503], backoff_base: 1ms, "
                        "backoff_max: 2ms }\n",
                        cluster_extra="    retry_budget: { percent: 20, min_per_second: 1, "
                                      "window: 10s }\n", workers=2)
    n = 300
    clients = [Client(port) for _ in range(3)]
    results = []

    def run(c):
        results.extend(c.request("GET", "/").status for _ in range(n // len(clients)))

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(503) == n
    attempts = sum(u.requests for u in ups)
    # Allowance: max(20 % of first tries, 1/s * 10 s of floor); batching of first-try reports
    # only makes the budget stricter.
    assert n <= attempts <= n + max(0.2 * n, 10), attempts
    text = get(admin, "/metrics")[2]
    assert metric(text, "sluice_upstream_retries_total", cluster="app") == attempts - n
    assert metric(text, "sluice_upstream_retry_budget_exhausted_total", cluster="app") > 0


def deadline_seen(req):
    return json.loads(req.body)["headers"]


def header_of(headers, name):
    values = [v for k, v in headers if k.lower() == name.lower()]
    assert len(values) <= 1, values
    return values[0] if values else None


def test_the_remaining_deadline_is_passed_upstream(gateway_factory, upstream_factory):
    up = upstream_factory()
    port, _ = start(gateway_factory, [up], "    timeout: 2s\n")
    c = Client(port)
    # No client deadline: the route timeout.
    h = json.loads(c.request("GET", "/").body)["headers"]
    assert 1900 <= int(header_of(h, "X-Sluice-Timeout-Ms")) <= 2000
    assert header_of(h, "grpc-timeout") is None
    # An earlier client deadline wins; a later one does not.
    h = json.loads(c.request("GET", "/", headers=[("X-Sluice-Timeout-Ms", "700")]).body)["headers"]
    assert 600 <= int(header_of(h, "X-Sluice-Timeout-Ms")) <= 700
    h = json.loads(c.request("GET", "/", headers=[("X-Sluice-Timeout-Ms", "9000")]).body)["headers"]
    assert int(header_of(h, "X-Sluice-Timeout-Ms")) <= 2000
    # grpc-timeout comes back in its own header too (in microseconds).
    h = json.loads(c.request("GET", "/", headers=[("grpc-timeout", "1S")]).body)["headers"]
    assert 900 <= int(header_of(h, "X-Sluice-Timeout-Ms")) <= 1000
    g = header_of(h, "grpc-timeout")
    assert g.endswith("u") and 900_000 <= int(g[:-1]) <= 1_000_000


def test_a_spent_deadline_fails_fast_without_an_upstream_call(gateway_factory, upstream_factory):
    holder = {}
    up = upstream_factory(counting_echo(holder))
    holder["up"] = up
    port, admin = start(gateway_factory, [up])
    c = Client(port)
    begin = time.monotonic()
    r = c.request("GET", "/", headers=[("X-Sluice-Timeout-Ms", "0")])
    assert r.status == 504 and b"deadline" in r.body
    assert time.monotonic() - begin < 0.5 and up.requests == 0
    assert metric(get(admin, "/metrics")[2], "sluice_upstream_errors_total", cluster="app",
                  kind="deadline") == 1
    assert c.request("GET", "/").status == 200  # the connection is still good


def test_a_short_client_deadline_cuts_a_slow_upstream(gateway_factory, upstream_factory):
    up = upstream_factory(up_mod.slow(2))
    port, _ = start(gateway_factory, [up], "    timeout: 10s\n")
    begin = time.monotonic()
    r = Client(port).request("GET", "/", headers=[("grpc-timeout", "300m")])
    elapsed = time.monotonic() - begin
    assert r.status == 504 and 0.25 <= elapsed < 1.0


def test_malformed_deadlines_are_400(gateway_factory, upstream_factory):
    up = upstream_factory()
    port, _ = start(gateway_factory, [up])
    for name, value in (("X-Sluice-Timeout-Ms", "-5"), ("X-Sluice-Timeout-Ms", "1.5"),
                        ("grpc-timeout", "10"), ("grpc-timeout", "123456789m")):
        r = Client(port).request("GET", "/", headers=[(name, value)])
        assert r.status == 400 and b"invalid" in r.body, (name, value)


def test_a_bad_host_is_ejected_and_clients_see_no_errors(gateway_factory, upstream_factory):
    """One host of three always fails: retries hide it and outlier detection ejects it."""
    bad_holder, bad_handler = status_upstream(503)
    bad = upstream_factory(bad_handler)
    bad_holder["up"] = bad
    goods = [upstream_factory() for _ in range(2)]
    port, admin = free_port(), free_port()
    g = gateway_factory(basic_config(
        port, [u.address for u in (goods[0], bad, goods[1])], admin_port=admin,
        route_extra="    retry: { attempts: 3, on: [gateway-error], backoff_base: 1ms, "
                    "backoff_max: 5ms }\n",
        cluster_extra="    host_latency_histogram: true\n"
                      "    outlier_detection: { consecutive_5xx: 3, "
                      "max_ejection_percent: 50, base_ejection_time: 30s }\n",
        workers=2))
    clients = [Client(port) for _ in range(3)]
    statuses = []

    def run(c):
        statuses.extend(c.request("GET", "/").status for _ in range(40))

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses.count(200) == 120
    # Three failures in a row, then it was out (requests already on their way to it when the
    # third failure was recorded still arrive).
    assert 3 <= bad.requests <= 6
    text = get(admin, "/metrics")[2]
    assert metric(text, "sluice_outlier_ejections_total", cluster="app",
                  reason="consecutive_5xx") == 1
    assert metric(text, "sluice_upstream_host_ejected", cluster="app", host=bad.address) == 1
    assert metric(text, "sluice_upstream_host_ejected", cluster="app",
                  host=goods[0].address) == 0
    hosts = json.loads(get(admin, "/upstreams")[2])[0]["hosts"]
    ejected = [h for h in hosts if h["ejected"]]
    assert [h["address"] for h in ejected] == [bad.address]
    # The ejection is in the diagnostic log, with its reason and how long it lasts.
    assert g.wait_log(f"outlier detection: app {bad.address} ejected for 30000 ms "
                      "(consecutive_5xx)")
    # host_latency_histogram: the cluster's latency by host too, adding up to the cluster's.
    per_host = [metric(text, "sluice_upstream_host_response_head_seconds_count", cluster="app",
                       host=u.address) for u in (goods[0], bad, goods[1])]
    assert per_host[1] == bad.requests and min(per_host) > 0
    assert sum(per_host) == metric(text, "sluice_upstream_response_head_seconds_count",
                                   cluster="app")
    assert 25_000 < ejected[0]["ejected_for_ms"] <= 30_000 and ejected[0]["times_ejected"] == 1


def concurrent_statuses(port, n):
    results = []
    lock = threading.Lock()

    def one():
        r = Client(port).request("GET", "/")
        with lock:
            results.append((r.status, r.body))

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
        time.sleep(0.02)
    for t in threads:
        t.join()
    return results


def test_bulkhead_caps_requests_and_connections_across_workers(gateway_factory, upstream_factory):
    for cap, limit in (("max_requests: 2", "requests"), ("max_connections: 2", "connections")):
        up = upstream_factory(up_mod.slow(0.8))
        port, admin = start(gateway_factory, [up],
                            cluster_extra=f"    bulkhead: {{ {cap} }}\n", workers=2)
        begin = time.monotonic()
        results = concurrent_statuses(port, 5)
        statuses = sorted(s for s, _ in results)
        assert statuses == [200, 200, 503, 503, 503], (limit, results)
        assert all(b == b"upstream cluster overloaded\n" for s, b in results if s == 503)
        assert time.monotonic() - begin < 1.5
        text = get(admin, "/metrics")[2]
        assert metric(text, "sluice_bulkhead_overflow_total", cluster="app", limit=limit) == 3
        assert metric(text, "sluice_upstream_errors_total", cluster="app", kind="overflow") == 3
        assert metric(text, "sluice_bulkhead_limit", cluster="app", limit=limit) == 2


def test_bulkhead_caps_concurrent_retries(gateway_factory, upstream_factory):
    bad, good = failing_and_good(upstream_factory)
    port, admin = start(gateway_factory, [bad, good],
                        "    retry: { attempts: 2, on: [503], backoff_base: 1ms, "
                        "backoff_max: 2ms }\n",
                        cluster_extra="    bulkhead: { max_retries: 0 }\n")
    c = Client(port)
    statuses = [c.request("GET", "/").status for _ in range(4)]
    assert statuses.count(503) == 2  # the failed tries were not retried
    assert metric(get(admin, "/metrics")[2], "sluice_bulkhead_overflow_total", cluster="app",
                  limit="retries") == 2


def test_bulkhead_caps_status_retries_in_flight(gateway_factory, upstream_factory):
    seen = set()

    def fail_first(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            if req.target not in seen:
                seen.add(req.target)
                time.sleep(0.2)
                conn.send(up_mod.response(503, b"busy"))
            else:
                time.sleep(0.6)  # the retry is in flight for a while
                conn.send(up_mod.response(200, b"ok"))

    up = upstream_factory(fail_first)
    port, admin = start(gateway_factory, [up],
                        "    retry: { attempts: 2, on: [503], backoff_base: 1ms, "
                        "backoff_max: 2ms }\n",
                        cluster_extra="    bulkhead: { max_retries: 1 }\n")
    results = []

    def one(i):
        results.append(Client(port).request("GET", f"/r{i}").status)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 503]  # one retry at a time: the other passes the 503 on
    assert metric(get(admin, "/metrics")[2], "sluice_bulkhead_overflow_total", cluster="app",
                  limit="retries") == 1
