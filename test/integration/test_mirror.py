"""Request mirroring against real upstreams: the copy a mirror gets (as the route's upstream gets
it, marked), the share of requests copied, the body bound, the in-flight bound, and mirrors that
are slow, dead or answer garbage never slowing or failing the requests they copy."""
import socket
import threading
import time

import pytest

from conftest import free_port
from support.client import Client
from support.upstream import echo, response
from test_admin import get, metric, wait_metric
from test_reload import config, reload, rewrite


def recording(store):
    """Answers 200 and keeps every request it got, in order."""
    lock = threading.Lock()

    def handler(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            with lock:
                store.append(req)
            conn.send(response(200, b"shadow"))
    return handler


def route(mirror, extra=""):
    return ("  - name: pay\n"
            "    cluster: app\n"
            f"    mirror: {mirror}\n" + extra)


def start(gateway_factory, upstream_factory, mirror, shadow_address, extra="", primary=echo):
    up = upstream_factory(primary)
    port, admin = free_port(), free_port()
    gw = gateway_factory(config(port, admin, {"app": [f"\"{up.address}\""],
                                              "shadow": [f"\"{shadow_address}\""]},
                                [route(mirror, extra)], workers=1))
    return gw, up, port, admin


def mirrored(admin, result):
    return metric(get(admin, "/metrics")[2], "sluice_mirror_requests_total", route="pay",
                  cluster="shadow", result=result)


def settle(admin):
    """Copies finish after the requests they copy: wait until none is in flight."""
    wait_metric(admin, "sluice_mirror_in_flight", 0, timeout=10, route="pay", cluster="shadow")


def test_the_mirror_gets_the_request_as_the_upstream_does_marked_as_a_copy(gateway_factory,
                                                                          upstream_factory):
    copies = []
    shadow = upstream_factory(recording(copies))
    primary_seen = []
    _, _, port, admin = start(gateway_factory, upstream_factory, "{ cluster: shadow }",
                              shadow.address,
                              extra="    request_headers: { set: { x-env: \"${route}\" } }\n",
                              primary=recording(primary_seen))
    c = Client(port)
    r = c.request("GET", "/a?x=1", headers=[("X-Sluice-Mirror", "forged"), ("X-User", "u1")])
    assert r.status == 200 and r.body == b"shadow"
    r = c.request("POST", "/upload", body=b"x" * 3000)
    assert r.status == 200
    c.send(b"PUT /chunked HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    assert c.read_response().status == 200
    assert wait_metric(admin, "sluice_mirror_requests_total", 3, route="pay", cluster="shadow",
                       result="2xx") == 3
    # Copies travel on their own connections: they may arrive in any order.
    copies.sort(key=lambda q: q.target)
    primary_seen.sort(key=lambda q: q.target)
    assert [(q.method, q.target, q.body) for q in copies] == [
        ("GET", "/a?x=1", b""), ("PUT", "/chunked", b"hello world"),
        ("POST", "/upload", b"x" * 3000)]
    for copy, real in zip(copies, primary_seen):
        assert copy.header_all("x-sluice-mirror") == ["1"]  # the client's own was dropped
        assert real.header_all("x-sluice-mirror") == []
        assert copy.header("x-env") == "pay" == real.header("x-env")  # edits apply to both
        assert copy.header("x-request-id") == real.header("x-request-id")
        assert 0 < int(copy.header("x-sluice-timeout-ms")) <= 1000  # the mirror's own timeout
    assert copies[0].header("x-user") == "u1"
    assert copies[1].header("transfer-encoding") == "chunked"
    c.close()


def test_a_share_of_the_requests_is_copied(gateway_factory, upstream_factory):
    copies = []
    shadow = upstream_factory(recording(copies))
    _, _, port, admin = start(gateway_factory, upstream_factory,
                              "{ cluster: shadow, percent: 10 }", shadow.address)
    c = Client(port)
    n = 2000
    for i in range(n):
        assert c.request("GET", f"/r{i}").status == 200
    c.close()
    settle(admin)
    got = mirrored(admin, "2xx")
    assert got == len(copies)
    # Binomial(2000, 0.1): mean 200, sd 13.4; +-5 sd fails a correct draw once in 3 million runs.
    assert 133 <= got <= 267, got
    assert wait_metric(admin, "sluice_requests_total", n, route="pay", cluster="app",
                       code_class="2xx") == n


def answers_garbage(conn):
    while conn.read_request() is not None:
        conn.send(b"NOT HTTP AT ALL\r\n\r\n")


def never_answers(conn):
    while conn.read_request() is not None:
        pass


def sleeps(conn):
    while conn.read_request() is not None:
        time.sleep(2)
        conn.send(response(200, b"late"))


@pytest.mark.parametrize("kind,result", [("slow", "timeout"), ("silent", "timeout"),
                                         ("garbage", "failed"), ("dead", "failed")])
def test_a_bad_mirror_never_slows_or_fails_the_primary(gateway_factory, upstream_factory, kind,
                                                       result):
    if kind == "dead":
        shadow_address = f"127.0.0.1:{free_port()}"  # nothing listens there
    else:
        handler = {"slow": sleeps, "silent": never_answers, "garbage": answers_garbage}[kind]
        shadow_address = upstream_factory(handler).address
    _, _, port, admin = start(gateway_factory, upstream_factory,
                              "{ cluster: shadow, timeout: 1s }", shadow_address)
    c = Client(port)
    started = time.monotonic()
    for i in range(30):
        r = c.request("GET", f"/g{i}") if i % 3 else c.request("POST", f"/p{i}", body=b"b" * 100)
        assert r.status == 200, (kind, r.status, r.body)
        assert b'"target"' in r.body
    elapsed = time.monotonic() - started
    # Waiting on the mirror even once per request would take 30 s (its timeout is 1 s).
    assert elapsed < 10, elapsed
    c.close()
    assert wait_metric(admin, "sluice_mirror_requests_total", 30, timeout=15, route="pay",
                       cluster="shadow", result=result) == 30
    assert wait_metric(admin, "sluice_requests_total", 30, route="pay", cluster="app",
                       code_class="2xx") == 30


def test_bodies_over_max_body_are_not_copied_and_are_counted(gateway_factory, upstream_factory):
    copies = []
    shadow = upstream_factory(recording(copies))
    _, _, port, admin = start(gateway_factory, upstream_factory,
                              "{ cluster: shadow, max_body: 1KiB }", shadow.address)
    c = Client(port)
    assert c.request("POST", "/small", body=b"s" * 1024).status == 200
    r = c.request("POST", "/large", body=b"l" * 4096)
    assert r.status == 200 and b'"body_length": 4096' in r.body  # the primary got it all
    chunks = b"".join(b"400\r\n" + b"c" * 1024 + b"\r\n" for _ in range(4)) + b"0\r\n\r\n"
    c.send(b"POST /chunked HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)
    r = c.read_response()
    assert r.status == 200 and b'"body_length": 4096' in r.body
    c.close()
    assert wait_metric(admin, "sluice_mirror_requests_total", 2, route="pay", cluster="shadow",
                       result="body_too_large") == 2
    settle(admin)
    assert [q.target for q in copies] == ["/small"]
    assert mirrored(admin, "2xx") == 1

    # A body that never arrives whole: the primary could not be sent either; no copy goes out.
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /cut HTTP/1.1\r\nHost: test\r\nContent-Length: 500\r\n\r\n" + b"x" * 10)
    s.close()  # what was sent stays readable before the end of the stream
    assert wait_metric(admin, "sluice_mirror_requests_total", 1, route="pay", cluster="shadow",
                       result="incomplete") == 1
    assert [q.target for q in copies] == ["/small"]


def test_copies_beyond_max_in_flight_are_dropped(gateway_factory, upstream_factory):
    shadow = upstream_factory(never_answers)
    _, _, port, admin = start(gateway_factory, upstream_factory,
                              "{ cluster: shadow, timeout: 5s, max_in_flight: 2 }", shadow.address)
    c = Client(port)
    for i in range(6):
        assert c.request("GET", f"/o{i}").status == 200
    c.close()
    # Two copies wait on the silent mirror (5 s); the four after them find no room.
    assert mirrored(admin, "overflow") == 4
    assert metric(get(admin, "/metrics")[2], "sluice_mirror_in_flight", route="pay",
                  cluster="shadow") == 2
    assert wait_metric(admin, "sluice_mirror_requests_total", 2, timeout=15, route="pay",
                       cluster="shadow", result="timeout") == 2


def test_a_reload_changes_the_mirror_and_keeps_its_counters(gateway_factory, upstream_factory):
    copies = []
    shadow = upstream_factory(recording(copies))
    gw, up, port, admin = start(gateway_factory, upstream_factory, "{ cluster: shadow }",
                                shadow.address)
    c = Client(port)
    for i in range(5):
        assert c.request("GET", f"/before{i}").status == 200
    assert wait_metric(admin, "sluice_mirror_requests_total", 5, route="pay", cluster="shadow",
                       result="2xx") == 5
    rewrite(gw, config(port, admin, {"app": [f"\"{up.address}\""],
                                     "shadow": [f"\"{shadow.address}\""]},
                       [route("{ cluster: shadow, percent: 0 }")], workers=1))
    reload(admin)
    for i in range(5):
        assert c.request("GET", f"/after{i}").status == 200
    c.close()
    settle(admin)
    assert mirrored(admin, "2xx") == 5  # kept across the reload, and nothing more copied
    assert sorted(q.target for q in copies) == [f"/before{i}" for i in range(5)]
