"""An upstream host in its own process, so that a test can kill it for real (SIGKILL: no FIN
from a graceful close, just gone) and start it again on the same address.

    python3 host_process.py PORT NAME HEALTH_STATUS

answers GET /healthz with HEALTH_STATUS, GET /slow with 20 KiB trickled out over about a second
(a slow download), and every other request (bodies are read whole: uploads) with 200 and NAME as
the body. It prints "ready" once listening. Tests start it through the `host_process` fixture (conftest),
which kills it by PID at the end.
"""
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


class HostProcess:
    def __init__(self, port, name, health_status=200):
        self.port = port
        self.name = name
        self.address = f"127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), str(port), name, str(health_status)],
            stdout=subprocess.PIPE, text=True, cwd=os.path.dirname(HERE))
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.kill()
            raise RuntimeError(f"host {name} on port {port} did not start: {line!r}")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


def main():
    sys.path.insert(0, os.path.dirname(HERE))
    from support import upstream  # noqa: E402  (the path is set just above)

    port, name, health_status = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])

    def handler(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            if req.target.startswith("/healthz"):
                conn.send(upstream.response(health_status, b"health"))
            elif req.target.startswith("/slow"):
                conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 20480\r\n\r\n")
                for _ in range(20):
                    time.sleep(0.05)
                    conn.send(b"s" * 1024)
            else:
                conn.send(upstream.response(200, name.encode()))

    upstream.Upstream(handler, port=port)
    print("ready", flush=True)
    signal.pause()


if __name__ == "__main__":
    main()
