"""Tracing: W3C trace context followed, spans exported as OTLP/HTTP JSON to a collector (a
receiver here that checks the OTLP schema), the parent/child links across a retry."""
import json
import re
import threading
import time

import pytest

from conftest import basic_config, free_port
from support import upstream as upstream_mod
from support.client import fetch
from support.otlp_receiver import Receiver, attrs
from test_admin import get, metric

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$")


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


def tracing(receiver, ratio=1.0, extra=""):
    return (f"tracing: {{ otlp_endpoint: \"{receiver.endpoint}\", sample_ratio: {ratio}, "
            f"flush_interval: 50ms{extra} }}\n")


def recording_upstream(upstream_factory, statuses=()):
    """An upstream that records each request's traceparent and answers `statuses` in turn
    (200 once they run out)."""
    seen = []
    queue = list(statuses)
    lock = threading.Lock()

    def handler(conn):
        while (req := conn.read_request()) is not None:
            with lock:
                seen.append(req.header_all("traceparent"))
                status = queue.pop(0) if queue else 200
            conn.send(upstream_mod.response(status, b"x"))
    return upstream_factory(handler), seen


def test_a_retry_is_two_client_spans_under_the_server_span_of_the_callers_trace(
        gateway_factory, upstream_factory, receiver, tmp_path):
    up, seen = recording_upstream(upstream_factory, [503])
    port, admin = free_port(), free_port()
    log_path = tmp_path / "access.log"
    route = "    retry: { attempts: 2, on: [503], backoff_base: 1ms, backoff_max: 5ms }\n"
    g = gateway_factory(basic_config(
        port, [up.address], admin_port=admin, route_extra=route,
        top_extra=tracing(receiver, ratio=0) +
        f"access_log: {{ enabled: true, path: \"{log_path}\" }}\n"))
    r = fetch(port, "/cart?id=1", headers=[
        ("traceparent", f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"),
        ("tracestate", "vendor=opaque"),
        ("User-Agent", "tracing-test")])
    assert r.status == 200

    spans = receiver.wait_spans(3)
    assert len(spans) == 3, spans
    server = [s for s in spans if s["kind"] == 2]
    tries = sorted((s for s in spans if s["kind"] == 3), key=lambda s: attrs(s)["sluice.try"])
    assert len(server) == 1 and len(tries) == 2
    server = server[0]
    # The caller's trace is continued: same trace id, the caller's span as parent.
    assert {s["traceId"] for s in spans} == {CLIENT_TRACE}
    assert server["parentSpanId"] == CLIENT_SPAN
    assert all(t["parentSpanId"] == server["spanId"] for t in tries)
    assert len({s["spanId"] for s in spans}) == 3
    # The upstream saw each try's own span as its parent, and the caller's tracestate.
    assert [len(h) for h in seen] == [1, 1]
    sent = [TRACEPARENT.match(h[0]).groups() for h in seen]
    assert [s[0] for s in sent] == [CLIENT_TRACE, CLIENT_TRACE]
    assert [s[1] for s in sent] == [t["spanId"] for t in tries]
    assert [s[2] for s in sent] == ["01", "01"]
    # Attributes after the HTTP semantic conventions.
    a = attrs(server)
    assert server["name"] == "GET all"
    assert a["http.request.method"] == "GET" and a["url.path"] == "/cart"
    assert a["http.response.status_code"] == 200 and a["sluice.route"] == "all"
    assert a["sluice.cluster"] == "app" and a["sluice.upstream.attempts"] == 2
    assert a["user_agent.original"] == "tracing-test" and a["client.address"] == "127.0.0.1"
    assert server.get("status", {}).get("code", 0) == 0
    first, second = (attrs(t) for t in tries)
    assert first["http.response.status_code"] == 503 and tries[0]["status"]["code"] == 2
    assert second["http.response.status_code"] == 200 and "http.request.resend_count" not in first
    assert second["http.request.resend_count"] == 1
    assert first["server.address"] == "127.0.0.1" and first["server.port"] == up.port
    assert int(tries[0]["endTimeUnixNano"]) <= int(tries[1]["startTimeUnixNano"])
    assert int(server["startTimeUnixNano"]) <= int(tries[0]["startTimeUnixNano"])
    assert int(tries[1]["endTimeUnixNano"]) <= int(server["endTimeUnixNano"])
    assert server["_resource"]["service.name"] == {"stringValue": "sluice"}

    # The trace id is in the access log line, and the exporter counted its spans.
    g.signal(__import__("signal").SIGUSR1)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not log_path.read_text().strip():
        time.sleep(0.05)
    line = json.loads(log_path.read_text().splitlines()[0])
    assert line["trace_id"] == CLIENT_TRACE
    text = get(admin, "/metrics")[2]
    assert metric(text, "sluice_tracing_spans_total", result="exported") == 3
    assert metric(text, "sluice_tracing_spans_total", result="dropped") == 0


def test_sampling_follows_the_parent_else_the_ratio(gateway_factory, upstream_factory, receiver):
    up, seen = recording_upstream(upstream_factory)
    port = free_port()
    gateway_factory(basic_config(port, [up.address], top_extra=tracing(receiver, ratio=0)))
    # An unsampled parent: nothing recorded, the trace still carried on with a new parent id.
    assert fetch(port, headers=[("traceparent", f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-00")]).status == 200
    trace_id, parent, flags = TRACEPARENT.match(seen[-1][0]).groups()
    assert (trace_id, flags) == (CLIENT_TRACE, "00") and parent != CLIENT_SPAN
    # No parent at ratio 0: a new trace, not sampled. A broken traceparent counts as none.
    for headers in ([], [("traceparent", "00-zz-00f067aa0ba902b7-01")],
                    [("traceparent", f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"),
                     ("traceparent", f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01")]):
        assert fetch(port, headers=headers).status == 200
        trace_id, _, flags = TRACEPARENT.match(seen[-1][0]).groups()
        assert trace_id != CLIENT_TRACE and flags == "00"
        assert len(seen[-1]) == 1  # the client's are replaced, never forwarded beside ours
    time.sleep(0.3)
    assert receiver.spans == [] and receiver.requests == 0


def test_a_root_at_ratio_one_and_a_guard_verdict(gateway_factory, upstream_factory, receiver):
    up, seen = recording_upstream(upstream_factory)
    port = free_port()
    route = "    rate_limit: { rate: 1/m, burst: 1 }\n"
    gateway_factory(basic_config(port, [up.address], route_extra=route,
                                 top_extra=tracing(receiver, ratio=1)))
    assert fetch(port).status == 200
    assert fetch(port).status == 429
    spans = receiver.wait_spans(3)
    server = sorted((s for s in spans if s["kind"] == 2), key=lambda s: s["startTimeUnixNano"])
    assert len(server) == 2 and all("parentSpanId" not in s for s in server)
    assert TRACEPARENT.match(seen[0][0]).group(3) == "01"
    limited = attrs(server[1])
    assert limited["http.response.status_code"] == 429
    assert limited["sluice.guard"] == "rate_limit" and limited["sluice.guard.verdict"] == "limited"
    assert "sluice.upstream.attempts" not in limited
    assert server[1].get("status", {}).get("code", 0) == 0  # a 4xx is not the server's error


def test_a_dead_collector_costs_spans_not_requests(gateway_factory, upstream_factory):
    up, _ = recording_upstream(upstream_factory)
    port, admin, dead = free_port(), free_port(), free_port()
    g = gateway_factory(basic_config(
        port, [up.address], admin_port=admin,
        top_extra=f"tracing: {{ otlp_endpoint: http://127.0.0.1:{dead}/v1/traces, "
                  "sample_ratio: 1, flush_interval: 20ms, timeout: 200ms }\n"))
    started = time.monotonic()
    assert all(fetch(port).status == 200 for _ in range(20))
    assert time.monotonic() - started < 5
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        failed = metric(get(admin, "/metrics")[2], "sluice_tracing_spans_total", result="failed")
        if failed == 40:
            break
        time.sleep(0.05)
    assert failed == 40  # a server and a client span per request
    assert g.wait_log("span(s) not exported to")
