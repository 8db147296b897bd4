"""Upstreams that are down, slow, broken or cut short."""
import socket
import time

from conftest import basic_config, free_port
from support.client import Client
from support import upstream as up_mod


def single(gateway_factory, upstream_factory, handler, **kw):
    up = upstream_factory(handler)
    port = free_port()
    gateway_factory(basic_config(port, [up.address], **kw))
    return up, port


def test_upstream_down_is_502(gateway_factory):
    dead = free_port()  # nothing listens there
    port = free_port()
    gateway_factory(basic_config(port, [f"127.0.0.1:{dead}"]))
    c = Client(port)
    r = c.request("GET", "/")
    assert r.status == 502 and b"connect" in r.body
    assert c.request("GET", "/").status == 502  # still serving, same connection


def test_a_chunked_body_left_unread_by_a_failure_is_never_read_as_a_request(gateway_factory):
    # The upstream is down, so the body is never read: its bytes, shaped as a request, must not
    # be answered as one. The connection closes after the 502 instead.
    dead = free_port()
    port = free_port()
    gateway_factory(basic_config(port, [f"127.0.0.1:{dead}"]))
    c = Client(port)
    c.send(b"POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"GET /smuggled HTTP/1.1\r\nHost: test\r\n\r\n")
    r = c.read_response()
    assert r.status == 502 and r.header("connection") == "close"
    assert c.closed()


def test_connect_failure_retries_on_another_host(gateway_factory, upstream_factory):
    up = upstream_factory()
    dead = free_port()
    port = free_port()
    gateway_factory(basic_config(port, [f"127.0.0.1:{dead}", up.address]))
    c = Client(port)
    for _ in range(10):
        assert c.request("GET", "/").status == 200


def garbage(conn):
    conn.read_request()
    conn.send(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")


def test_garbage_response_is_502_and_the_connection_is_not_reused(gateway_factory, upstream_factory):
    up, port = single(gateway_factory, upstream_factory, garbage)
    c = Client(port)
    assert c.request("GET", "/").status == 502
    assert c.request("GET", "/").status == 502
    assert up.connections == 2  # a fresh upstream connection for each attempt


def bad_framing(conn):
    conn.read_request()
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello")


def test_bad_framing_is_502(gateway_factory, upstream_factory):
    up, port = single(gateway_factory, upstream_factory, bad_framing)
    assert Client(port).request("GET", "/").status == 502


def test_close_without_response_is_502(gateway_factory, upstream_factory):
    up, port = single(gateway_factory, upstream_factory, lambda conn: conn.read_request())
    assert Client(port).request("GET", "/").status == 502


def truncated_length(conn):
    conn.read_request()
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"a" * 5000)


def test_truncated_length_body_closes_the_client_connection(gateway_factory, upstream_factory):
    up, port = single(gateway_factory, upstream_factory, truncated_length)
    c = Client(port)
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    r = c.read_response()
    assert r.status == 200
    assert not r.complete and len(r.body) == 5000


def truncated_chunked(conn):
    conn.read_request()
    conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")


def test_truncated_chunked_body_is_never_terminated_cleanly(gateway_factory, upstream_factory):
    up, port = single(gateway_factory, upstream_factory, truncated_chunked)
    c = Client(port)
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    r = c.read_response()
    assert r.status == 200
    assert not r.complete  # no 0\r\n\r\n: the client knows the body is incomplete
    assert r.body == b"hello"


def interim_then_final(conn):
    while True:
        req = conn.read_request()
        if req is None:
            return
        conn.send(b"HTTP/1.1 100 Continue\r\n\r\n"
                  b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
                  + up_mod.response(200, b"final"))


def test_1xx_before_the_final_response(gateway_factory, upstream_factory):
    up, port = single(gateway_factory, upstream_factory, interim_then_final)
    c = Client(port)
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    first = c.read_response()
    assert first.status == 103 and first.header("link")  # 103 forwarded, 100 dropped
    final = c.read_response()
    assert final.status == 200 and final.body == b"final"
    # HTTP/1.0 clients never see interim responses.
    c10 = Client(port)
    c10.send(b"GET / HTTP/1.0\r\n\r\n")
    assert c10.read_response().status == 200


def close_delimited(conn):
    conn.read_request()
    conn.send(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-eof-body")


def test_close_delimited_body_is_chunked_for_the_client(gateway_factory, upstream_factory):
    up, port = single(gateway_factory, upstream_factory, close_delimited)
    c = Client(port)
    r = c.request("GET", "/")
    assert r.status == 200 and r.body == b"until-eof-body" and r.complete
    assert r.header("transfer-encoding") == "chunked"
    assert c.request("GET", "/").status == 200  # the client keeps its connection


def test_stale_pooled_connection_is_replaced_transparently(gateway_factory, upstream_factory):
    def one_then_close(conn):
        req = conn.read_request()
        conn.send(up_mod.response(200, b"ok"))
        time.sleep(0.05)
        # close without Connection: close, as servers with short keep-alive timeouts do

    up = upstream_factory(one_then_close)
    port = free_port()
    gateway_factory(basic_config(port, [up.address]))
    c = Client(port)
    for _ in range(5):
        assert c.request("GET", "/").status == 200
        time.sleep(0.1)


def test_slow_upstream_within_timeout_is_fine(gateway_factory, upstream_factory):
    def slow(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            time.sleep(0.3)
            conn.send(up_mod.response(200, b"slow"))

    up, port = single(gateway_factory, upstream_factory, slow, route_extra="    timeout: 2s\n")
    assert Client(port).request("GET", "/").body == b"slow"


def test_pool_limit_makes_requests_wait_then_503(gateway_factory, upstream_factory):
    def slow(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            time.sleep(1.0)
            conn.send(up_mod.response(200, b"x"))

    up = upstream_factory(slow)
    port = free_port()
    gateway_factory(basic_config(port, [up.address],
                                 cluster_extra="    pool: { max_connections: 1, max_wait: 200ms }\n"))
    first = Client(port)
    first.send(b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\n")
    time.sleep(0.2)
    second = Client(port)
    r = second.request("GET", "/2")
    assert r.status == 503 and r.header("retry-after") == "1"
    assert first.read_response().status == 200
    assert up.connections == 1
