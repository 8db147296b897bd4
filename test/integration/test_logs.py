"""The diagnostic log: levels from the config, --log-level and the admin listener; JSON lines."""
import json
import signal
import time
import urllib.request

from conftest import basic_config, free_port
from support.client import Client
from test_admin import get, metric


def put(port, path):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method="PUT")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def reload_and_wait(g, admin, generation):
    g.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while metric(get(admin, "/metrics")[2], "sluice_config_generation") != generation:
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_json_lines_with_utc_time(gateway_factory):
    port, admin = free_port(), free_port()
    g = gateway_factory(basic_config(port, ["127.0.0.1:9"], admin_port=admin,
                                     top_extra="log: { format: json }\n"))
    banner = next(l for l in g.stderr_lines if "serving on" in l)
    line = json.loads(banner)
    assert list(line) == ["time", "level", "msg"]
    assert line["level"] == "info" and line["time"].endswith("Z") and "T" in line["time"]


def test_level_changes_at_run_time_and_a_reload_keeps_it(gateway_factory):
    port, admin = free_port(), free_port()
    g = gateway_factory(basic_config(port, ["127.0.0.1:9"], admin_port=admin))
    assert get(admin, "/log")[0] == 200 and json.loads(get(admin, "/log")[2]) == {"level": "info"}
    assert put(admin, "/log?level=warn") == (200, {"level": "warn"})
    reload_and_wait(g, admin, 2)  # the config's log section did not change: warn holds
    assert not any("reload (SIGHUP)" in l for l in g.stderr_lines)
    assert put(admin, "/log?level=info") == (200, {"level": "info"})
    reload_and_wait(g, admin, 3)
    deadline = time.monotonic() + 5
    while not any("reload (SIGHUP)" in l for l in g.stderr_lines):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    status, body = put(admin, "/log?level=loud")
    assert status == 400 and "level=" in body["error"]


def test_the_flag_wins_over_the_config(gateway_factory):
    port, admin = free_port(), free_port()
    gateway_factory(basic_config(port, ["127.0.0.1:9"], admin_port=admin,
                                 top_extra="log: { level: error }\n"),
                    extra_args=["--log-level", "debug"])
    assert json.loads(get(admin, "/log")[2]) == {"level": "debug"}


def wait_line(g, text, timeout=5):
    deadline = time.monotonic() + timeout
    while not any(text in l for l in g.stderr_lines):
        assert time.monotonic() < deadline, f"no line with {text!r}:\n" + "".join(g.stderr_lines)
        time.sleep(0.02)


def test_upstream_failures_and_breaker_transitions_are_logged_without_flooding(gateway_factory):
    port, admin = free_port(), free_port()
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there: every try is refused
    g = gateway_factory(basic_config(
        port, [dead], admin_port=admin,
        route_extra="    circuit_breaker: { window: 10, minimum_calls: 5, open_duration: 30s }\n"))
    for _ in range(40):
        c = Client(port)
        assert c.request("GET", "/").status in (502, 503)
        c.close()
    wait_line(g, "upstream app: connect_failure (route all, host " + dead)
    wait_line(g, "circuit breaker route all: closed -> open")
    failures = [l for l in g.stderr_lines if "upstream app: connect_failure" in l]
    assert 1 <= len(failures) <= 6, failures  # 5 at once, then one a second
