"""A scriptable HTTP/1.1 upstream that records every byte it receives.

Each accepted connection runs `handler(conn)` in its own thread. `conn.read_request()` parses one
request (Content-Length or chunked body, de-chunked) and returns it, or None at EOF; `conn.send()`
writes raw bytes, so a handler can answer correctly, slowly, with garbage or cut short. Every byte
received on every connection is kept in `upstream.received` (one bytes object per connection),
which is what smuggling tests assert on.
"""
import json
import socket
import threading
import time


class Request:
    def __init__(self, method, target, version, headers, body):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers  # list of (name, value) as received
        self.body = body

    def header(self, name, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]


class Conn:
    def __init__(self, sock, record):
        self.sock = sock
        self.buf = b""
        self.record = record  # bytearray shared with the Upstream

    def _fill(self):
        data = self.sock.recv(1 << 20)
        if not data:
            return False
        self.record.extend(data)
        self.buf += data
        return True

    def _read_until(self, marker):
        while marker not in self.buf:
            if not self._fill():
                return None
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def _read_exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                return None
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_body_into(self, sink, length=None, chunked=False):
        """Streams a body to sink(bytes) without holding it; returns the byte count."""
        total = 0
        if chunked:
            while True:
                line = self._read_until(b"\r\n")
                if line is None:
                    return total  # the sender went away mid-body
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    while self._read_until(b"\r\n") not in (b"\r\n", None):
                        pass
                    return total
                while size > 0:
                    if not self.buf and not self._fill():
                        return total
                    take = self.buf[:size]
                    self.buf = self.buf[len(take):]
                    sink(take)
                    size -= len(take)
                    total += len(take)
                self._read_exact(2)
        remaining = length or 0
        while remaining > 0:
            if not self.buf and not self._fill():
                return total
            take = self.buf[:remaining]
            self.buf = self.buf[len(take):]
            sink(take)
            remaining -= len(take)
            total += len(take)
        return total

    def read_request(self, keep_body=True):
        head = self._read_until(b"\r\n\r\n")
        if head is None:
            return None
        lines = head[:-4].split(b"\r\n")
        method, target, version = lines[0].decode("latin-1").split(" ", 2)
        headers = []
        for line in lines[1:]:
            k, v = line.decode("latin-1").split(":", 1)
            headers.append((k, v.strip()))
        req = Request(method, target, version, headers, b"")
        te = req.header("transfer-encoding")
        cl = req.header("content-length")
        parts = []
        sink = parts.append if keep_body else (lambda b: None)
        if te and te.lower() == "chunked":
            req.body_length = self.read_body_into(sink, chunked=True)
        elif cl is not None:
            req.body_length = self.read_body_into(sink, length=int(cl))
        else:
            req.body_length = 0
        req.body = b"".join(parts)
        return req

    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def response(status=200, body=b"", headers=(), reason="OK"):
    out = [f"HTTP/1.1 {status} {reason}".encode()]
    have_len = any(k.lower() in ("content-length", "transfer-encoding") for k, _ in headers)
    for k, v in headers:
        out.append(f"{k}: {v}".encode())
    if not have_len:
        out.append(f"Content-Length: {len(body)}".encode())
    return b"\r\n".join(out) + b"\r\n\r\n" + body


def describe(req):
    return json.dumps({"method": req.method, "target": req.target, "version": req.version,
                       "headers": req.headers, "body_length": getattr(req, "body_length", 0),
                       "body": req.body.decode("latin-1")}).encode()


def echo(conn):
    """Answers every request with a JSON description of what arrived."""
    while True:
        req = conn.read_request()
        if req is None:
            return
        body = b"" if req.method == "HEAD" else describe(req)
        conn.send(response(200, body, [("Content-Type", "application/json")]))
        if (req.header("connection") or "").lower() == "close":
            return


def named(name, status=200):
    """A handler that answers every request with `status` and its own name as the body."""
    def handler(conn):
        while conn.read_request() is not None:
            conn.send(response(status, name.encode()))
    return handler


class Switchable:
    """A handler answering every request with `status` (b"x" as the body); the test changes
    `status` while it runs (a backend that starts or stops failing)."""

    def __init__(self, status=200):
        self.status = status

    def __call__(self, conn):
        while conn.read_request() is not None:
            conn.send(response(self.status, b"x"))


def slow(delay, body=b"slow"):
    """A handler that answers every request with `body` after `delay` seconds."""
    def handler(conn):
        while conn.read_request() is not None:
            time.sleep(delay)
            conn.send(response(200, body))
    return handler


class Upstream:
    def __init__(self, handler, backlog=128, port=0):
        self.handler = handler
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.received = []        # one bytearray per accepted connection
        self.connections = 0
        self.requests = 0         # handlers may count with self.count()
        self._lock = threading.Lock()
        self._stop = False
        self._conns = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def count(self):
        with self._lock:
            self.requests += 1

    def all_received(self):
        return b"".join(bytes(r) for r in self.received)

    def _accept(self):
        while not self._stop:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            record = bytearray()
            with self._lock:
                self.received.append(record)
                self.connections += 1
            conn = Conn(s, record)
            self._conns.append(conn)
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn):
        try:
            self.handler(conn)
        except (OSError, ValueError):
            pass
        finally:
            conn.close()

    def stop(self):
        self._stop = True
        try:
            self.sock.close()
        except OSError:
            pass
        for c in self._conns:
            c.close()
