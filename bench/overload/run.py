#!/usr/bin/python3
"""The overload benchmark: what a proxy does for a service that is pushed past its capacity.

Runs five scenarios against the same capacity-limited backend(s), straight (`direct`) and
behind nginx, HAProxy and sluice, in the same run, with the load generator and the backends on
one CPU and the proxy under test alone on the other (docs/overload.md has the why of every
choice):

  ramp      offered load 0.5x .. 3x capacity, one host: goodput, latency, fast rejections,
            the backend's queue
  retry     every host fails 30 % of requests (503): load amplification at the backends,
            client-visible success
  slow      one host of three becomes 10x slower: p99 and goodput before and after
  kill      one host of three killed mid-run and restarted: client errors, time to full service
  recovery  0.5x, then 3x, then 0.5x again, one host: time until latency is back at baseline

  bench/overload/run.py --quick            # ~2 min
  bench/overload/run.py                    # ~12 min
  bench/overload/run.py --targets direct,sluice --scenarios ramp,recovery
  bench/overload/run.py --publish          # also copy plots and summary into docs/overload/

Raw results (every request's CSV, the tools' JSON summaries, the backends' queue series,
each proxy's config and log) go to bench/results/overload-<UTC time>/ (kept out of git), with
summary.md and the plots. Everything started here is stopped by PID on exit, Ctrl-C included.
Debian's Python 3 (/usr/bin/python3: its standard library, and python3-matplotlib for the plots).
"""
import argparse
import csv
import datetime
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BACKEND_PORTS = [19080, 19081, 19082]
PROXY_PORT = {"nginx": 19181, "haproxy": 19182, "sluice": 19184}
SLUICE_ADMIN_PORT = 19185
ALL_TARGETS = ["direct", "nginx", "haproxy", "sluice"]
ALL_SCENARIOS = ["ramp", "retry", "slow", "kill", "recovery"]
RAMP_LEVELS = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]


def log(msg):
    print(time.strftime("[%H:%M:%S] ") + msg, file=sys.stderr, flush=True)


# ---- processes ---------------------------------------------------------------------------------

class Processes:
    """Every process this run starts, stopped by PID (TERM, then KILL) in reverse order."""

    def __init__(self):
        self.procs = []

    def start(self, cmd, cpu, logfile, cwd=None):
        # Not in a session of their own: with the kernel's autogroup scheduling each session is
        # a group with its own CPU share, and backends in their own groups fell behind their
        # timers by hundreds of ms while other jobs were busy on the box (measured).
        out = open(logfile, "ab")
        p = subprocess.Popen(["taskset", "-c", str(cpu), *cmd], stdout=out, stderr=out, cwd=cwd)
        self.procs.append(p)
        return p

    def stop(self, p, sig=signal.SIGTERM):
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self):
        for p in reversed(list(self.procs)):
            self.stop(p)


