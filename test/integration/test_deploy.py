"""deploy/: the Grafana dashboard and the Prometheus alert rules, against a real Prometheus.

A gateway runs a config that turns on what the dashboard shows (a rate limit, a concurrency
limit, a circuit breaker, health checks, outlier detection, a retry budget, failing upstreams)
under steady traffic; a real Prometheus scrapes its admin /metrics every second and loads
deploy/prometheus/alerts.yml. Then every PromQL expression of the dashboard (panels, collapsed
rows included, template variables, annotations) and of the rules is evaluated through
Prometheus's HTTP API: a query error fails, so does a dashboard query that returns no series
(the config has every feature the dashboard shows) and a panel none of whose queries returns a
number (not NaN), so that neither file can drift from the metrics sluice exports. The traffic
puts most alerts in the pending (or firing) state, and the test says which must be.
"""
import json
import math
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from conftest import free_port
from support import upstream as upstream_mod
from support.client import Client
from support.prometheus import Prometheus

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DASHBOARD = os.path.join(REPO, "deploy", "grafana", "sluice.json")
RULES = os.path.join(REPO, "deploy", "prometheus", "alerts.yml")

# Grafana's built-in variables, as the test evaluates them: scrapes come every second, so a 5 s
# rate window holds about five samples ($__rate_interval is at least 4 scrape intervals in
# Grafana). $__interval is only used by the reload annotation: 30 s covers the whole test.
BUILTINS = {"__rate_interval": "5s", "__interval": "30s", "__range": "1m"}
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*(\w+)\s*\)\s*$", re.S)

# What the traffic below makes active (pending, or firing for the rules with `for: 0m`), with
# labels each must carry; the others must stay quiet. A new rule goes in one of the two.
EXPECTED_ALERTS = {
    "SluiceDown": {},                       # a second scrape target where nothing listens
    "Sluice5xxRatioHigh": {"route": "broken"},
    "Sluice5xxRatioCritical": {"route": "flaky"},
    "SluiceCircuitBreakerOpen": {"route": "flaky", "guard": "circuit_breaker"},
    "SluiceRateLimitRejecting": {"route": "limited", "guard": "rate_limit"},
    "SluiceConcurrencyShedding": {"route": "slow"},
    "SluiceUpstreamHostUnhealthy": {"cluster": "app"},
    "SluiceUpstreamNoHealthyHost": {"cluster": "gone"},
    "SluiceUpstreamPanic": {"cluster": "panicking"},
    "SluiceUpstreamHostEjected": {"cluster": "backend"},
    "SluiceRetryBudgetExhausted": {"cluster": "broken"},
    "SluiceConfigReloadFailed": {},
}
QUIET_ALERTS = {"SluiceAccessLogDropping", "SluiceHandlerExceptions", "SluiceRedisDown",
                "SluiceRedisSlow",
                "SluiceFileDescriptorsNearLimit"}


def tool(name):
    path = shutil.which(name)
    assert path, (f"{name} missing: scripts/setup.sh installs Debian's prometheus package "
                  "(CI runs it), which has both prometheus and promtool")
    return path


@pytest.fixture
def prometheus_factory():
    binary = tool("prometheus")
    started = []

    def start(**kwargs):
        p = Prometheus(binary, free_port(), **kwargs)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


def load_dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def panels_of(items):
    """Every panel that is not a row, rows' own panels (collapsed rows keep theirs) included."""
    for p in items:
        if p.get("type") == "row":
            yield from panels_of(p.get("panels", []))
        else:
            yield p


def substitute(expr, template_vars):
    """The expression as Grafana would send it with every template variable on "All" (whose
    allValue is .*, used inside =~ matchers)."""
    def one(m):
        name = m.group(1) or m.group(2)
        if name in BUILTINS:
            return BUILTINS[name]
        assert name in template_vars, f"unknown variable ${name} in {expr!r}"
        return ".*"
    out = VARIABLE.sub(one, expr)
    assert "$" not in out, out
    return out


