"""Shared circuit breakers (`circuit_breaker: { share: redis }`) against a real redis-server:
an open on one of three instances opens the others, a restarted instance starts open, the
fleet's probes are bounded, hint and authoritative modes differ, and a Redis that is down leaves
local breakers."""
import subprocess
import time

import pytest

from conftest import basic_config, free_port
from support.client import Client
from support import upstream as up_mod
from support.redis_server import RedisServer
from test_admin import get, metric

KEY = "sluice:cb:route:all"


class Counted:
    """An upstream answering `status` (changeable while it runs), counting requests."""

    def __init__(self, upstream_factory, status=200):
        self.status = status
        self.up = upstream_factory(self.handle)

    def handle(self, conn):
        while conn.read_request() is not None:
            self.up.count()
            conn.send(up_mod.response(self.status, b"fresh"))

    @property
    def requests(self):
        return self.up.requests


def breaker(open_duration="10s", probes=1, mode="authoritative"):
    return ("    retry: { attempts: 1 }\n"
            "    circuit_breaker:\n      window: 10\n      minimum_calls: 5\n"
            f"      failure_rate: 50\n      open_duration: {open_duration}\n"
            f"      half_open_probes: {probes}\n"
            "      fallback: { status: 200, body: degraded }\n"
            f"      share: redis\n      share_mode: {mode}\n")


class Fleet:
    """sluice instances sharing one Redis, each with an upstream of its own."""

    def __init__(self, gateway_factory, upstream_factory, redis, route):
        self.gateway_factory = gateway_factory
        self.redis = redis
        self.route = route
        self.ups = [Counted(upstream_factory) for _ in range(3)]
        self.ports, self.admins, self.gateways = [], [], []
        for i in range(3):
            self.start(i)

    def start(self, i):
        port, admin = free_port(), free_port()
        top = f"redis: {{ address: 127.0.0.1:{self.redis.port}, timeout: 50ms }}\n"
        g = self.gateway_factory(basic_config(port, [self.ups[i].up.address], admin_port=admin,
                                              top_extra=top, route_extra=self.route))
        if i < len(self.gateways):
            self.ports[i], self.admins[i], self.gateways[i] = port, admin, g
        else:
            self.ports.append(port)
            self.admins.append(admin)
            self.gateways.append(g)

    def fallback(self, i, healthy=False):
        """Whether instance i answers a request from its fallback. `healthy`: its upstream is
        fine, so anything but a 200 is an error of sluice's own."""
        r = Client(self.ports[i]).request("GET", "/")
        assert r.status == 200 or not healthy, r.status
        return r.header("x-sluice-fallback") == "static"

    def open_instance(self, i):
        """Fails instance i's upstream until its breaker opens; returns when it did."""
        self.ups[i].status = 500
        for _ in range(20):
            if self.fallback(i):
                return time.monotonic()
        raise AssertionError("the breaker did not open")

    def wait_fallback(self, i, want=True, timeout=1.0):
        """Seconds until instance i's fallback answers (or stops answering, want=False); None if
        not within `timeout`."""
        begin = time.monotonic()
        while time.monotonic() - begin < timeout:
            if self.fallback(i) == want:
                return time.monotonic() - begin
            time.sleep(0.01)
        return None


@pytest.fixture
def redis():
    r = RedisServer(free_port())
    yield r
    r.stop()


