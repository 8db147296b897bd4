"""Active health checks against upstream hosts running as their own processes: a host killed
under load leaves selection within interval x threshold while clients see no errors; a host
that comes back ramps up with slow start; an all-unhealthy cluster answers 503 at once, or
balances across every host in panic mode."""
import json
import threading
import time
from collections import Counter

from conftest import free_port
from support.client import Client
from test_admin import get, metric

INTERVAL = 0.2  # seconds, the checks' interval in these tests
THRESHOLD = 2


def config(port, admin, hosts, health="", lb="round_robin", route_extra=""):
    eps = "\n".join(f"      - \"{h}\"" for h in hosts)
    return (f"workers: 2\nadmin: {{ address: 127.0.0.1:{admin} }}\n"
            f"listeners:\n  - name: public\n    address: 127.0.0.1:{port}\n"
            f"clusters:\n  - name: app\n    endpoints:\n{eps}\n"
            f"    health_check:\n      path: /healthz\n      interval: {int(INTERVAL * 1000)}ms\n"
            f"      jitter: 20ms\n      timeout: 100ms\n"
            f"      unhealthy_threshold: {THRESHOLD}\n      healthy_threshold: {THRESHOLD}\n"
            f"{health}"
            f"    lb:\n      policy: {lb}\n"
            f"routes:\n  - name: all\n    cluster: app\n{route_extra}")


def hosts_state(admin):
    return json.loads(get(admin, "/upstreams")[2])[0]


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_a_host_killed_under_load_leaves_selection_and_clients_see_no_errors(gateway_factory,
                                                                            host_process):
    ports = [free_port() for _ in range(3)]
    hosts = [host_process(p, f"h{i}") for i, p in enumerate(ports)]
    port, admin = free_port(), free_port()
    gateway_factory(config(port, admin, [h.address for h in hosts],
                           route_extra="    retry: { attempts: 3, on: [connect-failure, reset], "
                                       "backoff_base: 1ms, backoff_max: 5ms }\n"))
    assert wait_until(lambda: all(h["active_health"]["last_result"] == "success"
                                  for h in hosts_state(admin)["hosts"]))
    statuses = Counter()
    served = Counter()
    stop = threading.Event()
    lock = threading.Lock()

    def load():
        c = Client(port)
        while not stop.is_set():
            r = c.request("GET", "/work")
            with lock:
                statuses[r.status] += 1
                served[r.body] += 1

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    hosts[2].kill()
    killed = time.monotonic()
    assert wait_until(lambda: not hosts_state(admin)["hosts"][2]["active_health"]["healthy"])
    marked = time.monotonic() - killed
    with lock:
        after_mark = served[b"h2"]
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join()
    # Down within interval x threshold (plus the jitter, the probe and the admin poll).
    assert marked <= THRESHOLD * (INTERVAL + 0.02) + 0.5, marked
    assert set(statuses) == {200}, statuses
    assert served[b"h2"] == after_mark  # nothing reached it once marked down
    assert served[b"h0"] > 50 and served[b"h1"] > 50, served
    state = hosts_state(admin)
    assert state["healthy_hosts"] == 2 and not state["panic"]
    text = get(admin, "/metrics")[2]
    assert metric(text, "sluice_upstream_host_healthy", host=hosts[2].address) == 0
    assert metric(text, "sluice_health_checks_total", host=hosts[2].address,
                  result="connect_failure") >= THRESHOLD
    assert metric(text, "sluice_health_check_transitions_total", host=hosts[2].address,
                  to="unhealthy") == 1


def test_a_recovered_host_comes_back_with_slow_start(gateway_factory, host_process):
    up, down_port = host_process(free_port(), "up"), free_port()
    port, admin = free_port(), free_port()
    window = 3.0
    gateway_factory(config(port, admin, [up.address, f"127.0.0.1:{down_port}"],
                           lb=f"round_robin\n      slow_start: {{ window: {int(window)}s, "
                              f"min_weight_percent: 10 }}"))
    assert wait_until(lambda: not hosts_state(admin)["hosts"][1]["active_health"]["healthy"])
    c = Client(port)
    assert {c.request("GET", "/").body for _ in range(20)} == {b"up"}

    host_process(down_port, "back")
    assert wait_until(lambda: hosts_state(admin)["hosts"][1]["active_health"]["healthy"])
    back = time.monotonic()
    shares = []  # the returning host's share of each 0.5 s slice
    while time.monotonic() - back < window + 1.0:
        got = Counter()
        begin = time.monotonic()
        while time.monotonic() - begin < 0.5:
            got[c.request("GET", "/").body] += 1
        shares.append(got[b"back"] / sum(got.values()))
    # Round robin would give it half at once; the ramp starts near 10 % of its weight (a share
    # of about 9 %), grows, and ends at the full half.
    assert shares[0] < 0.25, shares
    assert shares[2] > shares[0], shares
    assert 0.4 <= shares[-1] <= 0.6, shares
    factor = hosts_state(admin)["hosts"][1]["slow_start_factor"]
    assert factor == 1.0


def test_an_all_unhealthy_cluster_fails_fast_or_panics(gateway_factory, host_process):
    # Both hosts serve requests but fail their health checks.
    sick = [host_process(free_port(), f"s{i}", health_status=503) for i in range(2)]
    addresses = [h.address for h in sick]
    port, admin = free_port(), free_port()
    gateway_factory(config(port, admin, addresses,
                           lb="round_robin\n      panic_threshold: 0"))
    assert wait_until(lambda: hosts_state(admin)["healthy_hosts"] == 0)
    c = Client(port)
    begin = time.monotonic()
    r = c.request("GET", "/")
    assert time.monotonic() - begin < 0.5
    assert r.status == 503 and r.body == b"no healthy upstream host\n", (r.status, r.body)
    assert metric(get(admin, "/metrics")[2], "sluice_upstream_panic", cluster="app") == 0

    # The default threshold (50 %): with none healthy the cluster balances across all.
    port2, admin2 = free_port(), free_port()
    gateway_factory(config(port2, admin2, addresses, health="      expected_statuses: [200]\n"))
    assert wait_until(lambda: hosts_state(admin2)["healthy_hosts"] == 0)
    c = Client(port2)
    bodies = Counter(c.request("GET", "/").body for _ in range(20))
    assert bodies == Counter({b"s0": 10, b"s1": 10}), bodies
    assert hosts_state(admin2)["panic"] is True
    assert metric(get(admin2, "/metrics")[2], "sluice_upstream_panic", cluster="app") == 1
