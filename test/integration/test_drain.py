"""Graceful drain on SIGTERM/SIGINT: nothing accepted is lost."""
import signal
import threading
import time
import urllib.request

from conftest import basic_config, free_port
from support.client import Client
from support import upstream as up_mod


def slow_upstream(delay):
    def handler(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            time.sleep(delay)
            conn.send(up_mod.response(200, b"done:" + req.target.encode()))
    return handler


def test_sigterm_finishes_in_flight_requests_then_exits_0(gateway_factory, upstream_factory):
    up = upstream_factory(slow_upstream(0.8))
    port, admin = free_port(), free_port()
    g = gateway_factory(basic_config(port, [up.address], admin_port=admin, workers=2))
    idle = Client(port)
    assert idle.request("GET", "/warm").status == 200  # an idle keep-alive connection

    clients = [Client(port) for _ in range(8)]
    for i, c in enumerate(clients):
        c.send(f"GET /inflight{i} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    time.sleep(0.3)  # all eight are now waiting on the upstream
    g.signal(signal.SIGTERM)
    time.sleep(0.1)
    # Draining: not ready any more, still alive.
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{admin}/ready", timeout=2)
        ready_status = 200
    except urllib.error.HTTPError as e:
        ready_status = e.code
    assert ready_status == 503
    assert idle.closed(timeout=2), "idle keep-alive connections close at once"

    for i, c in enumerate(clients):
        r = c.read_response()
        assert r.status == 200 and r.body == f"done:/inflight{i}".encode()
        assert r.header("connection").lower() == "close"
    assert g.wait(timeout=10) == 0


def test_sigint_with_nothing_in_flight_exits_quickly(gateway_factory, upstream_factory):
    up = upstream_factory()
    port = free_port()
    g = gateway_factory(basic_config(port, [up.address]))
    assert Client(port).request("GET", "/").status == 200
    start = time.monotonic()
    g.signal(signal.SIGINT)
    assert g.wait(timeout=10) == 0
    assert time.monotonic() - start < 2


def test_drain_timeout_bounds_the_wait(gateway_factory, upstream_factory):
    up = upstream_factory(slow_upstream(5))
    port = free_port()
    g = gateway_factory(basic_config(port, [up.address], top_extra="drain_timeout: 500ms\n",
                                     route_extra="    timeout: 10s\n"))
    c = Client(port)
    c.send(b"GET /stuck HTTP/1.1\r\nHost: t\r\n\r\n")
    time.sleep(0.2)
    start = time.monotonic()
    g.signal(signal.SIGTERM)
    # The stuck request is cut: the exit code and the log say so.
    assert g.wait(timeout=10) == 1
    assert time.monotonic() - start < 2
    assert any("drain cut 1 request(s)" in line for line in g.stderr_lines), g.stderr_lines


def test_requests_during_drain_on_open_connections_get_connection_close(gateway_factory, upstream_factory):
    up = upstream_factory(slow_upstream(0.5))
    port = free_port()
    g = gateway_factory(basic_config(port, [up.address]))
    c = Client(port)
    c.send(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n")
    time.sleep(0.1)
    g.signal(signal.SIGTERM)
    c.send(b"GET /b HTTP/1.1\r\nHost: t\r\n\r\n")  # pipelined behind the in-flight one
    r1 = c.read_response()
    assert r1.status == 200
    # The second request either got served (it was already buffered) or the connection closed
    # after the first response, which said Connection: close; never a half answer.
    assert r1.header("connection").lower() == "close"
    assert g.wait(timeout=10) == 0


def ready(admin):
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{admin}/ready", timeout=2).status
    except urllib.error.HTTPError as e:
        return e.code


def test_accept_grace_keeps_serving_while_ready_says_503(gateway_factory, upstream_factory):
    up = upstream_factory()
    port, admin = free_port(), free_port()
    g = gateway_factory(basic_config(port, [up.address], admin_port=admin,
                                     top_extra="drain_accept_grace: 1s\n"))
    g.signal(signal.SIGTERM)
    time.sleep(0.05)
    assert ready(admin) == 503  # load balancers are told at once...
    # ...while a new connection 50 ms (and 500 ms) after the signal is still served.
    for _ in range(2):
        c = Client(port)
        assert c.request("GET", "/late").status == 200
        c.close()
        time.sleep(0.45)
    start = time.monotonic()
    assert g.wait(timeout=10) == 0
    assert time.monotonic() - start < 1.5


def test_a_second_signal_stops_at_once_and_cut_work_exits_non_zero(gateway_factory,
                                                                    upstream_factory):
    up = upstream_factory(slow_upstream(5))
    port = free_port()
    g = gateway_factory(basic_config(port, [up.address], top_extra="drain_accept_grace: 10s\n",
                                     route_extra="    timeout: 10s\n"))
    c = Client(port)
    c.send(b"GET /stuck HTTP/1.1\r\nHost: t\r\n\r\n")
    time.sleep(0.2)
    g.signal(signal.SIGTERM)
    time.sleep(0.1)
    start = time.monotonic()
    g.signal(signal.SIGTERM)  # neither the grace nor the 30 s drain timeout is waited for
    assert g.wait(timeout=10) == 1
    assert time.monotonic() - start < 1
    assert any("drain cut 1 request(s)" in line and "second signal" in line
               for line in g.stderr_lines), g.stderr_lines
