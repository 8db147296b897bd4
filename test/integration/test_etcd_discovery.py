"""Discovery and registration in etcd, against a real etcd: a cluster's hosts follow the JSON
values under a prefix (added, removed and drained, reweighted, relabelled for subsets); a host
registered under a lease goes when its keep-alives stop; sluice registers itself and lists the
fleet; etcd restarts do not lose a change."""
import collections
import json
import subprocess
import time

from conftest import free_port
from support.client import Client
from support.upstream import named
from test_admin import get
from test_discovery import wait_until
from test_etcd_config import etcd_server  # noqa: F401 (fixture)

PREFIX = "/services/app/"


def config(port, admin, etcd, extra_top="", route_extra="", workers=1):
    return (f"workers: {workers}\nadmin: {{ address: 127.0.0.1:{admin} }}\n"
            f"etcd: {{ endpoints: [{etcd.address}] }}\n{extra_top}"
            f"listeners:\n  - name: public\n    address: 127.0.0.1:{port}\n"
            f"clusters:\n  - name: app\n    discovery: {{ etcd: {PREFIX} }}\n"
            f"routes:\n  - name: all\n    cluster: app\n{route_extra}")


def endpoint(up, weight=None, metadata=None):
    v = {"address": up.address}
    if weight is not None:
        v["weight"] = weight
    if metadata is not None:
        v["metadata"] = metadata
    return json.dumps(v)


def spread(port, n=40, headers=()):
    c = Client(port)
    try:
        return collections.Counter(
            (r.status, r.body.decode()) for r in (c.request("GET", "/", headers=headers)
                                                  for _ in range(n)))
    finally:
        c.close()


def hosts(admin):
    return {h["address"]: h for h in json.loads(get(admin, "/upstreams")[2])[0]["hosts"]
            if h.get("address")}


def test_hosts_follow_the_prefix(gateway_factory, upstream_factory, etcd_server):
    etcd = etcd_server()
    a, b = upstream_factory(named("a")), upstream_factory(named("b"))
    etcd.put(PREFIX + "a", endpoint(a))
    port, admin = free_port(), free_port()
    g = gateway_factory(config(port, admin, etcd))
    assert wait_until(lambda: spread(port, 10) == {(200, "a"): 10}, 3)
    assert hosts(admin)[a.address]["source"] == "etcd"

    etcd.put(PREFIX + "b", endpoint(b, weight=3, metadata={"zone": "z1"}))
    assert wait_until(lambda: set(spread(port, 20)) == {(200, "a"), (200, "b")}, 3)
    seen = spread(port, 80)
    assert seen[(200, "b")] > seen[(200, "a")] * 2, seen  # weight 3 against 1
    assert hosts(admin)[b.address]["metadata"] == {"zone": "z1"}
    assert hosts(admin)[b.address]["weight"] == 3

    etcd.put(PREFIX + "b", endpoint(b, weight=1, metadata={"zone": "z2"}))
    assert wait_until(lambda: hosts(admin)[b.address]["metadata"] == {"zone": "z2"}, 3)
    assert hosts(admin)[b.address]["weight"] == 1

    etcd.delete(PREFIX + "a")
    assert wait_until(lambda: spread(port, 10) == {(200, "b"): 10}, 3)

    # A value that is not an endpoint is reported with its key and skipped; the others stay.
    revision = etcd.put(PREFIX + "bad", '{"address": "nowhere"}')
    assert g.wait_log(f"etcd key {PREFIX}bad (revision {revision}): invalid address 'nowhere'",
                      timeout=3)
    assert any("; skipped" in line for line in g.stderr_lines if f"{PREFIX}bad" in line)
    assert spread(port, 10) == {(200, "b"): 10}
    # A typo in an update keeps the host as it was, rather than taking it out.
    revision = etcd.put(PREFIX + "b", '{"address": "%s", "weight": 0}' % b.address)
    assert g.wait_log(f"etcd key {PREFIX}b (revision {revision}): weight must be", timeout=3)
    assert spread(port, 10) == {(200, "b"): 10}
    assert hosts(admin)[b.address]["metadata"] == {"zone": "z2"}


def test_metadata_from_etcd_feeds_subsets(gateway_factory, upstream_factory, etcd_server):
    etcd = etcd_server()
    stable, gray = upstream_factory(named("stable")), upstream_factory(named("gray"))
    etcd.put(PREFIX + "s", endpoint(stable, metadata={"env": "stable"}))
    etcd.put(PREFIX + "g", endpoint(gray, metadata={"env": "gray"}))
    port, admin = free_port(), free_port()
    route = "    subset: { from_header: { name: x-env, label: env }, fallback: none }\n"
    gateway_factory(config(port, admin, etcd, route_extra=route))
    assert wait_until(lambda: spread(port, 10, [("x-env", "gray")]) == {(200, "gray"): 10}, 3)
    assert spread(port, 10, [("x-env", "stable")]) == {(200, "stable"): 10}
    # Relabelled in etcd: the subset follows.
    etcd.put(PREFIX + "s", endpoint(stable, metadata={"env": "gray"}))
    assert wait_until(
        lambda: set(spread(port, 20, [("x-env", "gray")])) == {(200, "gray"), (200, "stable")}, 3)


