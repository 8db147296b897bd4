"""Rewrites and route actions against a real upstream that echoes what it received: request and
response header edits with their variables, path prefix and Host rewrites, redirects and direct
responses (with the route's guards still in front of them)."""
import json

from conftest import free_port
from support.client import Client
from support.upstream import echo, response
from test_admin import wait_metric
from test_reload import config

ROUTES = [
    "  - name: api\n"
    "    match: { path_prefix: /api/v1/ }\n"
    "    cluster: app\n"
    "    rewrite: { path_prefix: /, host: backend.internal }\n"
    "    request_headers:\n"
    "      remove: [x-debug]\n"
    "      set: { x-env: \"gray\" }\n"
    "      add: { x-via: \"${route}/${cluster} for ${client_ip} ($$) ${request_id}\" }\n"
    "    response_headers: { remove: [x-secret], set: { x-served-by: \"${cluster}\" } }\n",
    "  - name: old\n"
    "    match: { path_prefix: /old/ }\n"
    "    redirect: { status: 308, path_prefix: /new/ }\n",
    "  - name: secure\n"
    "    match: { path: /login }\n"
    "    redirect: { scheme: https, strip_query: true }\n"
    "    response_headers: { set: { cache-control: no-store } }\n",
    "  - name: ping\n"
    "    match: { path: /ping }\n"
    "    direct_response:\n"
    "      status: 200\n"
    "      body: \"pong\\n\"\n"
    "      headers: { x-request: \"${request_id}\" }\n"
    "    rate_limit: { rate: 3/m, burst: 3 }\n",
    "  - name: teapot\n"
    "    match: { path: /tea }\n"
    "    direct_response: { status: 418, body: \"{}\", headers: { content-type: application/json } }\n",
    "  - name: rest\n"
    "    cluster: app\n",
]


def echo_with_secret(conn):
    while True:
        req = conn.read_request()
        if req is None:
            return
        body = json.dumps({"target": req.target, "headers": req.headers}).encode()
        conn.send(response(200, body, [("X-Secret", "s3cret"), ("X-Served-By", "upstream")]))


def start(gateway_factory, upstream_factory):
    up = upstream_factory(echo_with_secret)
    port, admin = free_port(), free_port()
    gateway_factory(config(port, admin, {"app": [f"\"{up.address}\""]}, ROUTES))
    return port, admin


def header(headers, name):
    got = [v for k, v in headers if k.lower() == name]
    return got[0] if len(got) == 1 else got


def test_header_edits_and_rewrites_reach_the_upstream_and_the_client(gateway_factory,
                                                                     upstream_factory):
    port, _ = start(gateway_factory, upstream_factory)
    c = Client(port)
    r = c.request("GET", "/api/v1/users?id=7", host="shop.example",
                  headers=[("X-Debug", "1"), ("X-Env", "prod"), ("X-Env", "dev"),
                           ("X-Request-Id", "rid-42")])
    assert r.status == 200
    seen = json.loads(r.body)
    assert seen["target"] == "/users?id=7"
    sent = [(k.lower(), v) for k, v in seen["headers"]]
    assert header(sent, "host") == "backend.internal"
    assert header(sent, "x-forwarded-host") == "shop.example"
    assert header(sent, "x-debug") == []
    assert header(sent, "x-env") == "gray"  # set replaces both
    assert header(sent, "x-via") == "api/app for 127.0.0.1 ($) rid-42"
    assert r.header("x-secret") is None
    assert r.header_all("x-served-by") == ["app"]
    # Another route: nothing changed.
    r = c.request("GET", "/other?x", headers=[("X-Debug", "1")])
    seen = json.loads(r.body)
    assert seen["target"] == "/other?x"
    assert header([(k.lower(), v) for k, v in seen["headers"]], "x-debug") == "1"
    assert r.header("x-secret") == "s3cret"


def test_redirects_and_direct_responses_answer_without_an_upstream(gateway_factory,
                                                                   upstream_factory):
    port, admin = start(gateway_factory, upstream_factory)
    c = Client(port)
    cases = [
        ("/old/a/b?x=1", "example.com:8080", 308, "/new/a/b?x=1"),
        ("/login?next=/x", "example.com:8080", 301, "https://example.com/login"),
    ]
    for target, host, status, location in cases:
        r = c.request("GET", target, host=host)
        assert (r.status, r.header("location")) == (status, location), target
        assert r.body == b""
    assert c.request("GET", "/login", host="h").header("cache-control") == "no-store"
    r = c.request("GET", "/ping", headers=[("X-Request-Id", "abc")])
    assert (r.status, r.body, r.header("x-request")) == (200, b"pong\n", "abc")
    assert r.header("content-type").startswith("text/plain")
    r = c.request("POST", "/tea", body=b"milk?")  # a body it does not read: answered, then closed
    assert (r.status, r.body, r.header("content-type")) == (418, b"{}", "application/json")
    # The route's guards still run: 3 per minute, the 4th is refused.
    c = Client(port)
    statuses = [c.request("GET", "/ping").status for _ in range(3)]
    assert statuses == [200, 200, 429]  # one of the 3 was spent above
    assert wait_metric(admin, "sluice_requests_total", 1, route="old", cluster="",
                       code_class="3xx") == 1


def test_thousands_of_pipelined_local_answers_come_back_in_order(gateway_factory,
                                                                 upstream_factory):
    # Each answer the socket takes at once resumes the connection in place, a level deeper on
    # the worker's stack until it next waits to read. A smoke test of that path at volume: the
    # cap on such chains (net/socket_io.h, kMaxInPlace) is unit-tested in socket_io_test.cc
    # (here a chain ends with each read's worth of requests, too short to overflow a stack).
    port, _ = start(gateway_factory, upstream_factory)
    c = Client(port)
    n = 3000
    c.send(b"".join(f"GET /tea?i={i} HTTP/1.1\r\nHost: t\r\n\r\n".encode() for i in range(n)))
    for _ in range(n):
        r = c.read_response()
        assert (r.status, r.body) == (418, b"{}")
    assert c.request("GET", "/tea").status == 418  # the connection is still in step
