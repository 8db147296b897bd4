// The admin dashboard: polls GET /stats and draws it. Plain ES2020, no library, no build step.
//
// /stats carries counters since the start; every rate and quantile shown here is taken over the
// window between two polls (a missed poll widens the window, it loses nothing). The DOM is built
// with createElement and textContent only - never innerHTML - because route names, cluster
// names and host metadata are operator or registry input, and the page's Content-Security-Policy
// (script-src 'self') is the second wall, not the first.
"use strict";

const params = new URLSearchParams(location.search);
const POLL_MS = Math.max(250, Number(params.get("interval")) || 1000);
const HISTORY = 120; // points kept per sparkline (2 minutes at the default interval)
const CLASSES = ["1xx", "2xx", "3xx", "4xx", "5xx"];

let previous = null; // the last /stats document
let polls = 0;
const series = new Map(); // route key -> {rps: [], p99: []}

// el("td", {className: "l"}, "text", child, ...): text arguments become text nodes.
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === "data") for (const [dk, dv] of Object.entries(v)) node.dataset[dk] = String(dv);
    else node[k] = v;
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function badge(text, cls) {
  return el("span", { className: "badge " + (cls || text) }, text);
}

function fmtRate(v) {
  if (v === null || !Number.isFinite(v)) return "–";
  if (v === 0) return "0";
  if (v < 10) return v.toFixed(1);
  return Math.round(v).toLocaleString("en-US");
}

function fmtSeconds(s) {
  if (s === null || s === undefined) return "–";
  if (s === Infinity) return "> 10 s";
  if (s < 0.001) return (s * 1e6).toFixed(0) + " µs";
  if (s < 1) return (s * 1000).toFixed(s < 0.01 ? 2 : 1) + " ms";
  return s.toFixed(2) + " s";
}

function fmtDuration(ms) {
  let s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  return (d ? d + "d " : "") + (d || h ? h + "h " : "") + (d || h || m ? m + "m " : "") + s + "s";
}

function clock(ms) {
  return new Date(ms).toLocaleTimeString("en-GB", { hour12: false });
}

// The q-quantile of a window's bucket counts (non-cumulative, the last +Inf), interpolated
// linearly inside its bucket as Prometheus' histogram_quantile does; null without requests.
function quantile(q, counts, bounds) {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    if (seen + counts[i] >= rank && counts[i] > 0) {
      if (i === bounds.length) return Infinity;
      const lo = i === 0 ? 0 : bounds[i - 1];
      return lo + (bounds[i] - lo) * ((rank - seen) / counts[i]);
    }
    seen += counts[i];
  }
  return Infinity;
}

function diff(now, before) {
  return now.map((v, i) => Math.max(0, v - ((before && before[i]) || 0)));
}

function routeKey(r) {
  return JSON.stringify([r.route, r.cluster]);
}

function sparkline(values, color) {
  const canvas = el("canvas", { className: "spark", width: 180, height: 40 });
  const ctx = canvas.getContext("2d");
  const finite = values.filter((v) => v !== null && Number.isFinite(v));
  if (!ctx || finite.length < 2) return canvas;
  const max = Math.max(...finite) || 1;
  ctx.strokeStyle = color;
  ctx.lineWidth = 2;
  ctx.beginPath();
  let started = false;
  // A young page's few points spread over at least 30 slots, not squeezed into the left edge.
  const slots = Math.max(values.length, 30);
  values.forEach((v, i) => {
    if (v === null || !Number.isFinite(v)) return;
    const x = (i / (slots - 1)) * 178 + 1;
    const y = 38 - (v / max) * 36;
    if (started) ctx.lineTo(x, y); else ctx.moveTo(x, y);
    started = true;
  });
  ctx.stroke();
  return canvas;
}

function push(list, v) {
  list.push(v);
  if (list.length > HISTORY) list.shift();
}

function renderFacts(s) {
  const facts = [
    ["version", s.version],
    ["uptime", fmtDuration(s.now_ms - s.started_ms)],
    ["generation", s.config.generation],
    ["workers", s.workers],
    ["requests in flight", s.requests_active],
    ["connections", s.connections_active],
  ];
  const nodes = facts.map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, v)));
  if (s.draining) nodes.push(el("div", {}, badge("draining", "open")));
  document.getElementById("facts").replaceChildren(...nodes);
}

// A guard's verdicts in the window, per second, and its gauges now.
function guardText(g, before, secs) {
  const parts = [];
  for (const [verdict, count] of Object.entries(g.verdicts)) {
    const prev = before ? before.verdicts[verdict] || 0 : count;
    const rate = secs > 0 ? (count - prev) / secs : 0;
    if (rate > 0 || (verdict !== "allowed" && count > 0)) {
      parts.push(`${verdict} ${fmtRate(rate)}/s (${count.toLocaleString("en-US")})`);
    }
  }
  const gauges = g.gauges || {};
  if ("concurrency_limit" in gauges) {
    parts.push(`in flight ${gauges.concurrency_in_flight}/${gauges.concurrency_limit}`,
      `queued ${gauges.concurrency_queued}`);
  }
  if ("rate_limit_keys" in gauges) parts.push(`keys ${gauges.rate_limit_keys}`);
  const text = `${g.guard}${g.shared ? " (cluster)" : ""}: ${parts.join(", ") || "idle"}`;
  const bad = ["limited", "shed", "open", "aborted"].some((v) => {
    const prev = before ? before.verdicts[v] || 0 : g.verdicts[v] || 0;
    return (g.verdicts[v] || 0) > prev;
  });
  return el("span", { className: "guard" + (bad ? " warn" : "") }, text);
}