def port_open(port):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_port(port, proc, name, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return
        if proc.poll() is not None:
            sys.exit(f"{name} exited during start-up (exit {proc.returncode}); see its log")
        time.sleep(0.05)
    sys.exit(f"{name} did not listen on port {port}")


def http_json(port, path, method="GET"):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def proc_ticks(pid):
    """utime + stime of a process, in clock ticks (1/100 s)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except OSError:
        return None


def run_queue_wait_ms(pid):
    """Time the process spent runnable but not running (waiting for a CPU), in ms: on a shared
    box, what another job took from the proxy under test."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[1]) / 1e6
    except (OSError, ValueError, IndexError):
        return None


def cpu_times():
    """(busy, total) jiffies of each CPU."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                v = [int(x) for x in line.split()[1:]]
                busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
                out[line.split()[0]] = (busy, busy + v[3] + v[4])
    return out


def busy_pct(a, b):
    """Busy CPU between two cpu_times() snapshots, summed over CPUs, in % of one core."""
    return sum(100 * (b[c][0] - a[c][0]) / max(1, b[c][1] - a[c][1]) for c in a)


# ---- the system under test ---------------------------------------------------------------------

class Bench:
    def __init__(self, args, res):
        self.args = args
        self.res = res
        self.procs = Processes()
        self.bin = args.tools_dir
        self.backends = {}  # index -> Popen
        self.proxy = None
        self.proxy_pid = None
        self.host_cap = args.workers * 1000.0 / args.service_ms

    # backends
    def start_backend(self, i):
        port = BACKEND_PORTS[i]
        if port_open(port):
            sys.exit(f"port {port} is taken (a stale run? ss -ltnp 'sport = :{port}')")
        p = self.procs.start([os.path.join(self.bin, "overload_backend"), "--port", str(port),
                              "--workers", str(self.args.workers), "--service-ms",
                              str(self.args.service_ms), "--queue", str(self.args.backend_queue),
                              "--seed", str(i + 1)],
                             self.args.load_cpu, os.path.join(self.res, f"backend{i}.log"))
        wait_port(port, p, f"backend{i}")
        self.backends[i] = p

    def kill_backend(self, i):
        self.procs.stop(self.backends.pop(i), signal.SIGKILL)

    def control(self, i, **kw):
        q = "&".join(f"{k}={v}" for k, v in kw.items())
        return http_json(BACKEND_PORTS[i], f"/_control?{q}", "POST")

    def reset_backends(self, hosts, **kw):
        for i in range(hosts):
            self.control(i, reset=1, error_rate=0, slowdown=1, stall=0, **kw)

    def backend_stats(self, i, name=None):
        st = http_json(BACKEND_PORTS[i], "/_stats")
        if name:  # kept with the raw results: the queue over time
            with open(os.path.join(self.res, f"{name}.backend{i}.json"), "w") as fh:
                json.dump(st, fh)
        return st

    # proxies
    def start_proxy(self, target, hosts, tag):
        self.proxy, self.proxy_pid, self.proxy_tag = None, None, None
        if target == "direct":  # no proxy: the client spreads its requests over the hosts
            return BACKEND_PORTS[:hosts]
        port = PROXY_PORT[target]
        if port_open(port):
            sys.exit(f"port {port} is taken (a stale run? ss -ltnp 'sport = :{port}')")
        rundir = os.path.join(self.res, "run", f"{target}-{tag}")
        os.makedirs(os.path.join(rundir, "tmp"), exist_ok=True)
        logf = os.path.join(self.res, f"{target}-{tag}.log")
        subst = {
            "PORT": str(port), "ADMIN_PORT": str(SLUICE_ADMIN_PORT),
            "QUEUE_MS": str(self.args.queue_ms), "MAXCONN": str(self.args.workers),
            "RATE": str(int(self.host_cap * hosts)), "BURST": str(int(self.host_cap * hosts / 10)),
            "LIMIT": self.args.sluice_limit,
            "ENDPOINTS": ", ".join(f"127.0.0.1:{BACKEND_PORTS[i]}" for i in range(hosts)),
        }
        if target == "nginx":
            subst["SERVERS"] = "\n".join(
                f"        server 127.0.0.1:{BACKEND_PORTS[i]} max_conns={self.args.workers} "
                "max_fails=5 fail_timeout=2s;" for i in range(hosts))
            conf = self.render("nginx.conf", subst, rundir)
            cmd = ["nginx", "-p", rundir + "/", "-c", conf, "-e", os.path.join(rundir, "error.log"),
                   "-g", "daemon off;"]
        elif target == "haproxy":
            subst["SERVERS"] = "\n".join(f"    server s{i} 127.0.0.1:{BACKEND_PORTS[i]}"
                                         for i in range(hosts))
            conf = self.render("haproxy.cfg", subst, rundir)
            cmd = ["haproxy", "-f", conf, "-db"]
        else:
            conf = self.render("sluice.yaml", subst, rundir)
            v = subprocess.run([self.args.sluice, "validate", "-c", conf], capture_output=True,
                               text=True)
            if v.returncode != 0:
                sys.exit(f"sluice validate failed:\n{v.stdout}{v.stderr}")
            cmd = [self.args.sluice, "run", "-c", conf]
            self.proxy_tag = f"{target}-{tag}"
        p = self.procs.start(cmd, self.args.proxy_cpu, logf, cwd=rundir)
        wait_port(port, p, target)
        self.proxy, self.proxy_pid = p, p.pid
        if target == "nginx":  # measure the worker, not the master
            for _ in range(50):
                kids = subprocess.run(["ps", "-o", "pid=", "--ppid", str(p.pid)],
                                      capture_output=True, text=True).stdout.split()
                if kids:
                    self.proxy_pid = int(kids[0])
                    break
                time.sleep(0.05)
        return [port]

    def render(self, name, subst, rundir):
        template = os.path.join(HERE, "conf", name)
        if name == "sluice.yaml" and self.args.sluice_conf:
            template = self.args.sluice_conf
        with open(template) as f:
            text = f.read()
        for k, v in subst.items():
            text = text.replace(f"@@{k}@@", v)
        path = os.path.join(rundir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def stop_proxy(self):
        if self.proxy is not None:
            if self.proxy_tag:  # sluice: what its guards did, kept with the raw results
                try:
                    with urllib.request.urlopen(
                            f"http://127.0.0.1:{SLUICE_ADMIN_PORT}/metrics", timeout=5) as r:
                        with open(os.path.join(self.res, f"{self.proxy_tag}.metrics.txt"),
                                  "wb") as fh:
                            fh.write(r.read())
                except OSError as e:
                    log(f"could not read sluice's /metrics: {e}")
            self.procs.stop(self.proxy)
            self.proxy = None

    # load
    def wait_quiet(self):
        """Up to QUIET_MAX s for the box to calm down (other jobs, the last run's teardown);
        returns the busy CPU of the last second, % of one core, as a noise figure."""
        bg = 0.0
        for _ in range(self.args.quiet_max):
            a = cpu_times()
            time.sleep(1)
            bg = busy_pct(a, cpu_times())
            if bg < self.args.quiet_pct:
                break
        return bg

    def load(self, ports, stages, name, actions=(), quiet=True, warmup=None):
        """Runs the load generator on `stages` ([(seconds, from_rate, to_rate)]); `actions` are
        (seconds after the start, callable) done meanwhile. Several ports (direct to several
        hosts): one generator per host with an equal share of the rate, records merged.
        `warmup` = (seconds, rate, callable): a first stage in the same run (so that its
        connections are reused), left out of the records; the callable runs as it ends (resets
        the backends' counters). Returns a summary, the records and what the run cost."""
        w = 0.0
        if warmup:
            w, wrate, at_end = warmup
            stages = [(w, wrate, wrate)] + list(stages)
            actions = [(0.0, at_end)] + list(actions)
            actions = [(at + w, fn) for at, fn in actions]
        share = 1.0 / len(ports)
        spec = ",".join(f"{d:g}:{a * share:g}" + (f"-{b * share:g}" if b != a else "")
                        for d, a, b in stages)
        bg = self.wait_quiet() if quiet else float("nan")
        c0, p0, t0 = cpu_times(), proc_ticks(self.proxy_pid) if self.proxy_pid else None, \
            time.monotonic()
        b0 = {p.pid: proc_ticks(p.pid) for p in self.backends.values()}
        q0 = run_queue_wait_ms(self.proxy_pid) if self.proxy_pid else None
        gens = []
        for k, port in enumerate(ports):
            part = name if len(ports) == 1 else f"{name}.{k}"
            cmd = [os.path.join(self.bin, "overload_loadgen"), "--target", f"127.0.0.1:{port}",
                   "--stages", spec, "--timeout-ms", str(self.args.client_timeout_ms),
                   "--max-conns", str(self.args.max_conns),
                   "--out", os.path.join(self.res, f"{part}.csv"),
                   "--summary", os.path.join(self.res, f"{part}.json"), "--seed", str(7 + k)]
            gens.append((part, subprocess.Popen(["taskset", "-c", str(self.args.load_cpu), *cmd],
                                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                text=True)))
        start_unix = time.time()
        done = []
        for at, fn in sorted(actions, key=lambda x: x[0]):
            time.sleep(max(0.0, start_unix + at - time.time()))
            done.append((time.time() - start_unix, fn()))
        summaries, parts = [], []
        for part, lg in gens:
            out, err = lg.communicate()
            if lg.returncode != 0:
                sys.exit(f"loadgen failed: {err}")
            summaries.append(json.loads(out))
            parts.append(read_records(os.path.join(self.res, f"{part}.csv")))
        wall = time.monotonic() - t0
        c1 = cpu_times()
        start = min(x["start_unix_ms"] for x in summaries)
        recs = sorted((r[0] + x["start_unix_ms"] - start - w * 1000, r[1], r[2])
                      for x, rs in zip(summaries, parts) for r in rs)
        recs = [r for r in recs if r[0] >= 0]
        start += w * 1000
        if warmup:
            done = [(at - w, res) for at, res in done[1:]]
        ok = [r[1] for r in recs if 200 <= r[2] < 300]
        summary = {"start_unix_ms": start, "sent": len(recs),
                   "cpu_share": sum(x["cpu_share"] for x in summaries),
                   "start_lag_ms": {"p99": max(x["start_lag_ms"]["p99"] for x in summaries)},
                   "ok_latency_ms": {"p50": pct(ok, 50), "p99": pct(ok, 99)}}
        proxy_cpu = None
        if p0 is not None:
            p1 = proc_ticks(self.proxy_pid)
            proxy_cpu = (p1 - p0) / wall if p1 is not None else None
        be_cpu = sum((proc_ticks(p.pid) or 0) - b0[p.pid] for p in self.backends.values()
                     if b0.get(p.pid) is not None) / wall  # a restarted backend is left out
        q1 = run_queue_wait_ms(self.proxy_pid) if self.proxy_pid else None
        cost = {"bg_before": bg, "box_busy": busy_pct(c0, c1), "proxy_cpu": proxy_cpu,
                "proxy_wait_ms": (q1 - q0) if q0 is not None and q1 is not None else None,
                "backend_cpu": be_cpu, "loadgen_cpu": 100 * summary["cpu_share"],
                "lag_p99_ms": summary["start_lag_ms"]["p99"], "wall": wall,
                "actions": [a for a, _ in done]}
        cost["other_cpu"] = max(0.0, cost["box_busy"] - (proxy_cpu or 0) - be_cpu -
                                cost["loadgen_cpu"])
        return summary, recs, cost


def read_records(path):
    """[(sched_ms, latency_ms, status)] from the load generator's CSV."""
    out = []
    with open(path) as f:
        r = csv.reader(f)
        next(r)
        for row in r:
            out.append((float(row[0]), float(row[1]), int(row[2])))
    return out


# ---- statistics --------------------------------------------------------------------------------

def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(p / 100 * len(v)))]


def robust_p99(recs):
    """The median of the p99s of 1 s windows: on a shared box one stall of another tenant's
    job moves a whole run's p99 (seen: 15 ms one run, 200 ms the next), not this."""
    ok = [r for r in recs if 200 <= r[2] < 300]
    if not ok:
        return float("nan")
    end = max(r[0] for r in ok)
    p99s = [pct([r[1] for r in window(ok, k, k + 1000)], 99) for k in range(0, int(end), 1000)]
    p99s = sorted(x for x in p99s if not math.isnan(x))
    return p99s[len(p99s) // 2] if p99s else float("nan")


def window(recs, t0_ms, t1_ms):
    return [r for r in recs if t0_ms <= r[0] < t1_ms]


def describe(recs, seconds, slo_ms, fast_ms):
    """What the clients saw in a window of requests (by scheduled time)."""
    n = len(recs)
    ok = [r[1] for r in recs if 200 <= r[2] < 300]
    good = sum(1 for x in ok if x <= slo_ms)
    fast = sum(1 for r in recs if r[2] >= 300 and r[1] < fast_ms)
    rejected = sum(1 for r in recs if r[2] >= 300)
    timeouts = sum(1 for r in recs if r[2] == 0)
    errors = sum(1 for r in recs if r[2] < 0)
    share = (lambda k: 100.0 * k / n) if n else (lambda k: float("nan"))
    return {"sent": n, "offered": n / seconds, "ok": len(ok), "goodput": good / seconds,
            "ok_pct": share(len(ok)), "good_pct": share(good), "late_pct": share(len(ok) - good),
            "fast_reject_pct": share(fast), "slow_reject_pct": share(rejected - fast),
            "timeout_pct": share(timeouts), "error_pct": share(errors),
            "failed": n - len(ok), "p50": pct(ok, 50), "p99": pct(ok, 99)}


def series_between(stats, t0_unix_ms, t1_unix_ms):
    return [s for s in stats.get("series", []) if t0_unix_ms <= s[0] < t1_unix_ms]


def received_between(stats, t0_unix_ms, t1_unix_ms):
    """Requests a backend received in [t0, t1) from its 50 ms samples (cumulative counter)."""
    before = [s[3] for s in stats.get("series", []) if s[0] < t0_unix_ms]
    upto = [s[3] for s in stats.get("series", []) if s[0] < t1_unix_ms]
    return (upto[-1] if upto else 0) - (before[-1] if before else 0)


# ---- scenarios ---------------------------------------------------------------------------------

class Scenarios:
    def __init__(self, bench, quick):
        self.b = bench
        self.q = quick
        self.cap1 = bench.host_cap
        self.slo_ms = None
        self.fast_ms = None
        self.results = {}   # scenario -> target -> dict
        self.timelines = {}  # scenario -> target -> (records, events)
        self.unloaded = {}  # target -> (p50, p99, median p99 of 1 s windows)
        self.discarded = []  # runs done again because the load generator lagged

    def d(self, quick, full):
        return quick if self.q else full

    def warmup(self, hosts, at_end):
        """A first stage at 0.25x, then `at_end` (counters reset, failure modes switched on)."""
        return (self.d(0.5, 1), 0.25 * self.cap1 * hosts, at_end)

    def baseline(self, targets):
        """Unloaded latency (0.25x capacity, one host) of each target; direct's p50 sets the
        SLO (10x) every scenario counts goodput against."""
        b = self.b
        b.reset_backends(1)
        for t in targets:
            ports = b.start_proxy(t, 1, "baseline")
            rate = 0.25 * self.cap1
            s, recs, cost = b.load(ports, [(self.d(2, 8), rate, rate)], f"baseline-{t}")
            b.stop_proxy()
            self.unloaded[t] = (s["ok_latency_ms"]["p50"], s["ok_latency_ms"]["p99"],
                                robust_p99(recs))
            log(f"baseline {t}: p50 {self.unloaded[t][0]:.2f} ms, p99 {self.unloaded[t][1]:.2f} ms "
                f"(median of 1 s windows: {self.unloaded[t][2]:.2f} ms)")
        ref = self.unloaded.get("direct", next(iter(self.unloaded.values())))
        self.slo_ms = 10 * ref[0]
        self.fast_ms = ref[0] / 2
        log(f"SLO: a success within {self.slo_ms:.1f} ms; a fast rejection within "
            f"{self.fast_ms:.1f} ms")

    def run(self, name, targets):
        fn = getattr(self, name)
        self.results[name] = {}
        self.timelines[name] = {}
        for t in targets:
            for attempt in range(self.b.args.max_retry + 1):
                log(f"--- {name} / {t}")
                r, recs, events, cost = fn(t)
                # The generator's own start lag says whether the box let it keep its schedule
                # (another job can starve it for a second: seen 1.4 s); such a run measures
                # the box, not the proxy: run it again (kept in the log and results.json).
                if cost["lag_p99_ms"] <= self.b.args.lag_max or attempt == self.b.args.max_retry:
                    break
                log(f"{name} {t}: the load generator lagged (start lag p99 "
                    f"{cost['lag_p99_ms']:.1f} ms > {self.b.args.lag_max:g}): run again")
                self.discarded.append({"scenario": name, "target": t, "cost": cost})
            r["cost"] = cost
            self.results[name][t] = r
            self.timelines[name][t] = (recs, events)
            log(f"{name} {t}: " + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                             for k, v in r.items() if not isinstance(v, (dict, list))))

    # 1. offered load from 0.5x to 3x capacity, one host
    def ramp(self, t):
        b = self.b
        step = self.d(1, 10)
        ports = b.start_proxy(t, 1, "ramp")
        b.reset_backends(1)
        stages = [(step, x * self.cap1, x * self.cap1) for x in RAMP_LEVELS]
        s, recs, cost = b.load(ports, stages, f"ramp-{t}",
                               warmup=self.warmup(1, lambda: b.reset_backends(1)))
        st = b.backend_stats(0, f"ramp-{t}")
        b.stop_proxy()
        steps = []
        for k, x in enumerate(RAMP_LEVELS):
            w = describe(window(recs, k * step * 1000, (k + 1) * step * 1000), step, self.slo_ms,
                         self.fast_ms)
            q = [x_[1] for x_ in series_between(st, s["start_unix_ms"] + k * step * 1000,
                                                s["start_unix_ms"] + (k + 1) * step * 1000)]
            w.update(level=x, goodput_cap_pct=100 * w["goodput"] / self.cap1,
                     queue_mean=sum(q) / len(q) if q else float("nan"),
                     queue_max=max(q) if q else float("nan"))
            steps.append(w)
        top = steps[-1]
        events = [(k * step, f"{x:g}x") for k, x in enumerate(RAMP_LEVELS)]
        return ({"steps": steps, "goodput_3x_cap_pct": top["goodput_cap_pct"],
                 "p99_3x": top["p99"], "unloaded_p99": self.unloaded.get(t, (0, 0, 0))[2],
                 "backend_max_queue": st["max_queue"]}, recs, events, cost)

    # 2. every host fails 30 % of requests (503)
    def retry(self, t):
        b = self.b
        dur = self.d(3, 20)
        rate = 0.5 * 3 * self.cap1
        ports = b.start_proxy(t, 3, "retry")
        b.reset_backends(3)
        s, recs, cost = b.load(ports, [(dur, rate, rate)], f"retry-{t}", warmup=self.warmup(
            3, lambda: [b.control(i, reset=1, error_rate=0.3, error_status=503)
                        for i in range(3)]))
        received = sum(b.backend_stats(i, f"retry-{t}")["received"] for i in range(3))
        b.reset_backends(3)
        b.stop_proxy()
        w = describe(recs, dur, self.slo_ms, self.fast_ms)
        return ({"amplification": received / max(1, len(recs)), "success_pct": w["ok_pct"],
                 "p99": w["p99"], "sent": len(recs), "backend_received": received}, recs, [],
                cost)

    # 3. one host of three 10x slower, after a healthy phase of the same length
    def slow(self, t):
        b = self.b
        dur = self.d(2, 10)
        rate = 0.5 * 3 * self.cap1
        ports = b.start_proxy(t, 3, "slow")
        b.reset_backends(3)
        s, recs, cost = b.load(ports, [(dur, rate, rate), (dur, rate, rate)], f"slow-{t}",
                               actions=[(dur, lambda: b.control(2, slowdown=10))],
                               warmup=self.warmup(3, lambda: b.reset_backends(3)))
        for i in range(3):
            b.backend_stats(i, f"slow-{t}")
        b.reset_backends(3)
        b.stop_proxy()
        # the switch lands a little after the schedule's boundary: judge the slow phase from it
        at = cost["actions"][0] * 1000
        healthy = describe(window(recs, 0, dur * 1000), dur, self.slo_ms, self.fast_ms)
        slow = describe(window(recs, at, 2 * dur * 1000), 2 * dur - at / 1000, self.slo_ms,
                        self.fast_ms)
        return ({"healthy_p99": healthy["p99"], "slow_p99": slow["p99"],
                 "p99_ratio": slow["p99"] / healthy["p99"], "healthy_good_pct": healthy["good_pct"],
                 "slow_good_pct": slow["good_pct"], "slow_ok_pct": slow["ok_pct"],
                 "slow_p50": slow["p50"]}, recs, [(at / 1000, "host 3 slow")], cost)

    # 4. one host of three killed (SIGKILL) at 1/3 of the run, restarted at 2/3
    def kill(self, t):
        b = self.b
        dur = self.d(4.5, 30)
        rate = 0.5 * 3 * self.cap1
        ports = b.start_proxy(t, 3, "kill")
        b.reset_backends(3)
        before = {}

        def kill():
            before["stats"] = b.backend_stats(2)
            b.kill_backend(2)
            return None

        def restart():
            b.start_backend(2)
            return None

        s, recs, cost = b.load(ports, [(dur, rate, rate)], f"kill-{t}",
                               actions=[(dur / 3, kill), (2 * dur / 3, restart)],
                               warmup=self.warmup(3, lambda: b.reset_backends(3)))
        stats = [b.backend_stats(i, f"kill-{t}") for i in range(3)]
        b.reset_backends(3)
        b.stop_proxy()
        t_kill, t_restart = (x * 1000 for x in cost["actions"])
        failed = [r for r in recs if not 200 <= r[2] < 300]
        after_kill = [r for r in failed if r[0] >= t_kill - 50]
        # Time to full service: from the restart until the restarted host takes at least 25 %
        # of what the backends receive (a third is its share) in a 500 ms window.
        t0 = s["start_unix_ms"]
        full = None
        w = 500
        tt = t_restart
        while tt + w <= dur * 1000:
            got = [received_between(st, t0 + tt, t0 + tt + w) for st in stats]
            if sum(got) > 0 and got[2] / sum(got) >= 0.25:
                full = (tt + w - t_restart) / 1000
                break
            tt += 100
        return ({"client_errors": len(failed), "error_pct": 100 * len(failed) / max(1, len(recs)),
                 "errors_after_kill": len(after_kill),
                 "last_error_s": ((max(r[0] for r in after_kill) - t_kill) / 1000 if after_kill
                                  else float("nan")),
                 "time_to_full_s": full if full is not None else float("nan"),
                 "p99": describe(recs, dur, self.slo_ms, self.fast_ms)["p99"]},
                recs, [(t_kill / 1000, "kill"), (t_restart / 1000, "restart")], cost)

    # 5. 0.5x, then 3x, then 0.5x again: how long until latency is back at baseline
    def recovery(self, t):
        b = self.b
        d1, d2, d3 = self.d(1.5, 10), self.d(2, 10), self.d(4, 15)
        ports = b.start_proxy(t, 1, "recovery")
        b.reset_backends(1)
        lo, hi = 0.5 * self.cap1, 3 * self.cap1
        s, recs, cost = b.load(ports, [(d1, lo, lo), (d2, hi, hi), (d3, lo, lo)], f"recovery-{t}",
                               warmup=self.warmup(1, lambda: b.reset_backends(1)))
        st = b.backend_stats(0, f"recovery-{t}")
        b.stop_proxy()
        base = describe(window(recs, 500, d1 * 1000), d1 - 0.5, self.slo_ms, self.fast_ms)
        # p90 per 250 ms bin, not p99: a bin holds ~50 requests, so its p99 is its slowest one,
        # and on a shared box one stall of another job then looked like a failed recovery
        base_ok = [r[1] for r in window(recs, 500, d1 * 1000) if 200 <= r[2] < 300]
        base_p90 = pct(base_ok, 90)
        limit = max(1.5 * base_p90, base_p90 + 2)
        # nginx refuses some requests even at 0.5x (max_conns, no queue): a bin is back at
        # baseline when it fails no more than twice the baseline's share (and at most 1 % more)
        fail_limit = max(0.01, 2 * base["failed"] / max(1, base["sent"]))
        end = (d1 + d2) * 1000
        binw = 250
        bins = []
        tt = end
        while tt + binw <= (d1 + d2 + d3) * 1000:
            w = window(recs, tt, tt + binw)
            ok = [r[1] for r in w if 200 <= r[2] < 300]
            bad = len(w) - len(ok)
            bins.append((tt, bool(w) and bad <= fail_limit * len(w) and pct(ok, 90) <= limit))
            tt += binw
        # recovered at the first bin that starts 2 s of good bins ("every later bin" made one
        # stall of another job on the box, 10 s later, read as a failed recovery)
        rec_at = None
        run = min(8, max(1, len(bins) // 3))  # 2 s; 1.25 s in --quick (a 4 s tail)
        for k in range(len(bins) - run + 1):
            if all(g for _, g in bins[k:k + run]):
                rec_at = (bins[k][0] - end) / 1000
                break
        q = [x[1] for x in series_between(st, s["start_unix_ms"] + end,
                                           s["start_unix_ms"] + end + 10_000)]
        drained = next((k * 0.05 for k, v in enumerate(q) if v == 0), float("nan"))
        return ({"baseline_p99": base["p99"], "baseline_p90": base_p90, "p90_limit": limit,
                 "recovery_s": rec_at if rec_at is not None else float("nan"),
                 "backend_queue_drained_s": drained,
                 "overload_good_pct": describe(window(recs, d1 * 1000, end), d2, self.slo_ms,
                                               self.fast_ms)["good_pct"]},
                recs, [(d1, "3x"), (d1 + d2, "0.5x")], cost)


# ---- report ------------------------------------------------------------------------------------

def f(v, fmt="{:.1f}"):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return fmt.format(v)


def report(sc, meta, targets):
    out = [f"# Overload benchmark, {meta['date']}", "",
           f"sluice `{meta['sluice']}`, {meta['mode']} mode; {meta['machine']}; "
           f"{meta['versions']}.", "",
           f"Backend: {meta['workers']} workers x {meta['service_ms']:g} ms per host "
           f"({sc.cap1:.0f} req/s), FIFO queue of {meta['backend_queue']}. Client timeout "
           f"{meta['client_timeout_ms']} ms. SLO: a success within {sc.slo_ms:.1f} ms (10x direct's "
           f"unloaded p50); a fast rejection: an error answer within {sc.fast_ms:.1f} ms.", ""]
    out += ["Unloaded (0.25x capacity, one host), p50 / p99 / median of the p99s of 1 s windows, "
            "ms: " + ", ".join(f"{t} {sc.unloaded[t][0]:.2f} / {sc.unloaded[t][1]:.2f} / "
                               f"{sc.unloaded[t][2]:.2f}" for t in targets if t in sc.unloaded) +
            ".", ""]
    r = sc.results
    if "ramp" in r:
        out += ["## 1. Load ramp, one host", "",
                "Goodput (successes within the SLO, % of capacity) / p99 of successes (ms) / "
                "fast rejections (%) / backend queue mean (max), per offered load:", "",
                "| offered | " + " | ".join(t for t in targets if t in r["ramp"]) + " |",
                "|---|" + "---|" * len([t for t in targets if t in r["ramp"]])]
        for k, x in enumerate(RAMP_LEVELS):
            cells = []
            for t in targets:
                if t not in r["ramp"]:
                    continue
                s = r["ramp"][t]["steps"][k]
                cells.append(f"{s['goodput_cap_pct']:.0f} % / {f(s['p99'])} / "
                             f"{s['fast_reject_pct']:.0f} % / {f(s['queue_mean'], '{:.0f}')} "
                             f"({f(s['queue_max'], '{:.0f}')})")
            out.append(f"| {x:g}x | " + " | ".join(cells) + " |")
        out += ["", "At 3x, the share of each outcome (% of requests sent): ok within the SLO / "
                "ok but late / fast rejection / slow rejection / client timeout / connection error:",
                ""]
        for t in targets:
            if t in r["ramp"]:
                s = r["ramp"][t]["steps"][-1]
                out.append(f"- {t}: {s['good_pct']:.1f} / {s['late_pct']:.1f} / "
                           f"{s['fast_reject_pct']:.1f} / {s['slow_reject_pct']:.1f} / "
                           f"{s['timeout_pct']:.1f} / {s['error_pct']:.1f}")
        out.append("")
    if "retry" in r:
        out += ["## 2. Retry storm: every host fails 30 % (503), 0.5x capacity, three hosts", "",
                "| | backend requests per client request | client success | p99 of successes (ms) |",
                "|---|---:|---:|---:|"]
        for t in targets:
            if t in r["retry"]:
                x = r["retry"][t]
                out.append(f"| {t} | {x['amplification']:.2f} | {x['success_pct']:.1f} % | "
                           f"{f(x['p99'])} |")
        out.append("")
    if "slow" in r:
        out += ["## 3. One slow host of three (10x service time), 0.5x capacity", "",
                "| | p99 healthy (ms) | p99 one slow (ms) | ratio | p50 one slow | goodput healthy | "
                "goodput one slow |", "|---|---:|---:|---:|---:|---:|---:|"]
        for t in targets:
            if t in r["slow"]:
                x = r["slow"][t]
                out.append(f"| {t} | {f(x['healthy_p99'])} | {f(x['slow_p99'])} | "
                           f"{f(x['p99_ratio'], '{:.2f}')} | {f(x['slow_p50'])} | "
                           f"{x['healthy_good_pct']:.1f} % | {x['slow_good_pct']:.1f} % |")
        out.append("")
    if "kill" in r:
        out += ["## 4. One host of three killed and restarted, 0.5x capacity", "",
                "| | client errors | % of requests | of them after the kill | last error after the "
                "kill (s) | time to full service after the restart (s) |",
                "|---|---:|---:|---:|---:|---:|"]
        for t in targets:
            if t in r["kill"]:
                x = r["kill"][t]
                out.append(f"| {t} | {x['client_errors']} | {x['error_pct']:.2f} % | "
                           f"{x['errors_after_kill']} | {f(x['last_error_s'], '{:.2f}')} | "
                           f"{f(x['time_to_full_s'], '{:.2f}')} |")
        out.append("")
    if "recovery" in r:
        out += ["## 5. Recovery: 0.5x, 3x, then 0.5x again, one host", "",
                "| | baseline p90 / p99 (ms) | time to baseline after the overload (s) | "
                "backend queue empty after (s) | successes within the SLO during 3x (% of requests; "
                "33 % is all of capacity) |", "|---|---:|---:|---:|---:|"]
        for t in targets:
            if t in r["recovery"]:
                x = r["recovery"][t]
                out.append(f"| {t} | {f(x['baseline_p90'])} / {f(x['baseline_p99'])} | "
                           f"{f(x['recovery_s'], '{:.2f}')} | "
                           f"{f(x['backend_queue_drained_s'], '{:.2f}')} | "
                           f"{x['overload_good_pct']:.1f} % |")
        out.append("")
    out += ["## The harness itself", "",
            "Per run: load generator CPU (% of a core) and its p99 start lag (ms), proxy CPU, "
            "CPU used by other processes on the box (% of a core) during the run"
            f"{'' if not sc.discarded else f'; {len(sc.discarded)} run(s) were done again because the load generator lagged'}:", "",
            "| scenario | target | loadgen CPU | start lag p99 | proxy CPU | proxy waited for a CPU "
            "(ms) | backend CPU | other |",
            "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, per in r.items():
        for t, x in per.items():
            c = x["cost"]
            out.append(f"| {name} | {t} | {c['loadgen_cpu']:.1f} | {c['lag_p99_ms']:.2f} | "
                       f"{f(c['proxy_cpu'])} | {f(c.get('proxy_wait_ms'), '{:.0f}')} | "
                       f"{c['backend_cpu']:.1f} | {c['other_cpu']:.1f} |")
    out.append("")
    return "\n".join(out)


def plots(sc, targets, outdir):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        log("matplotlib missing (apt-get install python3-matplotlib): no plots")
        return []
    colors = {"direct": "#888888", "nginx": "#2ca02c", "haproxy": "#1f77b4", "sluice": "#d62728"}
    made = []
    r = sc.results
    if "ramp" in r:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6))
        for t in targets:
            if t not in r["ramp"]:
                continue
            st = r["ramp"][t]["steps"]
            a1.plot([s["level"] for s in st], [s["goodput_cap_pct"] for s in st], "o-", label=t,
                    color=colors.get(t))
            a2.plot([s["level"] for s in st], [s["p99"] for s in st], "o-", label=t,
                    color=colors.get(t))
        a1.set(xlabel="offered load (x capacity)", ylabel="goodput (% of capacity)",
               title="Goodput within the SLO", ylim=(0, 110))
        a1.axhline(90, color="k", lw=0.6, ls=":")  # issue 20's target at 3x
        a2.set(xlabel="offered load (x capacity)", ylabel="ms", yscale="log",
               title="p99 of successes (dotted: the SLO)")
        a2.set_yticks([10, 20, 50, 100, 200, 500, 1000])
        a2.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        a2.axhline(sc.slo_ms, color="k", lw=0.6, ls=":")
        a1.legend(fontsize=8)
        fig.tight_layout()
        p = os.path.join(outdir, "overload-goodput.png")
        fig.savefig(p, dpi=80)
        plt.close(fig)
        made.append(p)
    for name, per in sc.timelines.items():
        fig, (a1, a2) = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
        binw = 250.0
        for t in targets:
            if t not in per:
                continue
            recs, events = per[t]
            if not recs:
                continue
            end = max(x[0] for x in recs)
            xs, p99s, good = [], [], []
            k = 0.0
            while k + binw <= end:  # whole bins only
                w = window(recs, k, k + binw)
                ok = [x[1] for x in w if 200 <= x[2] < 300]
                xs.append((k + binw / 2) / 1000)
                p99s.append(pct(ok, 99) if ok else float("nan"))
                good.append(sum(1 for x in ok if x <= sc.slo_ms) * 1000 / binw)
                k += binw
            a1.plot(xs, p99s, label=t, color=colors.get(t), lw=1)
            a2.plot(xs, good, label=t, color=colors.get(t), lw=1)
        for at, label in (per[next(iter(per))][1] if per else []):
            for a in (a1, a2):
                a.axvline(at, color="k", lw=0.5, ls=":")
            a1.annotate(label, (at, 1), xycoords=("data", "axes fraction"), fontsize=7,
                        va="top")
        a1.set(ylabel="p99 of successes (ms)", yscale="log", title=f"{name}: latency over time "
               "(by scheduled time, 250 ms bins)")
        a1.set_yticks([10, 20, 50, 100, 200, 500, 1000])
        a1.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        a1.axhline(sc.slo_ms, color="k", lw=0.6, ls="--")
        a2.set(xlabel="s", ylabel="successes within SLO (/s)")
        a1.legend(fontsize=8)
        fig.tight_layout()
        p = os.path.join(outdir, f"overload-{name}.png")
        fig.savefig(p, dpi=70)
        plt.close(fig)
        made.append(p)
    return made


# ---- main --------------------------------------------------------------------------------------

def build(args):
    if args.no_build:
        return
    setup = os.path.join(REPO, "scripts", "setup.sh")
    subprocess.run([setup, "--bench"], check=True)
    bdir = os.path.join(REPO, "build", "release")
    if not os.path.exists(os.path.join(bdir, "build.ninja")):
        subprocess.run(["nice", "-n", "10", "cmake", "--preset", "release"], cwd=REPO, check=True,
                       stdout=subprocess.DEVNULL)
    want = ["overload_backend", "overload_loadgen"]
    if not os.access(args.sluice, os.X_OK):
        want.append("sluice")
    subprocess.run(["nice", "-n", "10", "cmake", "--build", bdir, "--target", *want], check=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short runs (~2 min in all)")
    ap.add_argument("--targets", default=",".join(ALL_TARGETS))
    ap.add_argument("--scenarios", default=",".join(ALL_SCENARIOS))
    ap.add_argument("--sluice", default=os.environ.get(
        "SLUICE_BIN", os.path.join(REPO, "build", "release", "sluice")))
    ap.add_argument("--tools-dir", default=os.path.join(REPO, "build", "release", "bench",
                                                        "overload"))
    ap.add_argument("--no-build", action="store_true", help="use the binaries as they are")
    ap.add_argument("--sluice-limit", default="auto", help="adaptive algorithm (auto, gradient, "
                    "aimd, vegas)")
    ap.add_argument("--sluice-conf", help="sluice config template instead of conf/sluice.yaml "
                    "(same @@...@@ placeholders)")
    ap.add_argument("--workers", type=int, default=4, help="backend workers per host")
    ap.add_argument("--service-ms", type=float, default=10)
    ap.add_argument("--backend-queue", type=int, default=1000)
    ap.add_argument("--client-timeout-ms", type=int, default=1000)
    ap.add_argument("--queue-ms", type=int, default=50, help="HAProxy timeout queue and sluice "
                    "queue_timeout")
    ap.add_argument("--max-conns", type=int, default=4096, help="load generator's connection cap")
    ap.add_argument("--proxy-cpu", type=int, default=1)
    ap.add_argument("--load-cpu", type=int, default=0)
    ap.add_argument("--quiet-max", type=int, default=None,
                    help="s to wait for an idle box before each run (5; --quick: 1)")
    ap.add_argument("--quiet-pct", type=float, default=10)
    ap.add_argument("--lag-max", type=float, default=10,
                    help="a run whose load generator started 1 %% of requests later than this "
                         "(ms) is done again")
    ap.add_argument("--max-retry", type=int, default=2)
    ap.add_argument("--results", default=os.path.join(REPO, "bench", "results"))
    ap.add_argument("--publish", action="store_true",
                    help="copy summary.md and the plots into docs/overload/")
    args = ap.parse_args()
    if args.quiet_max is None:
        args.quiet_max = 1 if args.quick else 5
    targets = [t for t in args.targets.split(",") if t]
    scenarios = [s for s in args.scenarios.split(",") if s]
    for t in targets:
        if t not in ALL_TARGETS:
            sys.exit(f"unknown target {t}")
    for s in scenarios:
        if s not in ALL_SCENARIOS:
            sys.exit(f"unknown scenario {s}")
    build(args)
    for tool in ("taskset", "nginx", "haproxy") if {"nginx", "haproxy"} & set(targets) else ():
        if not shutil.which(tool):
            sys.exit(f"missing {tool} (scripts/setup.sh --bench)")
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    res = os.path.join(args.results, f"overload-{stamp}" + ("-quick" if args.quick else ""))
    os.makedirs(res, exist_ok=True)
    log(f"results -> {res}")
    bench = Bench(args, res)

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        for i in range(3):
            bench.start_backend(i)
        sc = Scenarios(bench, args.quick)
        sc.baseline(targets)
        for s in scenarios:
            sc.run(s, targets)
    finally:
        bench.stop_proxy()
        bench.procs.stop_all()
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    sv = subprocess.run([args.sluice, "version"], capture_output=True, text=True).stdout.split()
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                if ln.startswith("model name")), "?")
    nginx_v = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    haproxy_v = subprocess.run(["haproxy", "-v"], capture_output=True,
                               text=True).stdout.split("\n")[0]
    meta = {"date": stamp, "mode": "quick" if args.quick else "full",
            "sluice": f"{sv[1] if len(sv) > 1 else '?'}@{commit} ({args.sluice_limit})",
            "machine": f"{os.cpu_count()} vCPUs ({cpu}), kernel {os.uname().release}; proxy on "
                       f"CPU {args.proxy_cpu}, backends and load generator on CPU {args.load_cpu}",
            "versions": f"{nginx_v.replace('nginx version: ', '')}, {haproxy_v}",
            "workers": args.workers, "service_ms": args.service_ms,
            "backend_queue": args.backend_queue, "client_timeout_ms": args.client_timeout_ms}
    md = report(sc, meta, targets)
    with open(os.path.join(res, "summary.md"), "w") as fh:
        fh.write(md)
    with open(os.path.join(res, "results.json"), "w") as fh:
        json.dump({"meta": meta, "slo_ms": sc.slo_ms, "unloaded": sc.unloaded,
                   "results": sc.results, "discarded": sc.discarded}, fh, indent=1, default=str)
    made = plots(sc, targets, res)
    print(md)
    if args.publish:
        dst = os.path.join(REPO, "docs", "overload")
        os.makedirs(dst, exist_ok=True)
        for p in made:
            shutil.copy(p, dst)
        shutil.copy(os.path.join(res, "summary.md"), os.path.join(dst, "summary.md"))
        log(f"published {len(made)} plots and summary.md to {dst}")
    log(f"raw results in {res}")


if __name__ == "__main__":
    main()
