#!/usr/bin/env python3
"""Names local to a .cc file that another source of the same target also declares differently.

The sanitizer builds compile each target in unity batches (CMAKE_UNITY_BUILD, 8 sources per
translation unit), so two files' anonymous namespaces can meet in one translation unit: the same
name declared twice differently there (`using State = A::State;` beside `using State =
B::State;`, two `settings()` helpers) breaks only those builds, only once a new file moves the
batches. This finds such names in seconds, before any compiler runs. Targets are approximated
as: library sources, *_test.cc, *_benchmark.cc, per top directory (resilience/, gateway/).

Usage: scripts/check_unity_names.py [repo root]; exit 1 and a list when a name clashes.
"""
import collections
import os
import re
import sys

DECLS = [
    re.compile(r"^using (\w+) =(.*);"),
    re.compile(r"^(?:struct|class|enum class|enum|union) (\w+)\b(?!;)"),
    re.compile(r"^(?:inline )?(?:static )?constexpr [^=(]*?\b(\w+)\s*(?:=|\{)"),
    re.compile(r"^(?=[A-Za-z])(?:static )?(?:const )?[\w:<>,\s\*&]+?[\s\*&](\w+)\((.*)"),
]
FUNCTION = 3


def parameter_types(rest):
    """The parameter types of a function whose text after '(' is `rest` (names dropped), or
    None when the list does not close on this line: functions differing in them are overloads,
    which can share a translation unit."""
    depth = 1
    for i, c in enumerate(rest):
        depth += c == "(" or -(c == ")")
        if depth == 0:
            params = rest[:i]
            break
    else:
        return None
    types = []
    for p in re.split(r",(?![^<]*>)", params):
        p = p.split("=")[0].strip()
        p = re.sub(r"\s*\b\w+$", "", p) if re.search(r"[\w>&\*]\s+\w+$", p) else p
        types.append(re.sub(r"\s+", " ", p))
    return ",".join(types)
KEYWORDS = {"if", "for", "while", "switch", "return", "sizeof", "TEST", "TEST_F", "TEST_P",
            "INSTANTIATE_TEST_SUITE_P", "operator"}


def local_names(path):
    """(name, text, is_alias) of what the file declares at the top level of its anonymous
    namespaces."""
    out = []
    depth = 0
    named = ""  # the enclosing named namespace: anonymous namespaces inside different ones differ
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not depth and (m := re.match(r"^namespace ([\w:]+) \{", line)):
                named = m.group(1)
                continue
            if re.match(r"^namespace \{", line):
                depth += 1
                continue
            if depth and re.match(r"^\}\s*// namespace\s*$", line):
                depth -= 1
                continue
            if not depth:
                continue
            for k, pattern in enumerate(DECLS):
                m = pattern.match(line)
                if m and m.group(1) not in KEYWORDS:
                    key = m.group(1)
                    if k == FUNCTION:
                        types = parameter_types(m.group(2))
                        key = f"{key}({types})" if types is not None else key
                    out.append((f"{named}::{key}" if named else key, line.strip(), k == 0))
                    break
    return out


def target_of(root, path):
    top = os.path.relpath(path, root).split(os.sep)[0]
    base = os.path.basename(path)
    kind = "test" if base.endswith("_test.cc") else (
        "benchmark" if base.endswith("_benchmark.cc") else "lib")
    return top, kind


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    seen = collections.defaultdict(lambda: collections.defaultdict(set))  # target -> name -> {(file, text)}
    for top in ("resilience", "gateway", "fuzz"):
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for name in files:
                if not name.endswith(".cc"):
                    continue
                path = os.path.join(dirpath, name)
                target = target_of(root, path)
                if target[1] == "benchmark":
                    continue  # the unity presets (sanitizers) do not build benchmarks
                for local, text, alias in local_names(path):
                    seen[target][local].add((os.path.relpath(path, root), text, alias))
    clashes = []
    for target, names in sorted(seen.items()):
        for local, decls in sorted(names.items()):
            files = {f for f, _, _ in decls}
            texts = {t for _, t, _ in decls}
            # The same alias spelled the same way everywhere is one declaration; anything else
            # defined twice in one translation unit (a constant, a type, a function with the
            # same parameters) is a redefinition, however it is spelled.
            aliases = all(a for _, _, a in decls)
            if len(files) > 1 and (len(texts) > 1 or not aliases):
                clashes.append((target, local, sorted((f, t) for f, t, _ in decls)))
    for (top, kind), local, decls in clashes:
        print(f"{top} {kind}: '{local}' is local to several files:")
        for f, text in decls:
            print(f"    {f}: {text}")
    if clashes:
        print("Unity builds may put these files in one translation unit: give each its own name.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
