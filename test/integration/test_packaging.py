"""Packaging: the .deb built by `cpack -G DEB`, `cmake --install` to a prefix, and a library
user's find_package(sluice CONFIG) against that prefix.

Needs the build directory: SLUICE_BUILD_DIR (ctest's `packaging` test sets it), else the
directory of the binary under test (the build writes sluice at the top of its build directory).
Everything is made in temporary directories, removed at the end; the build directory is only read.
"""
import gzip
import os
import re
import shutil
import subprocess
import tempfile

import pytest


def sh(*args, timeout=300, **kwargs):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert r.returncode == 0, f"{' '.join(args)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    return r


@pytest.fixture(scope="module")
def build_dir(sluice_bin):
    d = os.environ.get("SLUICE_BUILD_DIR") or os.path.dirname(sluice_bin)
    assert os.path.exists(os.path.join(d, "CPackConfig.cmake")), (
        f"{d} is not a configured build directory (set SLUICE_BUILD_DIR)")
    return d


@pytest.fixture(scope="module")
def version(sluice_bin):
    return sh(sluice_bin, "version").stdout.split()[1]


@pytest.fixture(scope="module")
def tmp():
    d = tempfile.mkdtemp(prefix="sluice-packaging-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def deb(build_dir, tmp):
    out = os.path.join(tmp, "cpack")
    sh("cpack", "-G", "DEB", "-B", out, cwd=build_dir)
    debs = [f for f in os.listdir(out) if f.endswith(".deb")]
    assert len(debs) == 1, debs
    return os.path.join(out, debs[0])


@pytest.fixture(scope="module")
def root(deb, tmp):
    r = os.path.join(tmp, "root")
    sh("dpkg-deb", "-x", deb, r)
    return r


def test_deb_control(deb, version):
    info = sh("dpkg-deb", "--info", deb).stdout
    fields = dict(re.findall(r"^ (\w[\w-]*): (.*)$", info, re.M))
    assert fields["Package"] == "sluice"
    assert fields["Version"] == version
    assert fields["Section"] == "net"
    assert fields["Architecture"] == sh("dpkg", "--print-architecture").stdout.strip()
    assert fields["Maintainer"]
    # Computed by dpkg-shlibdeps from what the binary links.
    depends = [d.strip().split()[0] for d in fields["Depends"].split(",")]
    for lib in ("libc6", "libstdc++6", "libsystemd0", "libyaml-0-2", "libre2-9"):
        assert lib in depends, fields["Depends"]
    assert sh("dpkg-deb", "--info", deb, "conffiles").stdout.split() == [
        "/etc/sluice/sluice.yaml"]


def test_deb_contents_run(root, version):
    sluice = os.path.join(root, "usr/bin/sluice")
    assert sh(sluice, "version").stdout.startswith(f"sluice {version} ")
    config = os.path.join(root, "etc/sluice/sluice.yaml")
    assert sh(sluice, "validate", "-c", config).stdout.strip() == f"{config}: ok"
    # Nothing but the gateway is installed: no tests, benchmarks or fuzzers.
    assert os.listdir(os.path.join(root, "usr/bin")) == ["sluice"]
    # Stripped: the build's debug info stays out of the package.
    assert ".debug_info" not in sh("readelf", "-S", sluice).stdout


def test_deb_man_page(root):
    page = os.path.join(root, "usr/share/man/man1/sluice.1.gz")
    with gzip.open(page, "rt") as f:
        roff = f.read()
    assert roff.startswith(".\\\"") or roff.startswith(".TH"), roff[:200]
    assert re.search(r'^\.TH SLUICE "1"', roff, re.M)
    for cmd in ("run", "validate", "demo", "version"):
        assert f'.SS "sluice {cmd}"' in roff
    # man renders it without a warning, and the subcommands' options and signals are in it.
    r = subprocess.run(["man", "--warnings", "-l", page], capture_output=True, text=True,
                       env={**os.environ, "MANPAGER": "cat", "PAGER": "cat", "MANWIDTH": "100"},
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", r.stderr
    for text in ("SIGHUP", "--watch", "--listen", "SEE ALSO", "/etc/sluice/sluice.yaml"):
        assert text in r.stdout, text


def test_deb_unit_and_library(root):
    unit = open(os.path.join(root, "lib/systemd/system/sluice.service")).read()
    assert "ExecStart=/usr/bin/sluice run -c /etc/sluice/sluice.yaml\n" in unit
    assert "ExecStartPre=/usr/bin/sluice validate -c /etc/sluice/sluice.yaml\n" in unit
    assert "Type=notify\n" in unit
    assert os.path.isfile(os.path.join(root, "usr/include/sluice/resilience/token_bucket.h"))
    assert os.path.isfile(os.path.join(root, "usr/include/sluice/resilience/lb/maglev.h"))
    assert not any(f.endswith("_test_support.h")
                   for _, _, files in os.walk(os.path.join(root, "usr/include")) for f in files)
    libs = [os.path.join(d, f) for d, _, files in os.walk(os.path.join(root, "usr/lib"))
            for f in files]
    assert any(p.endswith("/libsluice_resilience.a") for p in libs), libs
    assert any(p.endswith("/cmake/sluice/sluiceConfig.cmake") for p in libs), libs
    assert os.path.isfile(os.path.join(root, "usr/share/doc/sluice/operations.md"))


def verifiable_unit(unit_text, root, tmp):
    """The unit with its paths moved under `root`, where the binary is (systemd-analyze verify
    checks that ExecStart's program exists)."""
    path = os.path.join(tmp, "verify", "sluice.service")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(unit_text.replace("/usr/bin/sluice", os.path.join(root, "usr/bin/sluice")))
    return path


def test_unit_verifies(root, tmp):
    unit = open(os.path.join(root, "lib/systemd/system/sluice.service")).read()
    path = verifiable_unit(unit, root, tmp)
    # MANPATH: Documentation=man:sluice(1) must resolve, to the package's man page.
    r = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True,
                       env={**os.environ, "MANPATH": os.path.join(root, "usr/share/man")},
                       timeout=60)
    # An unknown directive or a bad value is a warning (exit code 0): any output fails.
    assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr
    # The sandbox as systemd scores it, 0 (confined) to 10 (not at all); 1.8 with systemd 252.
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", path],
                       capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for \S+: ([\d.]+)", r.stdout + r.stderr)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= 2.0, r.stdout


def test_cmake_install_and_find_package(build_dir, tmp):
    prefix = os.path.join(tmp, "prefix")
    sh("cmake", "--install", build_dir, "--prefix", prefix)
    sluice = os.path.join(prefix, "bin/sluice")
    assert os.listdir(os.path.join(prefix, "bin")) == ["sluice"]
    config = os.path.join(prefix, "etc/sluice/sluice.yaml")
    sh(sluice, "validate", "-c", config)
    assert os.path.isfile(os.path.join(prefix, "share/man/man1/sluice.1.gz"))
    unit = open(os.path.join(prefix, "lib/systemd/system/sluice.service")).read()
    assert f"ExecStart={sluice} run -c {config}\n" in unit

    # An edited config survives a second install (as a dpkg conffile does).
    with open(config, "a") as f:
        f.write("# edited\n")
    sh("cmake", "--install", build_dir, "--prefix", prefix)
    assert open(config).read().endswith("# edited\n")

    # A library user: find_package(sluice CONFIG), link sluice::resilience, include as in-tree.
    src = os.path.join(tmp, "consumer")
    os.makedirs(src)
    with open(os.path.join(src, "CMakeLists.txt"), "w") as f:
        f.write("cmake_minimum_required(VERSION 3.25)\nproject(consumer CXX)\n"
                "find_package(sluice 0.1 CONFIG REQUIRED)\n"
                "add_executable(consumer main.cc)\n"
                "target_link_libraries(consumer PRIVATE sluice::resilience)\n")
    with open(os.path.join(src, "main.cc"), "w") as f:
        f.write('#include "resilience/token_bucket.h"\n'
                "int main() {\n"
                "  sluice::resilience::ManualClock clock;\n"
                "  sluice::resilience::TokenBucket bucket({.rate_per_second = 1, .burst = 2},"
                " clock.now());\n"
                "  const bool a = bucket.tryAcquire(clock.now());\n"
                "  const bool b = bucket.tryAcquire(clock.now());\n"
                "  const bool c = bucket.tryAcquire(clock.now());\n"
                "  return a && b && !c ? 0 : 1;\n"
                "}\n")
    flags = []
    cache = open(os.path.join(build_dir, "CMakeCache.txt")).read()
    m = re.search(r"^SLUICE_SANITIZE:STRING=(.+)$", cache, re.M)
    if m:  # a sanitizer build's library needs the sanitizer's runtime
        flags = [f"-DCMAKE_CXX_FLAGS=-fsanitize={m.group(1)}"]
    out = os.path.join(tmp, "consumer-build")
    sh("cmake", "-S", src, "-B", out, "-G", "Ninja", f"-DCMAKE_PREFIX_PATH={prefix}", *flags)
    sh("cmake", "--build", out)
    sh(os.path.join(out, "consumer"))
