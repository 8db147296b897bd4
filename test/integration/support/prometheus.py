"""A real Prometheus server (Debian's `prometheus` package, installed by scripts/setup.sh) that
scrapes what a test points it at, for tests of what the dashboards and alert rules in deploy/ ask
of /metrics.

    prom = Prometheus(binary, port, targets=["127.0.0.1:9901"], rule_files=[...])
    prom.wait_target_up("127.0.0.1:9901")
    prom.query('sum(rate(sluice_requests_total[5s]))')   # -> (result list, None) or (None, error)
    prom.stop()

It listens on 127.0.0.1:port, keeps its TSDB in a temporary directory of its own, scrapes and
evaluates rules every `interval`, and logs to a file in that directory (`log_tail()`, for failure
messages). `stop()` ends it by PID (SIGTERM, then SIGKILL) and removes the directory.
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request


class Prometheus:
    def __init__(self, binary, port, targets, rule_files=(), job="sluice", interval="1s"):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.dir = tempfile.mkdtemp(prefix="sluice-prometheus-")
        self.config_path = os.path.join(self.dir, "prometheus.yml")
        self.log_path = os.path.join(self.dir, "prometheus.log")
        # JSON is YAML: no YAML library needed to write the config.
        config = {
            "global": {"scrape_interval": interval, "scrape_timeout": interval,
                       "evaluation_interval": interval},
            "rule_files": [os.path.abspath(p) for p in rule_files],
            "scrape_configs": [{"job_name": job, "metrics_path": "/metrics",
                                "static_configs": [{"targets": list(targets)}]}],
        }
        with open(self.config_path, "w") as f:
            json.dump(config, f, indent=2)
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={self.config_path}",
             f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=self._log, stderr=subprocess.STDOUT, cwd=self.dir)
        try:
            self._wait_ready(30)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"prometheus exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"prometheus not ready within {timeout} s:\n{self.log_tail()}")

    def log_tail(self, lines=30):
        try:
            with open(self.log_path) as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def api(self, path, **params):
        """GET (or POST, with params) /api/v1/<path>: the decoded JSON answer, errors included."""
        data = urllib.parse.urlencode(params).encode() if params else None
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}", data=data, timeout=10) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:  # 400/422: a bad query; the body says why
            return json.load(e)

    def query(self, expr):
        """An instant query: (result, None) on success, (None, "errorType: error") on failure."""
        answer = self.api("query", query=expr)
        if answer.get("status") != "success":
            return None, f"{answer.get('errorType')}: {answer.get('error')}"
        return answer["data"]["result"], None

    def targets(self):
        return self.api("targets")["data"]["activeTargets"]

    def wait_target_up(self, address, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t in self.targets():
                if t["labels"].get("instance") == address and t["health"] == "up":
                    return
            time.sleep(0.2)
        raise AssertionError(f"target {address} not up within {timeout} s: {self.targets()}")

    def rules(self):
        """Every rule group Prometheus loaded, with each rule's query, state, health, lastError."""
        return self.api("rules")["data"]["groups"]

    def alerts(self):
        """The pending and firing alerts."""
        return self.api("alerts")["data"]["alerts"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
