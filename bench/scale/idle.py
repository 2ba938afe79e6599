#!/usr/bin/env python3
"""Item 1 of issue 18: what an idle keep-alive connection costs.

Opens N (default 10,000) connections to `grpcgate serve` (2 workers,
limits.max_connections raised so every one is held), sends one request on
each (GET /v1/users/1, answered by the demo service), keeps them open and
idle, and prints the gateway's RSS growth per connection right after the
requests and again after IDLE_WAIT seconds, plus the host's kernel TCP
buffer memory and TCP slab memory per connection. Loopback only; bounded
(about a minute for 10,000). Then it checks that every connection still
serves a second request (keep-alive kept) and closes them.

    BUILD=build python3 bench/scale/idle.py [N]
"""
import socket
import sys
import time

from common import (conditions, demo, gateway, raise_nofile, read_response, request_head,
                    rss_kib, stop, tcp_mem_kib, tcp_slab_kib)

N = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
IDLE_WAIT = float(__import__("os").environ.get("IDLE_WAIT", "5"))


def main():
    raise_nofile(2 * N + 1000)
    dp, dport = demo()
    gp, port = gateway(dport, {"limits": {"max_connections": N + 100}})
    req = request_head("GET", "/v1/users/1")
    # Warm up: one request, so that one-time allocations are out of the way.
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(req)
    read_response(s)
    s.close()
    time.sleep(0.5)
    rss0, tcp0, slab0 = rss_kib(gp.pid), tcp_mem_kib(), tcp_slab_kib()
    t0 = time.monotonic()
    conns = []
    for i in range(N):
        c = socket.create_connection(("127.0.0.1", port), timeout=30)
        conns.append(c)
        c.sendall(req)
        st, _, _, _ = read_response(c)
        assert st == 200, st
    t_open = time.monotonic() - t0
    rss1, tcp1, slab1 = rss_kib(gp.pid), tcp_mem_kib(), tcp_slab_kib()
    time.sleep(IDLE_WAIT)
    rss2, tcp2, slab2 = rss_kib(gp.pid), tcp_mem_kib(), tcp_slab_kib()
    # Every connection still serves (nothing was closed under the client).
    ok = 0
    for c in conns:
        c.sendall(req)
        st, _, _, _ = read_response(c)
        ok += st == 200
    rss3 = rss_kib(gp.pid)
    for c in conns:
        c.close()
    time.sleep(IDLE_WAIT)
    rss4 = rss_kib(gp.pid)
    print("conditions: %s" % conditions())
    print("connections: %d opened with one request each in %.1f s; second request ok on %d"
          % (N, t_open, ok))
    print("gateway RSS: start %d KiB, after requests %d KiB, after %.0f s idle %d KiB, "
          "after second round %d KiB, %.0f s after close %d KiB"
          % (rss0, rss1, IDLE_WAIT, rss2, rss3, IDLE_WAIT, rss4))
    print("per idle connection: gateway RSS %.2f KiB right after its request, %.2f KiB "
          "after %.0f s idle" % ((rss1 - rss0) / N, (rss2 - rss0) / N, IDLE_WAIT))
    print("per idle connection: kernel TCP buffers %.2f KiB (host-wide sockstat, both ends)"
          % ((tcp2 - tcp0) / N))
    if slab0 is not None:
        print("per idle connection: kernel TCP socket objects %.2f KiB (slab TCP + "
              "sock_inode_cache, both ends of the loopback pair)" % ((slab2 - slab0) / N))
    stop(gp)
    stop(dp)


if __name__ == "__main__":
    main()
