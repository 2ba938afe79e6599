#!/usr/bin/env python3
"""Item 2 of issue 18: what stalled readers cost.

N clients (default 1,000) each ask for a 4 MiB REST download
(GET /v1/download?total_bytes=4194304, NDJSON with base64 chunks: ~5.6 MB of
body) and never read. After SETTLE seconds it prints the host's kernel TCP
buffer memory (/proc/net/sockstat), the gateway's RSS and the bytes the demo
backend has pushed (ss bytes_sent of its sockets), each in total and per
stalled reader; then 10 of the clients read their stream to the end (the
stall was a pause, not a failure) and everything is closed. It runs the
gateway twice: with the defaults (limits.send_lowat_bytes 128 KiB) and with
the bound off (send_lowat_bytes 0, the kernel's autotuning alone), unless
ONLY=default|off. Loopback only; about a minute.

    BUILD=build python3 bench/scale/stalled.py [N]
"""
import os
import re
import socket
import subprocess
import sys
import time

from common import (conditions, demo, gateway, raise_nofile, read_response, request_head,
                    rss_kib, stop, tcp_mem_kib)

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
SETTLE = float(os.environ.get("SETTLE", "6"))
TOTAL = 4 * 1024 * 1024


def bytes_sent(port):
    out = subprocess.run(["ss", "-tinH", "state", "established", "( sport = :%d )" % port],
                         capture_output=True, text=True, check=True).stdout
    return sum(int(m) for m in re.findall(r"bytes_sent:(\d+)", out))


def run(label, cfg):
    dp, dport = demo()
    gp, port = gateway(dport, cfg)
    req = request_head("GET", "/v1/download?total_bytes=%d" % TOTAL)
    time.sleep(0.5)
    rss0, tcp0, sent0 = rss_kib(gp.pid), tcp_mem_kib(), bytes_sent(dport)
    conns = []
    for i in range(N):
        c = socket.create_connection(("127.0.0.1", port), timeout=60)
        c.sendall(req)
        conns.append(c)
    time.sleep(SETTLE)
    rss1, tcp1, sent1 = rss_kib(gp.pid), tcp_mem_kib(), bytes_sent(dport)
    # A few readers come back and read to the end.
    done = 0
    t0 = time.monotonic()
    for c in conns[:10]:
        st, hdr, body, _ = read_response(c)
        done += st == 200 and body.count(b"\n") >= TOTAL // 16384
    t_read = time.monotonic() - t0
    for c in conns:
        c.close()
    time.sleep(2)
    rss2 = rss_kib(gp.pid)
    print("[%s] %d stalled readers of %d-byte downloads, after %.0f s:" % (label, N, TOTAL, SETTLE))
    print("[%s]   host kernel TCP memory: +%d KiB (%.1f KiB per reader)"
          % (label, tcp1 - tcp0, (tcp1 - tcp0) / N))
    print("[%s]   gateway RSS: %d -> %d KiB (+%.1f KiB per reader); %d KiB 2 s after close"
          % (label, rss0, rss1, (rss1 - rss0) / N, rss2))
    print("[%s]   backend pushed: %.1f MiB (%.1f KiB per reader, of %d KiB each)"
          % (label, (sent1 - sent0) / 1048576, (sent1 - sent0) / 1024 / N, TOTAL // 1024))
    print("[%s]   10 readers resumed and read to the end: %d complete in %.1f s"
          % (label, done, t_read))
    stop(gp)
    stop(dp)


def main():
    raise_nofile(N * 3 + 1000)
    print("conditions: %s" % conditions())
    only = os.environ.get("ONLY")
    base = {"limits": {"max_connections": N + 100}}
    if only in (None, "default"):
        run("default", base)
    if only in (None, "off"):
        off = {"limits": dict(base["limits"], send_lowat_bytes=0),
               "upstream": {"send_lowat_bytes": 0}}
        run("lowat off", off)


if __name__ == "__main__":
    main()
