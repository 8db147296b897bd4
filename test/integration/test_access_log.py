"""The JSON access log: off by default, configurable fields, one object per line."""
import json
import os
import signal
import time

from conftest import basic_config, free_port
from support.client import Client


def test_access_log_writes_json_lines(gateway_factory, upstream_factory, tmp_path):
    up = upstream_factory()
    port = free_port()
    log_path = tmp_path / "access.log"
    g = gateway_factory(basic_config(
        port, [up.address],
        top_extra=f"access_log: {{ enabled: true, path: \"{log_path}\", "
                  "fields: [method, path, status, route, upstream, request_id, duration_ms] }\n"))
    c = Client(port)
    assert c.request("GET", "/a?x=1", headers=[("X-Request-Id", "rid-1")]).status == 200
    c.send(b'GET /weird"\\path HTTP/1.1\r\nHost: t\r\n\r\n')
    assert c.read_response().status == 200
    g.signal(signal.SIGTERM)
    assert g.wait() == 0
    lines = [json.loads(l) for l in log_path.read_text().splitlines()]
    assert len(lines) == 2
    first = lines[0]
    assert list(first) == ["method", "path", "status", "route", "upstream", "request_id", "duration_ms"]
    assert first["method"] == "GET" and first["path"] == "/a" and first["status"] == 200
    assert first["route"] == "all" and first["upstream"] == up.address and first["request_id"] == "rid-1"
    assert lines[1]["path"] == '/weird"\\path'


def test_access_log_is_off_by_default(proxy):
    g, up, port = proxy
    assert Client(port).request("GET", "/").status == 200
    out = os.path.join(g.dir, "stdout")
    g.signal(signal.SIGTERM)
    assert g.wait() == 0
    assert open(out).read() == ""


def test_sigusr1_reopens_the_access_log_for_logrotate(gateway_factory, upstream_factory, tmp_path):
    up = upstream_factory()
    port = free_port()
    log_path = tmp_path / "access.log"
    g = gateway_factory(basic_config(
        port, [up.address],
        top_extra=f"access_log: {{ enabled: true, path: \"{log_path}\", fields: [path] }}\n"))
    c = Client(port)
    assert c.request("GET", "/before").status == 200
    time.sleep(0.2)  # written by the log's own thread
    os.rename(log_path, tmp_path / "access.log.1")  # what logrotate does, then it signals
    g.signal(signal.SIGUSR1)
    deadline = time.monotonic() + 5
    while not any("access log reopened" in line for line in g.stderr_lines):
        assert time.monotonic() < deadline, g.stderr_lines
        time.sleep(0.02)
    assert c.request("GET", "/after").status == 200
    g.signal(signal.SIGTERM)
    assert g.wait() == 0
    assert [json.loads(l)["path"] for l in (tmp_path / "access.log.1").read_text().splitlines()] \
        == ["/before"]
    assert [json.loads(l)["path"] for l in log_path.read_text().splitlines()] == ["/after"]
