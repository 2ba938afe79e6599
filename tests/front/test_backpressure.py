"""Backpressure: a client reads a 100 MB gRPC-Web stream at 1 MB/s. The
gateway's RSS must grow by less than 4 MiB, and the backend must be
throttled: what it has sent on its sockets (ss -ti bytes_sent) stays within
a few MiB of what
the client has read, instead of running 100 MB ahead into the gateway.

GW_BACKPRESSURE_MB shortens the stream for a quick local run."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gwtest import Procs, frame, pb_varint, rss_kib, tcp_bytes_sent  # noqa: E402

TOTAL = int(os.environ.get("GW_BACKPRESSURE_MB", "100")) * 1000 * 1000
RATE = 1000 * 1000  # bytes per second
MAX_RSS_GROWTH_KIB = 4 * 1024
MAX_BACKEND_AHEAD = 8 * 1024 * 1024


def main():
    p = Procs()
    try:
        demo, url = p.demo()
        demo_port = int(url.rsplit(":", 1)[1])
        gw, port = p.gateway(url, workers=1)
        req = frame(pb_varint(1, TOTAL) + pb_varint(2, 16384))
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.sendall(b"POST /demo.v1.EchoService/Download HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/grpc-web\r\nContent-Length: %d\r\n\r\n"
                  % len(req) + req)
        got = 0
        t0 = None
        rss0 = None
        sent0 = 0
        max_growth = 0
        max_ahead = 0
        tail = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            got += len(d)
            tail = (tail + d)[-64:]
            if t0 is None and got >= 1024 * 1024:
                # Baseline once the stream is flowing (buffers allocated).
                t0 = time.monotonic()
                base = got
                rss0 = rss_kib(gw.pid)
                sent0 = tcp_bytes_sent(demo_port) - got
            if t0 is not None:
                max_growth = max(max_growth, rss_kib(gw.pid) - rss0)
                if (got // 65536) % 16 == 0:
                    max_ahead = max(max_ahead, tcp_bytes_sent(demo_port) - sent0 - got)
                # Pace to RATE.
                due = t0 + (got - base) / RATE
                now = time.monotonic()
                if due > now:
                    time.sleep(due - now)
            if tail.endswith(b"grpc-status: 0\r\n\r\n0\r\n\r\n"):
                break
        s.close()
        print("read %d bytes; gateway RSS growth max %d KiB; backend ahead of client max %d KiB"
              % (got, max_growth, max_ahead // 1024))
        ok = True
        if got < TOTAL:
            print("FAIL: stream ended early")
            ok = False
        if max_growth >= MAX_RSS_GROWTH_KIB:
            print("FAIL: gateway RSS grew by %d KiB (limit %d)" % (max_growth, MAX_RSS_GROWTH_KIB))
            ok = False
        if max_ahead >= MAX_BACKEND_AHEAD:
            print("FAIL: backend ran %d bytes ahead of the client: not throttled" % max_ahead)
            ok = False
        if p.stop(gw) != 0:
            print("FAIL: gateway did not exit 0")
            ok = False
        return 0 if ok else 1
    finally:
        p.stop_all()


if __name__ == "__main__":
    sys.exit(main())
