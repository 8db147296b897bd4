"""HTTP/1.1 conformance as a hostile or old client tries it: empty lines before a request
(RFC 9112 2.2), request lines without a version, absolute-form targets (RFC 9112 3.2.2)."""
import json
import select
import time

import pytest

from conftest import basic_config, free_port
from support.client import Client
from support.upstream import Upstream, echo

TIMEOUTS = "    timeouts: { header: 1s, idle: 5s }\n    limits: { header_bytes: 4KiB, request_line: 1KiB }\n"


@pytest.fixture(scope="module")
def gateway(sluice_bin):
    from conftest import Gateway
    up = Upstream(echo)
    port = free_port()
    g = Gateway(sluice_bin, basic_config(port, [up.address], listener_extra=TIMEOUTS))
    yield up, port
    g.stop()
    up.stop()


def seen(resp):
    return json.loads(resp.body)


@pytest.mark.parametrize("blank", [b"\r\n", b"\n", b"\r\n\r\n\n"])
def test_empty_lines_before_the_request_line_are_ignored(gateway, blank):
    _, port = gateway
    c = Client(port)
    c.send(blank + b"GET /after-blank HTTP/1.1\r\nHost: t\r\n\r\n")
    r = c.read_response()
    assert r.status == 200, r.body
    assert seen(r)["target"] == "/after-blank"
    # The connection stays usable.
    assert c.request(path="/second").status == 200


def test_empty_lines_in_their_own_packet_before_a_request(gateway):
    _, port = gateway
    c = Client(port)
    c.send(b"\r\n")
    time.sleep(0.1)
    c.send(b"GET /late HTTP/1.1\r\nHost: t\r\n\r\n")
    r = c.read_response()
    assert r.status == 200 and seen(r)["target"] == "/late"


def test_stray_crlf_after_a_body_keeps_the_connection_idle(gateway):
    # Old clients send CRLF after a POST body. It must not start a request head (which the 1 s
    # header timeout would end with a 408): the connection is idle until the next request.
    _, port = gateway
    c = Client(port)
    c.send(b"POST /form HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc\r\n")
    r = c.read_response()
    assert r.status == 200 and seen(r)["body"] == "abc"
    time.sleep(1.5)
    r = c.request(path="/next")
    assert r.status == 200 and seen(r)["target"] == "/next"


def test_endless_empty_lines_are_bounded_by_the_head_limit(gateway):
    up, port = gateway
    c = Client(port)
    c.send(b"\r\n" * 4096)  # 8 KiB against a 4 KiB head limit
    r = c.read_response()
    assert r.status == 431
    assert c.closed()


def test_dripped_empty_lines_do_not_hold_a_connection(gateway):
    # Empty lines never restart the wait for a request: the connection ends by the header
    # timeout (1 s here) however the client drips them.
    _, port = gateway
    c = Client(port)
    start = time.monotonic()
    c.sock.setblocking(False)
    ended = False
    while time.monotonic() - start < 4 and not ended:
        try:
            c.sock.send(b"\r\n")
        except OSError:
            break
        ready, _, _ = select.select([c.sock], [], [], 0.1)
        if ready:
            try:
                while c.sock.recv(65536):
                    pass
            except BlockingIOError:
                continue
            except OSError:
                pass
            ended = True
    assert time.monotonic() - start < 3


@pytest.mark.parametrize("line,status", [
    (b"GET /\r\n", 400),                  # HTTP/0.9: no version
    (b"GET / HTTP/2.0\r\n", 400),
    (b"GET  / HTTP/1.1\r\n", 400),        # two spaces
    (b"GET / HTTP/1.1 \r\n", 400),        # trailing space
    (b"\r\nGET /\r\n", 400),
])
def test_complete_malformed_request_line_is_refused_at_once(gateway, line, status):
    up, port = gateway
    before = up.all_received()
    c = Client(port)
    start = time.monotonic()
    c.send(line)
    r = c.read_response()
    assert r.status == status
    assert r.body  # a short reason
    assert time.monotonic() - start < 0.5, "must not wait for the header timeout"
    assert r.header("connection", "").lower() == "close"
    assert c.closed()
    assert up.all_received() == before


@pytest.fixture(scope="module")
def by_host(sluice_bin):
    """Two clusters: requests for a.example go to one, everything else to the other."""
    from conftest import Gateway
    a, other = Upstream(echo), Upstream(echo)
    port = free_port()
    config = f"""workers: 1
listeners:
  - name: public
    address: 127.0.0.1:{port}
clusters:
  - name: a
    endpoints: [ {{ address: "{a.address}" }} ]
  - name: other
    endpoints: [ {{ address: "{other.address}" }} ]
routes:
  - name: a
    match: {{ host: a.example }}
    cluster: a
  - name: rest
    cluster: other
"""
    g = Gateway(sluice_bin, config)
    yield a, other, port
    g.stop()
    a.stop()
    other.stop()


def test_absolute_form_authority_routes_and_is_forwarded_as_host(by_host):
    a, other, port = by_host
    c = Client(port)
    r = c.request(path="http://a.example:8080/p?q=1", host="elsewhere.example")
    assert r.status == 200
    req = seen(r)
    assert req["target"] == "/p?q=1"  # origin-form upstream
    hosts = [v for k, v in req["headers"] if k.lower() == "host"]
    assert hosts == ["a.example:8080"]
    forwarded_host = [v for k, v in req["headers"] if k.lower() == "x-forwarded-host"]
    assert forwarded_host == ["a.example:8080"]
    assert a.all_received() and b"elsewhere" not in a.all_received()


def test_absolute_form_without_host_header_is_400_in_http11(by_host):
    a, other, port = by_host
    c = Client(port)
    c.send(b"GET http://A.Example/nohost11 HTTP/1.1\r\n\r\n")
    r = c.read_response()
    assert r.status == 400  # RFC 9112 3.2: a MUST, absolute-form or not
    assert b"/nohost11" not in a.all_received() + other.all_received()


def test_absolute_form_without_host_header_in_http10(by_host):
    a, other, port = by_host
    c = Client(port)
    c.send(b"GET http://A.Example/nohost HTTP/1.0\r\n\r\n")
    r = c.read_response()
    assert r.status == 200
    req = seen(r)
    assert req["target"] == "/nohost"
    assert [v for k, v in req["headers"] if k.lower() == "host"] == ["A.Example"]


def test_absolute_form_for_another_host_goes_elsewhere(by_host):
    a, other, port = by_host
    c = Client(port)
    r = c.request(path="https://b.example/x", host="a.example")
    assert r.status == 200
    req = seen(r)
    assert [v for k, v in req["headers"] if k.lower() == "host"] == ["b.example"]
    assert b"GET /x HTTP/1.1" in other.all_received()


@pytest.mark.parametrize("target", [b"http://user@a.example/", b"http://u:p@a.example/x",
                                    b"ftp://a.example/x", b"file:///etc/passwd"])
def test_absolute_form_with_userinfo_or_another_scheme_is_400(by_host, target):
    a, other, port = by_host
    before = a.all_received() + other.all_received()
    c = Client(port)
    c.send(b"GET " + target + b" HTTP/1.1\r\nHost: a.example\r\n\r\n")
    r = c.read_response()
    assert r.status == 400
    assert c.closed()
    assert a.all_received() + other.all_received() == before
