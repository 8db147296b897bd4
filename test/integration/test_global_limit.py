"""Global rate limits (`scope: global`) against a real redis-server: several sluice instances
share one limit, the Redis cost per admitted request, and what happens when Redis dies."""
import signal
import subprocess
import threading
import time

import pytest

from conftest import basic_config, free_port
from support.client import Client
from support.redis_server import RedisServer
from test_admin import get, metric


@pytest.fixture
def redis_server():
    started = []

    def start(port=None, **kwargs):
        r = RedisServer(port or free_port(), **kwargs)
        started.append(r)
        return r

    yield start
    for r in started:
        r.stop()


def instance(gateway_factory, upstream, redis, route_extra, redis_extra="", workers=2):
    port, admin = free_port(), free_port()
    top = f"redis: {{ address: 127.0.0.1:{redis.port}{redis_extra} }}\n"
    g = gateway_factory(basic_config(port, [upstream.address], admin_port=admin, top_extra=top,
                                     route_extra=route_extra, workers=workers))
    return port, admin, g


def load(port, rate, duration, path="/x", counts=None, latencies=None):
    """Sends `rate` requests a second for `duration` seconds (paced, one connection); counts
    statuses into `counts` and, if given, appends each latency."""
    counts = counts if counts is not None else {}
    c = Client(port)
    begin = time.monotonic()
    n = 0
    while True:
        due = begin + n / rate
        now = time.monotonic()
        if due - begin >= duration:
            break
        if due > now:
            time.sleep(due - now)
        t0 = time.monotonic()
        r = c.request("GET", path)
        if latencies is not None:
            latencies.append(time.monotonic() - t0)
        counts[r.status] = counts.get(r.status, 0) + 1
        n += 1
    c.close()
    return counts


