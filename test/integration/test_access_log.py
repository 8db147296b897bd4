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


def access_log_gateway(gateway_factory, upstream_factory, tmp_path, fields):
    up = upstream_factory()
    port = free_port()
    log_path = tmp_path / "access.log"
    field_list = f", fields: [{', '.join(fields)}]" if fields else ""
    gateway_factory(basic_config(
        port, [up.address],
        top_extra=f"access_log: {{ enabled: true, path: \"{log_path}\"{field_list} }}\n"))
    return port, log_path


def test_access_log_lines_reach_the_file_within_a_second(gateway_factory, upstream_factory,
                                                          tmp_path):
    port, log_path = access_log_gateway(gateway_factory, upstream_factory, tmp_path, ["path"])
    c = Client(port)
    for i in range(3):  # far less than any buffer: only the timed flush can send them
        assert c.request("GET", f"/r{i}").status == 200
    sent = time.monotonic()
    while len(log_path.read_text().splitlines()) < 3:
        assert time.monotonic() - sent < 1.5, "access log lines held back"
        time.sleep(0.02)
    assert [json.loads(l)["path"] for l in log_path.read_text().splitlines()] == ["/r0", "/r1", "/r2"]


def test_access_log_never_shows_half_a_line(gateway_factory, upstream_factory, tmp_path):
    # Lines of 3 KiB each, looked at between requests as tail -f or a log shipper would. A look
    # may fall inside a write(2) in progress (a large write is not atomic for readers); a moment
    # later that line must be whole. With stdio's 4 KiB buffer a line stayed cut until the next
    # flush, a second later.
    port, log_path = access_log_gateway(gateway_factory, upstream_factory, tmp_path,
                                        ["path", "user_agent"])
    agent = "a" * 3000
    c = Client(port)
    torn = 0
    for i in range(300):
        assert c.request("GET", f"/{i}", headers=[("User-Agent", agent)]).status == 200
        text = log_path.read_text() if log_path.exists() else ""
        if text and not text.endswith("\n"):
            time.sleep(0.02)
            again = log_path.read_text()
            assert again.find("\n", len(text) - 1) != -1, f"a line cut at byte {len(text)}"
            torn += 1
    deadline = time.monotonic() + 3
    while len(log_path.read_text().splitlines()) < 300 and time.monotonic() < deadline:
        time.sleep(0.02)
    lines = [json.loads(l) for l in log_path.read_text().splitlines()]
    assert len(lines) == 300 and all(l["user_agent"] == agent for l in lines)


def test_access_log_query_string_is_opt_in(gateway_factory, upstream_factory, tmp_path):
    port, log_path = access_log_gateway(gateway_factory, upstream_factory, tmp_path,
                                        ["path", "query"])
    c = Client(port)
    assert c.request("GET", "/search?q=a%20b&token=%22x%22").status == 200
    assert c.request("GET", "/plain").status == 200
    deadline = time.monotonic() + 3
    while len(log_path.read_text().splitlines()) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    lines = [json.loads(l) for l in log_path.read_text().splitlines()]
    assert lines == [{"path": "/search", "query": "q=a%20b&token=%22x%22"},
                     {"path": "/plain", "query": ""}]


def test_access_log_default_fields_leave_the_query_out(gateway_factory, upstream_factory,
                                                       tmp_path):
    port, log_path = access_log_gateway(gateway_factory, upstream_factory, tmp_path, None)
    assert Client(port).request("GET", "/s?secret=1").status == 200
    deadline = time.monotonic() + 3
    while not log_path.exists() or not log_path.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    line = json.loads(log_path.read_text().splitlines()[0])
    assert "query" not in line and line["path"] == "/s" and "user_agent" in line
