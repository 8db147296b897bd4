"""Subsets (tag routing): a route sends to the hosts of its cluster whose metadata carry its
labels, fixed or taken from a request header, with metadata from static endpoints and from the
registry; an empty subset falls back to the whole cluster or answers 503; reloads change it."""
import collections

from conftest import free_port
from support.client import Client
from support.upstream import named
from test_admin import get, wait_metric
from test_discovery import api, wait_until
from test_reload import config, reload, rewrite


def pay_cluster(hosts, extra=""):
    """hosts: [(address, {label: value})]: a cluster `pay` with that metadata."""
    eps = "".join(
        f"      - {{ address: \"{a}\", metadata: {{ {', '.join(f'{k}: {v}' for k, v in m.items())} }} }}\n"
        if m else f"      - \"{a}\"\n" for a, m in hosts)
    return {"pay": f"    endpoints:\n{eps}{extra}".rstrip("\n")}


TAGGED = [
    "  - name: pay-tagged\n"
    "    match: { headers: [{ name: x-env, present: true }] }\n"
    "    cluster: pay\n"
    "    subset: { from_header: { name: x-env, label: env }, fallback: none }\n",
    "  - name: pay\n"
    "    cluster: pay\n"
    "    subset: { labels: { env: stable } }\n",
]


def served(port, n, headers=()):
    c = Client(port)
    try:
        got = collections.Counter()
        for _ in range(n):
            r = c.request("GET", "/pay", headers=headers)
            got[(r.status, r.body.decode())] += 1
        return got
    finally:
        c.close()


def test_a_header_picks_the_hosts_labelled_with_its_value(gateway_factory, upstream_factory):
    ups = {n: upstream_factory(named(n)) for n in ("stable-1", "stable-2", "gray-1")}
    hosts = [(ups["stable-1"].address, {"env": "stable"}),
             (ups["stable-2"].address, {"env": "stable", "zone": "b"}),
             (ups["gray-1"].address, {"env": "gray"})]
    port, admin = free_port(), free_port()
    gateway_factory(config(port, admin, pay_cluster(hosts), TAGGED))
    assert served(port, 20, [("X-Env", "gray")]) == {(200, "gray-1"): 20}
    stable = served(port, 40, [("x-env", "stable")])
    assert set(stable) == {(200, "stable-1"), (200, "stable-2")}, stable
    assert served(port, 30).keys() == stable.keys()  # no header: the fixed subset
    # A value no host carries: fallback none answers 503 and says why.
    assert served(port, 3, [("x-env", "blue")]) == {
        (503, "no upstream host in the route's subset\n"): 3}
    assert served(port, 3, [("x-env", "")]) == {
        (503, "no upstream host in the route's subset\n"): 3}
    assert wait_metric(admin, "sluice_upstream_errors_total", 6, cluster="pay",
                       kind="empty_subset") == 6
    # Labels compare exactly.
    assert served(port, 2, [("x-env", "Gray")])[(503, "no upstream host in the route's subset\n")] == 2


def test_registered_hosts_bring_their_labels_and_an_empty_subset_falls_back(gateway_factory,
                                                                          upstream_factory):
    stable = upstream_factory(named("stable"))
    gray = upstream_factory(named("gray"))
    port, admin = free_port(), free_port()
    routes = ["  - name: pay\n    cluster: pay\n"
              "    subset: { from_header: { name: x-env, label: env } }\n"]
    gateway_factory(config(port, admin, pay_cluster(
        [(stable.address, {"env": "stable"})], "    discovery: { registry: true }\n"), routes))
    # Nobody is gray yet: the whole cluster serves gray requests.
    assert served(port, 10, [("x-env", "gray")]) == {(200, "stable"): 10}
    status, _ = api(admin, "PUT", f"/registry/pay/{gray.address}",
                    {"ttl_ms": 60000, "metadata": {"env": "gray"}})
    assert status == 201
    assert wait_until(lambda: served(port, 10, [("x-env", "gray")]) == {(200, "gray"): 10})
    assert served(port, 10, [("x-env", "stable")]) == {(200, "stable"): 10}
    # Relabelled by a heartbeat: it leaves the gray subset and joins blue.
    api(admin, "PUT", f"/registry/pay/{gray.address}", {"ttl_ms": 60000, "metadata": {"env": "blue"}})
    assert wait_until(lambda: served(port, 10, [("x-env", "blue")]) == {(200, "gray"): 10})
    fallback = served(port, 40, [("x-env", "gray")])
    assert set(fallback) == {(200, "stable"), (200, "gray")}, fallback


def test_a_reload_changes_the_subset_and_keeps_serving(gateway_factory, upstream_factory):
    ups = {n: upstream_factory(named(n)) for n in ("a", "b")}
    hosts = [(ups["a"].address, {"env": "stable"}), (ups["b"].address, {"env": "gray"})]
    port, admin = free_port(), free_port()
    g = gateway_factory(config(port, admin, pay_cluster(hosts), TAGGED))
    assert served(port, 10) == {(200, "a"): 10}
    rewrite(g, config(port, admin, pay_cluster(hosts),
                      [TAGGED[0], TAGGED[1].replace("env: stable", "env: gray")]))
    reload(admin)
    assert served(port, 10) == {(200, "b"): 10}
    # The subset shows in the config the admin API serves.
    assert "from_header: {name: x-env, label: env}" in get(admin, "/config?format=yaml")[2]
