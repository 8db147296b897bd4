"""A client that gives up cancels its request (route client_abort: cancel, the default): the
upstream connection is closed, queued requests never reach the upstream, retries stop; with
client_abort: finish the upstream sees the request through."""
import json
import signal
import socket
import threading
import time

from conftest import basic_config, free_port
from support.client import Client
from support import upstream as up_mod
from test_admin import get, metric, wait_metric


class Watched:
    """An upstream handler that takes `delay` seconds per request while watching its connection:
    it records when sluice closes the connection before the answer is sent."""

    def __init__(self, delay, status=200, headers=()):
        self.delay = delay
        self.status = status
        self.headers = headers
        self.requests = 0
        self.cut = []  # monotonic times at which sluice closed a connection mid-request
        self.answered = 0
        self.lock = threading.Lock()

    def __call__(self, conn):
        while conn.read_request() is not None:
            with self.lock:
                self.requests += 1
            conn.sock.settimeout(self.delay)
            try:
                closed = conn.sock.recv(1) == b""
            except socket.timeout:
                closed = False
            except OSError:
                closed = True
            conn.sock.settimeout(None)
            if closed:
                with self.lock:
                    self.cut.append(time.monotonic())
                return
            # Counted before the send: a client that has the answer may look at once.
            with self.lock:
                self.answered += 1
            conn.send(up_mod.response(self.status, b"done", list(self.headers)))


def start(gateway_factory, upstream_factory, handler, route_extra="", tmp_path=None):
    up = upstream_factory(handler)
    port, admin = free_port(), free_port()
    top = ""
    if tmp_path is not None:
        top = (f"access_log: {{ enabled: true, path: \"{tmp_path / 'access.log'}\", "
               "fields: [path, status, error] }\n")
    g = gateway_factory(basic_config(port, [up.address], admin_port=admin,
                                     route_extra=route_extra, top_extra=top))
    return g, port, admin


def send_and_leave(port, after, path="/x", half_close=False):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    time.sleep(after)
    left = time.monotonic()
    if half_close:
        s.shutdown(socket.SHUT_WR)
    else:
        s.close()
    return left, s


def wait_until(cond, timeout=5):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_client_that_leaves_closes_the_upstream_request(gateway_factory, upstream_factory,
                                                          tmp_path):
    h = Watched(delay=3)
    g, port, admin = start(gateway_factory, upstream_factory, h, tmp_path=tmp_path)
    left, _ = send_and_leave(port, 0.3)
    assert wait_until(lambda: h.cut, timeout=2), "the upstream request ran on after the client left"
    assert h.cut[0] - left < 0.5
    assert h.answered == 0
    assert wait_metric(admin, "sluice_client_aborts_total", 1, phase="awaiting_response") == 1
    g.signal(signal.SIGTERM)
    g.wait()
    lines = [json.loads(l) for l in (tmp_path / "access.log").read_text().splitlines()]
    gone = [l for l in lines if l["path"] == "/x"]
    assert gone == [{"path": "/x", "status": 499, "error": "client closed the connection"}]


def test_finish_lets_the_upstream_see_the_request_through(gateway_factory, upstream_factory):
    h = Watched(delay=0.8)
    _, port, admin = start(gateway_factory, upstream_factory, h,
                           route_extra="    client_abort: finish\n")
    send_and_leave(port, 0.2)
    assert wait_until(lambda: h.answered == 1, timeout=3)
    assert h.cut == []
    assert wait_metric(admin, "sluice_client_aborts_total", 0, timeout=0.5,
                       phase="awaiting_response") == 0


def test_a_queued_request_whose_client_left_never_reaches_the_upstream(gateway_factory,
                                                                       upstream_factory):
    h = Watched(delay=1.0)
    _, port, admin = start(gateway_factory, upstream_factory, h,
                           route_extra="    concurrency: { max: 1, queue: 4, queue_timeout: 5s }\n")
    first = Client(port)
    first.send(b"GET /first HTTP/1.1\r\nHost: t\r\n\r\n")
    assert wait_until(lambda: h.requests == 1)
    send_and_leave(port, 0.2, path="/queued")
    assert wait_metric(admin, "sluice_client_aborts_total", 1, phase="queued") == 1
    assert first.read_response().status == 200
    # Its slot went back: a new request is served at once, and the upstream saw two in all.
    assert Client(port).request("GET", "/third").status == 200
    assert h.requests == 2
    text = get(admin, "/metrics")[2]
    assert metric(text, "sluice_guard_requests_total", route="all", guard="concurrency",
                  decision="shed") in (0, None)


def test_a_client_that_leaves_during_a_backoff_is_not_retried(gateway_factory, upstream_factory):
    h = Watched(delay=0.01, status=503, headers=[("Retry-After", "1")])
    _, port, admin = start(
        gateway_factory, upstream_factory, h,
        route_extra="    retry: { attempts: 3, on: [503], backoff_base: 1s, backoff_max: 2s }\n")
    send_and_leave(port, 0.4)
    assert wait_metric(admin, "sluice_client_aborts_total", 1, phase="backoff") == 1
    time.sleep(1.5)  # past the backoff: no second try was made
    assert h.requests == 1


def test_a_half_close_after_pipelined_requests_still_gets_every_answer(gateway_factory,
                                                                       upstream_factory):
    h = Watched(delay=0.3)
    _, port, admin = start(gateway_factory, upstream_factory, h)
    c = Client(port)
    c.send(b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\nGET /2 HTTP/1.1\r\nHost: t\r\n\r\n")
    c.sock.shutdown(socket.SHUT_WR)
    assert c.read_response().status == 200
    assert c.read_response().status == 200
    assert h.cut == [] and h.answered == 2


def test_a_half_close_alone_counts_as_leaving(gateway_factory, upstream_factory):
    """As nginx: a client cannot be told from one that left (docs/configuration.md)."""
    h = Watched(delay=3)
    _, port, _ = start(gateway_factory, upstream_factory, h)
    _, s = send_and_leave(port, 0.2, half_close=True)
    assert wait_until(lambda: h.cut, timeout=2)
    s.settimeout(2)
    assert s.recv(100) == b""  # closed without an answer
    s.close()
