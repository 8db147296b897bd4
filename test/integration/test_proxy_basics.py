"""Forwarding behaviour: methods, bodies, framing, keep-alive, pipelining, header handling."""
import json

import pytest

from conftest import basic_config, free_port
from support.client import Client
from support import upstream as up_mod


def seen(resp):
    """The echo upstream's description of the request it received."""
    return json.loads(resp.body)


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_methods_and_bodies_reach_the_upstream(proxy, method):
    _, up, port = proxy
    c = Client(port)
    body = b"payload-" + method.encode()
    r = c.request(method, "/m?q=1", body=body)
    assert r.status == 200
    s = seen(r)
    assert s["method"] == method
    assert s["target"] == "/m?q=1"
    assert s["body"] == body.decode()


def test_head_gets_the_length_but_no_body(proxy):
    _, up, port = proxy
    c = Client(port)
    r = c.request("HEAD", "/h")
    assert r.status == 200 and r.body == b""
    # The connection is still in sync: a following request works.
    assert c.request("GET", "/after").status == 200


def test_chunked_request_body_is_rechunked_upstream(proxy):
    _, up, port = proxy
    c = Client(port)
    c.send(b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5;ext=x\r\nhello\r\n6\r\n world\r\n0\r\nTrailer-X: 1\r\n\r\n")
    r = c.read_response()
    assert r.status == 200
    s = seen(r)
    assert s["body"] == "hello world"
    names = [k.lower() for k, _ in s["headers"]]
    assert "transfer-encoding" in names and "content-length" not in names
    raw = up.all_received()
    assert b"ext=x" not in raw and b"Trailer-X" not in raw  # extensions and trailers dropped


def chunked_upstream(conn):
    while True:
        req = conn.read_request()
        if req is None:
            return
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"3;x=y\r\nabc\r\n4\r\ndefg\r\n0\r\nX-T: 1\r\n\r\n")


def test_chunked_response_is_rechunked_for_http11_and_raw_for_http10(gateway_factory, upstream_factory):
    up = upstream_factory(chunked_upstream)
    port = free_port()
    gateway_factory(basic_config(port, [up.address]))
    c = Client(port)
    r = c.request("GET", "/")
    assert r.status == 200 and r.body == b"abcdefg" and r.complete
    assert r.header("transfer-encoding") == "chunked"
    assert r.header("x-t") is None
    c10 = Client(port)
    c10.send(b"GET / HTTP/1.0\r\n\r\n")
    r10 = c10.read_response()
    assert r10.status == 200 and r10.body == b"abcdefg"
    assert r10.header("transfer-encoding") is None
    assert c10.closed()


def test_keep_alive_reuses_both_connections(proxy):
    _, up, port = proxy
    c = Client(port)
    for i in range(20):
        assert c.request("GET", f"/k{i}").status == 200
    assert up.connections == 1


def test_pipelined_requests_are_answered_in_order(proxy):
    _, up, port = proxy
    c = Client(port)
    c.send(b"".join(f"GET /p{i} HTTP/1.1\r\nHost: t\r\n\r\n".encode() for i in range(5)) +
           b"POST /p5 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nxyz" +
           b"GET /p6 HTTP/1.1\r\nHost: t\r\n\r\n")
    targets = [seen(c.read_response())["target"] for _ in range(7)]
    assert targets == [f"/p{i}" for i in range(7)]


def test_http10_client_is_served_and_closed(proxy):
    _, up, port = proxy
    c = Client(port)
    c.send(b"GET /old HTTP/1.0\r\n\r\n")
    r = c.read_response()
    assert r.status == 200 and seen(r)["target"] == "/old"
    assert c.closed()