function renderRoutes(s, before, secs) {
  const head = el("tr", {}, el("th", { className: "l" }, "route"), el("th", { className: "l" }, "cluster"),
    el("th", {}, "req/s"), el("th", {}, ""), ...CLASSES.slice(1).map((c) => el("th", {}, c + "/s")),
    el("th", {}, "p50"), el("th", {}, "p99"), el("th", {}, ""), el("th", {}, "requests"),
    el("th", { className: "l" }, "guards"));
  const rows = [head];
  const beforeByKey = new Map((before ? before.routes : []).map((r) => [routeKey(r), r]));
  const seen = new Set();
  for (const r of s.routes) {
    const key = routeKey(r);
    seen.add(key);
    const b = beforeByKey.get(key);
    const total = r.by_class.reduce((a, c) => a + c, 0);
    // The unrouted row (404s, 400s) only once something reached it.
    if (r.route === null && total === 0) continue;
    const classRates = b && secs > 0 ? diff(r.by_class, b.by_class).map((d) => d / secs) : null;
    const rps = classRates ? classRates.reduce((a, c) => a + c, 0) : null;
    const window = b ? diff(r.latency_buckets, b.latency_buckets) : null;
    const p50 = window ? quantile(0.5, window, s.latency_bounds_s) : null;
    const p99 = window ? quantile(0.99, window, s.latency_bounds_s) : null;
    if (!series.has(key)) series.set(key, { rps: [], p99: [] });
    const hist = series.get(key);
    if (b) {
      push(hist.rps, rps);
      push(hist.p99, p99 === Infinity ? null : p99);
    }
    const guardsBefore = new Map(((b && b.guards) || []).map((g) => [g.guard, g]));
    rows.push(el("tr", { data: { route: r.route === null ? "" : r.route, requests: total } },
      el("td", { className: "l" }, r.route === null ? el("span", { className: "dim" }, "(before routing)") : r.route),
      el("td", { className: "l" }, r.cluster === null ? "–" : r.cluster),
      el("td", {}, fmtRate(rps)),
      el("td", {}, sparkline(hist.rps, "#0969da")),
      ...[1, 2, 3, 4].map((c) => el("td", { className: c >= 3 && classRates && classRates[c] > 0 ? (c === 4 ? "err" : "warn") : "" },
        classRates ? fmtRate(classRates[c]) : "–")),
      el("td", {}, fmtSeconds(p50)),
      el("td", {}, fmtSeconds(p99)),
      el("td", {}, sparkline(hist.p99, "#9a6700")),
      el("td", {}, total.toLocaleString("en-US")),
      el("td", { className: "wrap" }, ...r.guards.map((g) => guardText(g, guardsBefore.get(g.guard), secs)))));
  }
  for (const key of series.keys()) if (!seen.has(key)) series.delete(key);
  document.getElementById("routes").replaceChildren(...rows);
}

// The breaker's state over the span its history covers, as coloured segments.
function timeline(b, now) {
  const h = b.history || [];
  const bar = el("div", { className: "timeline", title: "recent states, oldest on the left" });
  if (h.length === 0) {
    bar.append(el("span", { className: b.state }));
    bar.lastChild.style.width = "100%";
    return bar;
  }
  const start = Math.min(h[0].at_ms, now - 60000);
  const span = Math.max(1, now - start);
  let from = start;
  let state = h[0].from;
  const segments = h.map((t) => ({ at: t.at_ms, to: t.to })).concat([{ at: now, to: null }]);
  for (const seg of segments) {
    const piece = el("span", { className: state, title: `${state} from ${clock(from)}` });
    piece.style.width = ((100 * Math.max(0, seg.at - from)) / span).toFixed(2) + "%";
    bar.append(piece);
    from = seg.at;
    state = seg.to;
  }
  return bar;
}

function renderBreakers(s) {
  const cards = s.breakers.map((b) => {
    const owner = b.route !== null ? `route ${b.route}` : `cluster ${b.cluster}`;
    const events = (b.history || []).slice(-5).reverse()
      .map((t) => el("li", {}, `${clock(t.at_ms)}  ${t.from} → ${t.to}`));
    return el("div", { className: "card", data: { breaker: owner, state: b.state } },
      el("div", { className: "row" }, el("h3", {}, owner), badge(b.state)),
      el("div", { className: "row dim" },
        el("span", {}, `failures ${(100 * b.failure_rate).toFixed(0)} % of ${b.calls}`),
        el("span", {}, `slow ${(100 * b.slow_call_rate).toFixed(0)} %`),
        el("span", {}, `rejected ${b.rejected}`),
        b.open_for_ms !== null ? el("span", {}, `retry in ${fmtDuration(b.open_for_ms)}`) : null),
      timeline(b, s.now_ms),
      el("ul", { className: "events" }, ...events));
  });
  const box = document.getElementById("breakers");
  if (cards.length === 0) box.replaceChildren(el("p", { className: "note" }, "No circuit breaker configured."));
  else box.replaceChildren(...cards);
}

