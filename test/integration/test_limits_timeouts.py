"""Size limits (414/431/413) and every timeout, downstream and upstream."""
import socket
import time

import pytest

from conftest import basic_config, free_port
from support.client import Client
from support import upstream as up_mod

LIMITS = """    limits: { request_line: 1KiB, header_bytes: 4KiB, headers: 20, body: 1MiB }
    timeouts: { header: 1s, body: 1s, idle: 1s, send: 1s }
"""


@pytest.fixture
def limited(gateway_factory, upstream_factory):
    up = upstream_factory()
    port = free_port()
    route = "    max_body: 64KiB\n"
    gateway_factory(basic_config(port, [up.address], listener_extra=LIMITS, route_extra=route))
    return up, port


def expect_refused(port, raw, status):
    c = Client(port)
    c.send(raw)
    r = c.read_response()
    assert r.status == status, (r.status, r.body)
    assert c.closed()
    return r


def test_long_request_line_is_414(limited):
    up, port = limited
    expect_refused(port, b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414)
    assert up.all_received() == b""


def test_large_head_is_431(limited):
    up, port = limited
    expect_refused(port, b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"b" * 5000 + b"\r\n\r\n", 431)
    assert up.all_received() == b""


def test_too_many_headers_is_431(limited):
    up, port = limited
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(30))
    expect_refused(port, b"GET / HTTP/1.1\r\nHost: t\r\n" + fields + b"\r\n", 431)


def test_content_length_over_route_limit_is_413_before_forwarding(limited):
    up, port = limited
    expect_refused(port, b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 70000\r\n\r\n", 413)
    assert up.all_received() == b""


def test_chunked_body_over_route_limit_is_413(limited):
    up, port = limited
    c = Client(port)
    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"8000\r\n" + b"x" * 0x8000 + b"\r\n"
    try:
        for _ in range(3):  # 96 KiB > 64 KiB
            c.send(chunk)
    except OSError:
        pass
    r = c.read_response()
    assert r.status == 413
    assert c.closed()


def test_body_within_limit_passes(limited):
    up, port = limited
    c = Client(port)
    assert c.request("POST", "/", body=b"x" * 60000).status == 200


def test_slowloris_head_gets_408_after_the_header_timeout(limited):
    up, port = limited
    c = Client(port)
    start = time.monotonic()
    c.send(b"GET / HTTP/1.1\r\n")
    # Keep trickling bytes: the deadline counts from the first byte, not from the last.
    for _ in range(3):
        time.sleep(0.3)
        try:
            c.send(b"X: y\r\n")
        except OSError:
            break
    r = c.read_response()
    elapsed = time.monotonic() - start
    assert r.status == 408
    assert 0.9 < elapsed < 3, elapsed
    assert c.closed()
    assert up.all_received() == b""


def test_stalled_body_gets_408(limited):
    up, port = limited
    c = Client(port)
    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nonly-part")
    r = c.read_response()
    assert r.status == 408
    assert c.closed()


def test_idle_keep_alive_connection_is_closed(limited):
    up, port = limited
    c = Client(port)
    assert c.request("GET", "/").status == 200
    start = time.monotonic()
    assert c.closed(timeout=5)
    assert 0.9 < time.monotonic() - start < 3


def test_silent_connection_is_closed(limited):
    up, port = limited
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(5)
    start = time.monotonic()
    assert s.recv(1) == b""
    assert time.monotonic() - start < 3


def big_upstream(conn):
    while True:
        req = conn.read_request()
        if req is None:
            return
        body = b"z" * (64 << 20)
        conn.send(up_mod.response(200, body))


def test_slow_reader_is_disconnected(gateway_factory, upstream_factory):
    up = upstream_factory(big_upstream)
    port = free_port()
    g = gateway_factory(basic_config(port, [up.address], listener_extra=LIMITS))
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    time.sleep(3)  # a client that never reads: sluice must give up after timeouts.send (1s)
    s.settimeout(5)
    got = 0
    reset = False
    start = time.monotonic()
    try:
        while True:
            data = s.recv(1 << 20)
            if not data:
                break
            got += len(data)
    except ConnectionResetError:
        reset = True
    # The connection was reset (queued bytes dropped), not left to trickle out.
    assert reset
    assert got < 64 << 20
    assert time.monotonic() - start < 2


def test_upstream_response_timeout_is_504(gateway_factory, upstream_factory):
    def silent(conn):
        conn.read_request()
        time.sleep(5)

    up = upstream_factory(silent)
    port = free_port()
    gateway_factory(basic_config(port, [up.address], route_extra="    timeout: 500ms\n"))
    c = Client(port)
    start = time.monotonic()
    r = c.request("GET", "/")
    assert r.status == 504
    assert 0.4 < time.monotonic() - start < 2
    assert c.request("GET", "/").status == 504  # the client connection is still usable


def test_upstream_connect_timeout_is_504(gateway_factory):
    # A listener whose accept queue is full and never drained: further SYNs go unanswered.
    blackhole = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(0)
    addr = blackhole.getsockname()
    fillers = []
    for _ in range(8):
        f = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        f.setblocking(False)
        try:
            f.connect(addr)
        except BlockingIOError:
            pass
        fillers.append(f)
    time.sleep(0.2)
    port = free_port()
    gateway_factory(basic_config(port, [f"127.0.0.1:{addr[1]}"],
                                 cluster_extra="    pool: { connect_timeout: 300ms }\n"))
    c = Client(port)
    start = time.monotonic()
    r = c.request("GET", "/")
    elapsed = time.monotonic() - start
    for f in fillers:
        f.close()
    blackhole.close()
    assert r.status == 504, r.body
    assert elapsed < 3
