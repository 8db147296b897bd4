"""Slow-drip defences (listener and route slow_client): a request body dripped slower than the
minimum rate, or for longer than the total allowed, gets 408 and is never completed upstream; a
client reading a response too slowly is disconnected, and the upstream connection with it.
Normal transfers at full speed are never cut. Each gateway here uses short windows so that each
test takes a few seconds."""
import socket
import threading
import time

import pytest

from conftest import basic_config, free_port
from support import upstream as up_mod
from support.client import Client
from test_admin import wait_metric

# Tight limits for the tests: 64 KiB/s over 500 ms windows (a 32 KiB quota), first window 1 s.
STRICT = "    slow_client: { body_min_rate: 64KiB, send_min_rate: 256KiB, window: 500ms, grace: 500ms }\n"


def counting_sink(record):
    """An upstream that reads each request body without keeping it and answers its length;
    `record` collects (bytes read, whether the body arrived whole)."""
    def handler(conn):
        while True:
            try:
                req = conn.read_request(keep_body=False)
            except (OSError, ValueError):
                record.append(("cut", None))
                return
            if req is None:
                return
            record.append(("whole", req.body_length))
            conn.send(up_mod.response(200, str(req.body_length).encode()))
    return handler


def big_response(size, record):
    def handler(conn):
        while conn.read_request() is not None:
            try:
                conn.send(up_mod.response(200, b"z" * size))
                record.append("sent")
            except OSError:
                record.append("closed")  # the gateway dropped the upstream connection
                return
    return handler


def start(gateway_factory, upstream_factory, handler, listener_extra="", route_extra=""):
    up = upstream_factory(handler)
    port, admin = free_port(), free_port()
    gateway_factory(basic_config(port, [up.address], admin_port=admin,
                                 listener_extra="    timeouts: { body: 30s, send: 30s }\n" + listener_extra,
                                 route_extra=route_extra))
    return up, port, admin


def drip(c, total, every, step=1, limit=10.0):
    """Sends `total` bytes `step` at a time, one step per `every` seconds, until the gateway
    answers or closes; returns how long it dripped."""
    start = time.monotonic()
    c.sock.settimeout(every)
    sent = 0
    while sent < total and time.monotonic() - start < limit:
        try:
            c.sock.send(b"x" * step)
        except OSError:
            break
        sent += step
        try:
            data = c.sock.recv(65536)
            if not data:
                break
            c.buf += data
            break  # an answer arrived
        except socket.timeout:
            pass
        except OSError:
            break
    return time.monotonic() - start


def test_a_dripped_body_gets_408_too_slow(gateway_factory, upstream_factory):
    # The listener is lax (defaults); the route's slow_client overrides it.
    record = []
    up, port, admin = start(gateway_factory, upstream_factory, counting_sink(record),
                            route_extra=STRICT)
    c = Client(port)
    c.send(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n")
    took = drip(c, 100000, 0.05, step=10)  # 200 B/s
    r = c.read_response()
    assert r.status == 408 and b"too slow" in r.body
    assert r.header("connection", "").lower() == "close"
    assert took < 3
    assert c.closed()
    assert wait_metric(admin, "sluice_rejected_requests_total", 1, reason="body_too_slow") == 1
    # The upstream never got a whole body: its connection was closed under the partial one.
    deadline = time.monotonic() + 3
    while not record and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ("whole", 100000) not in record


def test_a_body_past_its_total_gets_408(gateway_factory, upstream_factory):
    record = []
    extra = "    slow_client: { body_total: 1s, body_min_rate: 0B }\n"
    up, port, admin = start(gateway_factory, upstream_factory, counting_sink(record),
                            listener_extra=extra)
    c = Client(port)
    c.send(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n")
    took = drip(c, 1000000, 0.1, step=1000)  # 10 KB/s: any rate is allowed, not any time
    r = c.read_response()
    assert r.status == 408 and b"took too long" in r.body
    assert 0.9 < took < 3
    assert wait_metric(admin, "sluice_rejected_requests_total", 1, reason="body_deadline") == 1


def test_fast_large_transfers_are_not_cut(gateway_factory, upstream_factory):
    size = 8 << 20
    record = []

    def handler(conn):
        while True:
            req = conn.read_request(keep_body=False)
            if req is None:
                return
            record.append(req.body_length)
            conn.send(up_mod.response(200, b"y" * size))

    extra = ("    slow_client: { body_min_rate: 64KiB, send_min_rate: 256KiB, window: 500ms, "
             "grace: 500ms, body_total: 5s, send_total: 5s }\n")
    up, port, admin = start(gateway_factory, upstream_factory, handler, listener_extra=extra)
    c = Client(port)
    for _ in range(2):  # the pace starts again with each request
        r = c.request("POST", "/upload", body=b"u" * size)
        assert r.status == 200 and len(r.body) == size
    assert record == [size, size]


def slow_reader(port, read_every, chunk=1024, limit=5.0):
    """Asks for a large response and reads `chunk` bytes per `read_every` seconds; returns (bytes
    read, seconds until the gateway closed or reset the connection, or None)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
    start = time.monotonic()
    got = 0
    s.settimeout(2)
    try:
        while time.monotonic() - start < limit:
            data = s.recv(chunk)
            if not data:
                return got, time.monotonic() - start
            got += len(data)
            time.sleep(read_every)
    except (ConnectionResetError, socket.timeout):
        return got, time.monotonic() - start
    finally:
        s.close()
    return got, None


def test_a_slow_reader_is_disconnected_and_counted(gateway_factory, upstream_factory):
    record = []
    up, port, admin = start(gateway_factory, upstream_factory, big_response(64 << 20, record),
                            listener_extra=STRICT)
    got, ended = slow_reader(port, 0.1)  # about 10 KB/s against a 256 KiB/s minimum
    assert ended is not None and ended < 4, (got, ended)
    assert got < 64 << 20
    assert wait_metric(admin, "sluice_slow_client_disconnects_total", 1, reason="too_slow") == 1
    # The upstream connection feeding it was closed too.
    deadline = time.monotonic() + 5
    while "closed" not in record and time.monotonic() < deadline:
        time.sleep(0.05)
    assert record == ["closed"]


def test_a_reader_past_its_total_is_disconnected(gateway_factory, upstream_factory):
    record = []
    extra = "    slow_client: { send_total: 1s, send_min_rate: 0B }\n"
    up, port, admin = start(gateway_factory, upstream_factory, big_response(64 << 20, record),
                            listener_extra=extra)
    got, ended = slow_reader(port, 0.01, chunk=4096)  # ~400 KB/s: any rate, not any time
    assert ended is not None and ended < 4, (got, ended)
    assert wait_metric(admin, "sluice_slow_client_disconnects_total", 1, reason="deadline") == 1


def test_a_reload_applies_new_limits(gateway_factory, upstream_factory):
    from test_reload import reload, rewrite
    record = []
    up = upstream_factory(counting_sink(record))
    port, admin = free_port(), free_port()
    g = gateway_factory(basic_config(port, [up.address], admin_port=admin))
    c = Client(port)  # a keep-alive connection that lives across the reload
    assert c.request("POST", "/before", body=b"b" * 10).status == 200
    rewrite(g, basic_config(port, [up.address], admin_port=admin, route_extra=STRICT))
    reload(admin)
    c.send(b"POST /after HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n")
    took = drip(c, 100000, 0.05, step=10)
    r = c.read_response()
    assert r.status == 408 and b"too slow" in r.body
    assert took < 3
