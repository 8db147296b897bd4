#!/usr/bin/env python3
"""The coroutine frames of a sluice binary, read off its DWARF (a build with -g: the release preset).

Every request in flight holds one frame per coroutine on its path; their sizes are most of what a
busy connection costs past its request state (ARCHITECTURE.md, "Memory of a busy connection").
GCC names a coroutine's frame type after the coroutine's mangled name plus ".Frame", and gives
every local, temporary and co_await of the coroutine its own slot there, so a frame grows quietly
when a coroutine gains a branch; this is how to see it.

  frames.py BINARY             every coroutine frame, largest first: bytes and function
  frames.py --check BINARY     the request path's frames, each checked against the bound below;
                               exits 1 when one is over it or missing

Needs llvm-dwarfdump-14 (Debian's llvm-14, installed by scripts/setup.sh) and c++filt.
"""
import re
import subprocess
import sys

# glibc's largest tcache size: a larger frame takes malloc's slow path twice per request in a glibc
# build (SLUICE_TCMALLOC=OFF). tcmalloc's classes reach past it, but the bound keeps the four
# frames of a request at 2.2 KB together (ARCHITECTURE.md, "Four coroutine frames per request").
BOUND = 1032

# The coroutines every proxied request passes through, by demangled name.
REQUEST_PATH = {
    "serve": "sluice::gateway::proxy::DownstreamConnection::serve(",
    "handle": "sluice::gateway::proxy::DownstreamConnection::handle(",
    "Forwarder::run": "sluice::gateway::proxy::Forwarder::run(",
    "exchange": "sluice::gateway::proxy::Forwarder::exchange(",
}

DIE = re.compile(r'DW_AT_name\s+\("(?P<name>[^"]+)\.Frame"\)\s+DW_AT_byte_size\s+\((?P<size>0x[0-9a-f]+)\)')


def frames(binary):
    """{demangled function: frame bytes} of every coroutine in `binary`."""
    out = subprocess.run(["llvm-dwarfdump-14", "--regex", "--name=\\.Frame$", binary],
                         check=True, capture_output=True, text=True).stdout
    sizes = {}
    for m in DIE.finditer(out):
        # The same frame type is described once per translation unit that instantiates it.
        sizes[m["name"]] = max(sizes.get(m["name"], 0), int(m["size"], 16))
    if not sizes:
        return {}
    mangled = list(sizes)
    names = subprocess.run(["c++filt"], input="\n".join(mangled), check=True,
                           capture_output=True, text=True).stdout.splitlines()
    return {name: sizes[m] for m, name in zip(mangled, names)}


def request_path(all_frames):
    """{short name: bytes or None} of the request path's frames."""
    found = {}
    for short, prefix in REQUEST_PATH.items():
        sizes = [size for name, size in all_frames.items() if name.startswith(prefix)]
        found[short] = max(sizes) if sizes else None
    return found


def main(argv):
    check = "--check" in argv
    args = [a for a in argv if a != "--check"]
    if len(args) != 1:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    all_frames = frames(args[0])
    if not all_frames:
        print(f"frames: no coroutine frames in {args[0]} (built without -g?)", file=sys.stderr)
        return 2
    if not check:
        for name, size in sorted(all_frames.items(), key=lambda kv: (-kv[1], kv[0])):
            print(f"{size:6d}  {name}")
        return 0
    failed = False
    for short, size in request_path(all_frames).items():
        if size is None:
            print(f"{short:15s} missing: renamed, or no longer a coroutine? (REQUEST_PATH)")
            failed = True
        else:
            over = size > BOUND
            failed |= over
            print(f"{short:15s} {size:5d} B{'  over the ' + str(BOUND) + ' B bound' if over else ''}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
