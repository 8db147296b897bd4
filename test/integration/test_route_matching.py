"""Route matching on headers, query parameters, cookies, methods and path regexes, against real
upstreams, each of which answers with its own name."""
import subprocess

import pytest

from conftest import free_port
from support.client import Client
from support.upstream import named
from test_reload import config, reload, rewrite
from test_validate import write


ROUTES = [
    "  - name: gray\n    cluster: gray\n"
    "    match: { path_prefix: /pay, headers: [{ name: x-env, exact: gray }] }",
    "  - name: beta\n    cluster: beta\n"
    "    match: { cookies: [{ name: beta, exact: \"1\" }] }",
    "  - name: v2\n    cluster: v2\n"
    "    match: { methods: [GET, HEAD], query: [{ name: v, prefix: \"2\" }] }",
    "  - name: users\n    cluster: users\n"
    "    match: { path_regex: \"/users/[0-9]+(/.*)?\" }",
    "  - name: not-bots\n    cluster: users\n"
    "    match: { path_prefix: /human, headers: [{ name: user-agent, regex: \".*bot.*\", "
    "invert: true }] }",
    "  - name: stable\n    cluster: stable\n    match: { path_prefix: / }",
]

CASES = [
    # (what, method, target, headers, expected upstream or status)
    ("tag routing by header", "GET", "/pay/1", [("X-Env", "gray")], "gray"),
    ("header value is case-sensitive", "GET", "/pay/1", [("X-Env", "GRAY")], "stable"),
    ("header on another path", "GET", "/shop", [("X-Env", "gray")], "stable"),
    ("header name is case-insensitive", "GET", "/pay", [("x-ENV", "gray")], "gray"),
    ("second X-Env field", "GET", "/pay", [("X-Env", "blue"), ("X-Env", "gray")], "gray"),
    ("cookie", "GET", "/x", [("Cookie", "sid=1; beta=1")], "beta"),
    ("quoted cookie", "GET", "/x", [("Cookie", "beta=\"1\"")], "beta"),
    ("cookie with another value", "GET", "/x", [("Cookie", "beta=0")], "stable"),
    ("cookie name must be whole", "GET", "/x", [("Cookie", "xbeta=1")], "stable"),
    ("query prefix", "GET", "/x?v=2.1", [], "v2"),
    ("query %-decoded", "GET", "/x?%76=%32", [], "v2"),
    ("query method not listed", "DELETE", "/x?v=2", [], "stable"),
    ("query bad escape fails closed", "GET", "/x?v=%2z", [], "stable"),
    ("regex", "GET", "/users/42/orders", [], "users"),
    ("regex is whole-path", "GET", "/users/42x", [], "stable"),
    ("inverted regex on a browser", "GET", "/human", [("User-Agent", "Mozilla/5.0")], "users"),
    ("inverted regex on a bot", "GET", "/human", [("User-Agent", "googlebot/2")], "stable"),
    ("inverted regex, header absent", "GET", "/human", [], "users"),
]


@pytest.fixture
def matched(gateway_factory, upstream_factory):
    ups = {n: upstream_factory(named(n)) for n in ("gray", "beta", "v2", "users", "stable")}
    port, admin = free_port(), free_port()
    text = config(port, admin, {n: [f'"{u.address}"'] for n, u in ups.items()}, ROUTES,
                  workers=1)
    g = gateway_factory(text)
    return g, port, admin, ups


@pytest.mark.parametrize("what,method,target,headers,expected", CASES, ids=[c[0] for c in CASES])
def test_requests_reach_the_route_their_conditions_pick(matched, what, method, target, headers,
                                                         expected):
    _, port, _, _ = matched
    c = Client(port)
    r = c.request(method, target, headers=headers)
    assert (r.status, r.body.decode()) == (200, expected), what


def test_a_reload_changes_the_match_and_routing_follows(matched):
    g, port, admin, ups = matched
    c = Client(port)
    assert c.request("GET", "/pay", headers=[("X-Env", "canary")]).body == b"stable"
    routes = [ROUTES[0].replace("exact: gray", "exact: canary")] + ROUTES[1:]
    rewrite(g, config(port, admin, {n: [f'"{u.address}"'] for n, u in ups.items()}, routes,
                      workers=1))
    reload(admin)
    # The same keep-alive connection: its next request is routed by the new generation.
    assert c.request("GET", "/pay", headers=[("X-Env", "canary")]).body == b"gray"
    assert c.request("GET", "/pay", headers=[("X-Env", "gray")]).body == b"stable"


def test_validate_reports_a_hidden_route_and_a_bad_regex(sluice_bin):
    base = ("listeners: [{ name: p, address: 127.0.0.1:8080 }]\n"
            "clusters: [{ name: c, endpoints: [127.0.0.1:9000] }]\n"
            "routes:\n")
    hidden = write(base + "  - { name: all, cluster: c }\n"
                          "  - { name: gray, cluster: c, match: { headers: [{ name: x-env, "
                          "present: true }] } }\n")
    p = subprocess.run([sluice_bin, "validate", "-c", hidden], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert f"{hidden}:5:5: warning: route 'gray' is never used: route 'all' (line 4)" in p.stderr
    assert "ok (1 warning(s))" in p.stdout
    bad = write(base + "  - { name: r, cluster: c, match: { path_regex: \"/a(\" } }\n")
    p = subprocess.run([sluice_bin, "validate", "-c", bad], capture_output=True, text=True)
    assert p.returncode == 1
    assert f"{bad}:4:49: match.path_regex: missing ): /a(" in p.stderr
