"""A real Redis server (Debian's `redis-server`, installed by scripts/setup.sh) on a loopback port
of the test's choosing, with nothing persisted, for tests of sluice's distributed features.

    r = RedisServer(port)                 # started and answering PING
    r.cli("INFO", "commandstats")         # redis-cli's output
    r.pause(); r.resume()                 # SIGSTOP / SIGCONT (a stall)
    r.kill()                              # SIGKILL, by PID (a crash)
    r.start()                             # again on the same port, empty
    r.stop()                              # SIGTERM, then SIGKILL; removes its directory
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time


class RedisServer:
    def __init__(self, port, password=None, binary="redis-server"):
        self.port = port
        self.password = password
        self.binary = binary
        self.dir = tempfile.mkdtemp(prefix="sluice-redis-")
        self.proc = None
        self.start()

    def start(self):
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", self.dir, "--daemonize", "no",
                "--logfile", os.path.join(self.dir, "redis.log")]
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited ({self.proc.returncode})")
            try:
                if self.cli("PING", timeout=1).strip() == "PONG":
                    return
            except subprocess.SubprocessError:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not answer within 10 s")

    def cli(self, *args, timeout=5):
        cmd = ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port)]
        if self.password:
            cmd += ["--no-auth-warning", "-a", self.password]
        return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True,
                              timeout=timeout, check=True).stdout

    def command_calls(self, *names):
        """Calls of the named commands since the last CONFIG RESETSTAT (INFO commandstats)."""
        total = 0
        for line in self.cli("INFO", "commandstats").splitlines():
            if not line.startswith("cmdstat_"):
                continue
            name, _, fields = line[len("cmdstat_"):].partition(":")
            if name in names:
                total += int(dict(f.split("=") for f in fields.split(","))["calls"])
        return total

    def pause(self):
        """SIGSTOP: the server keeps its connections and answers nothing (a stall)."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

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
