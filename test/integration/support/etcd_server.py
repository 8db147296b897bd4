"""A real etcd member (Debian's `etcd-server`, installed by scripts/setup.sh) on loopback ports of
the test's choosing, with its data in a fresh directory, for tests of sluice's etcd features, and
a small client of etcd's v3 JSON API (no etcdctl needed).

    e = EtcdServer(client_port, peer_port)   # started and answering
    e.put("/sluice/config", text)            # -> the revision of the write
    e.get("/sluice/config")                  # -> (value, mod_revision) or None
    lease = e.grant(2); e.put(k, v, lease)   # a key that goes when the lease ends
    e.kill(); e.start()                      # SIGKILL by PID, and again with the same data
    e.stop()                                 # SIGTERM, then SIGKILL; removes its directory
"""
import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request


def _b64(text):
    data = text.encode() if isinstance(text, str) else text
    return base64.b64encode(data).decode()


class EtcdServer:
    def __init__(self, port, peer_port, binary="etcd"):
        self.port = port
        self.peer_port = peer_port
        self.binary = binary
        self.dir = tempfile.mkdtemp(prefix="sluice-etcd-")
        self.proc = None
        self.start()

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        peer = f"http://127.0.0.1:{self.peer_port}"
        client = f"http://127.0.0.1:{self.port}"
        args = [self.binary, "--name", "sluice-test", "--data-dir", os.path.join(self.dir, "data"),
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", f"sluice-test={peer}", "--log-level", "error"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "etcd.log"), "a"))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"etcd exited ({self.proc.returncode})")
            try:
                self.call("/v3/kv/range", {"key": _b64("health")}, timeout=1)
                return
            except (OSError, urllib.error.URLError):
                time.sleep(0.05)
        raise RuntimeError("etcd did not answer within 15 s")

    def call(self, path, body, timeout=5):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}",
                                     data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())

    def put(self, key, value, lease=None):
        body = {"key": _b64(key), "value": _b64(value)}
        if lease:
            body["lease"] = str(lease)
        return int(self.call("/v3/kv/put", body)["header"]["revision"])

    def get(self, key):
        kvs = self.call("/v3/kv/range", {"key": _b64(key)}).get("kvs", [])
        if not kvs:
            return None
        return base64.b64decode(kvs[0].get("value", "")).decode(), int(kvs[0]["mod_revision"])

    def delete(self, key):
        return int(self.call("/v3/kv/deleterange", {"key": _b64(key)})["header"]["revision"])

    def grant(self, ttl):
        return int(self.call("/v3/lease/grant", {"TTL": str(ttl)})["ID"])

    def keepalive(self, lease):
        self.call("/v3/lease/keepalive", {"ID": str(lease)})

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
