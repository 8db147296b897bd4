"""Load-balancing policies against real upstream processes: shares, load awareness, and
consistent hashing (a key stays on its host; adding a host moves few keys, all to it)."""
import threading
import time
from collections import Counter

from conftest import free_port
from support.client import Client
from support import upstream as up_mod


def named(name, delay=0.0):
    def handler(conn):
        while conn.read_request() is not None:
            if delay:
                time.sleep(delay)
            conn.send(up_mod.response(200, name.encode()))
    return handler


def config(port, upstreams, lb, weights=None, route_extra="", workers=1):
    weights = weights or [1] * len(upstreams)
    eps = "\n".join(f"      - {{ address: \"{u.address}\", weight: {w} }}"
                    for u, w in zip(upstreams, weights))
    return (f"workers: {workers}\nlisteners:\n  - name: public\n    address: 127.0.0.1:{port}\n"
            f"clusters:\n  - name: app\n    lb: {lb}\n    endpoints:\n{eps}\n"
            f"routes:\n  - name: all\n    cluster: app\n{route_extra}")


def start(gateway_factory, upstream_factory, lb, names, weights=None, route_extra="",
          delays=None, workers=1):
    delays = delays or [0.0] * len(names)
    ups = [upstream_factory(named(n, d)) for n, d in zip(names, delays)]
    port = free_port()
    gateway_factory(config(port, ups, lb, weights, route_extra, workers))
    return port, ups


def test_random_follows_the_weights(gateway_factory, upstream_factory):
    port, _ = start(gateway_factory, upstream_factory, "random", ["a", "b"], weights=[3, 1])
    c = Client(port)
    got = Counter(c.request("GET", "/").body for _ in range(800))
    assert abs(got[b"a"] - 600) <= 60, got  # 3:1 within 10 %