def test_a_registration_goes_within_its_ttl_after_keepalives_stop(gateway_factory,
                                                                  upstream_factory, etcd_server):
    etcd = etcd_server()
    a, b = upstream_factory(named("a")), upstream_factory(named("b"))
    etcd.put(PREFIX + "a", endpoint(a))
    lease = etcd.grant(2)
    etcd.put(PREFIX + "b", endpoint(b), lease=lease)
    port, admin = free_port(), free_port()
    gateway_factory(config(port, admin, etcd))
    assert wait_until(lambda: set(spread(port, 20)) == {(200, "a"), (200, "b")}, 3)
    # Keep-alives keep it past its TTL...
    for _ in range(6):
        etcd.keepalive(lease)
        time.sleep(0.5)
    assert b.address in hosts(admin)
    # ...and once they stop it leaves within the TTL (etcd checks expiries every 500 ms).
    stopped = time.monotonic()
    assert wait_until(lambda: b.address not in hosts(admin), 4)
    assert time.monotonic() - stopped <= 2 + 1.0
    assert spread(port, 10) == {(200, "a"): 10}


def test_etcd_restart_loses_no_change(gateway_factory, upstream_factory, etcd_server):
    etcd = etcd_server()
    a, b = upstream_factory(named("a")), upstream_factory(named("b"))
    etcd.put(PREFIX + "a", endpoint(a))
    port, admin = free_port(), free_port()
    gateway_factory(config(port, admin, etcd))
    assert wait_until(lambda: spread(port, 10) == {(200, "a"): 10}, 3)
    etcd.kill()
    assert spread(port, 10) == {(200, "a"): 10}  # last known hosts stay
    etcd.start()
    etcd.put(PREFIX + "b", endpoint(b))
    etcd.delete(PREFIX + "a")
    assert wait_until(lambda: spread(port, 10) == {(200, "b"): 10}, 5)


def test_sluice_registers_itself_and_lists_the_fleet(gateway_factory, upstream_factory,
                                                     etcd_server):
    etcd = etcd_server()
    up = upstream_factory()
    etcd.put(PREFIX + "u", endpoint(up))
    register = ("etcd: { endpoints: [%s], register: { prefix: /sluice/instances/, name: %s, "
                "ttl: 10s } }\n")
    gateways = []
    admins = []
    for name in ("one", "two"):
        port, admin = free_port(), free_port()
        text = config(port, admin, etcd).replace(
            f"etcd: {{ endpoints: [{etcd.address}] }}\n", register % (etcd.address, name))
        gateways.append(gateway_factory(text))
        admins.append((admin, port))

    def fleet(admin):
        return json.loads(get(admin, "/fleet")[2])

    assert wait_until(lambda: len(fleet(admins[0][0])["instances"]) == 2, 3)
    f = fleet(admins[0][0])
    assert f["self"] == "/sluice/instances/one" and f["registered"]
    two = next(i for i in f["instances"] if i["key"] == "/sluice/instances/two")
    assert two["address"] == f"127.0.0.1:{admins[1][1]}"
    assert two["admin"] == f"http://127.0.0.1:{admins[1][0]}"
    assert two["generation"] == 1 and two["version"] and two["pid"] == gateways[1].pid
    value, _ = etcd.get("/sluice/instances/two")
    assert json.loads(value)["address"] == two["address"]

    # A drained instance leaves the list at once (its lease is revoked), not a TTL (10 s) later.
    gateways[1].stop()
    assert wait_until(lambda: len(fleet(admins[0][0])["instances"]) == 1, 3)
    assert etcd.get("/sluice/instances/two") is None


def test_etcd_config_errors(sluice_bin, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "listeners:\n  - name: p\n    address: 127.0.0.1:1\n"
        "clusters:\n  - name: app\n    discovery: { etcd: /x/ }\n"
        "routes:\n  - name: r\n    cluster: app\n")
    run = subprocess.run([sluice_bin, "validate", "-c", str(path)], capture_output=True, text=True)
    assert run.returncode == 1
    assert ":6:24: discovery.etcd needs a top-level etcd section" in run.stderr
    path.write_text("etcd: { endpoints: [], register: { name: a/b } }\n" + path.read_text())
    run = subprocess.run([sluice_bin, "validate", "-c", str(path)], capture_output=True, text=True)
    assert ":1:20: etcd.endpoints must be a list of ip:port" in run.stderr
    assert ":1:42: etcd.register.name must be" in run.stderr
    assert ":1:34: " in run.stderr and "prefix" in run.stderr
    assert "3 problems found" in run.stderr, run.stderr
