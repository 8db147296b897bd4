"""Bodies stream through with bounded memory: 1 GiB each way, RSS growth under 64 MiB."""
import hashlib

import pytest

from conftest import basic_config, free_port
from support.client import Client
from support import upstream as up_mod

GIB = 1 << 30
BLOCK = bytes(range(256)) * 4096  # 1 MiB
RSS_BUDGET_KB = 64 * 1024


def counting_upstream(conn):
    """Reads each request body without keeping it; answers with its size and digest."""
    while True:
        digest = hashlib.sha1()
        head = conn._read_until(b"\r\n\r\n")
        if head is None:
            return
        lines = head.decode("latin-1").split("\r\n")
        headers = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:] if ":" in l}
        method, target = lines[0].split(" ")[:2]
        if target.startswith("/download"):
            size = int(target.split("=")[1])
            chunked = "chunked" in target
            if chunked:
                conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                sent = 0
                while sent < size:
                    conn.send(b"%x\r\n" % len(BLOCK) + BLOCK + b"\r\n")
                    sent += len(BLOCK)
                conn.send(b"0\r\n\r\n")
            else:
                conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
                sent = 0
                while sent < size:
                    conn.send(BLOCK)
                    sent += len(BLOCK)
            continue
        n = conn.read_body_into(digest.update, length=int(headers.get("content-length", 0)),
                                chunked=headers.get("transfer-encoding", "").lower() == "chunked")
        body = f"{n} {digest.hexdigest()}".encode()
        conn.send(up_mod.response(200, body))


@pytest.fixture
def big(gateway_factory, upstream_factory):
    up = upstream_factory(counting_upstream)
    port = free_port()
    g = gateway_factory(basic_config(
        port, [up.address], listener_extra="    limits: { body: 2GiB }\n",
        cluster_extra="    io_timeout: 60s\n", route_extra="    timeout: 60s\n"))
    c = Client(port, timeout=120)
    assert c.request("POST", "/warm", body=b"x" * 100000).status == 200  # buffers exist now
    return g, c


def expected_digest(size):
    d = hashlib.sha1()
    for _ in range(size // len(BLOCK)):
        d.update(BLOCK)
    return d.hexdigest()


def test_1gib_upload_with_content_length(big):
    g, c = big
    before = g.rss_kb()
    c.send(b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % GIB)
    for _ in range(GIB // len(BLOCK)):
        c.send(BLOCK)
    r = c.read_response()
    assert r.status == 200
    n, digest = r.body.decode().split()
    assert int(n) == GIB and digest == expected_digest(GIB)
    assert g.rss_kb("VmHWM") - before < RSS_BUDGET_KB


def test_1gib_download_with_content_length(big):
    g, c = big
    before = g.rss_kb()
    got = [0]
    digest = hashlib.sha1()

    def sink(b):
        got[0] += len(b)
        digest.update(b)

    c.send(b"GET /download?size=%d HTTP/1.1\r\nHost: t\r\n\r\n" % GIB)
    r = c.read_response(sink=sink)
    assert r.status == 200 and r.complete
    assert got[0] == GIB and digest.hexdigest() == expected_digest(GIB)
    assert g.rss_kb("VmHWM") - before < RSS_BUDGET_KB


def test_chunked_upload_and_download(big):
    g, c = big
    size = 256 << 20
    before = g.rss_kb()
    c.send(b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
    for _ in range(size // len(BLOCK)):
        c.send(b"100000\r\n" + BLOCK + b"\r\n")
    c.send(b"0\r\n\r\n")
    r = c.read_response()
    n, digest = r.body.decode().split()
    assert int(n) == size and digest == expected_digest(size)
    got = [0]
    c.send(b"GET /download?chunked&size=%d HTTP/1.1\r\nHost: t\r\n\r\n" % size)
    r = c.read_response(sink=lambda b: got.__setitem__(0, got[0] + len(b)))
    assert r.status == 200 and r.complete and got[0] == size
    assert g.rss_kb("VmHWM") - before < RSS_BUDGET_KB
