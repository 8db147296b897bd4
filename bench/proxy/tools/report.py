#!/usr/bin/env python3
"""Turn run.sh's raw.log (key=value lines) into markdown tables.

Lines used:
  META key=value ...                 run parameters / versions
  RUN body= conns= rep= target= ...  one measured wrk run (+ CPU/RSS fields)
  IDLE target= ...                   idle-connection memory test
Medians are taken over repetitions; with >1 rep the req/s spread
((max-min)/median) is shown.

  report.py RAW_LOG              the tables of one run
  report.py --pool RAW_LOG...    paired-with-nginx ratios pooled over several runs' repetitions
  report.py --pool --base T RAW_LOG...
                                 the same, paired with target T instead of nginx (e.g. T=sluice
                                 for sluice-reload: the cost of reloading every 100 ms)
"""
import math
import statistics as st
import sys
from collections import OrderedDict, defaultdict


def kv(line):
    out = {}
    for tok in line.split()[1:]:
        if "=" in tok:
            k, v = tok.split("=", 1)
            out[k] = v
    return out


def num(x, default=None):
    try:
        return float(x)
    except (TypeError, ValueError):
        return default


def fmt_int(x):
    return "n/a" if x is None else f"{x:,.0f}"


def fmt_ms(us):
    return "n/a" if us is None else f"{us / 1000:.2f}"


def fmt_pct(x):
    return "n/a" if x is None else f"{x:.0f}"


def read_raw(path):
    meta, runs, idle, discards = {}, [], [], []
    with open(path) as f:
        for line in f:
            if line.startswith("META "):
                meta.update(kv(line))
            elif line.startswith("RUN "):
                runs.append(kv(line))
            elif line.startswith("IDLE "):
                idle.append(kv(line))
            elif line.startswith("DISCARD "):
                discards.append(kv(line))
    return meta, runs, idle, discards


def group_cells(runs, targets):
    """(body, conns) -> target -> runs, in first-seen order; adds unseen targets to `targets`."""
    cells = OrderedDict()
    for r in runs:
        cells.setdefault((r["body"], int(r["conns"])), defaultdict(list))[r["target"]].append(r)
        if r["target"] not in targets:
            targets.append(r["target"])
    return cells


def paired_ratios(by_target, target, base="nginx"):
    """Per-repetition ratios of `target` to `base` in one cell: (req/CPU-s, p99, p50) lists.

    Reps pair by (source, rep): `source` tells runs pooled from several raw logs apart."""
    def per_rep(rs):
        return {(r.get("source", ""), int(r["rep"])): r for r in rs}

    def eff(x):
        cpu = num(x.get("tgt_cpu"), 0)
        return num(x.get("rps")) / cpu if cpu else None

    ngx = per_rep(by_target.get(base, []))
    eff_r, p99_r, p50_r = [], [], []
    for key, r in per_rep(by_target.get(target, [])).items():
        n = ngx.get(key)
        if n is None:
            continue
        e_t, e_n = eff(r), eff(n)
        if e_t and e_n:
            eff_r.append(e_t / e_n)
        for field, out in (("p99_us", p99_r), ("p50_us", p50_r)):
            l_t, l_n = num(r.get(field)), num(n.get(field))
            if l_t and l_n:
                out.append(l_t / l_n)
    return eff_r, p99_r, p50_r


def paired_rows(cells, targets, base="nginx"):
    """(body, conns, target, req/CPU-s, p99, p50 ratio lists) for every cell and target other
    than `base` that has at least one repetition paired with it."""
    for (body, conns), by_t in cells.items():
        for t in targets:
            if t == base:
                continue
            eff_r, p99_r, p50_r = paired_ratios(by_t, t, base)
            if eff_r or p99_r:
                yield body, conns, t, eff_r, p99_r, p50_r


def as_fast(ratio):
    """A throughput ratio to nginx that counts as a win."""
    return ratio >= 1


def no_slower(ratio):
    """A latency ratio to nginx that counts as a win."""
    return ratio <= 1


