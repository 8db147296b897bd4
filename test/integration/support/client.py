"""A raw HTTP/1.1 client: sends exact bytes, parses exactly one response at a time."""
import socket


class Response:
    def __init__(self, status, reason, headers, body, complete):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value)
        self.body = body
        self.complete = complete  # False: the connection closed before the framing said the end

    def header(self, name, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]


class Client:
    def __init__(self, port, host="127.0.0.1", timeout=10, source=None):
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        data = self.sock.recv(1 << 20)
        if not data:
            return False
        self.buf += data
        return True

    def closed(self, timeout=5):
        """True when the server has closed the connection (EOF or reset), with no extra bytes."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return not self.buf
                self.buf += data
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def read_response(self, head_request=False, sink=None):
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                raise ConnectionError("closed before a response head: %r" % self.buf[:200])
        i = self.buf.index(b"\r\n\r\n")
        head, self.buf = self.buf[:i], self.buf[i + 4:]
        lines = head.split(b"\r\n")
        version, status, *reason = lines[0].decode("latin-1").split(" ", 2)
        status = int(status)
        headers = []
        for line in lines[1:]:
            k, v = line.decode("latin-1").split(":", 1)
            headers.append((k, v.strip()))
        resp = Response(status, reason[0] if reason else "", headers, b"", True)
        if status < 200 or status in (204, 304) or head_request:
            return resp
        parts = []
        put = sink or parts.append
        te = resp.header("transfer-encoding")
        cl = resp.header("content-length")
        if te is not None:
            assert te.lower() == "chunked", te
            while True:
                while b"\r\n" not in self.buf:
                    if not self._fill():
                        resp.complete = False
                        resp.body = b"".join(parts)
                        return resp
                j = self.buf.index(b"\r\n")
                size = int(self.buf[:j].split(b";")[0], 16)
                self.buf = self.buf[j + 2:]
                if size == 0:
                    while b"\r\n" not in self.buf:
                        if not self._fill():
                            resp.complete = False
                            break
                    self.buf = self.buf[self.buf.index(b"\r\n") + 2:] if resp.complete else self.buf
                    break
                while len(self.buf) < size + 2:
                    if not self._fill():
                        resp.complete = False
                        put(self.buf)
                        self.buf = b""
                        resp.body = b"".join(parts)
                        return resp
                put(self.buf[:size])
                self.buf = self.buf[size + 2:]
        elif cl is not None:
            remaining = int(cl)
            while remaining > 0:
                if not self.buf and not self._fill():
                    resp.complete = False
                    break
                take = self.buf[:remaining]
                self.buf = self.buf[len(take):]
                put(take)
                remaining -= len(take)
        else:
            while self._fill():
                pass
            put(self.buf)
            self.buf = b""
        resp.body = b"".join(parts)
        return resp

    def request(self, method="GET", path="/", headers=(), body=None, host="test"):
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
        lines += [f"{k}: {v}" for k, v in headers]
        if body is not None and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in headers):
            lines.append(f"Content-Length: {len(body)}")
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
        return self.read_response(head_request=(method == "HEAD"))

    def close(self):
        self.sock.close()


def fetch(port, path="/", headers=()):
    """One GET on a connection of its own: the response."""
    c = Client(port)
    try:
        return c.request("GET", path, headers=headers)
    finally:
        c.close()