def dashboard_queries(dash):
    """The dashboard's queries, variables substituted: [(panel, [expr, ...])] and, for the
    template variables and annotations, [(what, expr, label the answer must carry or None)]."""
    template_vars = {v["name"] for v in dash["templating"]["list"]}
    panels, others = [], []
    for p in panels_of(dash["panels"]):
        exprs = [substitute(t["expr"], template_vars)
                 for t in p.get("targets", []) if t.get("expr")]
        panels.append((f"panel {p['id']} {p['title']!r}", exprs))
    for v in dash["templating"]["list"]:
        if v["type"] == "datasource":
            continue  # no query: Grafana lists the Prometheus data sources
        assert v["type"] == "query", f"variable {v['name']}: type {v['type']} not checked here"
        q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
        m = LABEL_VALUES.match(q)
        # label_values(selector, label) is Grafana's, not PromQL: Grafana asks the series API
        # for the label's values; the same question in PromQL is count by (label) (selector).
        # label_values(label) alone (every series) would say nothing about drift: refused.
        assert m, f"variable {v['name']}: only label_values(selector, label) is checked: {q!r}"
        expr = f"count by ({m.group(2)}) ({substitute(m.group(1), template_vars)})"
        others.append((f"variable ${v['name']}", expr, m.group(2)))
    for a in dash["annotations"]["list"]:
        if a.get("expr"):
            others.append((f"annotation {a['name']!r}", substitute(a["expr"], template_vars), None))
    return panels, others


def finite(result):
    """Whether an instant query's result holds at least one number (NaN is no data: a quantile or
    ratio over no traffic, or a histogram whose buckets do not exist)."""
    return any(not math.isnan(float(s["value"][1])) and not math.isinf(float(s["value"][1]))
               for s in result)


