"""Config from etcd (`sluice run -c etcd://HOST:PORT/KEY`) against a real etcd: every value
written to the key goes through the live reload path; a value that does not validate is refused
and reported; etcd going away keeps the running config."""
import datetime
import json
import subprocess
import threading
import time
import urllib.request

import pytest

from conftest import basic_config, free_port
from support.client import Client
from support.etcd_server import EtcdServer
from test_admin import get, metric

KEY = "/sluice/config"


@pytest.fixture
def etcd_server():
    started = []

    def start():
        e = EtcdServer(free_port(), free_port())
        started.append(e)
        return e

    yield start
    for e in started:
        e.stop()


def config(port, upstream, admin=None, header="1", workers=1):
    route = f"    response_headers: {{ set: {{ x-config: \"{header}\" }} }}\n"
    return basic_config(port, [upstream.address], admin_port=admin, route_extra=route,
                        workers=workers)


def url(etcd):
    return f"etcd://{etcd.address}{KEY}"


def served_header(port):
    c = Client(port)
    r = c.request("GET", "/x")
    c.close()
    return r.status, r.header("x-config")


def wait_for(pred, timeout):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_config_comes_from_the_key_and_follows_it(gateway_factory, upstream_factory, etcd_server):
    etcd = etcd_server()
    up = upstream_factory()
    port, admin = free_port(), free_port()
    first = etcd.put(KEY, config(port, up, admin, "1"))
    gateway_factory("", source=url(etcd))
    assert served_header(port) == (200, "1")
    _, _, body = get(admin, "/config")
    shown = json.loads(body)
    assert shown["source"] == url(etcd)
    assert shown["revision"] == first
    _, _, text = get(admin, "/config?format=yaml")
    assert f"at revision {first}" in text.splitlines()[0]

    written_at = time.monotonic()
    second = etcd.put(KEY, config(port, up, admin, "2"))
    assert wait_for(lambda: served_header(port) == (200, "2"), 1.0)
    assert time.monotonic() - written_at < 1.0
    assert json.loads(get(admin, "/config")[2])["revision"] == second
    _, _, m = get(admin, "/metrics")
    assert metric(m, "sluice_etcd_up") == 1
    assert metric(m, "sluice_etcd_requests_total", op="watch", result="ok") >= 1


def test_invalid_config_in_etcd_is_refused_and_reported(gateway_factory, upstream_factory,
                                                         etcd_server):
    etcd = etcd_server()
    up = upstream_factory()
    port, admin = free_port(), free_port()
    etcd.put(KEY, config(port, up, admin, "1"))
    g = gateway_factory("", source=url(etcd))
    bad = config(port, up, admin, "1") + "    timeout: 30\n"  # a duration without its unit
    revision = etcd.put(KEY, bad)
    # The log names the key, the line and the column.
    assert g.wait_log(f"reload (etcd revision {revision}) refused", timeout=2)
    assert g.wait_log(f"{url(etcd)}:", timeout=1)
    assert any("is missing a unit" in line for line in g.stderr_lines)
    _, _, m = get(admin, "/metrics")
    assert metric(m, "sluice_config_reloads_total", result="failure") == 1
    history = json.loads(get(admin, "/stats")[2])["config"]["history"]
    assert history[-1]["trigger"] == f"etcd revision {revision}"
    assert not history[-1]["applied"]
    assert any("missing a unit" in p for p in history[-1]["problems"])
    # Still serving the last good config; the next good value applies.
    assert served_header(port) == (200, "1")
    etcd.put(KEY, config(port, up, admin, "3"))
    assert wait_for(lambda: served_header(port) == (200, "3"), 1.0)
    # A deleted key changes nothing either.
    deleted = etcd.delete(KEY)
    assert g.wait_log(f"reload (etcd revision {deleted}) refused", timeout=2)
    assert served_header(port) == (200, "3")


