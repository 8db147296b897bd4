"""The paired-with-nginx arithmetic behind the published benchmark tables (report.py)."""
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402

REPORT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "report.py")


def run_line(target, rep, rps, cpu, p50, p99, body="1k", conns=50):
    return (f"RUN body={body} conns={conns} rep={rep} target={target} rps={rps} tgt_cpu={cpu} "
            f"p50_us={p50} p99_us={p99}\n")


def write_raw(path, date, lines):
    path.write_text(f"META date={date} targets=nginx,sluice v_sluice=0.1.0@test\n" + "".join(lines))
    return str(path)


def test_pairs_each_repetition_with_nginx_of_the_same_repetition():
    by_target = {
        "nginx": [{"rep": "1", "rps": "100", "tgt_cpu": "100", "p50_us": "10", "p99_us": "20"},
                  {"rep": "2", "rps": "100", "tgt_cpu": "50", "p50_us": "10", "p99_us": "40"}],
        "sluice": [{"rep": "2", "rps": "110", "tgt_cpu": "50", "p50_us": "12", "p99_us": "30"},
                   {"rep": "1", "rps": "90", "tgt_cpu": "100", "p50_us": "9", "p99_us": "30"},
                   {"rep": "3", "rps": "500", "tgt_cpu": "10", "p50_us": "1", "p99_us": "1"}],
    }
    eff, p99, p50 = report.paired_ratios(by_target, "sluice")
    # rep 3 has no nginx partner and is left out; rep 2 pairs with rep 2, not with rep 1.
    assert sorted(eff) == pytest.approx([0.9, 1.1])
    assert sorted(p99) == pytest.approx([0.75, 1.5])
    assert sorted(p50) == pytest.approx([0.9, 1.2])


def test_win_counts_treat_a_tie_as_a_win():
    assert report.ratio_cell([1.0, 0.9, 1.2], report.as_fast) == "1.00 | 2/3"
    assert report.ratio_cell([1.0, 0.9, 1.2], report.no_slower) == "1.00 | 2/3"
    assert report.ratio_cell([], report.as_fast) == "n/a | n/a"


def test_median_interval_takes_the_order_statistics_the_sign_test_allows():
    # n = 39: P(Binomial(39, 1/2) <= 12) = 0.012 <= 0.025 < P(<= 13) = 0.027, so the interval
    # runs from the 13th smallest to the 13th largest value (coverage 97.6 %).
    assert report.median_ci(list(range(39, 0, -1))) == (13, 27)
    # n = 6 and 8: only the extremes (P(<= 0) = 1/64 and 1/256; P(<= 1) = 0.11 and 0.035).
    assert report.median_ci([0.9, 1.3, 1.0, 1.1, 0.8, 1.2]) == (0.8, 1.3)
    assert report.median_ci([float(v) for v in range(8)]) == (0.0, 7.0)
    # n = 5: even the extremes cover only 1 - 2/32 = 93.75 %.
    assert report.median_ci([1, 2, 3, 4, 5]) is None
    assert report.ci_cell([1, 2, 3, 4, 5]) == "-"
    assert report.ci_cell([0.97, 1.0, 1.01, 1.02, 1.03, 0.99]) == "0.97-1.03"


def test_pool_keeps_the_repetitions_of_each_run_apart(tmp_path):
    # Both runs number their repetitions from 1: pooled, rep 1 of run A must pair with nginx's
    # rep 1 of run A only, and all four repetitions must count.
    a = write_raw(tmp_path / "a.log", "A", [
        run_line("nginx", 1, 100, 100, 10, 20), run_line("sluice", 1, 120, 100, 10, 18),
        run_line("nginx", 2, 100, 100, 10, 20), run_line("sluice", 2, 110, 100, 10, 19)])
    b = write_raw(tmp_path / "b.log", "B", [
        run_line("nginx", 1, 200, 100, 10, 20), run_line("sluice", 1, 180, 100, 10, 21),
        run_line("nginx", 2, 200, 100, 10, 20), run_line("sluice", 2, 196, 100, 12, 26)])
    out = subprocess.run([sys.executable, REPORT, "--pool", a, b], check=True,
                         capture_output=True, text=True).stdout
    row = next(line for line in out.splitlines() if line.startswith("| 1k | 50 | sluice |"))
    # req/CPU-s ratios 1.2, 1.1, 0.9, 0.98 -> median 1.04, 2 wins; p99 0.9, 0.95, 1.05, 1.3 ->
    # 1.00, 2 wins; p50 1, 1, 1, 1.2 -> 1.00, 3 wins.
    # Four repetitions are too few for a 95 % interval of the median: "-".
    assert row == "| 1k | 50 | sluice | 4 | 1.04 | 2/4 | - | 1.00 | 2/4 | - | 1.00 | 3/4 |"
    assert "Pooled over 2 runs: A (sluice 0.1.0@test); B (sluice 0.1.0@test)" in out


def test_pool_pairs_with_another_base_target(tmp_path):
    # --base sluice: sluice-reload's repetitions pair with sluice's, and nginx is just another
    # target.
    a = write_raw(tmp_path / "a.log", "A", [
        run_line("sluice", 1, 100, 100, 10, 20), run_line("sluice-reload", 1, 95, 100, 10, 22),
        run_line("nginx", 1, 100, 50, 10, 20),
        run_line("sluice", 2, 100, 100, 10, 20), run_line("sluice-reload", 2, 99, 100, 10, 20)])
    out = subprocess.run([sys.executable, REPORT, "--pool", "--base", "sluice", a], check=True,
                         capture_output=True, text=True).stdout
    assert "req/CPU-s x sluice" in out
    row = next(line for line in out.splitlines() if line.startswith("| 1k | 50 | sluice-reload |"))
    assert row == "| 1k | 50 | sluice-reload | 2 | 0.97 | 0/2 | - | 1.05 | 1/2 | - | 1.00 | 2/2 |"
    row = next(line for line in out.splitlines() if line.startswith("| 1k | 50 | nginx |"))
    assert row.startswith("| 1k | 50 | nginx | 1 | 2.00 |")


def test_usage_error_without_arguments():
    r = subprocess.run([sys.executable, REPORT], capture_output=True, text=True)
    assert r.returncode != 0
    assert "usage: report.py" in r.stderr


def test_help_prints_usage_and_a_bad_option_is_refused():
    shown = subprocess.run([sys.executable, REPORT, "--help"], capture_output=True, text=True)
    assert shown.returncode == 0
    assert "--pool RAW_LOG..." in shown.stdout
    refused = subprocess.run([sys.executable, REPORT, "--bogus"], capture_output=True, text=True)
    assert refused.returncode != 0
    assert "usage:" in refused.stderr
    assert "Traceback" not in refused.stderr