def test_alert_rules_pass_promtool():
    check = subprocess.run([tool("promtool"), "check", "rules", RULES], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    rules = len(EXPECTED_ALERTS) + len(QUIET_ALERTS)
    assert f"SUCCESS: {rules} rules found" in check.stdout, check.stdout


def test_dashboard_is_importable():
    dash = load_dashboard()
    assert dash["schemaVersion"] >= 36 and dash["uid"] and dash["title"]
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    ids, panels = set(), list(panels_of(dash["panels"]))
    rows = [p for p in dash["panels"] if p["type"] == "row"]
    assert panels and rows
    dashboard_queries(dash)  # every variable an expression uses exists
    for p in panels + rows:
        assert p["id"] not in ids, f"duplicate panel id {p['id']}"
        ids.add(p["id"])
        pos = p["gridPos"]
        assert {"h", "w", "x", "y"} <= set(pos) and pos["x"] + pos["w"] <= 24, p["title"]
    for p in panels:
        assert p["targets"], f"panel {p['title']!r} has no query"
        for t in [p] + p["targets"]:
            assert t["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, p["title"]
        for t in p["targets"]:
            # `or vector(0)` would turn a metric that vanished into a quiet zero, and the live
            # test below into a test of nothing.
            assert "vector(" not in t["expr"], (p["title"], t["expr"])


def test_dashboard_and_alerts_against_a_live_prometheus(gateway_factory, upstream_factory,
                                                        prometheus_factory):
    good = upstream_factory()                                   # cluster app
    slow = upstream_factory(upstream_mod.slow(0.2))             # concurrency-limited route
    steady = upstream_factory(upstream_mod.named("steady"))     # cluster backend ...
    failing = upstream_factory(upstream_mod.named("failing", 500))  # ... and its outlier
    dead = f"127.0.0.1:{free_port()}"  # nothing listens: connect failures, failed health checks
    port, admin = free_port(), free_port()
    hc = "health_check: { path: /, interval: 1s, unhealthy_threshold: 1 }"
    config = f"""\
        workers: 1
        admin: {{ address: 127.0.0.1:{admin} }}
        listeners:
          - name: public
            address: 127.0.0.1:{port}
        routes:
          - name: limited          # most requests over the rate: 429
            match: {{ path_prefix: /limited }}
            cluster: app
            rate_limit: {{ rate: 2/s, burst: 2 }}
          - name: slow             # one slot, one queue place: the rest shed (503)
            match: {{ path_prefix: /slow }}
            cluster: slow
            concurrency: {{ max: 1, queue: 1, queue_timeout: 50ms }}
          - name: flaky            # every call fails: the breaker opens and stays open
            match: {{ path_prefix: /flaky }}
            cluster: app
            circuit_breaker: {{ window: 10, minimum_calls: 5, open_duration: 60s }}
            fault: {{ abort: {{ status: 503, percent: 100 }} }}
          - name: broken           # a dead host: 502, retries, a spent retry budget
            match: {{ path_prefix: /broken }}
            cluster: broken
            retry: {{ attempts: 3, on: [connect-failure] }}
          - name: ejecting         # one host answers 500: ejected; the retry hides it
            match: {{ path_prefix: /ejecting }}
            cluster: backend
            retry: {{ attempts: 2, on: [5xx] }}
          - name: api
            cluster: app
        clusters:
          - name: app              # one host fails its checks, the other carries on
            endpoints: [{good.address}, {dead}]
            lb: {{ policy: round_robin, panic_threshold: 0 }}
            {hc}
          - name: slow
            endpoints: [{slow.address}]
          - name: broken
            endpoints: [{dead}]
            retry_budget: {{ percent: 0, min_per_second: 1, window: 1s }}
          - name: backend
            endpoints: [{steady.address}, {failing.address}]
            outlier_detection: {{ consecutive_5xx: 3, max_ejection_percent: 50,
                                 base_ejection_time: 60s, interval: 1s }}
          - name: gone             # no host passes, panic mode off: no host in selection
            endpoints: [{dead}]
            lb: {{ policy: round_robin, panic_threshold: 0 }}
            {hc}
          - name: panicking        # no host passes: panic mode
            endpoints: [{dead}]
            {hc}
        """
    g = gateway_factory(config)

    stop = threading.Event()
    answers = {}
    lock = threading.Lock()

    def drive(paths, pause):
        while not stop.is_set():
            for path in paths:
                try:
                    c = Client(port, timeout=5)
                    status = c.request("GET", path).status
                    c.close()
                except OSError:
                    status = "error"
                with lock:
                    answers[(path, status)] = answers.get((path, status), 0) + 1
            stop.wait(pause)

    drivers = [threading.Thread(target=drive, args=(["/", "/limited", "/flaky", "/broken",
                                                      "/ejecting"], 0.05), daemon=True)]
    drivers += [threading.Thread(target=drive, args=(["/slow"], 0.02), daemon=True)
                for _ in range(3)]
    for t in drivers:
        t.start()
    try:
        prom = prometheus_factory(targets=[f"127.0.0.1:{admin}", dead], rule_files=[RULES])
        started = time.monotonic()
        prom.wait_target_up(f"127.0.0.1:{admin}")

        # A refused reload, then a good one: after the first scrape, so that Prometheus sees the
        # counters move and the generation change.
        with open(g.config_path) as f:
            good_config = f.read()
        with open(g.config_path, "w") as f:
            f.write(good_config.replace("workers: 1", "workers: 1\nno_such_key: 1"))
        assert reload(admin) == 400
        with open(g.config_path, "w") as f:
            f.write(good_config)
        assert reload(admin) == 200

        panels, others = dashboard_queries(load_dashboard())
        # Every rule is loaded, and this test says of each whether it must be active.
        rules = [r for group in prom.rules() for r in group["rules"]]
        assert all(r["type"] == "alerting" for r in rules)
        assert sorted(r["name"] for r in rules) == sorted(EXPECTED_ALERTS.keys() | QUIET_ALERTS)

        # Rates need a few scrapes of traffic, alerts a few evaluations: poll until everything
        # holds, or the deadline passes and the last round's problems are the failure.
        deadline = started + 30
        while True:
            problems = check_once(prom, panels, others)
            if not problems or time.monotonic() > deadline:
                break
            time.sleep(1)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        for t in drivers:
            t.join(timeout=10)
        g.stop()  # then its directory (config, stdout) can go; the fixture's stop is a no-op
        shutil.rmtree(g.dir, ignore_errors=True)
    assert not problems, (f"after {elapsed:.1f} s of scraping:\n  " + "\n  ".join(problems)
                          + f"\nanswers: {sorted(answers.items(), key=str)}"
                          + f"\nprometheus log:\n{prom.log_tail()}")
    # The traffic did what the config says (else the alerts above would prove little).
    for path, status in [("/", 200), ("/limited", 429), ("/flaky", 503), ("/broken", 502),
                         ("/ejecting", 200), ("/slow", 200), ("/slow", 503)]:
        assert answers.get((path, status)), (path, status, answers)


def reload(admin):
    req = urllib.request.Request(f"http://127.0.0.1:{admin}/config/reload", data=b"", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def check_once(prom, panels, others):
    """Every problem found now: query errors, panels and variables without data, rules that
    failed to evaluate, alerts that should be active and are not (or the reverse)."""
    problems = []
    for what, exprs in panels:
        got_number = False
        for expr in exprs:
            result, error = prom.query(expr)
            if error:
                problems.append(f"{what}: {error}\n    {expr}")
            elif not result:  # the config above has every feature: every query has series
                problems.append(f"{what}: no data\n    {expr}")
            got_number = got_number or finite(result)
        if not got_number:
            problems.append(f"{what}: no query returns a number")
    for what, expr, label in others:
        result, error = prom.query(expr)
        if error:
            problems.append(f"{what}: {error}\n    {expr}")
        elif not result or (label and not any(s["metric"].get(label) for s in result)):
            problems.append(f"{what}: no data\n    {expr}")
    for group in prom.rules():
        for rule in group["rules"]:
            # The same expression through the query API (what a person pasting it would run),
            # and the rule's own evaluation by the rule manager.
            _, error = prom.query(rule["query"])
            if error:
                problems.append(f"rule {rule['name']}: {error}")
            if rule["health"] != "ok":
                problems.append(f"rule {rule['name']}: health {rule['health']}: "
                                f"{rule.get('lastError', '')}")
            if rule["labels"].get("severity") not in ("critical", "warning", "info"):
                problems.append(f"rule {rule['name']}: no severity label")
            if not {"summary", "description"} <= set(rule["annotations"]):
                problems.append(f"rule {rule['name']}: summary or description missing")
    active = {}
    for a in prom.alerts():
        active.setdefault(a["labels"]["alertname"], []).append(a)
    # Prometheus renders a label an alert does not have as "" (missingkey=zero): a template that
    # names one (a typo, a label the expression aggregated away) must fail here instead. Labels
    # under {{ if $labels.x }} may be missing (an empty label, as a cluster breaker's route).
    templates = {r["name"]: " ".join(r["annotations"].values())
                 for group in prom.rules() for r in group["rules"]}
    for name, alerts in active.items():
        named = set(re.findall(r"\$labels\.(\w+)", templates[name]))
        optional = set(re.findall(r"if \$labels\.(\w+)", templates[name]))
        for a in alerts:
            for label in sorted(named - optional - a["labels"].keys()):
                problems.append(f"alert {name}: its annotations name ${label}, which it lacks")
    for name, labels in EXPECTED_ALERTS.items():
        if not any(labels.items() <= a["labels"].items() for a in active.get(name, [])):
            problems.append(f"alert {name} with {labels} not active: {active.get(name)}")
    for name in QUIET_ALERTS & active.keys():
        problems.append(f"alert {name} active: {active[name]}")
    return problems
