#!/usr/bin/env python3
"""Item 3 of issue 18: is memory given back once the load ends?

Three loads, each on a fresh gateway (2 workers) and demo service:
  conns   - 10,000 keep-alive connections, one request each, then closed;
  big     - 40 concurrent gRPC-Web Echo calls of 4 MiB messages, 3 rounds;
  streams - 3 rounds of 1,000 concurrent REST downloads of 256 KiB each.
For each it prints the gateway's RSS at start-up, at the end of the load and
0.5 / 1 / 2 / 3 / 5 s later, with the default limits.idle_trim_ms (1000:
malloc_trim once the worker has been quiet for 1 s) and with it off (0: what
glibc keeps by itself). The difference is allocator retention; what stays
with trimming on is the gateway's own (or unreturnable fragmentation).
Loopback only; about two minutes.

    BUILD=build python3 bench/scale/giveback.py [conns|big|streams ...]
"""
import os
import socket
import struct
import sys
import threading
import time

from common import (conditions, demo, gateway, raise_nofile, read_response, request_head,
                    rss_kib, stop)

MIB = 1 << 20
MARKS = (0.5, 1, 2, 3, 5)


def load_conns(port):
    req = request_head("GET", "/v1/users/1")
    cs = []
    for i in range(10000):
        c = socket.create_connection(("127.0.0.1", port), timeout=60)
        c.sendall(req)
        read_response(c)
        cs.append(c)
    for c in cs:
        c.close()


def echo_frame(size):
    n = size - 6
    msg = b"\x0a" + bytes([0x80 | (n & 0x7F), 0x80 | (n >> 7 & 0x7F), 0x80 | (n >> 14 & 0x7F),
                           n >> 21]) + b"m" * n
    assert len(msg) == size - 1 or True
    return b"\0" + struct.pack(">I", len(msg)) + msg


def parallel(n, fn):
    ts = [threading.Thread(target=fn, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def load_big(port):
    body = echo_frame(4 * MIB - 16)
    head = request_head("POST", "/demo.v1.EchoService/Echo", body,
                        {"Content-Type": "application/grpc-web+proto"})

    def one(i):
        c = socket.create_connection(("127.0.0.1", port), timeout=60)
        c.sendall(head)
        st, hdr, b, _ = read_response(c)
        assert st == 200 and len(b) > 4 * MIB - 64, (st, len(b))
        c.close()
    for _ in range(3):
        parallel(40, one)


def load_streams(port):
    req = request_head("GET", "/v1/download?total_bytes=%d" % (256 * 1024))
    for _ in range(3):
        cs = []
        for i in range(1000):
            c = socket.create_connection(("127.0.0.1", port), timeout=60)
            c.sendall(req)
            cs.append(c)
        for c in cs:
            st, _, _, _ = read_response(c)
            assert st == 200
            c.close()


LOADS = {"conns": load_conns, "big": load_big, "streams": load_streams}


def run(name, trim_ms):
    dp, dport = demo()
    gp, port = gateway(dport, {"limits": {"max_connections": 12000,
                                          "idle_trim_ms": trim_ms}})
    time.sleep(1)
    rss0 = rss_kib(gp.pid)
    LOADS[name](port)
    t0 = time.monotonic()
    peak = rss_kib(gp.pid)
    after = []
    for m in MARKS:
        time.sleep(max(0, t0 + m - time.monotonic()))
        after.append(rss_kib(gp.pid))
    stop(gp)
    stop(dp)
    print("%-8s idle_trim_ms=%-5d start %6.1f MB, end of load %6.1f MB, then %s"
          % (name, trim_ms, rss0 / 1024, peak / 1024,
             ", ".join("%gs %.1f" % (m, a / 1024) for m, a in zip(MARKS, after))))
    return rss0, after


def main():
    raise_nofile(25000)
    print("conditions: %s" % conditions())
    print("gateway RSS in MB (1 MB = 1024 KiB)")
    for name in sys.argv[1:] or list(LOADS):
        off0, off = run(name, 0)
        on0, on = run(name, 1000)
        print("%-8s => kept by glibc without trimming: %.1f MB over start-up 5 s after the "
              "load; with trimming: %.1f MB over start-up"
              % (name, (off[-1] - off0) / 1024, (on[-1] - on0) / 1024))


if __name__ == "__main__":
    main()