function hostState(h) {
  const out = [];
  out.push(h.healthy ? badge("healthy") : badge("unhealthy"));
  if (h.ejected) out.push(" ", badge("ejected"));
  if (h.drained) out.push(" ", badge("drained"));
  return out;
}

function renderClusters(s, before, secs) {
  const beforeHosts = new Map();
  for (const c of (before ? before.clusters : [])) {
    for (const h of c.hosts) beforeHosts.set(JSON.stringify([c.cluster, h.address]), h);
  }
  const blocks = s.clusters.map((c) => {
    const head = el("tr", {}, el("th", { className: "l" }, "host"), el("th", { className: "l" }, "state"),
      el("th", {}, "weight"), el("th", {}, "req/s"), el("th", {}, "active"), el("th", {}, "idle"),
      el("th", {}, "pending"), el("th", { className: "l" }, "checks"), el("th", { className: "l" }, "source"),
      el("th", { className: "l" }, "metadata"));
    const rows = c.hosts.map((h) => {
      const b = beforeHosts.get(JSON.stringify([c.cluster, h.address]));
      const rps = b && secs > 0 ? Math.max(0, h.requests - b.requests) / secs : null;
      const hc = h.active_health;
      const meta = Object.entries(h.metadata || {}).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`);
      return el("tr", { data: { host: h.address } },
        el("td", { className: "l" }, h.address),
        el("td", { className: "l" }, ...hostState(h)),
        el("td", {}, h.weight),
        el("td", {}, fmtRate(rps)),
        el("td", {}, h.connections.active),
        el("td", {}, h.connections.idle),
        el("td", { className: h.connections.pending > 0 ? "warn" : "" }, h.connections.pending),
        el("td", { className: "l" }, hc ? `${hc.last_result || "–"}${hc.consecutive_failures ? ` (${hc.consecutive_failures} failed)` : ""}` : "–"),
        el("td", { className: "l" }, h.source),
        el("td", { className: "wrap" }, meta.join("  ")));
    });
    const title = el("h3", {}, `${c.cluster}  `, el("span", { className: "dim" },
      `${c.healthy_hosts} of ${c.hosts.length} healthy`), c.panic ? " " : null, c.panic ? badge("panic") : null);
    return el("div", { className: "cluster", data: { cluster: c.cluster } }, title,
      el("div", { className: "scroll" }, el("table", { className: "grid" }, head, ...rows)));
  });
  document.getElementById("clusters").replaceChildren(...blocks);
}

function renderConfig(s) {
  const c = s.config;
  document.getElementById("config").textContent =
    `generation ${c.generation} from ${c.source} (${c.hash}); ${c.reloads_ok} reloads applied, ${c.reloads_failed} refused`;
  const head = el("tr", {}, el("th", { className: "l" }, "time"), el("th", { className: "l" }, "trigger"),
    el("th", { className: "l" }, "result"), el("th", {}, "generation"), el("th", {}, "took"),
    el("th", { className: "l" }, "problems"));
  const rows = c.history.slice().reverse().map((e) => el("tr", { data: { applied: e.applied } },
    el("td", { className: "l" }, new Date(e.at_ms).toLocaleString("en-GB", { hour12: false })),
    el("td", { className: "l" }, e.trigger),
    el("td", { className: "l" }, e.applied ? badge("applied") : badge("refused")),
    el("td", {}, e.generation),
    el("td", {}, e.took_ms ? e.took_ms.toFixed(1) + " ms" : "–"),
    el("td", { className: "wrap" }, e.problems.join("; ") +
      (e.problem_count > e.problems.length ? ` (+${e.problem_count - e.problems.length} more)` : ""))));
  document.getElementById("reloads").replaceChildren(head, ...rows);
}

function render(s) {
  const before = previous && previous.started_ms === s.started_ms ? previous : null;
  const secs = before ? (s.now_ms - before.now_ms) / 1000 : 0;
  renderFacts(s);
  renderRoutes(s, before, secs);
  renderBreakers(s);
  renderClusters(s, before, secs);
  renderConfig(s);
}

async function poll() {
  const status = document.getElementById("status");
  try {
    const response = await fetch("stats", { cache: "no-store" }); // relative: the admin may sit under a prefix
    if (!response.ok) throw new Error(`stats answered ${response.status}`);
    const s = await response.json();
    render(s);
    previous = s;
    polls += 1;
    document.body.dataset.polls = String(polls);
    status.className = "status";
    status.textContent = `updated ${clock(s.now_ms)}, every ${POLL_MS / 1000} s`;
  } catch (e) {
    status.className = "status stale";
    status.textContent = `stale: ${e.message}`;
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

poll();
