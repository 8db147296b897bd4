"""`sluice validate` and the CLI surface."""
import os
import subprocess
import tempfile

import pytest


def run(sluice_bin, *args):
    p = subprocess.run([sluice_bin, *args], capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def write(text):
    fd, path = tempfile.mkstemp(suffix=".yaml")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


GOOD = """listeners:
  - name: public
    address: 127.0.0.1:8080
clusters:
  - name: app
    endpoints: [127.0.0.1:9000]
routes:
  - name: all
    cluster: app
"""


def test_valid_config_exits_0(sluice_bin):
    path = write(GOOD)
    rc, out, err = run(sluice_bin, "validate", "-c", path)
    assert rc == 0 and "ok" in out


BROKEN = [
    ("unknown_key", GOOD.replace("    address: 127.0.0.1:8080", "    address: 127.0.0.1:8080\n    colour: red"),
     [":4:5: unknown key 'colour' in listener"]),
    ("missing_unit", GOOD + "drain_timeout: 30\n", [":10:16: drain_timeout: duration '30' is missing a unit"]),
    ("wrong_type", GOOD + "workers: many\n", [":10:10: workers ('auto' or a count) must be an integer"]),
    ("bad_address", GOOD.replace("127.0.0.1:9000", "nowhere:9000"), [":6:17: endpoint address: invalid address"]),
    ("duplicate_name", GOOD + "  - name: all\n    cluster: app\n", [":10:5: duplicate route name 'all'"]),
    ("unknown_cluster", GOOD.replace("    cluster: app", "    cluster: ghost"),
     [":9:14: route 'all' refers to unknown cluster 'ghost'"]),
    ("several", GOOD.replace("127.0.0.1:8080", "127.0.0.1:80800").replace("cluster: app", "cluster: x"),
     [":3:14: listener address: invalid address", ":9:14: route 'all' refers to unknown cluster 'x'"]),
    ("yaml_syntax", "listeners: [\n", [":2:1: YAML syntax error"]),
]


@pytest.mark.parametrize("name,text,expected", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_configs_print_file_line_column(sluice_bin, name, text, expected):
    path = write(text)
    rc, out, err = run(sluice_bin, "validate", "-c", path)
    assert rc != 0
    lines = [l for l in err.splitlines() if l.startswith(path)]
    assert len(lines) == len(expected), err
    for line, want in zip(lines, expected):
        assert line.startswith(path + want), (line, want)


def test_missing_file(sluice_bin):
    rc, out, err = run(sluice_bin, "validate", "-c", "/nonexistent/sluice.yaml")
    assert rc != 0 and "cannot read" in err


@pytest.mark.parametrize("args,expected", [
    (["--listen", "nonsense"], "sluice demo: --listen: invalid address 'nonsense'"),
    (["--admin", "127.0.0.1:0x50"], "sluice demo: --admin: invalid address"),
    (["--listen", "127.0.0.1:18081", "--admin", "127.0.0.1:18081"],
     "sluice demo: --listen and --admin are both 127.0.0.1:18081"),
])
def test_demo_refuses_addresses_it_cannot_serve_on(sluice_bin, args, expected):
    # Refused before anything is bound or started.
    rc, out, err = run(sluice_bin, "demo", *args)
    assert rc == 1 and expected in err, err


def test_run_refuses_a_broken_config(sluice_bin):
    path = write(GOOD.replace("cluster: app", "cluster: nope"))
    rc, out, err = run(sluice_bin, "run", "-c", path)
    assert rc != 0 and "unknown cluster" in err


@pytest.mark.parametrize("sub", ["run", "validate", "demo", "version"])
def test_every_subcommand_has_help(sluice_bin, sub):
    rc, out, err = run(sluice_bin, sub, "--help")
    assert rc == 0 and "Usage" in out


def test_version(sluice_bin):
    rc, out, err = run(sluice_bin, "version")
    assert rc == 0 and out.startswith("sluice ")
    assert any(f"(malloc: {m})" in out for m in ("tcmalloc", "glibc", "sanitizer")), out


def test_bundled_examples_validate(sluice_bin):
    here = os.path.dirname(os.path.abspath(__file__))
    examples = os.path.join(here, "..", "..", "examples")
    names = sorted(n for n in os.listdir(examples) if n.endswith(".yaml"))
    assert "demo.yaml" in names and "minimal.yaml" in names
    for name in names:
        rc, out, err = run(sluice_bin, "validate", "-c", os.path.join(examples, name))
        assert rc == 0, f"{name}: {err}"