def median_ci(vals, level=0.95):
    """Distribution-free confidence interval for the median of `vals`: the order statistics the
    sign test allows, (k-th smallest, k-th largest) with the largest k for which
    P(Binomial(n, 1/2) < k) <= (1 - level) / 2. None when n is too small for `level` (n < 6 at
    95 %). Pooled repetitions answer "how much worse than nginx could it be?" with this."""
    n = len(vals)
    k, below = 0, 0.0
    while k < n:
        below += math.comb(n, k) / 2 ** n  # P(Binomial(n, 1/2) <= k) = P(... < k + 1)
        if below > (1 - level) / 2:
            break
        k += 1
    if k == 0:
        return None
    s = sorted(vals)
    return s[k - 1], s[n - k]


def ci_cell(vals):
    ci = median_ci(vals)
    return "-" if ci is None else f"{ci[0]:.2f}-{ci[1]:.2f}"


def ratio_cell(vals, win):
    if not vals:
        return "n/a | n/a"
    return f"{st.median(vals):.2f} | {sum(1 for v in vals if win(v))}/{len(vals)}"


def main(path):
    meta, runs, idle, discards = read_raw(path)
    targets = meta.get("targets", "").split(",") if meta.get("targets") else []
    cells = group_cells(runs, targets)

    def med(rs, key):
        vals = [num(r.get(key)) for r in rs]
        vals = [v for v in vals if v is not None]
        return st.median(vals) if vals else None

    def worst(rs, key):
        vals = [num(r.get(key)) for r in rs]
        vals = [v for v in vals if v is not None]
        return max(vals) if vals else None

    reps = int(meta.get("reps", "1"))
    p = print
    p(f"Run: {meta.get('date', '?')} | duration {meta.get('duration', '?')} s, warm-up "
      f"{meta.get('warmup', '?')} s, reps {reps} | wrk -t{meta.get('wrk_threads', '1')} "
      f"on CPU {meta.get('load_cpu', '?')} with the backend; proxies on CPU "
      f"{meta.get('proxy_cpu', '?')}")
    p("")
    p("Versions: " + ", ".join(f"{k[2:]} {v}" for k, v in meta.items() if k.startswith("v_")))
    p("")
    steal_max = num(meta.get("steal_max"), 5)
    other_max = num(meta.get("other_max"), 15)

    def noisy(r):
        return num(r.get("steal"), 0) > steal_max or num(r.get("other_cpu"), 0) > other_max

    bad = [r for r in runs if noisy(r)]
    p(f"Noise: {len(discards)} run(s) discarded and re-run (hypervisor steal > {steal_max:g}% "
      f"or foreign CPU > {other_max:g}% of a core); {len(bad)} kept run(s) still noisy, "
      "marked `!` below.")
    p("")

    # ---- wide summary: req/s with ratio to nginx ----
    p("### Throughput (req/s" + (", median of reps" if reps > 1 else "") +
      "; in brackets: x nginx / % of direct)")
    p("")
    p("| body | conns | " + " | ".join(targets) + " |")
    p("|---|---:|" + "---:|" * len(targets))
    for (body, conns), by_t in cells.items():
        ngx = med(by_t.get("nginx", []), "rps")
        direct = med(by_t.get("direct", []), "rps")
        row = []
        for t in targets:
            v = med(by_t.get(t, []), "rps")
            if v is None:
                row.append("-")
                continue
            extra = []
            if ngx and t != "nginx":
                extra.append(f"{v / ngx:.2f}x")
            if direct and t != "direct":
                extra.append(f"{100 * v / direct:.0f}%")
            mark = "!" if any(noisy(r) for r in by_t.get(t, [])) else ""
            row.append(fmt_int(v) + mark + (f" ({' / '.join(extra)})" if extra else ""))
        p(f"| {body} | {conns} | " + " | ".join(row) + " |")
    p("")

    # ---- per-core efficiency: the fair comparison when the load side saturates first ----
    p("### Requests per proxy CPU-second (in brackets: x nginx)")
    p("")
    p("For `direct` the figure is the backend worker's. On a 2-core box wrk and the backend share "
      "one core and saturate before a fast proxy does, so this is the column that compares proxies.")
    p("")
    p("| body | conns | " + " | ".join(targets) + " |")
    p("|---|---:|" + "---:|" * len(targets))
    for (body, conns), by_t in cells.items():
        def eff(t):
            rs = by_t.get(t, [])
            rps, cpu = med(rs, "rps"), med(rs, "tgt_cpu")
            return rps / (cpu / 100) if rps and cpu else None
        ngx = eff("nginx")
        row = []
        for t in targets:
            v = eff(t)
            if v is None:
                row.append("-")
                continue
            row.append(f"{v / 1000:.1f}k" + (f" ({v / ngx:.2f}x)" if ngx and t != "nginx" else ""))
        p(f"| {body} | {conns} | " + " | ".join(row) + " |")
    p("")

    # ---- wide latency summary ----
    p("### Latency p50 / p99 (ms)")
    p("")
    p("| body | conns | " + " | ".join(targets) + " |")
    p("|---|---:|" + "---:|" * len(targets))
    for (body, conns), by_t in cells.items():
        row = []
        for t in targets:
            rs = by_t.get(t, [])
            row.append("-" if not rs else f"{fmt_ms(med(rs, 'p50_us'))} / {fmt_ms(med(rs, 'p99_us'))}")
        p(f"| {body} | {conns} | " + " | ".join(row) + " |")
    p("")

    # ---- long detail table ----
    p("### Detail")
    p("")
    p("`tgt CPU%` = CPU used by the measured process (proxy; for `direct` the backend "
      "worker), 100 = one full core. `req/tgt-CPU-s` = req/s divided by that, i.e. "
      "per-core efficiency (the fair metric when the proxy core is not saturated). "
      "`CPU0%`/`CPU1%` = whole-core busy (excl. steal). `other%` = CPU (both cores, % of "
      "one core, worst rep) during the run NOT used by wrk, backend or target: other "
      "jobs on the box; a few % is normal, >10% means the run was disturbed. `bg%` = "
      "busy CPU in the idle window just before the run (worst rep). `new upstr conns` = connections the backend accepted during the run "
      "(for `direct`: wrk's own); far above `conns` means upstream keep-alive churn. "
      "RSS/HWM of the measured process after the run.")
    p("")
    p("| body | conns | target | req/s | spread | x nginx | % direct | p50 ms | p99 ms | p99.9 ms | max ms "
      "| errors | new upstr conns | tgt CPU% | backend CPU% | CPU0% | CPU1% | steal% | other% | bg% | req/tgt-CPU-s | RSS MiB | HWM MiB |")
    p("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (body, conns), by_t in cells.items():
        ngx = med(by_t.get("nginx", []), "rps")
        direct = med(by_t.get("direct", []), "rps")
        for t in targets:
            rs = by_t.get(t, [])
            if not rs:
                continue
            rps = med(rs, "rps")
            vals = [num(r["rps"]) for r in rs]
            spread = f"{100 * (max(vals) - min(vals)) / rps:.1f}%" if len(vals) > 1 and rps else "-"
            errs = sum(int(num(r.get(k), 0)) for r in rs for k in
                       ("err_connect", "err_read", "err_write", "err_status", "err_timeout"))
            tcpu = med(rs, "tgt_cpu")
            eff = rps / (tcpu / 100) if tcpu else None
            rss, hwm = med(rs, "rss_kb"), med(rs, "hwm_kb")
            mark = "!" if any(noisy(r) for r in rs) else ""
            p(f"| {body} | {conns} | {t} | {fmt_int(rps)}{mark} | {spread} | "
              f"{(f'{rps / ngx:.2f}') if ngx else 'n/a'} | "
              f"{(f'{100 * rps / direct:.0f}') if direct else 'n/a'} | "
              f"{fmt_ms(med(rs, 'p50_us'))} | {fmt_ms(med(rs, 'p99_us'))} | "
              f"{fmt_ms(med(rs, 'p999_us'))} | {fmt_ms(med(rs, 'max_us'))} | {errs} | "
              f"{fmt_int(med(rs, 'be_new_conns'))} | "
              f"{fmt_pct(tcpu)} | {fmt_pct(med(rs, 'be_cpu'))} | {fmt_pct(med(rs, 'cpu0'))} | "
              f"{fmt_pct(med(rs, 'cpu1'))} | {fmt_pct(med(rs, 'steal'))} | "
              f"{fmt_pct(worst(rs, 'other_cpu'))} | {fmt_pct(worst(rs, 'bg'))} | {fmt_int(eff)} | "
              f"{'n/a' if rss is None else f'{rss / 1024:.1f}'} | "
              f"{'n/a' if hwm is None else f'{hwm / 1024:.1f}'} |")
    p("")

    if reps > 1:
        p("### Per-repetition req/s")
        p("")
        p("| body | conns | target | " + " | ".join(f"rep {i}" for i in range(1, reps + 1)) + " | CV |")
        p("|---|---:|---|" + "---:|" * reps + "---:|")
        for (body, conns), by_t in cells.items():
            for t in targets:
                rs = sorted(by_t.get(t, []), key=lambda r: int(r["rep"]))
                if not rs:
                    continue
                vals = [num(r["rps"]) for r in rs]
                cv = f"{100 * st.pstdev(vals) / st.mean(vals):.1f}%" if len(vals) > 1 else "-"
                p(f"| {body} | {conns} | {t} | " + " | ".join(fmt_int(v) for v in vals) + f" | {cv} |")
        p("")

    if reps > 1 and "nginx" in targets:
        # Each repetition runs every target back to back, so the ratio within one repetition
        # cancels the box's slow drift (other tenants come and go over minutes); the median of
        # those ratios is steadier than the ratio of two medians above.
        p("### Paired with nginx, per repetition (median of per-rep ratios; wins = reps "
          "where the target did at least as well as nginx)")
        p("")
        p("| body | conns | target | req/CPU-s x nginx | wins | p99 x nginx (< 1 is better) | wins |")
        p("|---|---:|---|---:|---:|---:|---:|")

        for body, conns, t, eff_r, p99_r, _ in paired_rows(cells, targets):
            p(f"| {body} | {conns} | {t} | {ratio_cell(eff_r, as_fast)} | "
              f"{ratio_cell(p99_r, no_slower)} |")
        p("")

    if idle:
        p("### Idle keep-alive connections (fresh process, before load)")
        p("")
        p("| target | conns held | still open | RSS before MiB | RSS after MiB | bytes / idle conn | fd delta |")
        p("|---|---:|---:|---:|---:|---:|---:|")
        for r in idle:
            fdd = int(num(r.get("fd_after"), 0) - num(r.get("fd_before"), 0))
            p(f"| {r['target']} | {r.get('n_ok')} / {r.get('n_req')} | {r.get('n_alive')} | "
              f"{num(r.get('rss_before_kb'), 0) / 1024:.1f} | {num(r.get('rss_after_kb'), 0) / 1024:.1f} | "
              f"{fmt_int(num(r.get('bytes_per_conn')))} | {fdd} |")
        p("")


def pool(paths, base="nginx"):
    """Paired-with-`base` table over the repetitions of several runs (same build, other hours)."""
    runs, targets, sources = [], [], []
    for path in paths:
        meta, rs, _, _ = read_raw(path)
        sources.append(f"{meta.get('date', path)} (sluice {meta.get('v_sluice', '?')})")
        for r in rs:
            r["source"] = path
        runs += rs
    cells = group_cells(runs, targets)
    print(f"Pooled over {len(paths)} runs: " + "; ".join(sources))
    print("")
    print("(95 % = distribution-free confidence interval of the median ratio; - below 6 reps)")
    print("")
    print(f"| body | conns | target | reps | req/CPU-s x {base} | wins | 95 % | p99 x {base} | wins | "
          f"95 % | p50 x {base} | wins |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for body, conns, t, eff_r, p99_r, p50_r in paired_rows(cells, targets, base):
        print(f"| {body} | {conns} | {t} | {len(eff_r)} | {ratio_cell(eff_r, as_fast)} | "
              f"{ci_cell(eff_r)} | {ratio_cell(p99_r, no_slower)} | {ci_cell(p99_r)} | "
              f"{ratio_cell(p50_r, no_slower)} |")


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] in ("-h", "--help"):
        print(__doc__)
    elif len(sys.argv) > 4 and sys.argv[1:3] == ["--pool", "--base"]:
        pool(sys.argv[4:], base=sys.argv[3])
    elif len(sys.argv) > 2 and sys.argv[1] == "--pool" and not sys.argv[2].startswith("-"):
        pool(sys.argv[2:])
    elif len(sys.argv) == 2 and not sys.argv[1].startswith("-"):
        main(sys.argv[1])
    else:
        sys.exit("usage: report.py RAW_LOG | report.py --pool [--base TARGET] RAW_LOG...")