def test_http10_keep_alive_is_honoured(proxy):
    _, up, port = proxy
    c = Client(port)
    c.send(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    r = c.read_response()
    assert r.status == 200 and r.header("connection").lower() == "keep-alive"
    c.send(b"GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert seen(c.read_response())["target"] == "/b"


def test_expect_100_continue_is_answered_by_the_gateway(proxy):
    _, up, port = proxy
    c = Client(port)
    c.send(b"PUT /e HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    interim = c.read_response()
    assert interim.status == 100
    c.send(b"data")
    r = c.read_response()
    assert r.status == 200
    s = seen(r)
    assert s["body"] == "data"
    assert "expect" not in [k.lower() for k, _ in s["headers"]]


def test_hop_by_hop_headers_are_removed_both_ways(gateway_factory, upstream_factory):
    def hop_upstream(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            body = up_mod.describe(req)
            conn.send(b"HTTP/1.1 200 OK\r\nConnection: X-Up-Secret\r\nX-Up-Secret: 1\r\n"
                      b"Keep-Alive: timeout=5\r\nUpgrade: foo\r\nProxy-Connection: keep-alive\r\n"
                      b"Trailer: X-T\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)

    up = upstream_factory(hop_upstream)
    port = free_port()
    gateway_factory(basic_config(port, [up.address]))
    c = Client(port)
    r = c.request("GET", "/", headers=[("Connection", "keep-alive, X-Secret"), ("X-Secret", "s"),
                                       ("Keep-Alive", "300"), ("TE", "trailers"), ("Trailer", "X-A"),
                                       ("Upgrade", "websocket"), ("Proxy-Connection", "keep-alive"),
                                       ("X-Kept", "yes")])
    assert r.status == 200
    names = {k.lower() for k, _ in seen(r)["headers"]}
    for gone in ("connection", "x-secret", "keep-alive", "te", "trailer", "upgrade", "proxy-connection"):
        assert gone not in names, gone
    assert "x-kept" in names
    for gone in ("x-up-secret", "keep-alive", "upgrade", "proxy-connection", "trailer"):
        assert r.header(gone) is None, gone


def test_forwarded_headers_are_replaced_at_the_edge(proxy):
    _, up, port = proxy
    c = Client(port)
    r = c.request("GET", "/", host="shop.example", headers=[
        ("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "evil"), ("Forwarded", "for=6.6.6.6"), ("X-Real-IP", "6.6.6.6")])
    s = seen(r)
    h = {}
    for k, v in s["headers"]:
        h.setdefault(k.lower(), []).append(v)
    assert h["x-forwarded-for"] == ["127.0.0.1"]
    assert h["x-forwarded-proto"] == ["http"]
    assert h["x-forwarded-host"] == ["shop.example"]
    assert "forwarded" not in h and "x-real-ip" not in h


def test_trusted_listener_appends_to_x_forwarded_for(gateway_factory, upstream_factory):
    up = upstream_factory()
    port = free_port()
    gateway_factory(basic_config(port, [up.address], listener_extra="    trust_forwarded: true\n"))
    c = Client(port)
    s = seen(c.request("GET", "/", headers=[("X-Forwarded-For", "10.1.1.1"),
                                            ("X-Forwarded-Proto", "https")]))
    h = {k.lower(): v for k, v in s["headers"]}
    assert h["x-forwarded-for"] == "10.1.1.1, 127.0.0.1"
    assert h["x-forwarded-proto"] == "https"


def test_request_id_is_generated_and_returned(proxy):
    _, up, port = proxy
    c = Client(port)
    r = c.request("GET", "/")
    rid = r.header("x-request-id")
    assert rid and len(rid) == 32
    assert dict((k.lower(), v) for k, v in seen(r)["headers"])["x-request-id"] == rid
    other = c.request("GET", "/").header("x-request-id")
    assert other != rid


def test_request_id_from_the_client_is_kept(proxy):
    _, up, port = proxy
    c = Client(port)
    r = c.request("GET", "/", headers=[("X-Request-Id", "abc-123")])
    assert r.header("x-request-id") == "abc-123"
    ids = [v for k, v in seen(r)["headers"] if k.lower() == "x-request-id"]
    assert ids == ["abc-123"]


def test_unknown_route_is_404(gateway_factory, upstream_factory):
    up = upstream_factory()
    port = free_port()
    cfg = basic_config(port, [up.address]) + "    match: { path_prefix: /api/ }\n"
    gateway_factory(cfg)
    c = Client(port)
    r = c.request("GET", "/other")
    assert r.status == 404 and r.header("x-request-id")
    assert c.request("GET", "/api/x").status == 200  # the connection is still usable
    assert up.all_received().count(b"GET /other") == 0


def test_weighted_round_robin_spreads_by_weight(gateway_factory, upstream_factory):
    a, b = upstream_factory(), upstream_factory()
    port = free_port()
    cfg = (f"workers: 1\nlisteners:\n  - {{ name: p, address: 127.0.0.1:{port} }}\n"
           f"clusters:\n  - name: app\n    endpoints:\n"
           f"      - {{ address: \"{a.address}\", weight: 3 }}\n"
           f"      - {{ address: \"{b.address}\", weight: 1 }}\n"
           f"routes:\n  - {{ name: all, cluster: app }}\n")
    gateway_factory(cfg)
    c = Client(port)
    for _ in range(40):
        assert c.request("GET", "/").status == 200
    count_a = a.all_received().count(b"GET / ")
    count_b = b.all_received().count(b"GET / ")
    assert (count_a, count_b) == (30, 10)


def test_keep_alive_survives_going_cold(proxy):
    """After 250 ms idle a connection frees its buffers and parks; the next request resumes it."""
    import time
    _, up, port = proxy
    c = Client(port)
    for i in range(3):
        assert seen(c.request("GET", f"/cold{i}"))["target"] == f"/cold{i}"
        time.sleep(0.4)
    # A pipelined pair arriving on a parked connection is still answered in order.
    c.send(b"GET /p1 HTTP/1.1\r\nHost: t\r\n\r\nGET /p2 HTTP/1.1\r\nHost: t\r\n\r\n")
    assert [seen(c.read_response())["target"] for _ in range(2)] == ["/p1", "/p2"]
