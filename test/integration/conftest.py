"""Fixtures for black-box tests of the real sluice binary.

Every process a test starts (sluice, upstreams) binds 127.0.0.1 on a free port and is stopped by
its fixture, by PID, even when the test fails.
"""
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import textwrap
import threading
import time

import pytest

from support import upstream as upstream_mod  # noqa: F401  (re-exported for tests)
from support.host_process import HostProcess


def pytest_addoption(parser):
    parser.addoption("--sluice", default=os.environ.get("SLUICE_BIN", ""),
                     help="path of the sluice binary under test")


@pytest.fixture(scope="session")
def sluice_bin(request):
    path = request.config.getoption("--sluice")
    if not path:
        here = os.path.dirname(os.path.abspath(__file__))
        path = os.path.join(here, "..", "..", "build", "release", "sluice")
    path = os.path.abspath(path)
    assert os.access(path, os.X_OK), f"sluice binary not found at {path} (use --sluice)"
    return path


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gateway:
    """A running `sluice run` process."""

    def __init__(self, binary, config_text, extra_args=(), source=None):
        self.dir = tempfile.mkdtemp(prefix="sluice-test-")
        self.config_path = os.path.join(self.dir, "sluice.yaml")
        with open(self.config_path, "w") as f:
            f.write(config_text)
        self.stderr_lines = []
        self._ready = threading.Event()
        # `source`: what -c names instead of the written file (an etcd:// URL).
        self.proc = subprocess.Popen([binary, "run", "-c", source or self.config_path, *extra_args],
                                     stdout=open(os.path.join(self.dir, "stdout"), "w"),
                                     stderr=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        if not self._ready.wait(15):
            self.stop()
            raise RuntimeError("sluice did not start:\n" + "".join(self.stderr_lines))

    def _read_stderr(self):
        for line in self.proc.stderr:
            self.stderr_lines.append(line)
            if "serving on" in line:
                self._ready.set()
        self._ready.set()  # EOF: the process died; the waiter reports it

    def wait_log(self, text, timeout=5):
        """Whether a diagnostic line containing `text` arrives within `timeout` seconds (lines
        are read by a thread: one written just now may not be in stderr_lines yet)."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.stderr_lines):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    @property
    def pid(self):
        return self.proc.pid

    def signal(self, signo):
        self.proc.send_signal(signo)

    def wait(self, timeout=30):
        code = self.proc.wait(timeout=timeout)
        # The reader may not have seen the last lines yet: they are read up to EOF, which comes
        # with the exit, so callers that look at stderr_lines after wait() see all of them.
        self._reader.join(timeout=5)
        return code

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)

    def rss_kb(self, key="VmRSS"):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return -1


@pytest.fixture
def gateway_factory(sluice_bin):
    started = []

    def start(config_text, extra_args=(), source=None):
        g = Gateway(sluice_bin, textwrap.dedent(config_text), extra_args, source)
        started.append(g)
        return g

    yield start
    for g in started:
        g.stop()
        # pytest shows a fixture's output only for a failed test: there, sluice's own account of
        # what happened (a sanitizer report, an abort's cause) is next to the assertion.
        if g.stderr_lines:
            print(f"--- sluice (pid {g.pid}) stderr, last 150 lines ---")
            print("".join(g.stderr_lines[-150:]), end="")
        shutil.rmtree(g.dir, ignore_errors=True)


@pytest.fixture
def upstream_factory():
    started = []

    def start(handler=None, **kwargs):
        u = upstream_mod.Upstream(handler or upstream_mod.echo, **kwargs)
        started.append(u)
        return u

    yield start
    for u in started:
        u.stop()


@pytest.fixture
def host_process():
    """Starts upstream hosts as processes (support/host_process.py); kills them at the end."""
    started = []

    def start(port, name, health_status=200):
        h = HostProcess(port, name, health_status)
        started.append(h)
        return h

    yield start
    for h in started:
        h.kill()


def basic_config(listen_port, upstream_addrs, admin_port=None, listener_extra="", route_extra="",
                 cluster_extra="", top_extra="", workers=1):
    endpoints = "\n".join(f"      - {{ address: \"{a}\" }}" for a in upstream_addrs)
    admin = f"admin: {{ address: 127.0.0.1:{admin_port} }}\n" if admin_port else ""
    return (f"workers: {workers}\n{top_extra}{admin}"
            f"listeners:\n  - name: public\n    address: 127.0.0.1:{listen_port}\n{listener_extra}"
            f"clusters:\n  - name: app\n    endpoints:\n{endpoints}\n{cluster_extra}"
            f"routes:\n  - name: all\n    cluster: app\n{route_extra}")


@pytest.fixture
def proxy(gateway_factory, upstream_factory):
    """One echo upstream behind a one-worker sluice; returns (gateway, upstream, port)."""
    up = upstream_factory()
    port = free_port()
    g = gateway_factory(basic_config(port, [up.address]))
    return g, up, port


@contextlib.contextmanager
def running_demo(sluice_bin):
    """`sluice demo` on free ports, once it serves: yields (proxy port, admin port); stopped
    (SIGTERM, by PID) on the way out."""
    port, admin = free_port(), free_port()
    p = subprocess.Popen([sluice_bin, "demo", "--listen", f"127.0.0.1:{port}", "--admin",
                          f"127.0.0.1:{admin}"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    ready = threading.Event()

    def read():
        for line in p.stderr:
            if "serving on" in line:
                ready.set()
        ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert ready.wait(20) and p.poll() is None
        yield port, admin
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=15)
        reader.join(timeout=5)