def run_parallel(jobs):
    threads = [threading.Thread(target=j) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_three_instances_share_one_limit(gateway_factory, upstream_factory, redis_server):
    """100 r/s (burst 50) shared by three instances under uneven load (150, 75 and 40 r/s) for
    10 s admits 100*10 + 50 in all, within 5 %, at most 0.1 Redis calls per admitted request."""
    redis = redis_server()
    up = upstream_factory()
    route = "    rate_limit: { rate: 100/s, burst: 50, key: route, scope: global }\n"
    ports = [instance(gateway_factory, up, redis, route)[0] for _ in range(3)]
    redis.cli("CONFIG", "RESETSTAT")
    results = [{}, {}, {}]
    rates = [150, 75, 40]
    duration = 10.0
    run_parallel([lambda i=i: load(ports[i], rates[i], duration, counts=results[i])
                  for i in range(3)])
    admitted = sum(r.get(200, 0) for r in results)
    limited = sum(r.get(429, 0) for r in results)
    other = sum(n for r in results for s, n in r.items() if s not in (200, 429))
    assert other == 0, results
    expected = 100 * duration + 50
    assert abs(admitted - expected) <= 0.05 * expected, (admitted, limited, results)
    assert limited > 0
    # Every instance got a share: the limit is the fleet's, not first come first served.
    assert all(r.get(200, 0) > 100 for r in results), results
    calls = redis.command_calls("evalsha", "eval")
    assert calls > 0
    assert calls / admitted <= 0.1, (calls, admitted)


def test_rejection_carries_the_fleet_numbers(gateway_factory, upstream_factory, redis_server):
    redis = redis_server()
    up = upstream_factory()
    route = "    rate_limit: { rate: 10/s, burst: 10, key: route, scope: global }\n"
    port_a = instance(gateway_factory, up, redis, route)[0]
    port_b = instance(gateway_factory, up, redis, route)[0]
    # A takes the whole burst; B, which has sent nothing yet, is refused by the fleet's state.
    a = Client(port_a)
    statuses = [a.request("GET", "/x").status for _ in range(10)]
    assert statuses.count(200) == 10, statuses
    r = Client(port_b).request("GET", "/x")
    assert r.status == 429
    assert r.header("RateLimit-Policy") == '"all";q=10;w=1'
    assert r.header("RateLimit").startswith('"all";r=0;t=')
    assert int(r.header("Retry-After")) >= 1
    keys = redis.cli("KEYS", "sluice:rl:*").split()
    assert keys == ["sluice:rl:all:rate_limit:all"], keys
    assert 0 < int(redis.cli("PTTL", keys[0])) <= 1100


@pytest.mark.parametrize("mode", ["deny", "allow", "local"])
def test_redis_killed_mid_load(gateway_factory, upstream_factory, redis_server, mode):
    """Redis dies under load: the on_failure mode applies within the timeout, a route without a
    global limit keeps its latency, and when Redis is back the limit is global again."""
    redis = redis_server()
    up = upstream_factory()
    route = ("    match: { path_prefix: /x }\n"
             f"    rate_limit: {{ rate: 40/s, burst: 10, key: route, scope: global, "
             f"on_failure: {mode} }}\n"
             "  - name: free\n    match: { path_prefix: /free }\n    cluster: app\n")
    port, admin, _ = instance(gateway_factory, up, redis, route,
                              redis_extra=", timeout: 50ms, instances: 2")
    counts_before = load(port, 80, 2.0)
    # 20 %: under ASan on a busy 2-core CI box one run admitted 76 of the 90 (cause not found;
    # the other modes and builds stay within 15 %). A broken global limit admits 160 or ~45.
    assert counts_before.get(200, 0) == pytest.approx(40 * 2 + 10, rel=0.2), counts_before
    redis.kill()
    time.sleep(0.3)
    during, free_latencies = {}, []
    run_parallel([lambda: load(port, 80, 3.0, counts=during),
                  lambda: load(port, 50, 3.0, path="/free", latencies=free_latencies)])
    got = during.get(200, 0)
    if mode == "deny":
        assert got <= 15, during  # at most what its leases held (1.5 x the burst of 10)
        assert during.get(429, 0) > 200
    elif mode == "allow":
        assert during.get(429, 0) <= 10, during
        assert got >= 0.9 * 240, during
    else:  # local: 40/s over 2 instances = 20/s here (burst 10 / 2 = 5)
        assert got == pytest.approx(20 * 3 + 5, abs=15), during
    free_latencies.sort()
    p99 = free_latencies[int(len(free_latencies) * 0.99) - 1]
    assert p99 < 0.05, p99  # never waits for the dead Redis
    text = get(admin, "/metrics")[2]
    assert metric(text, "sluice_redis_up") == 0
    redis.start()
    deadline = time.monotonic() + 10
    while metric(get(admin, "/metrics")[2], "sluice_redis_up") != 1:
        assert time.monotonic() < deadline, "sluice did not reconnect to Redis"
        time.sleep(0.1)
    after = load(port, 80, 2.0)
    assert after.get(200, 0) == pytest.approx(40 * 2 + 10, rel=0.2), after
    assert redis.command_calls("evalsha", "eval") > 0


def test_a_stalled_redis_opens_the_breaker_and_recovery_follows(gateway_factory,
                                                                 upstream_factory, redis_server):
    """Redis stops answering (SIGSTOP) under load: calls time out, the client's breaker opens,
    the limit answers `deny` without waiting; once Redis answers again the breaker's probes close
    it and the limit is global again - no restart."""
    redis = redis_server()
    up = upstream_factory()
    route = "    rate_limit: { rate: 40/s, burst: 10, key: route, scope: global, on_failure: deny }\n"
    port, admin, _ = instance(gateway_factory, up, redis, route, redis_extra=", timeout: 30ms")
    load(port, 60, 1.0)
    redis.pause()
    try:
        during = load(port, 60, 2.0)
        text = get(admin, "/metrics")[2]
        assert metric(text, "sluice_redis_requests_total", op="lease", result="timeout") >= 1
        assert metric(text, "sluice_redis_requests_total", op="lease", result="unavailable") >= 1, \
            "the breaker opened: later calls failed at once"
    finally:
        redis.resume()
    assert during.get(200, 0) <= 15, during
    deadline = time.monotonic() + 10
    while True:
        after = load(port, 60, 1.0)
        if after.get(200, 0) >= 30:
            break
        assert time.monotonic() < deadline, f"still refusing after Redis came back: {after}"
    assert redis.command_calls("evalsha", "eval") > 0


def test_redis_auth_and_db(gateway_factory, upstream_factory, redis_server, tmp_path):
    redis = redis_server(password="s3cret-pass")
    up = upstream_factory()
    pw = tmp_path / "redis.pass"
    pw.write_text("s3cret-pass\n")
    # 5/m: no permit comes back while the 8 requests run; a 1 s timeout: a slow machine does not
    # send a request to on_failure (whose local share would admit more).
    route = "    rate_limit: { rate: 5/m, burst: 5, key: route, scope: global }\n"
    port, admin, g = instance(
        gateway_factory, up, redis, route,
        redis_extra=f", timeout: 1s, password_file: {pw}, db: 3, key_prefix: 'eu:'")
    c = Client(port)
    statuses = [c.request("GET", "/x").status for _ in range(8)]
    assert statuses.count(200) == 5, statuses
    assert redis.cli("-n", "3", "KEYS", "eu:rl:*").split() == ["eu:rl:all:rate_limit:all"]
    text = get(admin, "/metrics")[2]
    assert metric(text, "sluice_redis_up") == 1
    assert metric(text, "sluice_redis_requests_total", op="lease", result="ok") >= 1
    # A clean exit with the connection up (the client stops after the workers).
    g.signal(signal.SIGTERM)
    assert g.wait() == 0, "".join(g.stderr_lines)


def test_wrong_password_is_reported_and_falls_back(gateway_factory, upstream_factory,
                                                   redis_server, tmp_path):
    redis = redis_server(password="right-password")
    up = upstream_factory()
    pw = tmp_path / "redis.pass"
    pw.write_text("wrong-password")
    route = ("    rate_limit: { rate: 5/s, burst: 5, key: route, scope: global, "
             "on_failure: allow }\n")
    port, admin, g = instance(gateway_factory, up, redis, route,
                              redis_extra=f", password_file: {pw}")
    c = Client(port)
    statuses = [c.request("GET", "/x").status for _ in range(10)]
    assert statuses == [200] * 10  # on_failure: allow
    assert metric(get(admin, "/metrics")[2], "sluice_redis_up") == 0
    assert g.wait_log("AUTH failed")


@pytest.mark.parametrize("text,error", [
    ("clusters: [{ name: app, endpoints: [127.0.0.1:9] }]\n"
     "routes:\n  - name: r\n    cluster: app\n"
     "    rate_limit: { rate: 5/s, scope: global }\n",
     "cfg.yaml:6:37: rate_limit.scope global needs a top-level redis section"),
    ("redis: { address: 127.0.0.1:6379 }\n"
     "clusters: [{ name: app, endpoints: [127.0.0.1:9] }]\n"
     "routes:\n  - name: r\n    cluster: app\n"
     "    rate_limit: { rate: 5/s, algorithm: leaky_bucket, scope: global }\n",
     "rate_limit.scope global needs algorithm gcra or token_bucket"),
    ("redis: { address: 127.0.0.1:6379 }\n"
     "clusters: [{ name: app, endpoints: [127.0.0.1:9] }]\n"
     "routes:\n  - name: r\n    cluster: app\n"
     "    rate_limit: { rate: 5/s, on_failure: deny }\n",
     "rate_limit.on_failure applies only to scope global"),
    ("redis: { address: 127.0.0.1:6379 }\n"
     "clusters: [{ name: app, endpoints: [127.0.0.1:9] }]\n"
     "routes:\n  - name: r\n    cluster: app\n"
     "    rate_limit: { rate: 2000/ms, scope: global }\n",
     "a global limit allows at most 1000000/s per key"),
    ("redis: { address: 127.0.0.1:6379, timeout: 0ms }\n"
     "clusters: [{ name: app, endpoints: [127.0.0.1:9] }]\n"
     "routes: [{ name: r, cluster: app }]\n",
     "cfg.yaml:2:44: redis.timeout must be at least 1ms"),
    ("redis: { address: 127.0.0.1:6379, password_file: /nonexistent/redis.pass }\n"
     "clusters: [{ name: app, endpoints: [127.0.0.1:9] }]\n"
     "routes: [{ name: r, cluster: app }]\n",
     "redis.password_file: /nonexistent/redis.pass: cannot read the redis password file"),
])
def test_validate_refuses_bad_redis_config(sluice_bin, tmp_path, text, error):
    path = tmp_path / "cfg.yaml"
    path.write_text("listeners: [{ name: p, address: 127.0.0.1:1 }]\n" + text)
    r = subprocess.run([sluice_bin, "validate", "-c", str(path)], capture_output=True, text=True)
    assert r.returncode != 0
    assert error in r.stderr, r.stderr
