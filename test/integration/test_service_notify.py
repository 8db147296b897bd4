"""sd_notify: what a Type=notify systemd unit hears from `sluice run` (deploy/systemd/).

A datagram socket in a temporary directory stands in for systemd's: sluice is started with
NOTIFY_SOCKET naming it (and WATCHDOG_USEC for the watchdog), as systemd does.
"""
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import basic_config, free_port
from support.client import Client


class NotifySocket:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sluice-notify-")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)

    def next(self, timeout):
        """The next message as {field: value}, or None after `timeout` seconds."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            return None
        return dict(line.split("=", 1) for line in data.decode().split("\n") if line)

    def until(self, field, timeout=10):
        """Messages up to and including the first with `field`; fails after `timeout`."""
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = self.next(deadline - time.monotonic())
            if m is None:
                break
            seen.append(m)
            if field in m:
                return seen
        pytest.fail(f"no {field} within {timeout} s; got {seen}")

    def close(self):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def notify():
    n = NotifySocket()
    yield n
    n.close()


@contextlib.contextmanager
def sluice_under(sluice_bin, notify, config_text, **env):
    """`sluice run` with NOTIFY_SOCKET (and `env`) set; SIGKILLed by PID if still running."""
    config_path = os.path.join(notify.dir, "sluice.yaml")
    with open(config_path, "w") as f:
        f.write(config_text)
    environ = {k: v for k, v in os.environ.items()
               if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
    environ.update(NOTIFY_SOCKET=notify.path, **env)
    log = open(os.path.join(notify.dir, "stderr"), "w")
    p = subprocess.Popen([sluice_bin, "run", "-c", config_path], env=environ,
                         stdout=subprocess.DEVNULL, stderr=log)
    try:
        yield p, config_path
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        log.close()


def get_status(port):
    c = Client(port)
    try:
        return c.request("GET", "/").status
    finally:
        c.close()


def fields(messages):
    return [sorted(m) for m in messages]


def test_ready_reload_and_stopping(sluice_bin, notify, upstream_factory):
    up = upstream_factory()
    port = free_port()
    cfg = basic_config(port, [up.address])
    with sluice_under(sluice_bin, notify, cfg) as (p, config_path):
        first = notify.until("READY")
        ready = first[-1]
        # READY=1 means the listener takes connections: a request sent at once is answered.
        assert get_status(port) == 200
        assert ready["READY"] == "1"
        assert ready["MAINPID"] == str(p.pid)
        assert ready["STATUS"] == f"serving generation 1 on 127.0.0.1:{port}"
        assert all("READY" not in m and "RELOADING" not in m for m in first[:-1])

        # A reload that applies: RELOADING=1 (with the monotonic clock's now), then READY=1.
        with open(config_path, "a") as f:
            f.write("    timeout: 7s\n")
        before = time.monotonic()
        p.send_signal(signal.SIGHUP)
        reloading, ready = notify.next(10), notify.next(10)
        assert reloading is not None and reloading["RELOADING"] == "1", reloading
        assert abs(int(reloading["MONOTONIC_USEC"]) / 1e6 - before) < 5
        assert ready is not None and ready["READY"] == "1", ready
        assert ready["STATUS"] == f"serving generation 2 on 127.0.0.1:{port}"

        # A reload that is refused: still READY=1 afterwards, the status says so.
        with open(config_path, "a") as f:
            f.write("    no_such_key: 1\n")
        p.send_signal(signal.SIGHUP)
        reloading, ready = notify.next(10), notify.next(10)
        assert reloading is not None and reloading["RELOADING"] == "1", reloading
        assert ready is not None and ready["READY"] == "1", ready
        assert ready["STATUS"].startswith("reload refused (1 problem"), ready
        assert ready["STATUS"].endswith(f"serving generation 2 on 127.0.0.1:{port}")
        assert get_status(port) == 200

        p.send_signal(signal.SIGTERM)
        stopping = notify.next(10)
        assert stopping is not None and stopping.get("STOPPING") == "1", stopping
        assert stopping["STATUS"].startswith("draining")
        assert p.wait(timeout=15) == 0
        assert notify.next(0.2) is None  # nothing after STOPPING=1


def test_no_ready_when_a_listener_cannot_be_bound(sluice_bin, notify, upstream_factory):
    up = upstream_factory()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with sluice_under(sluice_bin, notify, basic_config(port, [up.address])) as (p, _):
            assert p.wait(timeout=15) == 1
    assert notify.next(0.2) is None


def test_watchdog_pings(sluice_bin, notify, upstream_factory):
    up = upstream_factory()
    port = free_port()
    # 200 ms: pings every 100 ms, from the main loop.
    with sluice_under(sluice_bin, notify, basic_config(port, [up.address]),
                      WATCHDOG_USEC="200000") as (p, _):
        notify.until("READY")
        start = time.monotonic()
        pings = 0
        while time.monotonic() - start < 1.0:
            m = notify.next(0.5)
            assert m == {"WATCHDOG": "1"}, m
            pings += 1
        assert 7 <= pings <= 13, pings
        # Paused (SIGSTOP stands in for a hung main loop), it pings no more.
        p.send_signal(signal.SIGSTOP)
        while notify.next(0.05) is not None:
            pass
        assert notify.next(0.5) is None
        p.send_signal(signal.SIGCONT)
        assert notify.next(1) == {"WATCHDOG": "1"}


def test_watchdog_of_another_process_is_not_pinged(sluice_bin, notify, upstream_factory):
    up = upstream_factory()
    port = free_port()
    # WATCHDOG_PID names another process (sd_watchdog_enabled(3)): not sluice's watchdog.
    with sluice_under(sluice_bin, notify, basic_config(port, [up.address]),
                      WATCHDOG_USEC="200000", WATCHDOG_PID=str(os.getpid())) as (p, _):
        notify.until("READY")
        assert notify.next(0.6) is None
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=15) == 0
