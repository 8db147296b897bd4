"""What an operator does at run time through the admin listener: the bearer token that guards
changes, breakers forced open or closed, hosts drained, and the snapshot of requests in flight."""
import json
import os
import subprocess
import threading
import time

from conftest import basic_config, free_port
from support import upstream as upstream_mod
from support.client import fetch
from test_admin import call, get, metric

TOKEN = "0123456789abcdef0123456789abcdef"


def write_token(directory, token, mode=0o600):
    path = os.path.join(directory, "admin.token")
    with open(path, "w") as f:
        f.write(token + "\n")
    os.chmod(path, mode)
    return path


def test_mutating_requests_need_the_token_and_a_reload_rotates_it(gateway_factory, upstream_factory,
                                                                   tmp_path):
    up = upstream_factory()
    port, admin = free_port(), free_port()
    token_file = write_token(str(tmp_path), TOKEN)
    text = basic_config(port, [up.address]) + \
        f"admin: {{ address: 127.0.0.1:{admin}, token_file: {token_file} }}\n"
    g = gateway_factory(text)

    # Reads stay open: Prometheus and browsers need no token.
    assert get(admin, "/metrics")[0] == 200
    assert get(admin, "/breakers")[0] == 200
    # Changes need it.
    status, headers, body = call(admin, "POST", "/config/reload")
    assert status == 401 and "needs the bearer token" in body
    assert headers["WWW-Authenticate"] == 'Bearer realm="sluice admin"'
    status, headers, body = call(admin, "PUT", "/log?level=debug", token="x" * 32)
    assert status == 401 and body == "wrong bearer token\n"
    assert 'error="invalid_token"' in headers["WWW-Authenticate"]
    assert call(admin, "PUT", "/log?level=debug", token=TOKEN)[0] == 200
    assert call(admin, "POST", "/upstreams/app/" + up.address + "/drain")[0] == 401
    assert call(admin, "DELETE", "/registry/app/127.0.0.1:1")[0] == 401
    assert g.wait_log("admin: refused a POST from 127.0.0.1: no bearer token")

    # A new token in the file takes effect with the reload that reads it.
    new_token = "fedcba9876543210fedcba9876543210"
    write_token(str(tmp_path), new_token)
    assert call(admin, "POST", "/config/reload", token=TOKEN)[0] == 200
    assert call(admin, "POST", "/config/reload", token=TOKEN)[0] == 401
    assert call(admin, "POST", "/config/reload", token=new_token)[0] == 200

    # A token file that goes bad refuses the reload and keeps the token in force.
    write_token(str(tmp_path), "short")
    status, _, body = call(admin, "POST", "/config/reload", token=new_token)
    assert status == 400 and "use at least 16" in body
    assert call(admin, "PUT", "/log?level=info", token=new_token)[0] == 200
    assert fetch(port).status == 200


def test_a_bad_token_file_stops_run_and_validate(sluice_bin, tmp_path):
    port, admin = free_port(), free_port()
    token_file = write_token(str(tmp_path), "changeme")
    config = tmp_path / "sluice.yaml"
    config.write_text(basic_config(port, ["127.0.0.1:9"]) +
                      f"admin: {{ address: 127.0.0.1:{admin}, token_file: {token_file} }}\n")
    for args in (["validate", "-c", str(config)], ["run", "-c", str(config)]):
        r = subprocess.run([sluice_bin, *args], capture_output=True, text=True, timeout=20)
        assert r.returncode != 0, args
        assert "the admin token has 8 characters; use at least 16" in r.stderr, r.stderr

    # Validate warns about an admin listener others can reach without a token, and about a token
    # file everyone can read.
    write_token(str(tmp_path), TOKEN, mode=0o644)
    config.write_text(basic_config(port, ["127.0.0.1:9"]) +
                      f"admin: {{ address: 0.0.0.0:{admin} }}\n")
    r = subprocess.run([sluice_bin, "validate", "-c", str(config)], capture_output=True, text=True)
    assert r.returncode == 0
    assert f"warning: the admin listener on 0.0.0.0:{admin} is not loopback and has no " \
           "token_file" in r.stderr
    config.write_text(basic_config(port, ["127.0.0.1:9"]) +
                      f"admin: {{ address: 0.0.0.0:{admin}, token_file: {token_file} }}\n")
    r = subprocess.run([sluice_bin, "validate", "-c", str(config)], capture_output=True, text=True)
    assert r.returncode == 0 and "not loopback" not in r.stderr
    assert "readable by every user" in r.stderr


def breaker_state(admin, route):
    breakers = json.loads(get(admin, "/breakers")[2])
    return next(b["state"] for b in breakers if b["route"] == route)


