"""Hosts that join and leave while sluice runs: the registry on the admin API (register,
heartbeat, TTL expiry, leave with drain) and a watched endpoints file."""
import json
import os
import threading
import time
import urllib.request
from collections import Counter

from conftest import free_port
from support.client import Client
from support import upstream as up_mod
from test_admin import get, metric


def api(admin, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{admin}{path}", data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def named(name, delay=0.0, closed=None):
    def handler(conn):
        while conn.read_request() is not None:
            if delay:
                time.sleep(delay)
            conn.send(up_mod.response(200, name.encode()))
        if closed is not None:
            closed.append(name)  # sluice closed this connection
    return handler


def config(port, admin, static, discovery, workers=2):
    eps = "".join(f"      - \"{a}\"\n" for a in static)
    endpoints = f"    endpoints:\n{eps}" if static else ""
    return (f"workers: {workers}\nadmin: {{ address: 127.0.0.1:{admin} }}\n"
            f"listeners:\n  - name: public\n    address: 127.0.0.1:{port}\n"
            f"clusters:\n  - name: app\n{endpoints}    discovery: {discovery}\n"
            f"routes:\n  - name: all\n    cluster: app\n"
            f"    retry: {{ attempts: 2, on: [connect-failure, reset] }}\n")


def spread(port, n=40):
    c = Client(port)
    return Counter(c.request("GET", "/").body for _ in range(n))


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_a_registered_instance_gets_traffic_until_it_stops_heartbeating(gateway_factory,
                                                                        upstream_factory):
    a = upstream_factory(named("a"))
    b = upstream_factory(named("b"))
    port, admin = free_port(), free_port()
    gateway_factory(config(port, admin, [a.address],
                           "{ registry: true, default_ttl: 1500ms }"))
    assert set(spread(port)) == {b"a"}
    status, body = api(admin, "PUT", f"/registry/app/{b.address}",
                       {"weight": 3, "metadata": {"zone": "z1"}})
    assert status == 201 and body["status"] == "added" and body["ttl_ms"] == 1500, body
    assert wait_until(lambda: spread(port, 8)[b"b"] > 0)
    got = spread(port, 80)
    assert 40 <= got[b"b"] <= 80, got  # weight 3 beside 1
    listed = api(admin, "GET", "/registry")[1]
    assert listed[0]["address"] == b.address and listed[0]["metadata"] == {"zone": "z1"}
    hosts = json.loads(get(admin, "/upstreams")[2])[0]["hosts"]
    assert [h["source"] for h in hosts] == ["static", "registry"]

    # Heartbeats keep it well past its TTL.
    for _ in range(6):
        time.sleep(0.5)
        assert api(admin, "POST", f"/registry/app/{b.address}/heartbeat")[0] == 200
    last_heartbeat = time.monotonic()
    assert spread(port, 20)[b"b"] > 0
    # Silence: gone once the TTL has passed, not before; the next heartbeat learns it must
    # register again.
    assert wait_until(lambda: api(admin, "GET", "/registry")[1] == [], timeout=5)
    assert time.monotonic() - last_heartbeat >= 1.5 - 0.05
    assert wait_until(lambda: set(spread(port, 40)) == {b"a"}, timeout=2)
    assert api(admin, "POST", f"/registry/app/{b.address}/heartbeat")[0] == 404
    assert api(admin, "GET", "/registry")[1] == []
    text = get(admin, "/metrics")[2]
    assert metric(text, "sluice_upstream_requests_total", host=b.address) is None  # no label


def test_a_leaving_host_is_drained(gateway_factory, upstream_factory):
    closed = []
    a = upstream_factory(named("a"))
    b = upstream_factory(named("b", delay=0.8, closed=closed))
    port, admin = free_port(), free_port()
    gateway_factory(config(port, admin, [], "{ registry: true }", workers=1))
    assert api(admin, "PUT", f"/registry/app/{b.address}")[0] == 201
    # The request in flight to b when it leaves finishes with b's answer.
    result = {}
    slow = threading.Thread(target=lambda: result.update(r=Client(port).request("GET", "/")))
    slow.start()
    time.sleep(0.2)
    assert api(admin, "PUT", f"/registry/app/{a.address}")[0] == 201
    status, body = api(admin, "DELETE", f"/registry/app/{b.address}")
    assert status == 200 and body["status"] == "removed"
    # Nothing new goes to b (changes reach the workers within 20 ms).
    assert wait_until(lambda: set(spread(port, 20)) == {b"a"}, timeout=2)
    slow.join()
    assert result["r"].status == 200 and result["r"].body == b"b"
    # Its pooled connections are closed once their requests are done, not kept idle.
    assert wait_until(lambda: len(closed) == b.connections, timeout=3), (closed, b.connections)
    assert api(admin, "DELETE", f"/registry/app/{b.address}")[0] == 404


def test_registry_requests_are_checked(gateway_factory, upstream_factory):
    a = upstream_factory(named("a"))
    port, admin = free_port(), free_port()
    gateway_factory(config(port, admin, [a.address], "{ registry: true, max_hosts: 1 }"))
    assert api(admin, "PUT", "/registry/nope/127.0.0.1:1")[0] == 404
    assert api(admin, "PUT", "/registry/app/10.0.0.1")[0] == 400  # no port
    assert api(admin, "PUT", "/registry/app/api.example:80")[0] == 400
    assert api(admin, "PUT", "/registry/app/127.0.0.1:2", {"weight": 0})[0] == 400
    assert api(admin, "PUT", "/registry/app/127.0.0.1:2", {"ttl_ms": 10})[0] == 400
    assert api(admin, "PUT", "/registry/app/127.0.0.1:2", {"color": "red"})[0] == 400
    assert api(admin, "PUT", f"/registry/app/{a.address}")[0] == 409  # static already
    assert api(admin, "PUT", "/registry/app/127.0.0.1:2")[0] == 201
    status, body = api(admin, "PUT", "/registry/app/127.0.0.1:3")
    assert status == 503 and "full" in body["error"], body
    assert api(admin, "PATCH", "/registry/app/127.0.0.1:2")[0] == 405
    assert set(spread(port, 10)) == {b"a"}  # 127.0.0.1:2 refuses: each such try goes to a


def test_an_endpoints_file_is_applied_live(gateway_factory, upstream_factory, tmp_path):
    a = upstream_factory(named("a"))
    b = upstream_factory(named("b"))
    path = tmp_path / "app.yaml"

    def write(text):
        tmp = tmp_path / "app.yaml.tmp"
        tmp.write_text(text)
        os.replace(tmp, path)  # atomic, as config managers do

    write(f"- \"{a.address}\"\n")
    port, admin = free_port(), free_port()
    g = gateway_factory(config(port, admin, [],
                               f"{{ file: \"{path}\", file_interval: 100ms }}"))
    assert set(spread(port)) == {b"a"}  # read before the first request
    write(f"- \"{a.address}\"\n- {{ address: \"{b.address}\", weight: 1 }}\n")
    assert wait_until(lambda: spread(port, 10)[b"b"] > 0)
    # A broken file is reported and changes nothing.
    write(f"- \"{a.address}\"\n- {{ address: \"{b.address}\", wieght: 1 }}\n")
    assert wait_until(lambda: any("unknown key 'wieght'" in line for line in g.stderr_lines))
    assert any(f"{path}:2:" in line for line in g.stderr_lines)
    assert set(spread(port, 20)) == {b"a", b"b"}
    write(f"- \"{b.address}\"\n")
    assert wait_until(lambda: set(spread(port, 10)) == {b"b"})
    hosts = json.loads(get(admin, "/upstreams")[2])[0]["hosts"]
    assert [(h["address"], h["source"]) for h in hosts] == [(b.address, "file")]


def test_static_endpoints_carry_metadata_and_a_reload_changes_it(gateway_factory,
                                                                  upstream_factory):
    from test_reload import reload, rewrite
    up = upstream_factory()
    port, admin = free_port(), free_port()

    def cfg(env):
        return (f"workers: 1\nadmin: {{ address: 127.0.0.1:{admin} }}\n"
                f"listeners: [{{ name: p, address: 127.0.0.1:{port} }}]\n"
                f"clusters:\n  - name: app\n    endpoints:\n"
                f"      - {{ address: \"{up.address}\", metadata: {{ env: {env}, zone: eu-1 }} }}\n"
                f"routes: [{{ name: all, cluster: app }}]\n")

    g = gateway_factory(cfg("gray"))

    def metadata():
        status, body = api(admin, "GET", "/upstreams")
        assert status == 200
        return body[0]["hosts"][0].get("metadata")

    assert metadata() == {"env": "gray", "zone": "eu-1"}
    rewrite(g, cfg("stable"))
    reload(admin)
    assert metadata() == {"env": "stable", "zone": "eu-1"}
