"""The admin dashboard: GET /stats (what the page polls), the page and its assets, and the page
itself in headless Chromium against a gateway under traffic (a screenshot is kept)."""
import json
import os
import re
import threading
import time

import pytest

from conftest import basic_config, free_port, running_demo
from support import upstream as upstream_mod
from support.chromium import Browser, chromium_path
from support.client import Client, fetch
from test_admin import call, get

HERE = os.path.dirname(os.path.abspath(__file__))
INJECTED = "<img src=x onerror=\"window.pwned=1\"><script>window.pwned=2</script>"


def artifacts_dir():
    """Where tests leave files for people to look at: $SLUICE_TEST_ARTIFACTS, or
    build/test-artifacts in the repository."""
    path = os.environ.get("SLUICE_TEST_ARTIFACTS") or os.path.join(HERE, "..", "..", "build",
                                                                   "test-artifacts")
    os.makedirs(path, exist_ok=True)
    return os.path.abspath(path)


def stats(admin):
    status, headers, body = get(admin, "/stats")
    assert status == 200 and headers["Content-Type"] == "application/json"
    return json.loads(body)


def route_stats(admin, route):
    return next(r for r in stats(admin)["routes"] if r["route"] == route)


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_stats_counts_the_traffic_and_keeps_breaker_and_reload_history(gateway_factory,
                                                                       upstream_factory):
    failing = upstream_mod.Switchable(200)
    up = upstream_factory(failing)
    port, admin = free_port(), free_port()
    route = ("    concurrency: { max: 4, queue: 2 }\n"
             "    circuit_breaker: { window: 4, minimum_calls: 4, failure_rate: 50, "
             "open_duration: 60s }\n")
    text = basic_config(port, [up.address], admin_port=admin, route_extra=route, workers=2)
    g = gateway_factory(text)

    s = stats(admin)
    assert s["workers"] == 2 and s["draining"] is False and s["config"]["generation"] == 1
    assert [e["trigger"] for e in s["config"]["history"]] == ["start"]
    assert s["config"]["hash"].startswith("xxh3:")
    assert len(s["latency_bounds_s"]) + 1 == len(route_stats(admin, "all")["latency_buckets"])

    assert all(fetch(port).status == 200 for _ in range(6))
    assert fetch(port, "/nope").status == 200  # one route takes every path
    wait_for(lambda: route_stats(admin, "all")["by_class"][1] == 7)
    r = route_stats(admin, "all")
    assert r["by_class"] == [0, 7, 0, 0, 0] and r["cluster"] == "app"
    assert sum(r["latency_buckets"]) == 7 and r["latency_sum_s"] > 0
    guards = {g["guard"]: g for g in r["guards"]}
    assert guards["concurrency"]["verdicts"]["allowed"] == 7
    assert guards["concurrency"]["gauges"]["concurrency_limit"] == 4
    assert guards["concurrency"]["gauges"]["concurrency_queued"] == 0

    # The breaker opens: its history says when, from what, to what.
    failing.status = 500
    before = time.time() * 1000
    statuses = [fetch(port).status for _ in range(6)]
    assert statuses[0] == 500 and statuses[-1] == 503  # the window holds 4 calls
    breaker = next(b for b in stats(admin)["breakers"] if b["route"] == "all")
    assert breaker["state"] == "open"
    last = breaker["history"][-1]
    assert (last["from"], last["to"]) == ("closed", "open")
    assert before - 1000 <= last["at_ms"] <= time.time() * 1000 + 1000
    # /breakers shows the same history.
    listed = json.loads(get(admin, "/breakers")[2])
    assert listed[0]["history"] == breaker["history"]

    # A refused reload, then a good one.
    with open(g.config_path, "w") as f:
        f.write(text + "    timeout: banana\n")
    assert call(admin, "POST", "/config/reload")[0] == 400
    with open(g.config_path, "w") as f:
        f.write(text)
    assert call(admin, "POST", "/config/reload")[0] == 200
    s = stats(admin)
    history = s["config"]["history"]
    assert [(e["trigger"], e["applied"], e["generation"]) for e in history] == [
        ("start", True, 1), ("admin API", False, 1), ("admin API", True, 2)]
    assert "timeout" in history[1]["problems"][0] and history[1]["problem_count"] >= 1
    assert history[2]["problems"] == [] and history[2]["took_ms"] > 0
    assert s["config"]["generation"] == 2 and s["config"]["reloads_failed"] == 1
    # The breaker kept its state and history across the reload.
    assert next(b for b in s["breakers"] if b["route"] == "all")["history"] == breaker["history"]
    assert s["clusters"][0]["hosts"][0]["address"] == up.address