def test_three_instances_apply_a_change_within_one_second_without_failures(
        gateway_factory, upstream_factory, etcd_server):
    """Three instances on one config key (sharing the listening port through SO_REUSEPORT, as a
    fleet shares a service address): a change written under load is applied by each of them
    within 1 s, and no request fails."""
    etcd = etcd_server()
    up = upstream_factory()
    port = free_port()
    etcd.put(KEY, config(port, up, header="1"))
    gateways = [gateway_factory("", source=url(etcd)) for _ in range(3)]

    stop = threading.Event()
    statuses = {}
    headers = {}
    lock = threading.Lock()

    def load():
        while not stop.is_set():
            c = Client(port)  # a new connection each few requests: the kernel spreads them
            for _ in range(5):
                r = c.request("GET", "/x")
                with lock:
                    statuses[r.status] = statuses.get(r.status, 0) + 1
                    headers[r.header("x-config")] = headers.get(r.header("x-config"), 0) + 1
            c.close()

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    written_at = time.time()
    revision = etcd.put(KEY, config(port, up, header="2"))
    applied = f"reload (etcd revision {revision}): every worker serves generation 2"
    # Each instance's log line says when it served the change (its own clock, the same as
    # ours): the test's reader threads add no delay to what is measured.
    took = []
    for g in gateways:
        assert g.wait_log(applied, timeout=5), g.stderr_lines
        line = next(line for line in g.stderr_lines if applied in line)
        stamp = datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
        took.append(stamp.replace(tzinfo=datetime.timezone.utc).timestamp() - written_at)
    time.sleep(0.5)
    with lock:
        before = dict(headers)
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join()
    assert max(took) < 1.0, took
    assert set(statuses) == {200}, statuses
    assert sum(statuses.values()) > 200
    # After the change only the new config answers.
    assert headers.get("1", 0) == before.get("1", 0), (before, headers)
    assert headers.get("2", 0) > before.get("2", 0)


def test_etcd_killed_and_restarted(gateway_factory, upstream_factory, etcd_server):
    """etcd dies: sluice keeps its config and serves, sluice_etcd_up says 0; etcd back: the watch
    resumes and the writes made since are applied, the last one winning."""
    etcd = etcd_server()
    up = upstream_factory()
    port, admin = free_port(), free_port()
    etcd.put(KEY, config(port, up, admin, "1"))
    gateway_factory("", source=url(etcd))
    etcd.kill()
    assert wait_for(lambda: metric(get(admin, "/metrics")[2], "sluice_etcd_up") == 0, 5)
    assert served_header(port) == (200, "1")
    etcd.start()
    etcd.put(KEY, config(port, up, admin, "2"))
    last = etcd.put(KEY, config(port, up, admin, "3"))
    assert wait_for(lambda: served_header(port) == (200, "3"), 5)
    assert json.loads(get(admin, "/config")[2])["revision"] == last
    assert wait_for(lambda: metric(get(admin, "/metrics")[2], "sluice_etcd_up") == 1, 5)


def test_reload_reads_the_key_again(gateway_factory, upstream_factory, etcd_server):
    etcd = etcd_server()
    up = upstream_factory()
    port, admin = free_port(), free_port()
    etcd.put(KEY, config(port, up, admin, "1"))
    gateway_factory("", source=url(etcd))
    etcd.put(KEY, config(port, up, admin, "2"))
    assert wait_for(lambda: served_header(port) == (200, "2"), 2)
    req = urllib.request.Request(f"http://127.0.0.1:{admin}/config/reload", method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200
    history = json.loads(get(admin, "/stats")[2])["config"]["history"]
    assert history[-1]["trigger"] != history[-2]["trigger"]
    assert history[-1]["applied"] and history[-1]["generation"] == 3


def test_missing_key_and_bad_urls_are_refused_at_start(sluice_bin, etcd_server):
    etcd = etcd_server()
    run = subprocess.run([sluice_bin, "run", "-c", f"etcd://{etcd.address}/nothing/here"],
                         capture_output=True, text=True, timeout=20)
    assert run.returncode == 1
    assert "/nothing/here: the key does not exist" in run.stderr
    run = subprocess.run([sluice_bin, "run", "-c", "etcd://127.0.0.1:2379"],
                         capture_output=True, text=True, timeout=20)
    assert run.returncode != 0 and "no key" in run.stderr
    run = subprocess.run([sluice_bin, "validate", "-c", "etcd://example.com:2379/k"],
                         capture_output=True, text=True, timeout=20)
    assert run.returncode != 0 and "invalid address 'example.com:2379'" in run.stderr


def test_validate_reads_the_key(sluice_bin, upstream_factory, etcd_server):
    etcd = etcd_server()
    up = upstream_factory()
    revision = etcd.put(KEY, config(free_port(), up))
    run = subprocess.run([sluice_bin, "validate", "-c", url(etcd)], capture_output=True,
                         text=True, timeout=20)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"{url(etcd)}: ok (revision {revision})"
    etcd.put(KEY, "workers: two\n")
    run = subprocess.run([sluice_bin, "validate", "-c", url(etcd)], capture_output=True,
                         text=True, timeout=20)
    assert run.returncode == 1
    assert f"{url(etcd)}:1:10:" in run.stderr
