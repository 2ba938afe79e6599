#!/usr/bin/env python3
"""Item 6 of issue 18: gateway CPU per GiB of streamed payload.

Downloads TOTAL (default 1 GiB) of payload from the demo service's
Download method through the gateway (1 worker), with curl as the client
writing to /dev/null:
  grpc-web - POST /demo.v1.EchoService/Download, application/grpc-web+proto
             (binary frames pass through);
  rest     - GET /v1/download (NDJSON, the bytes field as base64).
It prints the gateway's CPU seconds (utime+stime from /proc/PID/stat, less
sensitive to other load than wall time) per GiB of payload, the demo
backend's, and the wall-clock rate. CHUNK sets the backend's chunk size
(default 16384, the method's default), CONFIG a gateway config (JSON) to
compare settings. Loopback only; a few seconds each.

    BUILD=build python3 bench/scale/stream_cpu.py [grpc-web|rest ...]
"""
import json
import os
import struct
import subprocess
import sys
import time

from common import conditions, cpu_s, demo, gateway, stop

TOTAL = int(os.environ.get("TOTAL", str(1 << 30)))
CHUNK = int(os.environ.get("CHUNK", "16384"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))


def varint(v):
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def curl(args):
    r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{size_download}"] + args,
                       capture_output=True, text=True, check=True)
    return int(r.stdout)


def one(kind, port):
    if kind == "grpc-web":
        msg = b"\x08" + varint(TOTAL) + b"\x10" + varint(CHUNK)
        body = b"\0" + struct.pack(">I", len(msg)) + msg
        path = os.path.join(os.environ.get("TMPDIR", "/tmp"), "gw-stream-req.bin")
        with open(path, "wb") as f:
            f.write(body)
        return curl(["-X", "POST", "-H", "Content-Type: application/grpc-web+proto",
                     "--data-binary", "@" + path,
                     "http://127.0.0.1:%d/demo.v1.EchoService/Download" % port])
    return curl(["http://127.0.0.1:%d/v1/download?total_bytes=%d&chunk_size=%d"
                 % (port, TOTAL, CHUNK)])


def main():
    print("conditions: %s" % conditions())
    kinds = sys.argv[1:] or ["grpc-web", "rest"]
    dp, dport = demo()
    cfg = json.loads(os.environ["CONFIG"]) if os.environ.get("CONFIG") else None
    gp, port = gateway(dport, cfg, workers=1)
    one(kinds[0], port)  # warm-up (connections, buffers)
    for kind in kinds:
        for r in range(ROUNDS):
            g0, b0, t0 = cpu_s(gp.pid), cpu_s(dp.pid), time.monotonic()
            n = one(kind, port)
            g1, b1, t1 = cpu_s(gp.pid), cpu_s(dp.pid), time.monotonic()
            gib = TOTAL / (1 << 30)
            print("%-8s chunk %6d: %.2f GiB payload (%.0f MB of body) in %.1f s (%.0f MB/s of "
                  "payload): gateway %.2f CPU-s/GiB, backend %.2f CPU-s/GiB"
                  % (kind, CHUNK, gib, n / 1e6, t1 - t0, TOTAL / 1e6 / (t1 - t0),
                     (g1 - g0) / gib, (b1 - b0) / gib))
    stop(gp)
    stop(dp)


if __name__ == "__main__":
    main()