def test_force_a_breaker_open_closed_and_back_to_normal(gateway_factory, upstream_factory):
    failing = upstream_mod.Switchable(200)
    up = upstream_factory(failing)
    port, admin = free_port(), free_port()
    route = ("    circuit_breaker: { window: 4, minimum_calls: 4, failure_rate: 50, "
             "open_duration: 60s }\n")
    g = gateway_factory(basic_config(port, [up.address], admin_port=admin, route_extra=route))

    assert call(admin, "POST", "/breakers/route/all/force-open")[0] == 200
    assert breaker_state(admin, "all") == "forced_open"
    assert fetch(port).status == 503
    assert metric(get(admin, "/metrics")[2], "sluice_circuit_breaker_state", route="all",
                  state="forced_open") == 1
    assert g.wait_log("admin: circuit breaker of route all: force-open")

    # A reload keeps the operator's override.
    assert call(admin, "POST", "/config/reload")[0] == 200
    assert breaker_state(admin, "all") == "forced_open"

    # Forced closed, failures do not trip it.
    assert call(admin, "POST", "/breakers/route/all/force-closed")[0] == 200
    failing.status = 500
    assert all(fetch(port).status == 500 for _ in range(8))
    assert breaker_state(admin, "all") == "disabled"

    # Back to normal: the same failures trip it.
    status, _, body = call(admin, "POST", "/breakers/route/all/normal")
    assert status == 200 and json.loads(body)["state"] == "closed"
    statuses = [fetch(port).status for _ in range(8)]
    assert statuses[:4] == [500] * 4 and statuses[-1] == 503
    assert breaker_state(admin, "all") == "open"

    # Wrong names and methods.
    assert call(admin, "POST", "/breakers/route/nope/force-open")[0] == 404
    assert call(admin, "POST", "/breakers/cluster/app/force-open")[0] == 404  # no cluster breaker
    assert call(admin, "POST", "/breakers/route/all/explode")[0] == 404
    assert call(admin, "GET", "/breakers/route/all/normal")[0] == 405


def test_a_drained_host_gets_no_new_request_and_its_request_in_flight_finishes(
        gateway_factory, upstream_factory):
    slow_started = threading.Event()

    def slow_then_named(name):
        def handler(conn):
            while (req := conn.read_request()) is not None:
                if req.target == "/slow":
                    slow_started.set()
                    time.sleep(1.0)
                conn.send(upstream_mod.response(200, name.encode()))
        return handler

    a = upstream_factory(slow_then_named("a"))
    b = upstream_factory(slow_then_named("b"))
    port, admin = free_port(), free_port()
    g = gateway_factory(basic_config(port, [a.address, b.address], admin_port=admin,
                                     cluster_extra="    lb: round_robin\n"))
    assert {fetch(port).body for _ in range(4)} == {b"a", b"b"}

    # A slow request on `a`, then `a` drained while it runs.
    result = {}

    def slow():
        for _ in range(4):  # round robin: one of the first two goes to `a`
            slow_started.clear()
            r = fetch(port, "/slow")
            if r.body == b"a":
                result["slow"] = r
                return

    t = threading.Thread(target=slow)
    t.start()
    assert slow_started.wait(5)
    status, _, body = call(admin, "POST", f"/upstreams/app/{a.address}/drain")
    assert status == 200 and json.loads(body)["drained"] is True
    time.sleep(0.1)  # the workers take the change between requests
    assert {fetch(port).body for _ in range(10)} == {b"b"}
    t.join(10)
    assert result["slow"].status == 200  # the request in flight finished
    hosts = json.loads(get(admin, "/upstreams")[2])[0]["hosts"]
    assert [h["drained"] for h in hosts] == [True, False]
    assert metric(get(admin, "/metrics")[2], "sluice_upstream_host_drained",
                  host=a.address) == 1
    assert g.wait_log(f"admin: drained {a.address} in cluster app")

    # Drained across a reload, back in balancing once undrained.
    assert call(admin, "POST", "/config/reload")[0] == 200
    assert {fetch(port).body for _ in range(6)} == {b"b"}
    assert call(admin, "POST", f"/upstreams/app/{a.address}/undrain")[0] == 200
    time.sleep(0.1)
    assert {fetch(port).body for _ in range(6)} == {b"a", b"b"}

    assert call(admin, "POST", "/upstreams/app/127.0.0.1:1/drain")[0] == 404
    assert call(admin, "POST", "/upstreams/nope/127.0.0.1:1/drain")[0] == 404
    assert call(admin, "POST", f"/upstreams/app/{a.address}/explode")[0] == 404


def test_debug_requests_shows_what_each_request_waits_on(gateway_factory, upstream_factory):
    release = threading.Event()

    def held(conn):
        while conn.read_request() is not None:
            release.wait(10)
            conn.send(upstream_mod.response(200, b"done"))

    up = upstream_factory(held)
    port, admin = free_port(), free_port()
    route = ("    timeout: 30s\n"
             "    concurrency: { max: 1, queue: 4, queue_timeout: 20s }\n")
    gateway_factory(basic_config(port, [up.address], admin_port=admin, route_extra=route,
                                 workers=2))
    body = json.loads(get(admin, "/debug/requests")[2])
    assert body["in_flight"] == 0 and body["workers_answered"] == 2

    threads = [threading.Thread(target=fetch, args=(port, f"/r{i}")) for i in range(2)]
    threads[0].start()
    time.sleep(0.3)
    threads[1].start()
    deadline = time.monotonic() + 5
    while True:
        body = json.loads(get(admin, "/debug/requests")[2])
        if body["in_flight"] == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    release_later = body["requests"]
    release.set()
    for t in threads:
        t.join(10)

    assert body["in_flight"] == 2 and body["workers_answered"] == 2
    first, second = release_later  # oldest first
    assert first["path"] == "/r0" and first["phase"] == "awaiting_response"
    assert first["upstream"] == up.address and first["attempts"] == 1
    assert first["route"] == "all" and first["cluster"] == "app" and first["method"] == "GET"
    assert second["path"] == "/r1" and second["phase"] == "queued" and second["upstream"] is None
    assert first["age_ms"] > second["age_ms"] > 0
    assert 25_000 < first["deadline_left_ms"] < 30_000
    # A request ends just after its client read the last byte: poll for it.
    deadline = time.monotonic() + 2
    while json.loads(get(admin, "/debug/requests")[2])["in_flight"] != 0:
        assert time.monotonic() < deadline, "requests still in flight after their answers"
        time.sleep(0.02)
    assert get(admin, "/debug/requests?limit=x")[0] == 400