def test_the_page_its_assets_and_their_headers(gateway_factory, upstream_factory):
    up = upstream_factory()
    port, admin = free_port(), free_port()
    gateway_factory(basic_config(port, [up.address], admin_port=admin))
    status, headers, page = get(admin, "/")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    policy = headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert "unsafe-inline" not in policy
    assert headers["X-Content-Type-Options"] == "nosniff"
    # No inline script: every <script> has a src.
    assert re.findall(r"<script(?![^>]*\bsrc=)", page) == []
    # The list of endpoints is at the page's foot. Every link is relative: the page works
    # behind a proxy that serves the admin listener under a path prefix.
    for path in ("stats", "metrics", "breakers", "upstreams", "config"):
        assert f'href="{path}"' in page
    assert re.findall(r'(?:src|href)="/', page) == []
    assets = ["/" + a for a in re.findall(r'(?:src|href)="(dashboard/[^"]+)"', page)]
    assert sorted(a.rsplit(".", 1)[1] for a in assets) == ["css", "js"]
    for a in assets:
        status, headers, body = get(admin, a)
        assert status == 200 and body
        assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
        want = "text/javascript" if a.endswith(".js") else "text/css"
        assert headers["Content-Type"].startswith(want)
    assert get(admin, "/dashboard/dashboard.0000000000000000.js")[0] == 404
    # Everything else stays uncached.
    assert get(admin, "/stats")[1]["Cache-Control"] == "no-store"


def traffic(port, stop):
    """Requests to every demo route until `stop` is set, from one keep-alive client."""
    paths = ["/", "/", "/", "/slow", "/limited", "/flaky", "/canary", "/rollout", "/mirrored",
             "/nowhere"]
    c = Client(port)
    i = 0
    while not stop.is_set():
        try:
            c.request("GET", paths[i % len(paths)])
        except Exception:  # noqa: BLE001 - a closed connection: start another
            c.close()
            c = Client(port)
        i += 1
        time.sleep(0.005)
    c.close()


def test_the_dashboard_renders_live_numbers_and_escapes_what_it_shows(sluice_bin,
                                                                      upstream_factory):
    if chromium_path() is None:
        pytest.fail("chromium is not installed: scripts/setup.sh installs it (Debian package "
                    "chromium)")
    extra = upstream_factory()
    with running_demo(sluice_bin) as (port, admin):
        status, _, _ = call(admin, "PUT", f"/registry/fast/{extra.address}",
                            body=json.dumps({"metadata": {"zone": "eu-1",
                                                          "note": INJECTED}}).encode())
        assert status in (200, 201)
        stop = threading.Event()
        workers = [threading.Thread(target=traffic, args=(port, stop), daemon=True)
                   for _ in range(2)]
        for w in workers:
            w.start()
        try:
            with Browser() as b:
                b.navigate(f"http://127.0.0.1:{admin}/?interval=500")
                b.wait_for("Number(document.body.dataset.polls) >= 2")
                first = b.evaluate(
                    "Number(document.querySelector('tr[data-route=\"api\"]').dataset.requests)")
                # Long enough for the sparklines of the screenshot to show a few seconds.
                b.wait_for("Number(document.body.dataset.polls) >= 12")
                second = b.evaluate(
                    "Number(document.querySelector('tr[data-route=\"api\"]').dataset.requests)")
                assert second > first > 0
                # Rates are shown (not the dash of a first poll).
                rate = b.evaluate(
                    "document.querySelector('tr[data-route=\"api\"]').children[2].textContent")
                assert re.fullmatch(r"[0-9][0-9.,]*", rate), rate
                routes = b.evaluate("[...document.querySelectorAll('tr[data-route]')]"
                                    ".map(r => r.dataset.route)")
                assert {"api", "slow", "limited", "flaky", "canary"} <= set(routes)
                assert b.evaluate("document.querySelectorAll('[data-breaker]').length") >= 1
                hosts = b.evaluate("[...document.querySelectorAll('tr[data-host]')]"
                                   ".map(r => r.dataset.host)")
                assert extra.address in hosts and len(hosts) >= 4
                assert b.evaluate("document.querySelectorAll('#reloads tr').length") >= 2
                # The metadata is text: no element made of it, no script run.
                row = b.evaluate(f"document.querySelector('tr[data-host=\"{extra.address}\"]')"
                                 ".textContent")
                assert INJECTED in row
                assert b.evaluate("document.querySelectorAll('img').length") == 0
                assert b.evaluate("document.querySelectorAll('main script').length") == 0
                assert b.evaluate("window.pwned === undefined")
                assert "stale" not in b.evaluate("document.getElementById('status').className")
                # No script error, no policy violation (the browser's own favicon request aside).
                assert [e for e in b.errors() if "favicon.ico" not in e] == []
                shot = os.path.join(artifacts_dir(), "dashboard.png")
                b.screenshot(shot)
                assert os.path.getsize(shot) > 10_000
        finally:
            stop.set()
            for w in workers:
                w.join(timeout=5)
