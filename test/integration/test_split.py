"""Weighted splits: distribution, stickiness, each side's own guards and retries, metrics per
(route, cluster), and a reload that moves weight. Real upstreams answer with their own name."""
import collections

from conftest import free_port, running_demo
from support.client import Client
from support.upstream import named
from test_admin import get, metric, wait_metric
from test_reload import config, reload, rewrite


def split_route(weights, extra=""):
    sides = ", ".join(f"{{ cluster: {c}, weight: {w} }}" for c, w in weights)
    return [f"  - name: pay\n    split: [{sides}]\n{extra}"]


def pipelined(port, requests, batch=200):
    """Sends raw requests on one keep-alive connection, `batch` at a time; returns responses."""
    c = Client(port)
    out = []
    for i in range(0, len(requests), batch):
        chunk = requests[i:i + batch]
        c.send(b"".join(chunk))
        out.extend(c.read_response() for _ in chunk)
    c.close()
    return out


def request(user=None):
    extra = f"X-User: {user}\r\n" if user is not None else ""
    return f"GET /pay HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode()


def start(gateway_factory, upstream_factory, routes, statuses=None, cluster_extra=None):
    statuses = statuses or {}
    cluster_extra = cluster_extra or {}
    ups = {n: upstream_factory(named(n, statuses.get(n, 200))) for n in ("v1", "v2")}
    port, admin = free_port(), free_port()

    def clusters():
        return {n: f"    endpoints: [\"{u.address}\"]\n{cluster_extra.get(n, '')}".rstrip("\n")
                for n, u in ups.items()}

    g = gateway_factory(config(port, admin, clusters(), routes, workers=2))
    return g, port, admin, ups, clusters


def test_a_ten_percent_split_lands_within_one_point(gateway_factory, upstream_factory):
    _, port, admin, ups, _ = start(gateway_factory, upstream_factory,
                                   split_route([("v1", 90), ("v2", 10)]))
    n = 10_000
    got = collections.Counter(r.body.decode() for r in pipelined(port, [request()] * n))
    assert got["v1"] + got["v2"] == n
    assert abs(got["v2"] / n - 0.10) <= 0.01, got
    # Each side is measured on its own: requests and latency per (route, cluster).
    for side in ("v1", "v2"):
        assert wait_metric(admin, "sluice_requests_total", got[side], route="pay", cluster=side,
                           code_class="2xx") == got[side]
        assert wait_metric(admin, "sluice_request_duration_seconds_count", got[side], route="pay",
                           cluster=side) == got[side]


def test_a_sticky_split_keeps_each_key_on_its_side_across_a_reload_that_moves_weight(
        gateway_factory, upstream_factory):
    routes = split_route([("v1", 80), ("v2", 20)], "    split_key: \"header:x-user\"\n")
    g, port, admin, ups, clusters = start(gateway_factory, upstream_factory, routes)
    users = [f"user-{i}" for i in range(300)]
    reqs = [request(u) for u in users for _ in range(4)]
    side = {}
    for u, r in zip([u for u in users for _ in range(4)], pipelined(port, reqs)):
        assert side.setdefault(u, r.body.decode()) == r.body.decode(), u
    on_v2 = {u for u, s in side.items() if s == "v2"}
    assert 0.10 < len(on_v2) / len(users) < 0.30
    # Weight moves from v1 to v2: nobody on v2 goes back, some of v1 come over.
    rewrite(g, config(port, admin, clusters(),
                      split_route([("v1", 50), ("v2", 50)], "    split_key: \"header:x-user\"\n"),
                      workers=2))
    reload(admin)
    after = {u: r.body.decode() for u, r in zip(users, pipelined(port, [request(u) for u in users]))}
    assert all(after[u] == "v2" for u in on_v2)
    assert 0.35 < sum(1 for s in after.values() if s == "v2") / len(users) < 0.65
    # A request without the key is drawn at random, and still served.
    assert pipelined(port, [request()])[0].status == 200


def test_each_side_retries_on_itself_and_applies_its_own_clusters_guards(gateway_factory,
                                                                         upstream_factory):
    routes = split_route([("v1", 50), ("v2", 50)],
                         "    split_key: \"header:x-user\"\n"
                         "    retry: { attempts: 3, on: [5xx], backoff_base: 1ms }\n")
    # v2 answers 503 to everything; v2's cluster has a breaker that opens on it.
    g, port, admin, ups, _ = start(
        gateway_factory, upstream_factory, routes, statuses={"v2": 503},
        cluster_extra={"v2": "    circuit_breaker: { window: 10, minimum_calls: 10, "
                             "failure_rate: 50, open_duration: 1m }\n"
                             "    retry_budget: { percent: 100, min_per_second: 100 }"})
    users = [f"u{i}" for i in range(60)]
    results = {u: r for u, r in zip(users, pipelined(port, [request(u) for u in users]))}
    on_v1 = [u for u, r in results.items() if r.status == 200]
    on_v2 = [u for u, r in results.items() if r.status != 200]
    assert on_v1 and on_v2
    assert all(results[u].body == b"v1" for u in on_v1)
    # Retries stayed on v2: v1 never saw a request of a v2 user.
    v1_seen = ups["v1"].all_received()
    assert not any(f"X-User: {u}\r\n".encode() in v1_seen for u in on_v2)
    assert wait_metric(admin, "sluice_requests_total", len(on_v1), route="pay", cluster="v1",
                       code_class="2xx") == len(on_v1)
    text = get(admin, "/metrics")[2]
    # v2's breaker opened and answers for v2 only; v1's side has no breaker verdicts at all.
    assert metric(text, "sluice_guard_requests_total", route="pay", cluster="v2",
                  guard="cluster_circuit_breaker", decision="open") > 0
    assert metric(text, "sluice_guard_requests_total", route="pay", cluster="v1",
                  guard="cluster_circuit_breaker", decision="allowed") is None


def test_the_demo_shows_a_grey_release(sluice_bin):
    """`sluice demo`'s /canary: the tag goes to fast-b, and ~10 % of users do, each to one side."""
    import json

    with running_demo(sluice_bin) as (port, _):
        def upstream(headers):
            r = Client(port).request("GET", "/canary", headers=headers)
            assert r.status == 200
            return json.loads(r.body)["upstream"]

        assert {upstream([("X-Env", "gray")]) for _ in range(5)} == {"fast-b"}
        sides = {}
        for i in range(200):
            user = f"user-{i}"
            sides[user] = upstream([("X-User", user)])
            assert upstream([("X-User", user)]) == sides[user]
        on_canary = sum(1 for s in sides.values() if s == "fast-b")
        assert set(sides.values()) == {"fast-a", "fast-b"}
        assert 5 <= on_canary <= 40, on_canary