def test_least_request_sends_less_to_a_slow_host(gateway_factory, upstream_factory):
    for lb in ("least_request", "peak_ewma", "least_connections"):
        port, _ = start(gateway_factory, upstream_factory, lb, ["slow", "fast"],
                        delays=[0.1, 0.0])
        got = Counter()
        lock = threading.Lock()

        def run():
            c = Client(port)
            for _ in range(25):
                body = c.request("GET", "/").body
                with lock:
                    got[body] += 1

        threads = [threading.Thread(target=run) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # Round robin would give the slow host half; load-aware policies give it far less.
        assert got[b"slow"] < 0.3 * sum(got.values()), (lb, got)


def keys_to_hosts(port, n, header="X-User"):
    c = Client(port)
    return {k: c.request("GET", "/", headers=[(header, f"user-{k}")]).body for k in range(n)}


def test_consistent_hashing_keeps_keys_and_moves_few_when_a_host_is_added(gateway_factory,
                                                                          upstream_factory):
    for lb in ("ring_hash", "maglev"):
        ups = [upstream_factory(named(f"h{i}")) for i in range(11)]
        route = "    hash_key: 'header:X-User'\n"
        port10, port11 = free_port(), free_port()
        gateway_factory(config(port10, ups[:10], lb, route_extra=route, workers=2))
        gateway_factory(config(port11, ups, lb, route_extra=route, workers=2))
        before = keys_to_hosts(port10, 1000)
        assert keys_to_hosts(port10, 1000) == before  # same key, same host, on either worker
        assert len(set(before.values())) == 10
        after = keys_to_hosts(port11, 1000)
        moved = [k for k in before if before[k] != after[k]]
        to_new = [k for k in moved if after[k] == b"h10"]
        ideal = 1000 / 11
        # The hosts' ports are random, so is their place on the ring: the new host's share of
        # 1,000 keys varies by ~13 keys (its ~93 ring points, and sampling 1,000 keys). The bounds
        # sit 3.5 and 4.5 of those from the ideal (1.2 x ideal + 10 failed once in CI, at 120).
        upper = 1.5 * ideal + 15
        if lb == "ring_hash":
            # A ring moves exactly the keys the new host's points take: ~1/11, all to it.
            assert len(to_new) == len(moved), lb
            assert 0.5 * ideal <= len(moved) <= upper, (lb, len(moved))
        else:
            # Maglev rebalances its table: a few keys also shuffle between the old hosts.
            assert 0.5 * ideal <= len(to_new) <= upper, (lb, len(to_new))
            assert len(moved) <= 2 * ideal, (lb, len(moved), len(to_new))


def test_bounded_load_spreads_a_hot_key(gateway_factory, upstream_factory):
    """12 requests at once with one key: plain ring hash sends them all to the key's host;
    balance_factor 1.25 caps each host at ceil(1.25 x 12 / 4) = 4 of them."""
    route = "    hash_key: 'header:X-User'\n"
    for lb, most in (("ring_hash", 12), ("{ policy: ring_hash, balance_factor: 1.25 }", 4)):
        port, _ = start(gateway_factory, upstream_factory, lb, ["a", "b", "c", "d"],
                        route_extra=route, delays=[0.5] * 4)
        got = Counter()
        lock = threading.Lock()

        def one():
            body = Client(port).request("GET", "/", headers=[("X-User", "hot")]).body
            with lock:
                got[body] += 1

        threads = [threading.Thread(target=one) for _ in range(12)]
        for t in threads:
            t.start()
            time.sleep(0.01)  # each pick sees the ones before it in flight
        for t in threads:
            t.join()
        assert sum(got.values()) == 12, (lb, got)
        if most == 12:
            assert max(got.values()) == 12, (lb, got)
        else:
            assert max(got.values()) <= most and len(got) >= 3, (lb, got)


def test_dynamic_weights_follow_the_load_hosts_report(gateway_factory, upstream_factory):
    """Hosts report their utilization in X-Utilization: the one at 0.8 gets about a quarter of
    the weight of the one at 0.2 (round robin would split evenly)."""
    def reporting(name, load):
        def handler(conn):
            while conn.read_request() is not None:
                conn.send(up_mod.response(200, name.encode(), [("X-Utilization", load)]))
        return handler

    ups = [upstream_factory(reporting("cool", "0.2")), upstream_factory(reporting("hot", "0.8"))]
    port = free_port()
    lb = ("{ policy: round_robin, dynamic_weights: { signal: utilization, header: X-Utilization, "
          "min_samples: 1, blackout: 0s, update_interval: 50ms } }")
    gateway_factory(config(port, ups, lb))
    c = Client(port)
    for _ in range(20):
        c.request("GET", "/")
    time.sleep(0.1)  # past update_interval: the weights follow the reports
    got = Counter(c.request("GET", "/").body for _ in range(500))
    assert 0.12 <= got[b"hot"] / 500 <= 0.28, got  # ideal 0.25 / 1.25 = 0.2


def test_hash_keys_from_a_cookie_and_a_query_parameter(gateway_factory, upstream_factory):
    port, _ = start(gateway_factory, upstream_factory, "ring_hash", ["a", "b", "c"],
                    route_extra="    hash_key: ['cookie:sid', 'query:tenant']\n")
    c = Client(port)
    for sid in range(20):
        first = c.request("GET", f"/x?tenant=t1&y={sid}",
                          headers=[("Cookie", f"theme=dark; sid={sid}")]).body
        again = c.request("GET", f"/other?z=1&tenant=t1",
                          headers=[("Cookie", f"sid={sid}")]).body
        assert first == again


def test_per_host_pool_metrics_count_connections_closed_by_reason(gateway_factory,
                                                                   upstream_factory):
    import json
    from test_admin import get, metric

    def handler(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            if req.target == "/slow":
                time.sleep(0.3)
            if req.target == "/close":
                conn.send(up_mod.response(200, b"bye", [("Connection", "close")]))
                return
            conn.send(up_mod.response(200, b"ok"))
            if req.target == "/hangup":
                return  # closes its side of a keep-alive connection after answering

    up = upstream_factory(handler)
    port, admin = free_port(), free_port()
    gateway_factory(
        f"workers: 1\nadmin: {{ address: 127.0.0.1:{admin} }}\n"
        f"listeners:\n  - name: public\n    address: 127.0.0.1:{port}\n"
        f"clusters:\n  - name: app\n    pool: {{ max_idle: 1, idle_timeout: 1500ms }}\n"
        f"    endpoints: [{{ address: \"{up.address}\", weight: 7 }}]\n"
        f"routes:\n  - name: all\n    cluster: app\n")
    # Two at once need two connections; only one may stay idle afterwards.
    threads = [threading.Thread(target=lambda: Client(port).request("GET", "/slow"))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    c = Client(port)
    assert c.request("GET", "/close").status == 200   # the upstream says close
    assert c.request("GET", "/hangup").status == 200  # the upstream closes after answering
    time.sleep(1.1)  # old enough to be checked before reuse
    assert c.request("GET", "/").status == 200        # finds the hung-up one closed
    time.sleep(2.6)                                   # the sweep closes the idle one
    text = get(admin, "/metrics")[2]

    def closed(reason):
        return metric(text, "sluice_upstream_connections_closed_total", cluster="app",
                      host=up.address, reason=reason)

    assert closed("idle_full") == 1
    assert closed("not_reusable") == 1
    assert closed("upstream_closed") == 1
    assert closed("idle_timeout") >= 1
    assert metric(text, "sluice_upstream_host_weight", cluster="app", host=up.address) == 7
    assert metric(text, "sluice_upstream_host_healthy", cluster="app", host=up.address) == 1
    host = json.loads(get(admin, "/upstreams")[2])[0]["hosts"][0]
    assert host["weight"] == 7 and host["healthy"] is True and host["requests"] == 5
    conns = host["connections"]
    assert conns["created"] >= 3 and conns["active"] == 0 and conns["idle"] == 0
    assert conns["closed"]["idle_full"] == 1 and conns["closed"]["upstream_closed"] == 1
