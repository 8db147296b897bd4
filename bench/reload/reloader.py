#!/usr/bin/env python3
"""Reloads a running sluice's config every INTERVAL seconds until stopped (SIGTERM), alternating
between two config files: each reload really changes something.

    reloader.py CONFIG A.yaml B.yaml ADMIN_PORT [INTERVAL=0.1]

CONFIG is the file sluice runs (`run -c CONFIG`); each step copies A or B over it with an
atomic rename and POSTs /config/reload on a kept-alive admin connection. One long-lived process
costs the load side well under 1 % of a core at 10 reloads a second, where a shell loop of
cp/mv/curl costs ~10 % (a fork and exec each) and slows the load generator it shares a core
with. On exit it prints the number of reloads applied.
"""
import http.client
import os
import signal
import sys
import time


def main():
    config, a, b, admin = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    interval = float(sys.argv[5]) if len(sys.argv) > 5 else 0.1
    texts = [open(path).read() for path in (a, b)]
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    conn = http.client.HTTPConnection("127.0.0.1", admin, timeout=10)
    applied, i = 0, 0
    next_at = time.monotonic()
    while not stop:
        i += 1
        tmp = config + ".next"
        with open(tmp, "w") as f:
            f.write(texts[i % 2])
        os.replace(tmp, config)
        try:
            conn.request("POST", "/config/reload")
            r = conn.getresponse()
            r.read()
            applied += r.status == 200
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", admin, timeout=10)
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))
    print(applied, flush=True)


if __name__ == "__main__":
    main()