def test_an_open_reaches_the_fleet_within_a_second_and_a_restart_starts_open(
        gateway_factory, upstream_factory, redis):
    fleet = Fleet(gateway_factory, upstream_factory, redis, breaker())
    assert not fleet.fallback(1, healthy=True) and not fleet.fallback(2, healthy=True)
    opened = fleet.open_instance(0)
    for i in (1, 2):
        left = 1.0 - (time.monotonic() - opened)
        assert fleet.wait_fallback(i, timeout=left) is not None, f"instance {i} not open in 1 s"
    took = time.monotonic() - opened
    print(f"others serving the fallback {took * 1000:.0f} ms after the first open")
    assert took < 1.0
    # The record: the end of the period on Redis' clock, expiring by itself after it.
    until_ms = int(redis.cli("GET", KEY))
    now_s, now_us = redis.cli("TIME").split()
    left = until_ms - (int(now_s) * 1000 + int(now_us) // 1000)
    assert 8000 < left <= 10000, left
    assert int(redis.cli("PTTL", KEY)) > left
    before = [u.requests for u in fleet.ups]
    for i in range(3):
        for _ in range(5):
            assert fleet.fallback(i)
    assert [u.requests for u in fleet.ups] == before  # nothing reaches any upstream
    text = get(fleet.admins[1], "/metrics")[2]
    assert metric(text, "sluice_circuit_breaker_shared_total", event="remote_open") == 1
    # A restarted instance comes up open: its first request gets the fallback.
    fleet.gateways[2].stop()
    fleet.start(2)
    assert fleet.fallback(2), "".join(fleet.gateways[2].stderr_lines)
    assert fleet.ups[2].requests == before[2]


def test_the_fleet_probes_a_bounded_number_of_times(gateway_factory, upstream_factory, redis):
    """Every upstream fails; for 4 s of steady traffic to all three instances the fleet sends
    at most one probe per 1 s period (authoritative), not one per instance."""
    fleet = Fleet(gateway_factory, upstream_factory, redis, breaker(open_duration="1s"))
    for u in fleet.ups:
        u.status = 500
    fleet.open_instance(0)
    assert fleet.wait_fallback(1) is not None and fleet.wait_fallback(2) is not None
    before = sum(u.requests for u in fleet.ups)
    duration = 4.0
    end = time.monotonic() + duration
    while time.monotonic() < end:
        for i in range(3):
            fleet.fallback(i)
        time.sleep(0.02)
    probes = sum(u.requests for u in fleet.ups) - before
    print(f"{probes} probes in {duration} s across three instances")
    # One period a second and one probe each, plus one period for the edges; three instances
    # probing on their own would send about 12.
    assert 1 <= probes <= duration + 1, probes


@pytest.mark.parametrize("mode", ["authoritative", "hint"])
def test_a_closed_record_closes_the_fleet_only_when_authoritative(
        gateway_factory, upstream_factory, redis, mode):
    """The record vanishing (what a successful probe does) closes every instance within a second
    in authoritative mode; in hint mode the instances stay open for their period."""
    fleet = Fleet(gateway_factory, upstream_factory, redis, breaker(mode=mode))
    fleet.open_instance(0)
    fleet.ups[0].status = 200
    assert fleet.wait_fallback(1) is not None and fleet.wait_fallback(2) is not None
    redis.cli("DEL", KEY)
    took = fleet.wait_fallback(1, want=False, timeout=1.5)
    if mode == "authoritative":
        assert took is not None and took < 1.0, took
        assert fleet.wait_fallback(0, want=False, timeout=1.0) is not None
        text = get(fleet.admins[1], "/metrics")[2]
        assert metric(text, "sluice_circuit_breaker_shared_total", event="remote_close") == 1
    else:
        assert took is None
        assert fleet.fallback(0) and fleet.fallback(2)


def test_redis_down_leaves_local_breakers_and_recovery_is_automatic(
        gateway_factory, upstream_factory, redis):
    fleet = Fleet(gateway_factory, upstream_factory, redis, breaker(open_duration="1s"))
    redis.kill()
    fleet.open_instance(0)
    # Local: the others, whose upstreams are fine, keep serving them; nothing fails.
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        assert not fleet.fallback(1, healthy=True) and not fleet.fallback(2, healthy=True)
        fleet.fallback(0)  # it probes on its own meanwhile, and reopens
        time.sleep(0.05)
    redis.start()
    # Back: instance 0 keeps failing its probes; its next open reaches Redis and the others.
    deadline = time.monotonic() + 8
    while not fleet.fallback(1):
        assert time.monotonic() < deadline, "the open did not reach the fleet after Redis came back"
        fleet.fallback(0)
        time.sleep(0.05)
    assert redis.cli("EXISTS", KEY).strip() == "1"


def test_validate_refuses_a_shared_breaker_without_redis(sluice_bin, tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("listeners: [{ name: p, address: 127.0.0.1:1 }]\n"
                    "clusters: [{ name: app, endpoints: [127.0.0.1:9] }]\n"
                    "routes:\n  - name: r\n    cluster: app\n"
                    "    circuit_breaker: { share: redis }\n")
    r = subprocess.run([sluice_bin, "validate", "-c", str(path)], capture_output=True, text=True)
    assert r.returncode != 0
    assert f"{path}:6:31: " in r.stderr, r.stderr  # at `redis`
    assert "circuit_breaker.share redis needs a top-level redis section" in r.stderr, r.stderr
