"""A stand-in OpenTelemetry collector: accepts OTLP/HTTP JSON on POST /v1/traces and checks each
request against the OTLP JSON mapping (opentelemetry-proto's ExportTraceServiceRequest) as it
arrives, so that a test sees either well-formed spans or the reason they are not."""
import http.server
import json
import re
import threading
import time

HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
DIGITS = re.compile(r"^[0-9]+$")


def check_value(value):
    assert isinstance(value, dict) and len(value) == 1, value
    (kind, v), = value.items()
    assert kind in ("stringValue", "intValue", "boolValue", "doubleValue"), kind
    if kind == "stringValue":
        assert isinstance(v, str)
    if kind == "intValue":  # int64 in the JSON mapping: a decimal string (or a number)
        assert isinstance(v, int) or (isinstance(v, str) and re.match(r"^-?[0-9]+$", v)), v


def check_attributes(attributes):
    assert isinstance(attributes, list)
    keys = [a["key"] for a in attributes]
    assert len(keys) == len(set(keys)), f"repeated attribute keys: {keys}"
    for a in attributes:
        assert set(a) == {"key", "value"}, a
        check_value(a["value"])


def check_span(span):
    assert HEX32.match(span["traceId"]) and span["traceId"] != "0" * 32, span
    assert HEX16.match(span["spanId"]) and span["spanId"] != "0" * 16, span
    if "parentSpanId" in span:
        assert HEX16.match(span["parentSpanId"]), span
    assert isinstance(span["name"], str) and span["name"], span
    assert span["kind"] in (1, 2, 3, 4, 5), span
    start, end = span["startTimeUnixNano"], span["endTimeUnixNano"]
    assert DIGITS.match(start) and DIGITS.match(end), span
    assert 0 < int(start) <= int(end), span
    assert abs(int(start) / 1e9 - time.time()) < 600, "start time is not now"
    check_attributes(span["attributes"])
    status = span.get("status", {})
    assert set(status) <= {"code", "message"}, status
    assert status.get("code", 0) in (0, 1, 2), status


def check_request(body):
    assert set(body) == {"resourceSpans"}, body.keys()
    spans = []
    for rs in body["resourceSpans"]:
        check_attributes(rs["resource"]["attributes"])
        for ss in rs["scopeSpans"]:
            assert isinstance(ss["scope"]["name"], str)
            for span in ss["spans"]:
                check_span(span)
                span["_resource"] = {a["key"]: a["value"] for a in rs["resource"]["attributes"]}
                spans.append(span)
    return spans


class Receiver:
    """Collects spans; `status` is what it answers (set 503 to play a failing collector)."""

    def __init__(self):
        self.spans = []
        self.requests = 0
        self.errors = []
        self.status = 200
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                try:
                    assert self.path == "/v1/traces", self.path
                    assert self.headers.get("Content-Type") == "application/json"
                    spans = check_request(json.loads(raw))
                    with receiver._lock:
                        receiver.requests += 1
                        if receiver.status == 200:
                            receiver.spans.extend(spans)
                except Exception as e:  # noqa: BLE001 - reported to the test
                    with receiver._lock:
                        receiver.errors.append(f"{type(e).__name__}: {e}")
                self.send_response(receiver.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}/v1/traces"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def wait_spans(self, n, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                assert not self.errors, self.errors
                if len(self.spans) >= n:
                    return list(self.spans)
            time.sleep(0.02)
        with self._lock:
            return list(self.spans)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def attrs(span):
    """A span's attributes as a dict, values unwrapped (intValue as int)."""
    out = {}
    for a in span["attributes"]:
        (kind, v), = a["value"].items()
        out[a["key"]] = int(v) if kind == "intValue" else v
    return out
